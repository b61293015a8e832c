/**
 * Threshold and range (with hysteresis and a minimum duration), and crowd density against Fruin's
 * levels and a capacity — the same machine on a derived value (persons/m²). State exists only for
 * entities past the limit (pending or raised).
 */
import type { Evidence } from './detection-result.ts';
import { type Evaluator, evidenceOf, numberOf, type RuleContext } from './evaluator.ts';
import { fruinDensity, fruinLevel } from './fruin.ts';
import type { Observation } from './observation.ts';
import type { CrowdDensityRule, ThresholdRule } from './rule-language.ts';

interface Breach {
  phase: 'pending' | 'raised';
  since: number;
  first: Evidence;
  last: Evidence;
  tenant: string;
  value: number;
}

interface LevelConfig {
  above?: number | undefined;
  below?: number | undefined;
  hysteresis: number;
  forMs: number;
  /** The compared value of an observation (undefined: not a value for this rule). */
  value: (o: Observation) => number | undefined;
  describe: (value: number) => { reason: string; details: Record<string, string | number | boolean> };
}

export class LevelEvaluator implements Evaluator {
  readonly #state = new Map<string, Breach>();
  readonly #pending = new Set<string>();

  constructor(private readonly cfg: LevelConfig) {}

  #breaches(v: number): boolean {
    const { above, below } = this.cfg;
    return (above !== undefined && v > above) || (below !== undefined && v < below);
  }

  #backInside(v: number): boolean {
    const { above, below, hysteresis } = this.cfg;
    return (
      (above === undefined || v <= above - hysteresis) && (below === undefined || v >= below + hysteresis)
    );
  }

  observe(o: Observation, ctx: RuleContext): void {
    const v = this.cfg.value(o);
    if (v === undefined) return;
    const s = this.#state.get(o.entityId);
    if (!s) {
      if (!this.#breaches(v)) return;
      const ev = evidenceOf(o);
      const b: Breach = {
        phase: 'pending',
        since: o.observedAt,
        first: ev,
        last: ev,
        tenant: o.tenant,
        value: v,
      };
      this.#state.set(o.entityId, b);
      if (this.cfg.forMs === 0) this.#raise(o.entityId, b, o.observedAt, ctx);
      else this.#pending.add(o.entityId);
      return;
    }
    if (s.phase === 'pending') {
      if (!this.#breaches(v)) {
        this.#state.delete(o.entityId);
        this.#pending.delete(o.entityId);
        return;
      }
      s.last = evidenceOf(o);
      s.value = v;
      if (o.observedAt - s.since >= this.cfg.forMs) this.#raise(o.entityId, s, o.observedAt, ctx);
      return;
    }
    // Raised: only a value back past the hysteresis band clears it.
    if (this.#backInside(v)) {
      this.#state.delete(o.entityId);
      ctx.resolve(o.entityId, o.observedAt, `back to normal: ${this.cfg.describe(v).reason}`, o.tenant);
    } else {
      s.last = evidenceOf(o);
      s.value = v;
    }
  }

  #raise(entityId: string, b: Breach, at: number, ctx: RuleContext): void {
    b.phase = 'raised';
    this.#pending.delete(entityId);
    const { reason, details } = this.cfg.describe(b.value);
    const evidence = b.first === b.last ? [b.last] : [b.first, b.last];
    const forS = this.cfg.forMs / 1000;
    ctx.fire(entityId, evidence, at, {
      tenant: b.tenant,
      location: b.last.location,
      reason: forS > 0 ? `${reason} for ${Math.round((at - b.since) / 1000)} s (at least ${forS} s)` : reason,
      details,
    });
  }

  tick(now: number, ctx: RuleContext): void {
    if (this.cfg.forMs === 0) return;
    for (const id of this.#pending) {
      const s = this.#state.get(id);
      if (s && now - s.since >= this.cfg.forMs) this.#raise(id, s, now, ctx);
    }
  }

  forget(entityId: string): void {
    this.#state.delete(entityId);
    this.#pending.delete(entityId);
  }

  entries(): number {
    return this.#state.size;
  }

  bytes(): number {
    return this.#state.size * 600;
  }

  save(): unknown {
    return [...this.#state.entries()];
  }

  load(state: unknown): void {
    this.#state.clear();
    this.#pending.clear();
    for (const [id, b] of state as [string, Breach][]) {
      this.#state.set(id, b);
      if (b.phase === 'pending') this.#pending.add(id);
    }
  }
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(3).replace(/0+$/, ''));

export function thresholdEvaluator(r: ThresholdRule): LevelEvaluator {
  const attr = r.match.attribute;
  return new LevelEvaluator({
    above: r.above,
    below: r.below,
    hysteresis: r.hysteresis ?? 0,
    forMs: (r.forSeconds ?? 0) * 1000,
    value: (o) => numberOf(o.value),
    describe: (v) => ({
      reason:
        r.above !== undefined && v > r.above
          ? `${attr} ${fmt(v)} above ${fmt(r.above)}`
          : r.below !== undefined && v < r.below
            ? `${attr} ${fmt(v)} below ${fmt(r.below)}`
            : `${attr} ${fmt(v)}`,
      details: { value: v },
    }),
  });
}

/**
 * Crowd density: fires above the lower of the two limits given (the density where `raiseAt.level`
 * begins; `capacityRatio` × capacity / area), strictly above, and clears 10 % below it.
 */
export function crowdDensityEvaluator(r: CrowdDensityRule): LevelEvaluator {
  const standard = r.standard ?? 'walkway';
  const area = r.areaSquareMetres;
  const limits: number[] = [];
  if (r.raiseAt.level) limits.push(fruinDensity(r.raiseAt.level, standard));
  if (r.raiseAt.capacityRatio !== undefined && r.capacity !== undefined && area !== undefined) {
    limits.push((r.raiseAt.capacityRatio * r.capacity) / area);
  }
  const above = Math.min(...limits);
  const density = (o: Observation) => {
    const n = numberOf(o.value);
    if (n === undefined || n < 0) return undefined;
    return r.measure === 'density' ? n : n / area!;
  };
  return new LevelEvaluator({
    above,
    hysteresis: above * 0.1,
    forMs: (r.forSeconds ?? 0) * 1000,
    value: density,
    describe: (d) => {
      const level = fruinLevel(d, standard);
      const details: Record<string, number | string> = { density: Number(d.toFixed(3)), level };
      let reason = `crowd density ${d.toFixed(2)} persons/m², Fruin level ${level} (${standard})`;
      if (r.capacity !== undefined && area !== undefined) {
        const ratio = (d * area) / r.capacity;
        details.capacityRatio = Number(ratio.toFixed(3));
        reason += `, ${Math.round(ratio * 100)} % of capacity ${r.capacity}`;
      }
      return { reason, details };
    },
  });
}
