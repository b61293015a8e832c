import { describe, expect, it } from 'vitest';
import { AppError } from '../../kernel/errors.ts';
import { QueryBudget } from './query-budget.ts';

/** A row that costs `ms` of CPU. */
const busy = (ms: number): true => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
  return true;
};

describe('query budget', () => {
  it('gives the event loop back between slices: a timer keeps ticking during a long evaluation', async () => {
    const budget = new QueryBudget({ maxScan: 1000, maxEvaluationMs: 5000, sliceMs: 10 });
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 5);
    const start = performance.now();
    const kept = await budget.filter(
      Array.from({ length: 300 }, (_, i) => i),
      (i) => {
        busy(1);
        return i % 2 === 0;
      },
    );
    const elapsed = performance.now() - start;
    clearInterval(timer);
    expect(kept.length).toBe(150);
    // Without slices the timer could not fire until the end: one gap as long as the whole evaluation.
    // With them it fires all along (bounds relative to the run: the machine may be loaded).
    expect(ticks.length).toBeGreaterThan(10);
    const gaps = ticks.map((t, i) => t - (i === 0 ? start : (ticks[i - 1] as number)));
    expect(Math.max(...gaps)).toBeLessThan(Math.max(100, elapsed / 4));
  });

  it('ends a query past its time with TooComplexQuery, past its rows with TooManyResults', async () => {
    const slow = new QueryBudget({ maxScan: 1000, maxEvaluationMs: 50, sliceMs: 5 });
    const err = await slow.filter([...Array(200).keys()], () => busy(1)).catch((e) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('CONTEXT_QUERY_TOO_COMPLEX');
    expect((err as AppError).message).toMatch(/more than 50 ms/);

    const small = new QueryBudget({ maxScan: 10, maxEvaluationMs: 5000 });
    await small.filter([...Array(10).keys()], () => true);
    const more = await small.filter([1], () => true).catch((e) => e);
    expect((more as AppError).code).toBe('CONTEXT_TOO_MANY_RESULTS');
    expect(small.rows).toBe(11);
    // Rows charged before are not charged again.
    const again = new QueryBudget({ maxScan: 2, maxEvaluationMs: 5000 });
    const rows = await again.filter([1, 2], () => true);
    expect(await again.filter(rows, () => true, { charge: false })).toEqual([1, 2]);
  });
});
