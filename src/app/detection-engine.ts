/**
 * The detection engine the platform runs: the rule language and evaluator of src/modules/detection, adapted
 * to the platform's port (src/modules/detection-live/engine-port.ts). The composition root is the one place
 * that knows both.
 */
import {
  type AlertSignal,
  DetectionEngine,
  type DetectionResult,
  type EngineCheckpoint,
  observationsFromChange,
  type Rule,
  validateRule,
} from '../modules/detection/index.ts';
import type {
  EngineRule,
  EngineSignal,
  Observation,
  OwnerCanSee,
  RuleEngine,
  RuleValidator,
} from '../modules/detection-live/index.ts';
import type { Marking } from '../modules/sharing/index.ts';
import type { DetectionEngineParts } from './platform.ts';

export function defaultDetection(): DetectionEngineParts {
  return { validate: validateRuleDocument, engine: (canSee) => new EngineAdapter(canSee) };
}

/** The rule language's verdict, in the platform's words (JSON-pointer paths). */
export const validateRuleDocument: RuleValidator = (doc) => {
  const v = validateRule(doc);
  return v.ok ? { ok: true, rule: v.rule } : { ok: false, errors: v.errors };
};

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function sameMarking(a: Marking, b: Marking): boolean {
  const norm = (m: Marking) =>
    JSON.stringify([
      m.tlp,
      m.pap ?? null,
      [...m.audience.orgs].sort(),
      [...m.audience.communities].sort(),
      [...m.audience.users].sort(),
    ]);
  return norm(a) === norm(b);
}

/** One engine result in the port's words. */
export function signalOf(r: DetectionResult): EngineSignal {
  if (r.type === 'suspended') {
    return { kind: 'suspended', ruleId: r.ruleId, key: '', at: iso(r.at), evidence: [], reason: r.reason };
  }
  const s: AlertSignal = r;
  const evidence = s.evidence.map((e) => ({
    entityId: e.entityId,
    entityType: e.entityTypes[0],
    attribute: e.attribute,
    value: e.value,
    observedAt: iso(e.observedAt),
    ownerOrg: e.ownerOrg,
    marking: e.marking,
  }));
  // Markings of evidence the bounded list has dropped: the alert's marking keeps them (its owner unknown).
  const earlier = s.markings.filter((m) => !s.evidence.some((e) => sameMarking(e.marking, m)));
  return {
    kind: s.type,
    ruleId: s.ruleId,
    key: s.alertKey,
    cause: s.cause,
    at: iso(s.at),
    severity: s.severity,
    category: s.category,
    description: s.reason ? `${s.ruleName}: ${s.reason}` : s.ruleName,
    ...(s.location ? { location: s.location } : {}),
    evidence,
    ...(earlier.length > 0 ? { sources: earlier.map((marking) => ({ marking })) } : {}),
  };
}

/** The engine of src/modules/detection behind the platform's RuleEngine port. */
class EngineAdapter implements RuleEngine {
  readonly #engine: DetectionEngine;

  constructor(canSee: OwnerCanSee) {
    this.#engine = new DetectionEngine({ canSee: (ownerOrg, v) => canSee(ownerOrg, v.readKeys) });
  }

  load(rule: EngineRule): EngineSignal[] {
    try {
      this.#engine.upsertRule({
        id: rule.id,
        version: rule.version,
        ownerOrg: rule.ownerOrg,
        rule: rule.rule as Rule,
      });
      return [];
    } catch (e) {
      return [
        {
          kind: 'suspended',
          ruleId: rule.id,
          key: '',
          at: new Date().toISOString(),
          evidence: [],
          reason: `the engine refused the rule: ${(e as Error).message}`,
        },
      ];
    }
  }

  unload(ruleId: string): void {
    this.#engine.removeRule(ruleId);
  }

  observe(o: Observation): EngineSignal[] {
    const observations = observationsFromChange(
      {
        tenant: o.tenant,
        entityId: o.entityId,
        entityType: o.entityTypes,
        entity: o.deleted ? null : o.entity,
        changedAttributes: o.changed,
        ...(o.deletedAttributes ? { deletedAttributes: o.deletedAttributes } : {}),
        ownerOrg: o.ownerOrg,
        createdBy: o.createdBy ?? '',
        marking: o.marking,
        readKeys: [...o.readKeys],
        observedAt: o.at,
      },
      { receivedAt: Date.parse(o.at) },
    );
    const out: EngineSignal[] = [];
    for (const obs of observations) for (const r of this.#engine.observe(obs)) out.push(signalOf(r));
    return out;
  }

  tick(now: Date): EngineSignal[] {
    return this.#engine.tick(now.getTime()).map(signalOf);
  }

  checkpoint(): unknown {
    return this.#engine.checkpoint();
  }

  restore(state: unknown): void {
    if (state && typeof state === 'object') this.#engine.restore(state as EngineCheckpoint);
  }

  reads(rule: EngineRule): { attrs?: string[]; types?: string[] } {
    return readsOf(rule.rule as Rule);
  }
}

const CORE = 'https://uri.etsi.org/ngsi-ld/';
const DEFAULT_CONTEXT = 'https://uri.etsi.org/ngsi-ld/default-context/';
const CORE_TERMS = new Set(['location', 'observationSpace', 'operationSpace', 'name', 'description']);

/** The expanded name of a term as rules use it (the inverse of the engine's defaultTermOf). */
export function expandRuleTerm(term: string): string {
  if (term.includes(':')) return term;
  return CORE_TERMS.has(term) ? `${CORE}${term}` : `${DEFAULT_CONTEXT}${term}`;
}

/**
 * What a replay must read for a rule: its types and attributes (expanded), plus the location (positions
 * travel with observations). Nothing narrower for rules that learn from other entities (a geofence's area
 * entity, correlation's relationships) or read any attribute (silence).
 */
export function readsOf(rule: Rule): { attrs?: string[]; types?: string[] } {
  if (rule.kind === 'correlation' || rule.kind === 'silence') return {};
  if (rule.kind === 'geofence' && 'entityId' in rule.area) return {};
  const matches =
    rule.kind === 'sequence'
      ? rule.steps.map((s) => s.match)
      : [rule.match as { types: string[]; attribute?: string }];
  const types = new Set<string>();
  const attrs = new Set<string>([`${CORE}location`]);
  for (const m of matches) {
    for (const t of m.types) types.add(expandRuleTerm(t));
    if (m.attribute) attrs.add(expandRuleTerm(m.attribute));
  }
  if (rule.kind === 'flowImbalance') {
    attrs.add(expandRuleTerm(rule.inAttribute));
    attrs.add(expandRuleTerm(rule.outAttribute));
  }
  if (rule.kind !== 'flowImbalance' && matches.some((m) => !m.attribute)) return { types: [...types] };
  return { types: [...types], attrs: [...attrs] };
}
