/**
 * A minimal rule engine for the tests of the platform side of detection (rules, alerts, dry-runs, scale-out):
 * one rule kind, a threshold on a numeric attribute of an entity type, raised above the limit and cleared at
 * or below it; a cause raised again after a clear is an `update` of its alert (as the real engine's
 * suppression window has it). It implements the same port as the real engine (engine-port.ts), so the tests exercise the
 * platform, not the rule language. Tests only.
 *
 * Rule document: `{ name, entityType, attribute, above, severity?, category? }` (local names).
 */
import type { EngineRule, EngineSignal, Observation, OwnerCanSee, RuleEngine } from './engine-port.ts';
import type { RuleProblem, RuleValidator } from './rule-service.ts';

interface ThresholdRule {
  name: string;
  entityType: string;
  attribute: string;
  above: number;
  severity: string;
  category: string;
}

const FIELDS = new Set(['name', 'entityType', 'attribute', 'above', 'severity', 'category']);

export const validateThresholdRule: RuleValidator = (doc) => {
  const errors: RuleProblem[] = [];
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return { ok: false, errors: [{ path: '', reason: 'a rule is a JSON object' }] };
  }
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!FIELDS.has(k)) errors.push({ path: k, reason: 'unknown field' });
  for (const k of ['name', 'entityType', 'attribute'] as const) {
    if (typeof d[k] !== 'string' || (d[k] as string).length === 0)
      errors.push({ path: k, reason: 'a non-empty string is required' });
  }
  if (typeof d.above !== 'number' || !Number.isFinite(d.above))
    errors.push({ path: 'above', reason: 'a finite number is required' });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, rule: doc };
};

function localName(iri: string): string {
  return iri.slice(Math.max(iri.lastIndexOf('#'), iri.lastIndexOf('/')) + 1);
}

function attributeValue(
  entity: Record<string, unknown>,
  name: string,
): { value: unknown; at?: string } | undefined {
  for (const [k, raw] of Object.entries(entity)) {
    if (localName(k) !== name) continue;
    const a = (Array.isArray(raw) ? raw[0] : raw) as Record<string, unknown> | undefined;
    const v = a?.value ?? a?.['https://uri.etsi.org/ngsi-ld/hasValue'];
    const at = a?.observedAt ?? a?.['https://uri.etsi.org/ngsi-ld/observedAt'];
    return { value: v, ...(typeof at === 'string' ? { at } : {}) };
  }
  return undefined;
}

export function thresholdEngine(canSee: OwnerCanSee): RuleEngine {
  const rules = new Map<
    string,
    { rule: ThresholdRule; owner: string; above: Set<string>; raised: Set<string> }
  >();
  return {
    load(r: EngineRule): EngineSignal[] {
      const doc = r.rule as Partial<ThresholdRule>;
      const rule = {
        ...doc,
        severity: doc.severity ?? 'high',
        category: doc.category ?? 'crowd',
      } as ThresholdRule;
      const above = new Set<string>();
      rules.set(r.id, { rule, owner: r.ownerOrg, above, raised: new Set() });
      return [];
    },
    unload(id) {
      rules.delete(id);
    },
    observe(o: Observation): EngineSignal[] {
      const out: EngineSignal[] = [];
      for (const [id, { rule, owner, above, raised }] of rules) {
        if (!o.entityTypes.some((t) => localName(t) === rule.entityType) || !canSee(owner, o.readKeys))
          continue;
        const found = attributeValue(o.entity, rule.attribute);
        if (!found || typeof found.value !== 'number') continue;
        const evidence = [
          {
            entityId: o.entityId,
            attribute: rule.attribute,
            value: found.value,
            observedAt: found.at ?? o.at,
          },
        ];
        if (found.value > rule.above && !above.has(o.entityId)) {
          above.add(o.entityId);
          const again = raised.has(o.entityId);
          raised.add(o.entityId);
          out.push({
            kind: again ? 'update' : 'raise',
            ruleId: id,
            key: o.entityId,
            at: o.at,
            severity: rule.severity,
            category: rule.category,
            description: `${rule.name}: ${rule.attribute} ${found.value} > ${rule.above}`,
            evidence,
          });
        } else if (found.value <= rule.above && above.has(o.entityId)) {
          above.delete(o.entityId);
          out.push({ kind: 'clear', ruleId: id, key: o.entityId, at: o.at, evidence });
        }
      }
      return out;
    },
    tick: () => [],
    checkpoint: () => Object.fromEntries([...rules].map(([id, r]) => [id, [...r.above]])),
    restore(state) {
      for (const [id, above] of Object.entries((state ?? {}) as Record<string, string[]>)) {
        const r = rules.get(id);
        if (r) r.above = new Set(above);
      }
    },
  };
}
