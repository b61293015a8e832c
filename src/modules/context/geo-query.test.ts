import { describe, expect, it } from 'vitest';
import { AppError } from '../../kernel/errors.ts';
import type { ExpandedEntity } from './entity-model.ts';
import { LOCATION_IRI, matchesGeoQuery, parseGeoQuery } from './geo-query.ts';

const at = (geometry: unknown, extra: Record<string, unknown> = {}): ExpandedEntity => ({
  id: 'urn:x:1',
  type: ['https://v/T'],
  [LOCATION_IRI]: { type: 'GeoProperty', value: geometry },
  ...extra,
});
const square = (x0: number, y0: number, x1: number, y1: number) => ({
  type: 'Polygon',
  coordinates: [
    [
      [x0, y0],
      [x1, y0],
      [x1, y1],
      [x0, y1],
      [x0, y0],
    ],
  ],
});
const q = (georel: string, geometry: string, coordinates: string, geoproperty?: string) =>
  parseGeoQuery(
    geoproperty ? { georel, geometry, coordinates, geoproperty } : { georel, geometry, coordinates },
    (t) => (t === 'location' ? LOCATION_IRI : `https://v/${t}`),
  );

describe('geo-queries', () => {
  const porto = { type: 'Point', coordinates: [-8.6291, 41.1579] };
  it('near with maxDistance and minDistance (metres)', () => {
    // 0.005 degrees of latitude is about 556 m.
    const e = at({ type: 'Point', coordinates: [-8.6291, 41.1629] });
    expect(matchesGeoQuery(e, q('near;maxDistance==600', 'Point', '[-8.6291,41.1579]'))).toBe(true);
    expect(matchesGeoQuery(e, q('near;maxDistance==500', 'Point', '[-8.6291,41.1579]'))).toBe(false);
    expect(matchesGeoQuery(e, q('near;minDistance==500', 'Point', '[-8.6291,41.1579]'))).toBe(true);
    expect(matchesGeoQuery(e, q('near;minDistance==600', 'Point', '-8.6291,41.1579'))).toBe(false);
  });

  it('near measures to the closest part of a line or polygon', () => {
    const line = at({
      type: 'LineString',
      coordinates: [
        [-8.64, 41.16],
        [-8.62, 41.16],
      ],
    });
    expect(matchesGeoQuery(line, q('near;maxDistance==120', 'Point', '[-8.63,41.161]'))).toBe(true);
    expect(matchesGeoQuery(line, q('near;maxDistance==100', 'Point', '[-8.63,41.161]'))).toBe(false);
    const area = at(square(-8.64, 41.15, -8.62, 41.17));
    expect(matchesGeoQuery(area, q('near;maxDistance==1', 'Point', '[-8.63,41.16]'))).toBe(true);
  });

  it('within, contains, intersects, disjoint, equals, overlaps', () => {
    const box = JSON.stringify(square(-8.7, 41.1, -8.6, 41.2).coordinates);
    const point = at(porto);
    expect(matchesGeoQuery(point, q('within', 'Polygon', box))).toBe(true);
    expect(
      matchesGeoQuery(at({ type: 'Point', coordinates: [-8.5, 41.15] }), q('within', 'Polygon', box)),
    ).toBe(false);
    const zone = at(square(-8.65, 41.14, -8.61, 41.17));
    expect(matchesGeoQuery(zone, q('contains', 'Point', '[-8.63,41.15]'))).toBe(true);
    expect(matchesGeoQuery(zone, q('contains', 'Point', '[-8.5,41.15]'))).toBe(false);
    const crossing = JSON.stringify([
      [-8.7, 41.15],
      [-8.55, 41.15],
    ]);
    expect(matchesGeoQuery(zone, q('intersects', 'LineString', crossing))).toBe(true);
    expect(matchesGeoQuery(zone, q('disjoint', 'LineString', crossing))).toBe(false);
    expect(matchesGeoQuery(zone, q('disjoint', 'Point', '[0,0]'))).toBe(true);
    expect(matchesGeoQuery(point, q('equals', 'Point', '[-8.6291,41.1579]'))).toBe(true);
    const half = JSON.stringify(square(-8.63, 41.1, -8.5, 41.2).coordinates);
    expect(matchesGeoQuery(zone, q('overlaps', 'Polygon', half))).toBe(true);
    expect(matchesGeoQuery(zone, q('overlaps', 'Polygon', box))).toBe(false);
  });

  it('multi geometries and a chosen geoproperty, with several values', () => {
    const e = at(porto, {
      'https://v/area': [
        { type: 'GeoProperty', datasetId: 'urn:a', value: square(0, 0, 1, 1) },
        {
          type: 'GeoProperty',
          datasetId: 'urn:b',
          value: { type: 'MultiPolygon', coordinates: [square(10, 10, 11, 11).coordinates] },
        },
      ],
    });
    expect(matchesGeoQuery(e, q('intersects', 'Point', '[10.5,10.5]', 'area'))).toBe(true);
    expect(matchesGeoQuery(e, q('intersects', 'Point', '[10.5,10.5]'))).toBe(false);
    const mp = at({
      type: 'MultiPoint',
      coordinates: [
        [0, 0],
        [5, 5],
      ],
    });
    expect(matchesGeoQuery(mp, q('within', 'Polygon', JSON.stringify(square(4, 4, 6, 6).coordinates)))).toBe(
      false,
    );
    expect(
      matchesGeoQuery(mp, q('intersects', 'Polygon', JSON.stringify(square(4, 4, 6, 6).coordinates))),
    ).toBe(true);
  });

  it('rejects bad geo-queries with a detail', () => {
    const bad = (input: Record<string, string>, code: string) => {
      let err: unknown;
      try {
        parseGeoQuery(input);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(input)).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe(code);
    };
    bad({ georel: 'near', geometry: 'Point', coordinates: '[1,2]' }, 'CONTEXT_INVALID_GEOQUERY');
    bad({ georel: 'nearby', geometry: 'Point', coordinates: '[1,2]' }, 'CONTEXT_INVALID_GEOQUERY');
    bad(
      { georel: 'within', geometry: 'Polygon', coordinates: '[[[0,0],[1,0],[1,1]]]' },
      'CONTEXT_INVALID_GEOMETRY',
    );
    bad({ georel: 'within', geometry: 'Point', coordinates: '[1,' }, 'CONTEXT_INVALID_GEOQUERY');
    bad({ georel: 'within', geometry: 'Point', coordinates: '[200,0]' }, 'CONTEXT_INVALID_GEOMETRY');
    bad({ georel: 'within', geometry: 'Circle', coordinates: '[1,2]' }, 'CONTEXT_UNSUPPORTED_GEOMETRY');
    bad(
      { georel: 'near;maxDistance==5', geometry: 'LineString', coordinates: '[[1,2],[2,3]]' },
      'CONTEXT_UNSUPPORTED_GEOMETRY',
    );
    bad({ georel: 'within', geometry: 'Point' }, 'CONTEXT_INVALID_GEOQUERY');
  });
});
