/**
 * Rate of change: the rise (value − lowest in the window) or fall (highest − value) of each entity's
 * value within the window, from monotonic queues (O(1) amortised per observation, the window's samples
 * at most). Fires when past `riseBy` / `fallBy`, clears when back under.
 */
import type { Evidence } from './detection-result.ts';
import { type Evaluator, evidenceOf, Fifo, numberOf, type RuleContext } from './evaluator.ts';
import type { Observation } from './observation.ts';
import type { RateRule } from './rule-language.ts';

interface Sample {
  t: number;
  v: number;
  e: Evidence;
}

interface Series {
  min: Fifo<Sample>;
  max: Fifo<Sample>;
  last: number;
  raised: boolean;
}

export class RateEvaluator implements Evaluator {
  readonly #series = new Map<string, Series>();
  #samples = 0;
  readonly #windowMs: number;
  #lastPrune = 0;

  constructor(private readonly r: RateRule) {
    this.#windowMs = r.window.seconds * 1000;
  }

  #expire(q: Fifo<Sample>, from: number): void {
    while (q.length > 0 && q.peek()!.t < from) {
      q.shift();
      this.#samples--;
    }
  }

  observe(o: Observation, ctx: RuleContext): void {
    const v = numberOf(o.value);
    if (v === undefined) return;
    let s = this.#series.get(o.entityId);
    if (!s) {
      s = { min: new Fifo(), max: new Fifo(), last: 0, raised: false };
      this.#series.set(o.entityId, s);
    }
    const t = o.observedAt;
    s.last = Math.max(s.last, t);
    const from = t - this.#windowMs;
    this.#expire(s.min, from);
    this.#expire(s.max, from);
    const e = evidenceOf(o);
    // Rise against the lowest earlier value, fall against the highest (before this sample joins).
    const low = s.min.peek();
    const high = s.max.peek();
    const rise = low ? v - low.v : 0;
    const fall = high ? high.v - v : 0;
    const { riseBy, fallBy } = this.r;
    for (const [q, keep] of [
      [s.min, (x: Sample) => x.v < v],
      [s.max, (x: Sample) => x.v > v],
    ] as const) {
      while (q.length > 0 && !keep(q.items[q.items.length - 1]!)) {
        q.items.pop();
        this.#samples--;
      }
      q.push({ t, v, e });
      this.#samples++;
    }
    const rising = riseBy !== undefined && rise > riseBy;
    const falling = fallBy !== undefined && fall > fallBy;
    const w = this.r.window.seconds;
    if ((rising || falling) && !s.raised) {
      const from = rising ? low! : high!;
      ctx.fire(o.entityId, [from.e, e], t, {
        tenant: o.tenant,
        location: o.location,
        reason: rising
          ? `${o.attribute} rose by ${rise} within ${w} s (more than ${riseBy})`
          : `${o.attribute} fell by ${fall} within ${w} s (more than ${fallBy})`,
        details: { change: rising ? rise : -fall, windowSeconds: w },
      });
      s.raised = true;
    } else if (!rising && !falling && s.raised) {
      s.raised = false;
      ctx.resolve(o.entityId, t, `${o.attribute} changes within the limits again`, o.tenant);
    }
  }

  tick(now: number): void {
    // Entities quiet for a whole window hold nothing useful: dropped (at most every half window).
    if (now - this.#lastPrune < this.#windowMs / 2) return;
    this.#lastPrune = now;
    for (const [id, s] of this.#series) {
      if (now - s.last > this.#windowMs && !s.raised) this.forget(id);
    }
  }

  forget(entityId: string): void {
    const s = this.#series.get(entityId);
    if (!s) return;
    this.#samples -= s.min.length + s.max.length;
    this.#series.delete(entityId);
  }

  entries(): number {
    return this.#series.size + this.#samples;
  }

  bytes(): number {
    return this.#series.size * 200 + this.#samples * 250;
  }

  save(): unknown {
    return [...this.#series].map(([id, s]) => [id, s.min.toArray(), s.max.toArray(), s.last, s.raised]);
  }

  load(state: unknown): void {
    this.#series.clear();
    this.#samples = 0;
    for (const [id, min, max, last, raised] of state as [string, Sample[], Sample[], number, boolean][]) {
      this.#series.set(id, { min: Fifo.from(min), max: Fifo.from(max), last, raised });
      this.#samples += min.length + max.length;
    }
  }
}
