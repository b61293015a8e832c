import { describe, expect, it } from 'vitest';
import type { ExpandedEntity } from './entity-model.ts';
import { GeoIndexHolder, type GeoIndexRow, TenantGeoIndex } from './geo-index.ts';
import { LOCATION_IRI } from './geo-query.ts';

const at = (id: string, geometry: unknown): ExpandedEntity => ({
  id,
  type: ['https://v/T'],
  [LOCATION_IRI]: { type: 'GeoProperty', value: geometry },
});
const box = (minX: number, minY: number, maxX: number, maxY: number) => ({ minX, minY, maxX, maxY });
const ids = (l: { id: string }[]) => l.map((e) => e.id).sort();

describe('TenantGeoIndex', () => {
  it('finds the same entries as a brute-force scan', () => {
    const index = new TenantGeoIndex();
    const points: [string, number, number][] = [];
    let seed = 1;
    const rand = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    for (let i = 0; i < 3000; i++) {
      const p: [string, number, number] = [`urn:p:${i}`, -8.7 + rand() * 0.2, 41.1 + rand() * 0.2];
      points.push(p);
      index.upsert(at(p[0], { type: 'Point', coordinates: [p[1], p[2]] }), ['k'], '2024-01-01T00:00:00.000Z');
    }
    for (let q = 0; q < 50; q++) {
      const x = -8.7 + rand() * 0.2;
      const y = 41.1 + rand() * 0.2;
      const b = box(x, y, x + rand() * 0.05, y + rand() * 0.05);
      const expected = points.filter(
        ([, px, py]) => px >= b.minX && px <= b.maxX && py >= b.minY && py <= b.maxY,
      );
      expect(ids(index.search(LOCATION_IRI, b))).toEqual(expected.map(([id]) => id).sort());
    }
    expect(index.search('https://v/other', box(-9, 41, -8, 42))).toEqual([]);
  });

  it('finds lines spanning many cells once, and very large areas from the large list', () => {
    const index = new TenantGeoIndex();
    const t = '2024-01-01T00:00:00.000Z';
    index.upsert(
      at('urn:line', {
        type: 'LineString',
        coordinates: [
          [-8.7, 41.1],
          [-8.65, 41.12],
        ],
      }),
      ['k'],
      t,
    );
    const country = [
      [
        [-10, 36],
        [-6, 36],
        [-6, 42],
        [-10, 42],
        [-10, 36],
      ],
    ];
    index.upsert(at('urn:country', { type: 'Polygon', coordinates: country }), ['k'], t);
    expect(ids(index.search(LOCATION_IRI, box(-8.71, 41.09, -8.64, 41.13)))).toEqual([
      'urn:country',
      'urn:line',
    ]);
    expect(ids(index.search(LOCATION_IRI, box(-7, 37, -6.9, 37.1)))).toEqual(['urn:country']);
    index.delete('urn:country', '2024-01-02T00:00:00.000Z');
    expect(ids(index.search(LOCATION_IRI, box(-7, 37, -6.9, 37.1)))).toEqual([]);
  });

  it('ignores changes older than what it holds, and never revives deleted entities with old events', () => {
    const index = new TenantGeoIndex();
    const here = { type: 'Point', coordinates: [1, 1] };
    const there = { type: 'Point', coordinates: [5, 5] };
    index.upsert(at('urn:a', there), ['k'], '2024-01-02T00:00:00.000Z');
    index.upsert(at('urn:a', here), ['k'], '2024-01-01T00:00:00.000Z');
    expect(ids(index.search(LOCATION_IRI, box(4, 4, 6, 6)))).toEqual(['urn:a']);
    expect(index.search(LOCATION_IRI, box(0, 0, 2, 2))).toEqual([]);
    index.delete('urn:a', '2024-01-03T00:00:00.000Z');
    index.upsert(at('urn:a', there), ['k'], '2024-01-02T00:00:00.000Z');
    expect(index.size).toBe(0);
    index.upsert(at('urn:a', here), ['k2'], '2024-01-04T00:00:00.000Z');
    expect(index.search(LOCATION_IRI, box(0, 0, 2, 2)).map((e) => [e.id, e.readKeys])).toEqual([
      ['urn:a', ['k2']],
    ]);
  });
});

describe('GeoIndexHolder', () => {
  it('rebuilds from the store without losing changes made while it loads', async () => {
    const holder = new GeoIndexHolder();
    const row = (id: string, x: number, modifiedAt: string): GeoIndexRow => ({
      id,
      types: ['https://v/T'],
      readKeys: ['k'],
      modifiedAt,
      attr: LOCATION_IRI,
      geometry: { type: 'Point', coordinates: [x, 0] },
    });
    await holder.rebuild(async () => [
      row('urn:a', 1, '2024-01-01T00:00:00Z'),
      row('urn:b', 2, '2024-01-01T00:00:00Z'),
    ]);
    expect(ids(holder.current.search(LOCATION_IRI, box(0, -1, 3, 1)))).toEqual(['urn:a', 'urn:b']);
    let release: (rows: GeoIndexRow[]) => void = () => {};
    const rebuilding = holder.rebuild(() => new Promise<GeoIndexRow[]>((r) => (release = r)));
    expect(holder.rebuilding).toBe(true);
    // While the store is read: urn:a moves, urn:b is deleted, urn:c appears.
    holder.upsert(at('urn:a', { type: 'Point', coordinates: [10, 0] }), ['k'], '2024-01-02T00:00:00Z');
    holder.delete('urn:b', '2024-01-02T00:00:00Z');
    holder.upsert(at('urn:c', { type: 'Point', coordinates: [11, 0] }), ['k'], '2024-01-02T00:00:00Z');
    // The snapshot the store returns predates those changes.
    release([row('urn:a', 1, '2024-01-01T00:00:00Z'), row('urn:b', 2, '2024-01-01T00:00:00Z')]);
    await rebuilding;
    expect(holder.rebuilding).toBe(false);
    expect(ids(holder.current.search(LOCATION_IRI, box(0, -1, 20, 1)))).toEqual(['urn:a', 'urn:c']);
    expect(ids(holder.current.search(LOCATION_IRI, box(9, -1, 10.5, 1)))).toEqual(['urn:a']);
  });
});
