/**
 * Rules over a time window of events: flow imbalance (sums of in and out per group), count (N matching
 * events per entity, across entities, or within a radius of one another) and sequence (steps in order).
 * Events leave their window as time passes (observations' times, and ticks).
 */
import type { Evidence } from './detection-result.ts';
import { conditionHolds, type Evaluator, evidenceOf, Fifo, numberOf, type RuleContext } from './evaluator.ts';
import { distanceMetres } from './geo.ts';
import type { Observation } from './observation.ts';
import type { CountRule, FlowImbalanceRule, SequenceRule } from './rule-language.ts';

interface Flow {
  t: number;
  dIn: number;
  dOut: number;
  e: Evidence;
}

interface Group {
  events: Fifo<Flow>;
  sumIn: number;
  sumOut: number;
  raised: boolean;
  tenant: string;
}

/** In ≫ out: per group, the sums over the window. */
export class FlowImbalanceEvaluator implements Evaluator {
  readonly #groups = new Map<string, Group>();
  #events = 0;
  readonly #windowMs: number;

  constructor(private readonly r: FlowImbalanceRule) {
    this.#windowMs = r.window.seconds * 1000;
  }

  #expire(g: Group, now: number): void {
    const from = now - this.#windowMs;
    while (g.events.length > 0 && g.events.peek()!.t < from) {
      const x = g.events.shift()!;
      g.sumIn -= x.dIn;
      g.sumOut -= x.dOut;
      this.#events--;
    }
  }

  observe(o: Observation, ctx: RuleContext): void {
    const n = numberOf(o.value);
    if (n === undefined || n < 0) return;
    const isIn = o.attribute === this.r.inAttribute;
    if (!isIn && o.attribute !== this.r.outAttribute) return;
    let key = '*';
    if (this.r.groupBy) {
      const target = o.relationships?.[this.r.groupBy.relationship]?.[0];
      if (target === undefined) return;
      key = target;
    }
    let g = this.#groups.get(key);
    if (!g) {
      g = { events: new Fifo(), sumIn: 0, sumOut: 0, raised: false, tenant: o.tenant };
      this.#groups.set(key, g);
    }
    this.#expire(g, o.observedAt);
    const f: Flow = { t: o.observedAt, dIn: isIn ? n : 0, dOut: isIn ? 0 : n, e: evidenceOf(o) };
    g.events.push(f);
    g.sumIn += f.dIn;
    g.sumOut += f.dOut;
    this.#events++;
    this.#judge(key, g, o.observedAt, ctx);
  }

  #judge(key: string, g: Group, at: number, ctx: RuleContext): void {
    const { ratio, minIn } = this.r;
    const imbalanced = g.sumIn >= minIn && g.sumIn >= ratio * g.sumOut;
    const where = key === '*' ? 'the matching gates' : key;
    if (imbalanced && !g.raised) {
      g.raised = true;
      const evidence = g.events
        .toArray()
        .slice(-ctx.limits.maxEvidence)
        .map((x) => x.e);
      ctx.fire(key, evidence, at, {
        tenant: g.tenant,
        location: evidence.find((e) => e.location)?.location,
        reason:
          `${g.sumIn} in and ${g.sumOut} out at ${where} within ${this.r.window.seconds} s ` +
          `(in ≥ ${ratio} × out and ≥ ${minIn})`,
        details: { in: g.sumIn, out: g.sumOut },
      });
    } else if (g.raised && !(g.sumIn >= 0.9 * minIn && g.sumIn >= 0.9 * ratio * g.sumOut)) {
      g.raised = false;
      ctx.resolve(key, at, `${g.sumIn} in and ${g.sumOut} out at ${where}: balanced again`, g.tenant);
    }
  }

  tick(now: number, ctx: RuleContext): void {
    for (const [key, g] of this.#groups) {
      this.#expire(g, now);
      if (g.events.length === 0 && !g.raised) this.#groups.delete(key);
      else this.#judge(key, g, now, ctx);
    }
  }

  entries(): number {
    return this.#groups.size + this.#events;
  }

  bytes(): number {
    return this.#groups.size * 200 + this.#events * 300;
  }

  save(): unknown {
    return [...this.#groups].map(([k, g]) => [k, { ...g, events: g.events.toArray() }]);
  }

  load(state: unknown): void {
    this.#groups.clear();
    this.#events = 0;
    for (const [k, g] of state as [string, Omit<Group, 'events'> & { events: Flow[] }][]) {
      this.#groups.set(k, { ...g, events: Fifo.from(g.events) });
      this.#events += g.events.length;
    }
  }
}

interface Seen {
  t: number;
  seq: number;
  e: Evidence;
}

/** Count: N matching events in the window per entity, across entities, or within a radius. */
export class CountEvaluator implements Evaluator {
  readonly #parts = new Map<string, Fifo<Seen>>();
  #events = 0;
  readonly #windowMs: number;

  constructor(private readonly r: CountRule) {
    this.#windowMs = r.window.seconds * 1000;
  }

  #expire(q: Fifo<Seen>, now: number): void {
    const from = now - this.#windowMs;
    while (q.length > 0 && q.peek()!.t < from) {
      q.shift();
      this.#events--;
    }
  }

  observe(o: Observation, ctx: RuleContext): void {
    if (!conditionHolds(this.r.where, o.value)) return;
    const radius = this.r.radiusMetres;
    if (radius !== undefined && !o.location) return;
    const key = (this.r.by ?? 'any') === 'entity' ? o.entityId : '*';
    let q = this.#parts.get(key);
    if (!q) {
      q = new Fifo();
      this.#parts.set(key, q);
    }
    this.#expire(q, o.observedAt);
    const seen: Seen = { t: o.observedAt, seq: ctx.seq, e: evidenceOf(o) };
    q.push(seen);
    this.#events++;
    let hits: Seen[];
    if (radius === undefined) {
      if (q.length < this.r.count) return;
      hits = q.toArray();
    } else {
      const p = o.location!.coordinates;
      hits = [];
      for (const s of q)
        if (s.e.location && distanceMetres(p, s.e.location.coordinates) <= radius) hits.push(s);
      if (hits.length < this.r.count) return;
    }
    const evidence = hits.slice(-ctx.limits.maxEvidence).map((s) => s.e);
    let cause = key;
    if (radius !== undefined) {
      // One cluster, one alert: join an alert of this rule whose place is within the radius.
      const p = o.location!.coordinates;
      const near = ctx.findAlert(
        o.observedAt,
        (a) => !!a.location && distanceMetres(p, a.location.coordinates) <= radius,
      );
      cause = near ? near.cause : `${o.entityId}@${o.observedAt}`;
    }
    const what = this.r.where ? `${o.attribute} ${JSON.stringify(this.r.where)}` : o.attribute;
    ctx.fire(cause, evidence, o.observedAt, {
      tenant: o.tenant,
      location: o.location,
      reason:
        `${hits.length} × ${what} within ${this.r.window.seconds} s` +
        (radius !== undefined ? ` and ${radius} m` : key === '*' ? '' : ` on ${key}`) +
        ` (at least ${this.r.count})`,
      details: { count: hits.length },
    });
  }

  tick(now: number): void {
    for (const [k, q] of this.#parts) {
      this.#expire(q, now);
      if (q.length === 0) this.#parts.delete(k);
    }
  }

  forget(entityId: string): void {
    const q = this.#parts.get(entityId);
    if (q && (this.r.by ?? 'any') === 'entity') {
      this.#events -= q.length;
      this.#parts.delete(entityId);
    }
  }

  entries(): number {
    return this.#parts.size + this.#events;
  }

  bytes(): number {
    return this.#parts.size * 150 + this.#events * 300;
  }

  save(): unknown {
    return [...this.#parts].map(([k, q]) => [k, q.toArray()]);
  }

  load(state: unknown): void {
    this.#parts.clear();
    this.#events = 0;
    for (const [k, xs] of state as [string, Seen[]][]) {
      this.#parts.set(k, Fifo.from(xs));
      this.#events += xs.length;
    }
  }
}

/**
 * Sequence: per partition (entity, or all), the window's events of each step. When an event of the last
 * step arrives, the earliest events that satisfy every step in order (each step's count after the
 * previous step's last) decide; a match consumes the partition's events.
 */
export class SequenceEvaluator implements Evaluator {
  readonly #parts = new Map<string, Fifo<Seen>[]>();
  #events = 0;
  readonly #windowMs: number;

  constructor(private readonly r: SequenceRule) {
    this.#windowMs = r.window.seconds * 1000;
  }

  #expire(steps: Fifo<Seen>[], now: number): void {
    const from = now - this.#windowMs;
    for (const q of steps) {
      while (q.length > 0 && q.peek()!.t < from) {
        q.shift();
        this.#events--;
      }
    }
  }

  observe(o: Observation, ctx: RuleContext): void {
    const steps = this.r.steps;
    const matching: number[] = [];
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i]!;
      if (ctx.matches(s.match, o) && conditionHolds(s.where, o.value)) matching.push(i);
    }
    if (matching.length === 0) return;
    const key = (this.r.by ?? 'entity') === 'entity' ? o.entityId : '*';
    let qs = this.#parts.get(key);
    if (!qs) {
      // A partition starts only with the first step: later steps alone can never complete.
      if (matching[0] !== 0) return;
      qs = steps.map(() => new Fifo<Seen>());
      this.#parts.set(key, qs);
    }
    this.#expire(qs, o.observedAt);
    const seen: Seen = { t: o.observedAt, seq: ctx.seq, e: evidenceOf(o) };
    for (const i of matching) {
      const q = qs[i]!;
      q.push(seen);
      this.#events++;
      // A step never needs more than its count plus what later steps could wait for: bounded.
      if (q.length > 1_000) {
        q.shift();
        this.#events--;
      }
    }
    if (!matching.includes(steps.length - 1)) return;
    const picked: Seen[] = [];
    let after = -1;
    for (let i = 0; i < steps.length; i++) {
      const need = steps[i]!.count ?? 1;
      let got = 0;
      for (const s of qs[i]!) {
        if (s.seq <= after) continue;
        picked.push(s);
        after = s.seq;
        if (++got === need) break;
      }
      if (got < need) return;
    }
    for (const q of qs) this.#events -= q.length;
    this.#parts.delete(key);
    const evidence = picked.slice(-ctx.limits.maxEvidence).map((s) => s.e);
    const first = picked[0]!.t;
    ctx.fire(key, evidence, o.observedAt, {
      tenant: o.tenant,
      location: o.location ?? evidence.find((e) => e.location)?.location,
      reason:
        `${steps.length} steps in order within ${Math.round((o.observedAt - first) / 1000)} s ` +
        `(at most ${this.r.window.seconds} s)${key === '*' ? '' : ` on ${key}`}`,
      details: { events: picked.length },
    });
  }

  tick(now: number): void {
    for (const [k, qs] of this.#parts) {
      this.#expire(qs, now);
      if (qs.every((q) => q.length === 0)) this.#parts.delete(k);
    }
  }

  forget(entityId: string): void {
    const qs = this.#parts.get(entityId);
    if (qs && (this.r.by ?? 'entity') === 'entity') {
      for (const q of qs) this.#events -= q.length;
      this.#parts.delete(entityId);
    }
  }

  entries(): number {
    return this.#parts.size + this.#events;
  }

  bytes(): number {
    return this.#parts.size * 200 + this.#events * 300;
  }

  save(): unknown {
    return [...this.#parts].map(([k, qs]) => [k, qs.map((q) => q.toArray())]);
  }

  load(state: unknown): void {
    this.#parts.clear();
    this.#events = 0;
    for (const [k, qs] of state as [string, Seen[][]][]) {
      this.#parts.set(
        k,
        qs.map((xs) => Fifo.from(xs)),
      );
      for (const xs of qs) this.#events += xs.length;
    }
  }
}
