import { describe, expect, it } from 'vitest';
import { newTimeOrderedId } from './ids.ts';

describe('newTimeOrderedId', () => {
  it('gives distinct UUIDv7 ids in time order across refills of its random pool', () => {
    const t0 = Date.parse('2026-11-30T12:00:00Z');
    // More ids than the pool holds (256), so that it is refilled several times.
    const ids = Array.from({ length: 2000 }, (_, i) => newTimeOrderedId(t0 + i));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    expect([...ids].sort()).toEqual(ids);
    // The first 48 bits are the time in milliseconds.
    expect(Number.parseInt(ids[5]!.replace('-', '').slice(0, 12), 16)).toBe(t0 + 5);
    // The random part differs between ids of the same millisecond.
    const same = Array.from({ length: 300 }, () => newTimeOrderedId(t0).slice(14));
    expect(new Set(same).size).toBe(300);
  });
});
