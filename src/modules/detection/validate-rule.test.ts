import { describe, expect, it } from 'vitest';
import { validateRule } from './index.ts';
import { RULE_BASE as base, SQUARE as square, VALID_RULES } from './testing.ts';

function errorsOf(doc: unknown) {
  const r = validateRule(doc);
  if (r.ok) throw new Error('expected errors');
  return r.errors;
}

describe('validateRule', () => {
  it('accepts one document of every kind and returns a copy', () => {
    for (const [kind, doc] of Object.entries(VALID_RULES)) {
      const r = validateRule(doc);
      expect(r, kind).toEqual({ ok: true, rule: doc });
      if (r.ok) expect(r.rule).not.toBe(doc);
    }
  });

  it('names the field at fault with a JSON pointer', () => {
    expect(errorsOf({ ...VALID_RULES.rate, window: { seconds: 90_000 } })).toEqual([
      { path: '/window/seconds', reason: 'must be at most 86400' },
    ]);
    expect(errorsOf({ ...VALID_RULES.threshold, kind: 'thresh' })).toEqual([
      { path: '/kind', reason: expect.stringContaining('must be one of threshold, rate') },
    ]);
    expect(errorsOf({ ...base, kind: 'threshold', match: { types: [] }, above: 'x' })).toEqual([
      { path: '/match/types', reason: 'needs at least 1 item' },
      { path: '/match/attribute', reason: 'is required' },
      { path: '/above', reason: 'must be a finite number' },
    ]);
  });

  it('refuses unknown fields, fields of another kind and prototype names', () => {
    expect(errorsOf({ ...VALID_RULES.silence, colour: 'red' })).toEqual([
      { path: '/colour', reason: expect.stringContaining('unknown field') },
    ]);
    expect(errorsOf({ ...VALID_RULES.silence, window: { seconds: 5 } })).toEqual([
      { path: '/window', reason: expect.stringContaining('unknown field for a silence rule') },
    ]);
    expect(
      errorsOf(
        JSON.parse(
          '{"name":"r","kind":"silence","severity":"low","category":"cyber","match":{"types":["C"],"__proto__":{}},"expectedIntervalSeconds":5}',
        ),
      ),
    ).toEqual([{ path: '/match/__proto__', reason: expect.stringContaining('unknown field') }]);
    expect(errorsOf({ ...VALID_RULES.rate, window: { seconds: 5, size: 3 } })).toEqual([
      { path: '/window/size', reason: expect.stringContaining('unknown field') },
    ]);
    expect(errorsOf('rule')).toEqual([{ path: '', reason: 'must be an object' }]);
    expect(errorsOf([])).toEqual([{ path: '', reason: 'must be an object' }]);
  });

  it('escapes pointer segments (RFC 6901)', () => {
    expect(errorsOf({ ...VALID_RULES.silence, 'a/b~c': 1 })[0]?.path).toBe('/a~1b~0c');
  });

  it('bounds hops, counts, samples and windows', () => {
    const hops = { ...VALID_RULES.correlation, near: { relationships: ['dependsOn'], maxHops: 6 } };
    expect(errorsOf(hops)).toEqual([{ path: '/near/maxHops', reason: 'must be at most 5' }]);
    expect(errorsOf({ ...VALID_RULES.count, count: 100_000 })).toEqual([
      { path: '/count', reason: 'must be at most 10000' },
    ]);
    expect(errorsOf({ ...VALID_RULES.count, count: 2.5 })).toEqual([
      { path: '/count', reason: 'must be an integer' },
    ]);
    expect(errorsOf({ ...VALID_RULES.anomaly, window: { samples: 5000 } })).toEqual([
      { path: '/window/samples', reason: 'must be at most 1000' },
    ]);
    expect(errorsOf({ ...VALID_RULES.threshold, forSeconds: -1 })).toEqual([
      { path: '/forSeconds', reason: 'must be at least 0' },
    ]);
    expect(errorsOf({ ...VALID_RULES.threshold, dedup: { seconds: 1e9 } })).toEqual([
      { path: '/dedup/seconds', reason: 'must be at most 86400' },
    ]);
    expect(errorsOf({ ...VALID_RULES.threshold, forSeconds: Number.NaN })[0]?.path).toBe('/forSeconds');
  });

  it('checks each kind for what it cannot do without', () => {
    expect(errorsOf({ ...VALID_RULES.threshold, above: undefined })).toEqual([
      { path: '', reason: 'a threshold rule needs above, below or both' },
    ]);
    expect(errorsOf({ ...VALID_RULES.threshold, above: 10, below: 20 })).toEqual([
      { path: '/below', reason: expect.stringContaining('less than above') },
    ]);
    expect(errorsOf({ ...VALID_RULES.geofence, trigger: 'dwell' })).toEqual([
      { path: '/dwellSeconds', reason: 'is required' },
    ]);
    expect(errorsOf({ ...VALID_RULES.geofence, area: { polygon: square, entityId: 'urn:x' } })).toEqual([
      { path: '/area', reason: 'needs either polygon or entityId' },
    ]);
    expect(errorsOf({ ...VALID_RULES.crowdDensity, capacity: undefined })).toEqual([
      { path: '/capacity', reason: 'is required with raiseAt.capacityRatio' },
    ]);
    expect(errorsOf({ ...VALID_RULES.crowdDensity, raiseAt: { level: 'Z' } })).toEqual([
      { path: '/raiseAt/level', reason: 'must be one of B, C, D, E, F' },
    ]);
    expect(errorsOf({ ...VALID_RULES.sequence, steps: [VALID_RULES.sequence.steps[0]] })).toEqual([
      { path: '/steps', reason: 'needs at least 2 items' },
    ]);
    expect(errorsOf({ ...VALID_RULES.count, by: 'entity' })).toEqual([
      { path: '/by', reason: expect.stringContaining('by must be any') },
    ]);
    const oneDomain = {
      ...VALID_RULES.correlation,
      signals: VALID_RULES.correlation.signals.map((s) => ({ ...s, domain: 'cyber' })),
    };
    expect(errorsOf(oneDomain)).toEqual([
      { path: '/signals', reason: expect.stringContaining('fewer than minDomains') },
    ]);
    expect(errorsOf({ ...VALID_RULES.count, where: {} })).toEqual([
      { path: '/where', reason: expect.stringContaining('at least one of') },
    ]);
    expect(errorsOf({ ...VALID_RULES.count, where: { in: [{}] } })).toEqual([
      { path: '/where/in/0', reason: 'must be a string, number or boolean' },
    ]);
  });

  it('compiles id patterns as RE2 and refuses what RE2 does not run', () => {
    expect(
      validateRule({ ...VALID_RULES.silence, match: { types: ['C'], idPattern: '^urn:ngsi-ld:Camera:.*' } })
        .ok,
    ).toBe(true);
    expect(errorsOf({ ...VALID_RULES.silence, match: { types: ['C'], idPattern: '(a)\\1' } })).toEqual([
      { path: '/match/idPattern', reason: expect.stringContaining('RE2') },
    ]);
  });

  it('checks polygons: closed rings of four positions, WGS 84 ranges, no self-intersection', () => {
    const poly = (ring: number[][]) => ({
      ...VALID_RULES.geofence,
      area: { polygon: { type: 'Polygon', coordinates: [ring] } },
    });
    expect(
      errorsOf(
        poly([
          [0, 0],
          [1, 0],
          [1, 1],
          [0, 1],
        ]),
      ),
    ).toEqual([{ path: '/area/polygon/coordinates/0', reason: expect.stringContaining('closed') }]);
    expect(
      errorsOf(
        poly([
          [0, 0],
          [1, 0],
          [0, 0],
        ]),
      ),
    ).toEqual([{ path: '/area/polygon/coordinates/0', reason: 'needs at least 4 items' }]);
    expect(
      errorsOf(
        poly([
          [0, 0],
          [200, 0],
          [1, 95],
          [0, 0],
        ]),
      ),
    ).toEqual([
      { path: '/area/polygon/coordinates/0/1/0', reason: 'longitude must be within -180..180' },
      { path: '/area/polygon/coordinates/0/2/1', reason: 'latitude must be within -90..90' },
    ]);
    const bowtie = [
      [0, 0],
      [1, 1],
      [1, 0],
      [0, 1],
      [0, 0],
    ];
    expect(errorsOf(poly(bowtie))).toEqual([
      { path: '/area/polygon/coordinates/0', reason: 'the ring intersects itself' },
    ]);
    expect(
      errorsOf({ ...VALID_RULES.geofence, area: { polygon: { type: 'Point', coordinates: [0, 0] } } }),
    ).toEqual([{ path: '/area/polygon/type', reason: 'must be one of Polygon, MultiPolygon' }]);
  });
});
