import { describe, expect, it } from 'vitest';
import { SampleWindow } from './anomaly-evaluator.ts';

function reference(xs: number[]): { centre: number; mad: number } {
  const median = (a: number[]) => {
    const s = [...a].sort((p, q) => p - q);
    const n = s.length;
    return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  };
  const centre = median(xs);
  return { centre, mad: median(xs.map((x) => Math.abs(x - centre))) };
}

describe('SampleWindow', () => {
  it('keeps the last N values and finds their median and MAD without sorting (against a sort)', () => {
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (const n of [5, 6, 7, 30, 101]) {
      const w = new SampleWindow(n);
      const all: number[] = [];
      for (let k = 0; k < 3 * n; k++) {
        const x = rnd() < 0.2 ? Math.round(rnd() * 3) : rnd() * 100 - 50;
        w.add(x);
        all.push(x);
        const last = all.slice(-n);
        w.measure();
        const ref = reference(last);
        expect(w.centre).toBeCloseTo(ref.centre, 9);
        if (ref.mad > 0) expect(w.scale).toBeCloseTo(ref.mad * 1.4826, 9);
      }
    }
  });
});
