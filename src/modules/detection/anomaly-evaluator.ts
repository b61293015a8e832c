/**
 * Anomaly against the entity's own recent history: robust z-score (0.6745 × (x − median) / MAD over the
 * last N samples) or EWMA (mean and variance with α = 2 / (N + 1)). A value is scored against the history
 * before it joins it; nothing is scored during warm-up. With hour-of-day seasonality each local hour keeps
 * its own history, used once warm (the whole history until then). Fires on the first anomalous value,
 * clears on the next normal one.
 */
import { type Evaluator, evidenceOf, numberOf, type RuleContext } from './evaluator.ts';
import type { Observation } from './observation.ts';
import type { AnomalyRule } from './rule-language.ts';

/** The last N values: a ring (arrival order) and the same values sorted. */
export class SampleWindow {
  ring: Float64Array;
  sorted: Float64Array;
  count = 0;
  next = 0;

  constructor(n: number) {
    this.ring = new Float64Array(n);
    this.sorted = new Float64Array(n);
  }

  add(x: number): void {
    const n = this.ring.length;
    const sorted = this.sorted;
    if (this.count === n) {
      // Full: the oldest value leaves as the new one comes, in one move of the values between them.
      const i = lowerBound(sorted, n, this.ring[this.next]!);
      let j = lowerBound(sorted, n, x);
      if (j > i) {
        j--;
        sorted.copyWithin(i, i + 1, j + 1);
      } else sorted.copyWithin(j + 1, j, i);
      sorted[j] = x;
    } else {
      const j = lowerBound(sorted, this.count, x);
      sorted.copyWithin(j + 1, j, this.count);
      sorted[j] = x;
      this.count++;
    }
    this.ring[this.next] = x;
    this.next = (this.next + 1) % n;
  }

  /** Set by measure(): the median, and the scale (MAD × 1.4826, else mean absolute deviation × 1.2533). */
  centre = 0;
  scale = 0;

  /**
   * The median and the MAD without sorting: the deviations of the sorted values from the median grow
   * outwards on both sides — two sorted sequences — so the median deviation is a k-th smallest of two
   * sorted sequences, found by binary search (O(log n), no allocation).
   */
  measure(): void {
    const n = this.count;
    const s = this.sorted;
    const odd = n % 2 === 1;
    const med = odd ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
    // Left side: med − s[i0 − k] for k = 0..i0; right side: s[i0 + 1 + k] − med.
    const i0 = odd ? (n - 1) / 2 : n / 2 - 1;
    const want = odd ? (n - 1) / 2 : n / 2;
    const hi = kthDeviation(s, n, i0, med, want);
    const mad = odd ? hi : (kthDeviation(s, n, i0, med, want - 1) + hi) / 2;
    this.centre = med;
    if (mad > 0) {
      this.scale = mad * 1.4826;
      return;
    }
    let sumAbs = 0;
    for (let k = 0; k < n; k++) sumAbs += Math.abs(s[k]! - med);
    this.scale = (sumAbs / n) * 1.2533;
  }
}

function devA(s: Float64Array, lenA: number, i0: number, med: number, x: number): number {
  return x < 0 ? -Infinity : x >= lenA ? Infinity : med - s[i0 - x]!;
}

function devB(s: Float64Array, lenB: number, i0: number, med: number, x: number): number {
  return x < 0 ? -Infinity : x >= lenB ? Infinity : s[i0 + 1 + x]! - med;
}

/** The k-th smallest (from 0) of the deviations |s[i] − med| of sorted `s`, split at i0 (see measure). */
function kthDeviation(s: Float64Array, n: number, i0: number, med: number, k: number): number {
  const lenA = i0 + 1;
  const lenB = n - lenA;
  // Take `t` from the left side and k + 1 − t from the right: the larger of the two last taken is the
  // k-th once neither side's next is smaller than the other's last.
  let lo = Math.max(0, k + 1 - lenB);
  let up = Math.min(k + 1, lenA);
  while (lo <= up) {
    const t = (lo + up) >> 1;
    const u = k + 1 - t;
    const aLast = devA(s, lenA, i0, med, t - 1);
    const bLast = devB(s, lenB, i0, med, u - 1);
    if (aLast > devB(s, lenB, i0, med, u)) up = t - 1;
    else if (bLast > devA(s, lenA, i0, med, t)) lo = t + 1;
    else return Math.max(aLast, bLast);
  }
  return Number.NaN; // not reached: some cut is always consistent
}

function lowerBound(a: Float64Array, n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class Ewma {
  mean = 0;
  variance = 0;
  count = 0;

  constructor(private readonly alpha: number) {}

  add(x: number): void {
    if (this.count === 0) {
      this.mean = x;
      this.variance = 0;
    } else {
      const diff = x - this.mean;
      const incr = this.alpha * diff;
      this.mean += incr;
      this.variance = (1 - this.alpha) * (this.variance + diff * incr);
    }
    this.count++;
  }
}

type History = SampleWindow | Ewma;

interface EntityHistory {
  all: History;
  hours?: (History | undefined)[];
  anomalous: boolean;
}

export class AnomalyEvaluator implements Evaluator {
  readonly #entities = new Map<string, EntityHistory>();
  readonly #n: number;
  readonly #warmup: number;
  #histories = 0;

  constructor(private readonly r: AnomalyRule) {
    this.#n = r.window.samples;
    this.#warmup = r.warmup ?? Math.min(r.window.samples, 30);
  }

  #new(): History {
    this.#histories++;
    return this.r.method === 'robustZ' ? new SampleWindow(this.#n) : new Ewma(2 / (this.#n + 1));
  }

  #score(h: History, x: number): { centre: number; score: number } {
    if (h instanceof Ewma) {
      const sd = Math.sqrt(h.variance);
      const d = x - h.mean;
      return { centre: h.mean, score: sd > 0 ? d / sd : d === 0 ? 0 : d > 0 ? Infinity : -Infinity };
    }
    h.measure();
    const centre = h.centre;
    const scale = h.scale;
    const d = x - centre;
    return { centre, score: scale > 0 ? d / scale : d === 0 ? 0 : d > 0 ? Infinity : -Infinity };
  }

  observe(o: Observation, ctx: RuleContext): void {
    const x = numberOf(o.value);
    if (x === undefined) return;
    let e = this.#entities.get(o.entityId);
    if (!e) {
      e = { all: this.#new(), anomalous: false };
      this.#entities.set(o.entityId, e);
    }
    let hour: number | undefined;
    let bucket: History | undefined;
    if (this.r.seasonality === 'hourOfDay') {
      const local = o.observedAt + (this.r.utcOffsetMinutes ?? 0) * 60_000;
      hour = Math.floor((((local % 86_400_000) + 86_400_000) % 86_400_000) / 3_600_000);
      e.hours ??= new Array(24).fill(undefined);
      bucket = e.hours[hour];
    }
    const against =
      bucket && bucket.count >= this.#warmup ? bucket : e.all.count >= this.#warmup ? e.all : undefined;
    if (against) {
      const { centre, score } = this.#score(against, x);
      const dir = this.r.direction ?? 'both';
      const far =
        Math.abs(x - centre) >= (this.r.minDeviation ?? 0) &&
        (dir === 'both'
          ? Math.abs(score) >= this.r.threshold
          : dir === 'above'
            ? score >= this.r.threshold
            : -score >= this.r.threshold);
      if (far && !e.anomalous) {
        e.anomalous = true;
        const seasonal = against === bucket;
        ctx.fire(o.entityId, [evidenceOf(o)], o.observedAt, {
          tenant: o.tenant,
          location: o.location,
          reason:
            `${o.attribute} ${x} is anomalous: score ${Number.isFinite(score) ? score.toFixed(2) : score} ` +
            `against ${seasonal ? `hour ${hour}'s` : 'the recent'} ${this.r.method === 'robustZ' ? 'median' : 'mean'} ${centre.toFixed(3)}`,
          details: {
            score: Number.isFinite(score) ? Number(score.toFixed(3)) : score > 0 ? 1e308 : -1e308,
            centre,
            method: this.r.method,
            seasonal,
          },
        });
      } else if (!far && e.anomalous) {
        e.anomalous = false;
        ctx.resolve(o.entityId, o.observedAt, `${o.attribute} ${x} is normal again`, o.tenant);
      }
    }
    e.all.add(x);
    if (hour !== undefined && e.hours) {
      if (!bucket) {
        bucket = this.#new();
        e.hours[hour] = bucket;
      }
      bucket.add(x);
    }
  }

  forget(entityId: string): void {
    const e = this.#entities.get(entityId);
    if (!e) return;
    this.#histories -= 1 + (e.hours?.filter(Boolean).length ?? 0);
    this.#entities.delete(entityId);
  }

  entries(): number {
    return this.r.method === 'robustZ' ? this.#histories * this.#n : this.#histories;
  }

  bytes(): number {
    return (
      this.#entities.size * 150 + this.#histories * (this.r.method === 'robustZ' ? 16 * this.#n + 100 : 60)
    );
  }

  save(): unknown {
    const h = (x: History | undefined) =>
      x === undefined
        ? null
        : x instanceof Ewma
          ? { mean: x.mean, variance: x.variance, count: x.count }
          : { ring: [...x.ring], count: x.count, next: x.next };
    return [...this.#entities].map(([id, e]) => [id, h(e.all), e.hours?.map(h) ?? null, e.anomalous]);
  }

  load(state: unknown): void {
    this.#entities.clear();
    this.#histories = 0;
    type Saved =
      | { mean: number; variance: number; count: number }
      | { ring: number[]; count: number; next: number };
    const h = (s: Saved | null): History | undefined => {
      if (!s) return undefined;
      const x = this.#new();
      if (x instanceof Ewma && 'mean' in s) Object.assign(x, s);
      else if (x instanceof SampleWindow && 'ring' in s) {
        // Replay the ring in arrival order so that the sorted copy is rebuilt.
        const n = s.ring.length;
        const start = s.count < n ? 0 : s.next;
        for (let i = 0; i < s.count; i++) x.add(s.ring[(start + i) % n]!);
      }
      return x;
    };
    for (const [id, all, hours, anomalous] of state as [string, Saved, (Saved | null)[] | null, boolean][]) {
      const e: EntityHistory = { all: h(all)!, anomalous };
      if (hours) e.hours = hours.map(h);
      this.#entities.set(id, e);
    }
  }
}
