import { describe, expect, it } from 'vitest';
import { MicroBatcher } from './micro-batcher.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Hands in `n` items, `perTick` at a time every millisecond, as publishers answering their acknowledgements do. */
async function trickle(b: MicroBatcher<number>, n: number, perTick: number): Promise<void> {
  const added: Promise<void>[] = [];
  for (let i = 0; i < n; i += perTick) {
    for (let k = i; k < Math.min(n, i + perTick); k++) added.push(b.add(k));
    await sleep(1);
  }
  await Promise.all(added);
}

describe('MicroBatcher', () => {
  it('under load, lets the next batch fill up to the size of the last one before it leaves', async () => {
    const sizes: number[] = [];
    const b = new MicroBatcher<number>(
      async (items) => {
        sizes.push(items.length);
        await sleep(300);
      },
      1000,
      { lingerMs: 200 },
    );
    await b.addMany(Array.from({ length: 100 }, (_, i) => i));
    await trickle(b, 100, 10);
    expect(sizes).toEqual([100, 100]);
  });

  it('without lingering (the default), the first items after a write leave alone', async () => {
    const sizes: number[] = [];
    const b = new MicroBatcher<number>(async (items) => {
      sizes.push(items.length);
      await sleep(300);
    }, 1000);
    await b.addMany(Array.from({ length: 100 }, (_, i) => i));
    await trickle(b, 100, 10);
    expect(sizes.length).toBeGreaterThan(2);
    expect(sizes.reduce((a, x) => a + x, 0)).toBe(200);
  });

  it('never makes a light load wait: after a small batch the next item leaves at once', async () => {
    const sizes: number[] = [];
    const b = new MicroBatcher<number>(
      async (items) => {
        sizes.push(items.length);
        await sleep(20);
      },
      1000,
      { lingerMs: 5000 },
    );
    await b.addMany([1, 2, 3]);
    const t = performance.now();
    await b.add(4);
    expect(performance.now() - t).toBeLessThan(2000);
    expect(sizes).toEqual([3, 1]);
    await b.drain();
  });
});
