/**
 * The detection engine: rules in, observations and time in, alert signals out. Pure and synchronous —
 * no clock, no I/O — so the platform can run it live, replay history through it (dry-run) and
 * checkpoint its state. Rules are indexed by (attribute, entity type), so an observation meets only the
 * rules that can match it; each rule sees only what its owner organisation may see (the injected
 * `canSee`, the sharing gate's); a rule that throws, runs too long or outgrows its state limits is
 * suspended with a reason and never stops the others.
 */
import { AppError } from '../../kernel/errors.ts';
import { compileUserPattern, type UserPattern } from '../context/index.ts';
import { AlertBook, type OpenAlert } from './alert-book.ts';
import { AnomalyEvaluator } from './anomaly-evaluator.ts';
import { CorrelationEvaluator } from './correlation-evaluator.ts';
import type { AlertSignal, DetectionResult, RuleSuspended } from './detection-result.ts';
import { DEFAULT_LIMITS, type EngineLimits, type Evaluator, type RuleContext } from './evaluator.ts';
import { type PreparedArea, prepareArea } from './geo.ts';
import { GeofenceEvaluator } from './geofence-evaluator.ts';
import {
  type Observation,
  observationFromReport,
  type ReportSignal,
  type Visibility,
} from './observation.ts';
import { RateEvaluator } from './rate-evaluator.ts';
import { HopLimitExceeded, RelationshipGraph } from './relationship-graph.ts';
import {
  DEFAULT_DEDUP_SECONDS,
  type GeoPolygon,
  type Match,
  type Rule,
  type RuleDefinition,
} from './rule-language.ts';
import { SilenceEvaluator } from './silence-evaluator.ts';
import { crowdDensityEvaluator, thresholdEvaluator } from './threshold-evaluator.ts';
import { validateRule } from './validate-rule.ts';
import { CountEvaluator, FlowImbalanceEvaluator, SequenceEvaluator } from './window-evaluators.ts';

export interface DetectionEngineOptions {
  /**
   * May the owner organisation of a rule see what an observation (or a relationship, an area) comes from?
   * The platform wires the sharing gate's canSee with the organisation's read keys.
   */
  canSee: (ownerOrg: string, subject: Visibility) => boolean;
  limits?: Partial<EngineLimits>;
  /** false: every observation meets every rule (the naive baseline of the benchmark). Default true. */
  indexed?: boolean;
}

export type RuleStatus = 'active' | 'disabled' | 'suspended';

export interface RuleState {
  id: string;
  version: number;
  ownerOrg: string;
  status: RuleStatus;
  reason?: string;
  /** State entries held, estimated bytes, open alerts. */
  entries: number;
  bytes: number;
  alerts: number;
}

export interface RuleCheckpoint {
  id: string;
  version: number;
  status: RuleStatus;
  reason?: string;
  state: unknown;
  alerts: OpenAlert[];
}

export interface EngineCheckpoint {
  format: 1;
  seq: number;
  now: number;
  rules: RuleCheckpoint[];
  graph: ReturnType<RelationshipGraph['save']>;
  areas: [string, GeoPolygon, Visibility][];
}

interface Slot {
  def: RuleDefinition;
  status: RuleStatus;
  reason?: string;
  evaluator: Evaluator;
  book: AlertBook;
  ctx: RuleContext;
  /** The matches that decide which observations reach the evaluator (steps and signals for some kinds). */
  matches: { match: Match; attributes: string[] }[];
  /** The last observation (seq) dispatched to it: one observation reaches a rule once. */
  stamp: number;
  timed: boolean;
  /** Evaluations past the time limit, and quick ones since the last. */
  slow: number;
  quick: number;
}

interface Area {
  prepared: PreparedArea;
  polygon: GeoPolygon;
  vis: Visibility;
}

const EVENT_LIKE = new Set(['count', 'sequence', 'correlation']);
/**
 * Kinds whose one evaluation can cost more than a bounded handful of operations (windows scanned,
 * relationships followed, polygons tested): timed against maxEvaluationMs. The others (anomaly's work is
 * bounded by its 1,000 samples at most) would pay more for two clock reads than they cost.
 */
const TIMED = new Set(['geofence', 'flowImbalance', 'sequence', 'count', 'correlation']);
const ANY_ATTRIBUTE = '\u0000any';
const NO_RESULTS: DetectionResult[] = [];

function evaluatorOf(rule: Rule): Evaluator {
  switch (rule.kind) {
    case 'threshold':
      return thresholdEvaluator(rule);
    case 'crowdDensity':
      return crowdDensityEvaluator(rule);
    case 'rate':
      return new RateEvaluator(rule);
    case 'anomaly':
      return new AnomalyEvaluator(rule);
    case 'silence':
      return new SilenceEvaluator(rule);
    case 'geofence':
      return new GeofenceEvaluator(rule);
    case 'flowImbalance':
      return new FlowImbalanceEvaluator(rule);
    case 'count':
      return new CountEvaluator(rule);
    case 'sequence':
      return new SequenceEvaluator(rule);
    case 'correlation':
      return new CorrelationEvaluator(rule);
  }
}

/** Which (match, attributes) bring observations to a rule. */
function matchesOf(rule: Rule): { match: Match; attributes: string[] }[] {
  switch (rule.kind) {
    case 'sequence':
      return rule.steps.map((s) => ({ match: s.match, attributes: [s.match.attribute] }));
    case 'correlation':
      return rule.signals.map((s) => ({ match: s.match, attributes: [s.match.attribute] }));
    case 'flowImbalance':
      return [{ match: rule.match, attributes: [rule.inAttribute, rule.outAttribute] }];
    case 'geofence':
      return [{ match: rule.match, attributes: [rule.match.attribute ?? 'location'] }];
    case 'silence':
      return [{ match: rule.match, attributes: [rule.match.attribute ?? ANY_ATTRIBUTE] }];
    default:
      return [{ match: rule.match, attributes: [rule.match.attribute] }];
  }
}

export class DetectionEngine {
  readonly #canSee: DetectionEngineOptions['canSee'];
  readonly #limits: EngineLimits;
  readonly #indexed: boolean;
  readonly #slots = new Map<string, Slot>();
  /** attribute → entity type → rules. */
  readonly #index = new Map<string, Map<string, Slot[]>>();
  readonly #patterns = new WeakMap<Match, UserPattern>();
  readonly #graph: RelationshipGraph;
  #relationshipNames = new Set<string>();
  /** Areas the rules name by entity: tenant \0 id \0 attribute → polygon. */
  readonly #areas = new Map<string, Area>();
  #areaIds = new Set<string>();
  #seq = 0;
  #now = 0;
  #dirty = true;
  /** One-entry cache in front of #seen: most observations meet rules of one owner. */
  #seenOrg: string | undefined;
  #seenYes = false;
  #results: DetectionResult[] = NO_RESULTS;
  /** The visibility decisions of the observation being dispatched, per owner organisation. */
  readonly #seen = new Map<string, boolean>();

  constructor(opts: DetectionEngineOptions) {
    this.#canSee = opts.canSee;
    this.#limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.#indexed = opts.indexed ?? true;
    this.#graph = new RelationshipGraph(() => this.#relationshipNames, this.#limits.maxGraphEdges);
  }

  get limits(): Readonly<EngineLimits> {
    return this.#limits;
  }

  // ---------------------------------------------------------------------------------------------- rules

  /**
   * Adds or replaces a rule. The same version keeps its state (an enable/disable); a new version starts
   * afresh, and its alerts still open count as ended now, so that the same cause within the suppression
   * window updates them. Throws PLATFORM_VALIDATION_FAILED (with `errors`) for an invalid document.
   */
  upsertRule(def: RuleDefinition): void {
    const v = validateRule(def.rule);
    if (!v.ok) {
      throw new AppError('PLATFORM_VALIDATION_FAILED', `rule ${def.id} is invalid`, { errors: v.errors });
    }
    const old = this.#slots.get(def.id);
    const next: RuleDefinition = { id: def.id, version: def.version, ownerOrg: def.ownerOrg, rule: v.rule };
    if (old && old.def.version === def.version && old.def.ownerOrg === def.ownerOrg) {
      old.def = next;
      const enabled = next.rule.enabled !== false;
      if (!enabled && old.status === 'active') {
        old.status = 'disabled';
        old.evaluator = evaluatorOf(next.rule);
      } else if (enabled && old.status === 'disabled') old.status = 'active';
      this.#reindex();
      return;
    }
    const slot = this.#slot(next);
    if (old) {
      slot.book.load(old.book.save());
      slot.book.endAll(this.#now);
    }
    this.#slots.set(def.id, slot);
    this.#reindex();
  }

  removeRule(id: string): boolean {
    const had = this.#slots.delete(id);
    if (had) this.#reindex();
    return had;
  }

  /** A suspended rule runs again, from empty state. */
  resumeRule(id: string): boolean {
    const s = this.#slots.get(id);
    if (s?.status !== 'suspended') return false;
    s.status = s.def.rule.enabled === false ? 'disabled' : 'active';
    delete s.reason;
    s.slow = 0;
    s.quick = 0;
    s.evaluator = evaluatorOf(s.def.rule);
    this.#reindex();
    return true;
  }

  rules(): RuleState[] {
    return [...this.#slots.values()].map((s) => {
      const r: RuleState = {
        id: s.def.id,
        version: s.def.version,
        ownerOrg: s.def.ownerOrg,
        status: s.status,
        entries: s.evaluator.entries(),
        bytes: s.evaluator.bytes() + s.book.bytes(),
        alerts: s.book.size,
      };
      if (s.reason) r.reason = s.reason;
      return r;
    });
  }

  #slot(def: RuleDefinition): Slot {
    const slotRef: { s?: Slot } = {};
    const book = new AlertBook(
      () => slotRef.s!.def,
      () => (slotRef.s!.def.rule.dedup?.seconds ?? DEFAULT_DEDUP_SECONDS) * 1000,
      this.#limits.maxEvidence,
      EVENT_LIKE.has(def.rule.kind),
    );
    const engine = this;
    const ctx: RuleContext = {
      get def() {
        return slotRef.s!.def;
      },
      limits: this.#limits,
      fire: (cause, evidence, at, opts) => this.#emit(book.fire(cause, evidence, at, opts)),
      resolve: (cause, at, reason) => {
        const s = book.resolve(cause, at, reason);
        if (s) this.#emit(s);
      },
      isActive: (cause) => book.isActive(cause),
      findAlert: (now, pred) => book.find(now, pred),
      visible: (v) => this.#visible(slotRef.s!.def.ownerOrg, v),
      areaOf: (tenant, id, attribute) => {
        const a = this.#areas.get(`${tenant}\u0000${id}\u0000${attribute}`);
        return a && this.#canSee(slotRef.s!.def.ownerOrg, a.vis) ? a.prepared : undefined;
      },
      linked: (tenant, id, names, hops) =>
        this.#graph.linked(
          tenant,
          id,
          names,
          hops,
          (v) => this.#canSee(slotRef.s!.def.ownerOrg, v),
          this.#limits.maxHopVisits,
        ),
      matches: (m, o) => this.#matches(m, o),
      get seq() {
        return engine.#seq;
      },
    };
    const slot: Slot = {
      def,
      status: def.rule.enabled === false ? 'disabled' : 'active',
      evaluator: evaluatorOf(def.rule),
      book,
      ctx,
      matches: matchesOf(def.rule),
      stamp: -1,
      timed: TIMED.has(def.rule.kind),
      slow: 0,
      quick: 0,
    };
    slotRef.s = slot;
    return slot;
  }

  /** Rules changed: the index is rebuilt before the next evaluation (registering 1,000 rules stays linear). */
  #reindex(): void {
    this.#dirty = true;
  }

  #ensureIndex(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    this.#index.clear();
    const names = new Set<string>();
    const areaIds = new Set<string>();
    for (const s of this.#slots.values()) {
      const r = s.def.rule;
      if (r.kind === 'correlation') for (const n of r.near.relationships ?? []) names.add(n);
      if (r.kind === 'geofence' && 'entityId' in r.area) areaIds.add(r.area.entityId);
      for (const { match } of s.matches) {
        if (match.idPattern && !this.#patterns.has(match)) {
          this.#patterns.set(
            match,
            compileUserPattern(match.idPattern, (why) => new AppError('PLATFORM_VALIDATION_FAILED', why)),
          );
        }
      }
      if (s.status !== 'active') continue;
      for (const { match, attributes } of s.matches) {
        for (const a of attributes) {
          let byType = this.#index.get(a);
          if (!byType) {
            byType = new Map();
            this.#index.set(a, byType);
          }
          for (const t of match.types) {
            const list = byType.get(t);
            if (!list) byType.set(t, [s]);
            else if (!list.includes(s)) list.push(s);
          }
        }
      }
    }
    this.#relationshipNames = names;
    this.#areaIds = areaIds;
  }

  // ------------------------------------------------------------------------------------------- evaluate

  observeReport(r: ReportSignal): DetectionResult[] {
    return this.observe(observationFromReport(r));
  }

  /** Evaluates one observation; answers the signals it caused (often none). */
  observe(o: Observation): DetectionResult[] {
    this.#ensureIndex();
    const seq = ++this.#seq;
    if (o.observedAt > this.#now) this.#now = o.observedAt;
    this.#results = NO_RESULTS;
    this.#seenOrg = undefined;
    if (this.#seen.size > 0) this.#seen.clear();
    if (o.deleted) {
      this.#forget(o);
      return this.#results;
    }
    if (this.#relationshipNames.size > 0 && o.relationships) {
      this.#graph.update(o.tenant, o.entityId, o.relationships, o);
    }
    if (this.#areaIds.size > 0 && this.#areaIds.has(o.entityId)) this.#learnArea(o);
    if (this.#indexed) {
      const byAttribute = this.#index.get(o.attribute);
      if (byAttribute) this.#dispatchAll(byAttribute, o, seq);
      const byAny = this.#index.get(ANY_ATTRIBUTE);
      if (byAny) this.#dispatchAll(byAny, o, seq);
    } else {
      for (const s of this.#slots.values()) if (s.status === 'active') this.#dispatch(s, o);
    }
    return this.#results;
  }

  #dispatchAll(byType: Map<string, Slot[]>, o: Observation, seq: number): void {
    const types = o.entityTypes;
    for (let k = 0; k < types.length; k++) {
      const list = byType.get(types[k]!);
      if (!list) continue;
      for (let i = 0; i < list.length; i++) {
        const s = list[i]!;
        if (s.stamp === seq || s.status !== 'active') continue;
        s.stamp = seq;
        this.#dispatch(s, o);
      }
    }
  }

  /**
   * An entity's marking changed (`context.entity.marking_changed`): the relationships and areas learnt
   * from it are seen from now on by whom may see it now (its next observations carry the new marking).
   */
  visibilityChanged(tenant: string, entityId: string, vis: Visibility): void {
    this.#graph.setVisibility(tenant, entityId, vis);
    const prefix = `${tenant}\u0000${entityId}\u0000`;
    for (const [k, a] of this.#areas) {
      if (k.startsWith(prefix)) {
        a.vis = { ownerOrg: vis.ownerOrg, readKeys: vis.readKeys, marking: vis.marking };
        if (vis.createdBy !== undefined) a.vis.createdBy = vis.createdBy;
      }
    }
  }

  /** Time passes: silence, minimum durations, dwell times, windows and suppression windows. */
  tick(now: number): DetectionResult[] {
    this.#ensureIndex();
    if (now > this.#now) this.#now = now;
    this.#results = NO_RESULTS;
    for (const s of this.#slots.values()) {
      if (s.status !== 'active') continue;
      if (s.evaluator.tick) {
        const start = performance.now();
        let failure: unknown;
        try {
          s.evaluator.tick(now, s.ctx);
        } catch (e) {
          failure = e ?? 'error';
        }
        this.#judge(s, now, performance.now() - start, failure);
      }
      if (s.status === 'active') s.book.prune(now);
    }
    return this.#results;
  }

  #matches(m: Match, o: Observation): boolean {
    return (m.attribute === undefined || m.attribute === o.attribute) && this.#matchesEntity(m, o);
  }

  /** Tenant, types and id pattern (the attribute is the caller's). */
  #matchesEntity(m: Match, o: Observation): boolean {
    if ((m.tenant ?? '') !== o.tenant) return false;
    let typed = false;
    for (const t of o.entityTypes) {
      if (m.types.includes(t)) {
        typed = true;
        break;
      }
    }
    if (!typed) return false;
    const p = m.idPattern === undefined ? undefined : this.#patterns.get(m);
    if (p) {
      try {
        return p.test(o.entityId);
      } catch {
        return false; // an id too long for the pattern's work bound matches nothing
      }
    }
    return true;
  }

  #dispatch(s: Slot, o: Observation): void {
    let ok = false;
    const matches = s.matches;
    for (let i = 0; i < matches.length; i++) {
      const { match, attributes } = matches[i]!;
      if (
        (attributes[0] === ANY_ATTRIBUTE || attributes.includes(o.attribute)) &&
        this.#matchesEntity(match, o)
      ) {
        ok = true;
        break;
      }
    }
    if (!ok || !this.#visible(s.def.ownerOrg, o)) return;
    const start = s.timed ? performance.now() : 0;
    let failure: unknown;
    try {
      s.evaluator.observe(o, s.ctx);
    } catch (e) {
      failure = e ?? 'error';
    }
    this.#judge(s, o.observedAt, s.timed ? performance.now() - start : 0, failure);
  }

  #visible(ownerOrg: string, v: Visibility): boolean {
    if (ownerOrg === this.#seenOrg) return this.#seenYes;
    const known = this.#seen.get(ownerOrg);
    if (known !== undefined) return known;
    const yes = this.#canSee(ownerOrg, v);
    if (this.#seenOrg === undefined) {
      this.#seenOrg = ownerOrg;
      this.#seenYes = yes;
    } else this.#seen.set(ownerOrg, yes);
    return yes;
  }

  /**
   * After a rule's evaluation: suspends the rule when it threw, outgrew its state limits, or ran past the
   * time limit three times without 1,000 quick runs between (one slow run may be the machine, not the rule).
   */
  #judge(s: Slot, at: number, took: number, failure: unknown): void {
    let reason: string | undefined;
    if (failure !== undefined) {
      reason =
        failure instanceof HopLimitExceeded
          ? `${failure.message} (limit maxHopVisits)`
          : `evaluation failed: ${failure instanceof Error ? failure.message : String(failure)}`;
    } else {
      if (took > this.#limits.maxEvaluationMs) {
        s.slow++;
        s.quick = 0;
        if (s.slow >= 3) {
          reason = `three evaluations took longer than ${this.#limits.maxEvaluationMs} ms (the last ${took.toFixed(0)} ms)`;
        }
      } else if (s.slow > 0 && ++s.quick >= 1_000) {
        s.slow = 0;
        s.quick = 0;
      }
      const entries = s.evaluator.entries() + s.book.size;
      if (reason === undefined && entries > this.#limits.maxStateEntries) {
        reason = `state holds ${entries} entries (limit ${this.#limits.maxStateEntries})`;
      } else if (reason === undefined) {
        const bytes = s.evaluator.bytes() + s.book.size * 1_000;
        if (bytes > this.#limits.maxStateBytes) {
          reason = `state holds about ${Math.round(bytes / 1024)} KiB (limit ${Math.round(this.#limits.maxStateBytes / 1024)} KiB)`;
        }
      }
    }
    if (reason) this.#suspend(s, reason, at);
  }

  #suspend(s: Slot, reason: string, at: number): void {
    s.status = 'suspended';
    s.reason = reason;
    // Its state goes (that is what the limits protect); its alerts stay for the suppression window.
    s.evaluator = evaluatorOf(s.def.rule);
    s.book.endAll(at);
    this.#reindex();
    const r: RuleSuspended = {
      type: 'suspended',
      ruleId: s.def.id,
      ruleVersion: s.def.version,
      ownerOrg: s.def.ownerOrg,
      reason,
      at,
    };
    this.#push(r);
  }

  #emit(signal: AlertSignal): void {
    this.#push(signal);
  }

  #push(r: DetectionResult): void {
    if (this.#results === NO_RESULTS) this.#results = [];
    this.#results.push(r);
  }

  #forget(o: Observation): void {
    this.#graph.remove(o.tenant, o.entityId);
    for (const k of this.#areas.keys())
      if (k.startsWith(`${o.tenant}\u0000${o.entityId}\u0000`)) this.#areas.delete(k);
    for (const s of this.#slots.values()) {
      s.evaluator.forget?.(o.entityId);
      // An alert caused by the entity ends with it (seen by the rule's owner only if the entity was).
      if (s.status === 'active' && s.book.isActive(o.entityId) && this.#visible(s.def.ownerOrg, o)) {
        const signal = s.book.resolve(o.entityId, o.observedAt, `${o.entityId} was deleted`);
        if (signal) this.#emit(signal);
      }
    }
  }

  #learnArea(o: Observation): void {
    const g = o.value as { type?: unknown; coordinates?: unknown } | null;
    if (!g || typeof g !== 'object' || (g.type !== 'Polygon' && g.type !== 'MultiPolygon')) return;
    const polygon = g as GeoPolygon;
    // The same checks as a rule's own polygon: an entity's shape is untrusted input too.
    const check = validateRule({
      name: 'area',
      kind: 'geofence',
      severity: 'low',
      category: 'security',
      match: { types: ['x'] },
      area: { polygon },
      trigger: 'enter',
    });
    if (!check.ok) return;
    const vis: Visibility = { ownerOrg: o.ownerOrg, readKeys: o.readKeys, marking: o.marking };
    if (o.createdBy !== undefined) vis.createdBy = o.createdBy;
    this.#areas.set(`${o.tenant}\u0000${o.entityId}\u0000${o.attribute}`, {
      prepared: prepareArea(polygon),
      polygon,
      vis,
    });
  }

  // ----------------------------------------------------------------------------------------- checkpoint

  checkpointRule(id: string): RuleCheckpoint | undefined {
    const s = this.#slots.get(id);
    if (!s) return undefined;
    const c: RuleCheckpoint = {
      id,
      version: s.def.version,
      status: s.status,
      state: s.evaluator.save(),
      alerts: s.book.save(),
    };
    if (s.reason) c.reason = s.reason;
    return structuredClone(c);
  }

  /** Restores a rule's state (the rule must be registered, at the same version: else false). */
  restoreRule(c: RuleCheckpoint): boolean {
    const s = this.#slots.get(c.id);
    if (!s || s.def.version !== c.version) return false;
    const copy = structuredClone(c);
    s.evaluator = evaluatorOf(s.def.rule);
    s.evaluator.load(copy.state);
    s.book.load(copy.alerts);
    if (copy.status === 'suspended') {
      s.status = 'suspended';
      s.reason = copy.reason ?? 'suspended';
    }
    this.#reindex();
    return true;
  }

  /** The whole engine's state as JSON-compatible data. */
  checkpoint(): EngineCheckpoint {
    return {
      format: 1,
      seq: this.#seq,
      now: this.#now,
      rules: [...this.#slots.keys()].map((id) => this.checkpointRule(id)!),
      graph: structuredClone(this.#graph.save()),
      areas: [...this.#areas].map(([k, a]) => [k, structuredClone(a.polygon), structuredClone(a.vis)]),
    };
  }

  /** Restores a checkpoint into an engine holding the same rules (rules of another version start empty). */
  restore(c: EngineCheckpoint): void {
    if (c.format !== 1)
      throw new AppError('PLATFORM_BAD_REQUEST', `unknown checkpoint format ${String(c.format)}`);
    this.#seq = Math.max(this.#seq, c.seq);
    this.#now = Math.max(this.#now, c.now);
    for (const r of c.rules) this.restoreRule(r);
    this.#graph.load(structuredClone(c.graph));
    this.#areas.clear();
    for (const [k, polygon, vis] of c.areas)
      this.#areas.set(k, { prepared: prepareArea(polygon), polygon, vis });
  }

  stats(): {
    rules: number;
    active: number;
    suspended: number;
    graphEdges: number;
    graphFull: boolean;
    areas: number;
  } {
    let active = 0;
    let suspended = 0;
    for (const s of this.#slots.values()) {
      if (s.status === 'active') active++;
      else if (s.status === 'suspended') suspended++;
    }
    return {
      rules: this.#slots.size,
      active,
      suspended,
      graphEdges: this.#graph.edges,
      graphFull: this.#graph.full,
      areas: this.#areas.size,
    };
  }
}
