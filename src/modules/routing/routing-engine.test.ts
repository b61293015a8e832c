import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, fixedClock } from '../../kernel/index.ts';
import { haversineMeters } from './geo.ts';
import {
  type ImportProgress,
  importOsmPbf,
  type LonLat,
  loadOrBuildRoadNetwork,
  ROAD_DATA_ATTRIBUTION,
  type RoutingEngine,
  resolveRoadSource,
  roadsDir,
} from './index.ts';
import { arcHead, arcTail, INF_WEIGHT } from './osm-import.ts';
import { DijkstraOracle } from './testing/dijkstra-oracle.ts';
import { applyRandomChanges, checkRandomPairs } from './testing/oracle-check.ts';
import { randomRoadPoint, seededRandom } from './testing/random-points.ts';

const MONACO = resolveRoadSource('monaco');
let dataDir: string;
let engine: RoutingEngine;
let oracle: DijkstraOracle;
const progress: ImportProgress[] = [];

function expectAppError(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe(code);
    return;
  }
  throw new Error(`expected AppError ${code}`);
}

async function expectAppErrorAsync(p: Promise<unknown>, code: string): Promise<void> {
  await expect(p).rejects.toSatisfy((e: unknown) => e instanceof AppError && e.code === code);
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'safecity-routing-'));
  const result = await loadOrBuildRoadNetwork({
    source: 'monaco',
    dataDir,
    onProgress: (p) => progress.push(p),
  });
  expect(result.fromCache).toBe(false);
  engine = result.engine;
  oracle = new DijkstraOracle(engine.network);
});

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

describe('import and cache (Monaco)', () => {
  it('finds the shared extracts through SAFECITY_ROADS_DIR or ../shared/data/roads', () => {
    expect(MONACO).toBe(join(roadsDir(), 'monaco.osm.pbf'));
    expect(ROAD_DATA_ATTRIBUTION).toBe('© OpenStreetMap contributors, ODbL');
  });

  it('reports progress through every phase, ending at 1', () => {
    const phases = new Set(progress.map((p) => p.phase));
    for (const phase of ['parse', 'graph', 'order', 'contract', 'index', 'cache'])
      expect(phases).toContain(phase);
    const fractions = progress.map((p) => p.fraction);
    expect(Math.max(...fractions)).toBe(1);
    for (let i = 1; i < fractions.length; i++) expect(fractions[i]).toBeGreaterThanOrEqual(fractions[i - 1]!);
  });

  it('keeps one strongly connected component with turn restrictions', () => {
    const s = engine.stats();
    expect(s.junctions).toBeGreaterThan(1500);
    expect(s.nodes).toBeGreaterThanOrEqual(s.junctions);
    expect(engine.network.forbiddenTurns.length).toBeGreaterThan(0);
    expect(engine.network.meta.importStats.restrictions).toBeGreaterThan(10);
  });

  it('reloads the cached graph in well under a second with identical answers', async () => {
    const again = await loadOrBuildRoadNetwork({ source: MONACO, dataDir });
    expect(again.fromCache).toBe(true);
    expect(again.loadMs).toBeLessThan(1000);
    const rnd = seededRandom(5);
    for (let i = 0; i < 20; i++) {
      const a = randomRoadPoint(engine.network, rnd);
      const b = randomRoadPoint(engine.network, rnd);
      const r1 = engine.route(a, b);
      const r2 = again.engine.route(a, b);
      expect(r2.reachable && r2.durationMs).toBe(r1.reachable && r1.durationMs);
    }
  });

  it('rebuilds over a corrupt cache file instead of failing', async () => {
    const first = await loadOrBuildRoadNetwork({ source: MONACO, dataDir });
    writeFileSync(first.cachePath, 'garbage');
    const again = await loadOrBuildRoadNetwork({ source: MONACO, dataDir });
    expect(again.fromCache).toBe(false);
    expect(again.engine.stats().nodes).toBe(engine.stats().nodes);
  });

  it('rejects a missing file, a non-OSM file, a corrupt PBF and an unknown profile', async () => {
    await expectAppErrorAsync(importOsmPbf(join(dataDir, 'nope.osm.pbf')), 'ROUTING_SOURCE_NOT_FOUND');
    const text = join(dataDir, 'text.osm.pbf');
    writeFileSync(text, 'this is not a protobuf file at all, just some text\n'.repeat(10));
    await expectAppErrorAsync(importOsmPbf(text), 'ROUTING_NOT_OSM_PBF');
    const bytes = readFileSync(MONACO);
    const corrupt = Buffer.from(bytes.subarray(0, 200_000));
    for (let i = 1000; i < corrupt.length; i += 7) corrupt[i] = (corrupt[i]! * 31 + 7) & 0xff;
    const bad = join(dataDir, 'corrupt.osm.pbf');
    writeFileSync(bad, corrupt);
    await expectAppErrorAsync(importOsmPbf(bad), 'ROUTING_CORRUPT_FILE');
    await expectAppErrorAsync(
      loadOrBuildRoadNetwork({ source: MONACO, dataDir, profile: 'bicycle' as never }),
      'ROUTING_UNKNOWN_PROFILE',
    );
  });

  it('fetches a URL into the data folder, then imports it', async () => {
    const server: Server = createServer((req, res) => {
      if (req.url === '/monaco.osm.pbf') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(readFileSync(MONACO));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const got = await loadOrBuildRoadNetwork({
        source: `http://127.0.0.1:${port}/monaco.osm.pbf`,
        dataDir,
      });
      expect(got.engine.stats().nodes).toBe(engine.stats().nodes);
      await expectAppErrorAsync(
        loadOrBuildRoadNetwork({ source: `http://127.0.0.1:${port}/missing.osm.pbf`, dataDir }),
        'ROUTING_DOWNLOAD_FAILED',
      );
    } finally {
      server.close();
    }
  });
});

describe('routes (Monaco)', () => {
  it('answers route A → B with duration, distance, GeoJSON geometry and steps', () => {
    const rnd = seededRandom(11);
    let checked = 0;
    while (checked < 5) {
      const r = engine.route(randomRoadPoint(engine.network, rnd), randomRoadPoint(engine.network, rnd));
      if (!r.reachable || r.arcs.length < 4) continue;
      checked++;
      expect(r.durationS).toBe(r.durationMs / 1000);
      expect(r.distanceM).toBeGreaterThan(0);
      expect(r.geometry.type).toBe('LineString');
      expect(r.geometry.coordinates.length).toBeGreaterThanOrEqual(2);
      expect(r.geometry.coordinates[0]![0]).toBeCloseTo(r.from.location[0], 5);
      expect(r.geometry.coordinates.at(-1)![1]).toBeCloseTo(r.to.location[1], 5);
      expect(r.steps[0]!.maneuver.type).toBe('depart');
      expect(r.steps.at(-1)!.maneuver.type).toBe('arrive');
      const stepSeconds = r.steps.reduce((s, x) => s + x.durationS, 0);
      expect(Math.abs(stepSeconds - r.durationS)).toBeLessThan(0.05);
      const stepMeters = r.steps.reduce((s, x) => s + x.distanceM, 0);
      expect(Math.abs(stepMeters - r.distanceM)).toBeLessThan(1);
    }
  });

  it('equals a plain Dijkstra on 300 random pairs, with valid paths', () => {
    const res = checkRandomPairs(engine, oracle, seededRandom(1), 300);
    expect(res.mismatches).toEqual([]);
    expect(res.checked).toBe(300);
  });

  it('still equals Dijkstra after random closures and slow-downs, and after lifting them', () => {
    const rnd = seededRandom(2);
    for (let round = 0; round < 3; round++) {
      const { closures, slowdowns } = applyRandomChanges(engine, rnd, 12);
      expect(engine.liveChanges().length).toBe(closures.length + slowdowns.length);
      expect(checkRandomPairs(engine, oracle, rnd, 60).mismatches).toEqual([]);
      for (const id of closures.slice(0, closures.length >> 1)) engine.liftClosure(id);
      for (const id of slowdowns.slice(0, slowdowns.length >> 1)) engine.liftSlowdown(id);
      expect(checkRandomPairs(engine, oracle, rnd, 40).mismatches).toEqual([]);
      for (const c of engine.liveChanges()) {
        if (c.kind === 'closure') engine.liftClosure(c.id);
        else engine.liftSlowdown(c.id);
      }
    }
    expect(engine.liveChanges()).toEqual([]);
    // lifting everything restores the base metric exactly
    expect(Array.from(engine.metric.roadW)).toEqual(Array.from(engine.network.arcWeight));
    expect(checkRandomPairs(engine, oracle, rnd, 40).mismatches).toEqual([]);
  });

  it('never routes through a closed segment and sees the closure in the very next query', () => {
    const rnd = seededRandom(3);
    let tested = 0;
    for (let i = 0; i < 50 && tested < 10; i++) {
      const a = randomRoadPoint(engine.network, rnd);
      const b = randomRoadPoint(engine.network, rnd);
      const before = engine.route(a, b);
      if (!before.reachable || before.arcs.length < 5) continue;
      const mid = before.arcs[before.arcs.length >> 1]!;
      const e = mid >>> 1;
      const p = engine.network.edgeGeomFirst[e]!;
      const line = {
        type: 'LineString',
        coordinates: [
          [engine.network.geomLon[p]!, engine.network.geomLat[p]!],
          [engine.network.geomLon[p + 1]!, engine.network.geomLat[p + 1]!],
        ],
      };
      const id = engine.addClosure(
        { type: 'Feature', properties: {}, geometry: line },
        { bufferMeters: 0.5 },
      );
      const after = engine.route(a, b);
      if (after.reachable) {
        expect(after.arcs.map((x) => x >>> 1)).not.toContain(e);
        expect(after.durationMs).toBeGreaterThanOrEqual(before.durationMs);
        expect(oracle.validate(engine.metric.roadW, after)).toEqual([]);
      }
      expect(after.reachable ? after.durationMs : Number.POSITIVE_INFINITY).toBe(
        oracle.cost(engine.metric.roadW, after.from, after.to),
      );
      engine.liftClosure(id);
      const lifted = engine.route(a, b);
      expect(lifted.reachable && lifted.durationMs).toBe(before.durationMs);
      tested++;
    }
    expect(tested).toBe(10);
  });

  it('slow-downs scale travel time on the covered segments', () => {
    const rnd = seededRandom(4);
    const a = randomRoadPoint(engine.network, rnd);
    const b = randomRoadPoint(engine.network, rnd);
    const before = engine.route(a, b);
    expect(before.reachable).toBe(true);
    const [minLon, minLat, maxLon, maxLat] = engine.network.meta.bbox;
    const everything = {
      type: 'Polygon',
      coordinates: [
        [
          [minLon - 0.01, minLat - 0.01],
          [maxLon + 0.01, minLat - 0.01],
          [maxLon + 0.01, maxLat + 0.01],
          [minLon - 0.01, maxLat + 0.01],
          [minLon - 0.01, minLat - 0.01],
        ],
      ],
    };
    const id = engine.addSlowdown(everything, 0.5);
    const slowed = engine.route(a, b);
    expect(slowed.reachable).toBe(true);
    if (before.reachable && slowed.reachable) {
      expect(Math.abs(slowed.durationMs - 2 * before.durationMs)).toBeLessThanOrEqual(slowed.arcs.length + 2);
    }
    engine.liftSlowdown(id);
    const again = engine.route(a, b);
    expect(again.reachable && again.durationMs).toBe(before.reachable && before.durationMs);
  });

  it('accepts multi-geometries, collections and features with a radius property', () => {
    const net = engine.network;
    const rnd = seededRandom(9);
    const p = () => randomRoadPoint(net, rnd);
    const box = (c: LonLat, r: number) => [
      [
        [c[0] - r, c[1] - r],
        [c[0] + r, c[1] - r],
        [c[0] + r, c[1] + r],
        [c[0] - r, c[1] + r],
        [c[0] - r, c[1] - r],
      ],
    ];
    const geometries: unknown[] = [
      { type: 'MultiPoint', coordinates: [p(), p()] },
      {
        type: 'MultiLineString',
        coordinates: [
          [p(), p()],
          [p(), p()],
        ],
      },
      { type: 'MultiPolygon', coordinates: [box(p(), 0.001), box(p(), 0.001)] },
      {
        type: 'GeometryCollection',
        geometries: [
          { type: 'Point', coordinates: p() },
          { type: 'Polygon', coordinates: box(p(), 0.001) },
        ],
      },
      {
        type: 'FeatureCollection',
        features: [
          { type: 'Feature', properties: { radius: 150 }, geometry: { type: 'Point', coordinates: p() } },
        ],
      },
    ];
    for (const g of geometries) {
      const id = engine.addClosure(g);
      const change = engine.liveChanges().find((c) => c.id === id)!;
      expect(change.edges).toBeGreaterThan(0);
      expect(checkRandomPairs(engine, oracle, rnd, 5).mismatches).toEqual([]);
      engine.liftClosure(id);
    }
    // a Feature's radius wins over the default
    const c = p();
    const small = engine.addClosure({
      type: 'Feature',
      properties: { radius: 5 },
      geometry: { type: 'Point', coordinates: c },
    });
    const large = engine.addClosure({
      type: 'Feature',
      properties: { radius: 300 },
      geometry: { type: 'Point', coordinates: c },
    });
    const edges = Object.fromEntries(engine.liveChanges().map((x) => [x.id, x.edges]));
    expect(edges[large]!).toBeGreaterThan(edges[small]!);
    engine.liftClosure(small);
    engine.liftClosure(large);
  });

  it('builds an emergency-vehicle profile that may use roads closed to cars', async () => {
    const { engine: blue } = await loadOrBuildRoadNetwork({ source: MONACO, dataDir, profile: 'emergency' });
    expect(blue.network.meta.profile).toBe('emergency');
    expect(blue.stats().roadSegments).toBeGreaterThanOrEqual(engine.stats().roadSegments);
    const rnd = seededRandom(10);
    let faster = 0;
    for (let i = 0; i < 20; i++) {
      const a = randomRoadPoint(engine.network, rnd);
      const b = randomRoadPoint(engine.network, rnd);
      const car = engine.route(a, b);
      const em = blue.route(a, b);
      if (car.reachable && em.reachable && em.durationMs < car.durationMs) faster++;
    }
    expect(faster).toBeGreaterThan(15);
  });

  it('lets closures and slow-downs expire at their expiry time', async () => {
    const clock = fixedClock(new Date('2026-01-01T10:00:00Z'));
    const { engine: timed } = await loadOrBuildRoadNetwork({ source: MONACO, dataDir, clock });
    const rnd = seededRandom(8);
    const a = randomRoadPoint(timed.network, rnd);
    const base = timed.route(a, a);
    expect(base.reachable).toBe(true);
    timed.addClosure(
      { type: 'Point', coordinates: a },
      { radiusMeters: 1500, expiresAt: '2026-01-01T10:05:00Z' },
    );
    timed.addSlowdown({ type: 'Point', coordinates: a }, 0.5, {
      expiresAt: new Date('2026-01-01T10:10:00Z'),
    });
    expect(timed.liveChanges()).toHaveLength(2);
    expectAppError(() => timed.route(a, a), 'ROUTING_POINT_OUTSIDE_NETWORK');
    clock.advance(5 * 60_000);
    expect(timed.liveChanges()).toHaveLength(1);
    expect(timed.route(a, a).reachable).toBe(true);
    clock.advance(5 * 60_000);
    expect(timed.liveChanges()).toHaveLength(0);
    expect(Array.from(timed.metric.roadW)).toEqual(Array.from(timed.network.arcWeight));
  });

  it('honours one-way streets and turn restrictions', () => {
    const net = engine.network;
    // one-way: some arc is allowed while its reverse is not
    let oneWay = 0;
    for (let e = 0; e < net.edgeU.length; e++)
      if ((net.arcWeight[2 * e] === INF_WEIGHT) !== (net.arcWeight[2 * e + 1] === INF_WEIGHT)) oneWay++;
    expect(oneWay).toBeGreaterThan(50);
    // every forbidden turn: routing from the from-arc to the to-arc never makes that turn
    const ft = net.forbiddenTurns;
    for (let i = 0; i < ft.length; i += 2) {
      const from = ft[i]!;
      const to = ft[i + 1]!;
      expect(arcHead(net, from)).toBe(arcTail(net, to));
      const point = (arc: number, t: number): LonLat => {
        const e = arc >>> 1;
        const first = net.edgeGeomFirst[e]!;
        const last = net.edgeGeomFirst[e + 1]! - 1;
        const [p, q] = arc & 1 ? [last, last - 1] : [first, first + 1];
        return [
          net.geomLon[p]! + t * (net.geomLon[q]! - net.geomLon[p]!),
          net.geomLat[p]! + t * (net.geomLat[q]! - net.geomLat[p]!),
        ];
      };
      const a = engine.snap(point(from, 0.5));
      const b = engine.snap(point(to, 0.5));
      if (a.edge !== from >>> 1 || b.edge !== to >>> 1) continue;
      const r = engine.routeSnapped(a, b);
      const expected = oracle.cost(engine.metric.roadW, a, b);
      expect(r.reachable ? r.durationMs : Number.POSITIVE_INFINITY).toBe(expected);
      if (r.reachable) {
        for (let k = 1; k < r.arcs.length; k++)
          expect(oracle.allowedTurn(r.arcs[k - 1]!, r.arcs[k]!)).toBe(true);
      }
    }
  });
});

describe('table, dispatch and isochrone (Monaco)', () => {
  it('table durations equal pairwise routes', () => {
    const rnd = seededRandom(21);
    const sources = Array.from({ length: 6 }, () => randomRoadPoint(engine.network, rnd));
    const targets = Array.from({ length: 7 }, () => randomRoadPoint(engine.network, rnd));
    const t = engine.table(sources, targets);
    expect(t.durations).toHaveLength(6);
    sources.forEach((s, i) => {
      targets.forEach((d, j) => {
        const r = engine.route(s, d);
        expect(t.durations[i]![j]).toBe(r.reachable ? r.durationS : null);
      });
    });
    expectAppError(() => engine.table([], targets), 'ROUTING_INVALID_ARGUMENT');
  });

  it('dispatch ranks available, capable units by arrival time with routes for the first k', () => {
    const rnd = seededRandom(22);
    const incident = randomRoadPoint(engine.network, rnd);
    const units = Array.from({ length: 30 }, (_, i) => ({
      id: `unit-${i}`,
      position: randomRoadPoint(engine.network, rnd),
      status: i % 10 === 9 ? 'busy' : 'available',
      capabilities: i % 3 === 0 ? ['ladder', 'ems'] : ['ems'],
    }));
    units.push({ id: 'at-sea', position: [7.6, 43.6], status: 'available', capabilities: ['ladder'] });
    const res = engine.dispatch(incident, units, { k: 2, requiredCapabilities: ['ladder'] });
    expect(res.excluded.map((x) => x.id)).toContain('unit-9');
    expect(res.excluded.map((x) => x.id)).toContain('unit-1');
    expect(res.unreachable.map((x) => x.id)).toEqual(['at-sea']);
    const ladders = units.filter((u, i) => i < 30 && i % 3 === 0 && u.status === 'available');
    expect(res.ranked.length).toBe(ladders.length);
    for (let i = 1; i < res.ranked.length; i++)
      expect(res.ranked[i]!.durationS).toBeGreaterThanOrEqual(res.ranked[i - 1]!.durationS);
    for (const r of res.ranked) {
      const u = units.find((x) => x.id === r.id)!;
      const direct = engine.route(u.position, incident);
      expect(r.durationS).toBe(direct.reachable ? direct.durationS : -1);
      expect(r.route !== undefined).toBe(r.rank <= 2);
    }
    expectAppError(() => engine.dispatch(incident, units, { k: -1 }), 'ROUTING_INVALID_ARGUMENT');
  });

  it('isochrone is a closed polygon around the origin that grows with time', () => {
    const rnd = seededRandom(23);
    const origin = randomRoadPoint(engine.network, rnd);
    const small = engine.isochrone(origin, 120);
    const large = engine.isochrone(origin, 600);
    for (const f of [small, large]) {
      expect(f.type).toBe('Feature');
      const polys = f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates;
      for (const rings of polys) {
        for (const ring of rings) {
          expect(ring.length).toBeGreaterThanOrEqual(4);
          expect(ring[0]).toEqual(ring.at(-1));
        }
      }
    }
    expect(large.properties.reachableNodes).toBeGreaterThan(small.properties.reachableNodes);
    expectAppError(() => engine.isochrone(origin, -5), 'ROUTING_INVALID_ARGUMENT');
  });
});

describe('bad input (Monaco)', () => {
  it('rejects invalid coordinates and points outside the network', () => {
    const p = randomRoadPoint(engine.network, seededRandom(31));
    expectAppError(() => engine.route([Number.NaN, 43.7], p), 'ROUTING_INVALID_COORDINATE');
    expectAppError(() => engine.route([43.7, 200] as LonLat, p), 'ROUTING_INVALID_COORDINATE');
    expectAppError(() => engine.route('7.4,43.7' as unknown as LonLat, p), 'ROUTING_INVALID_COORDINATE');
    expectAppError(() => engine.route([7.6, 43.6], p), 'ROUTING_POINT_OUTSIDE_NETWORK');
    expectAppError(() => engine.route([2.35, 48.85], p), 'ROUTING_POINT_OUTSIDE_NETWORK');
  });

  it('rejects invalid geometries and unknown ids, without changing the metric', () => {
    const before = engine.metric;
    for (const g of [
      null,
      { type: 'Circle', coordinates: [7.42, 43.73] },
      { type: 'Point', coordinates: [7.42] },
      { type: 'LineString', coordinates: [[7.42, 43.73]] },
      {
        type: 'Polygon',
        coordinates: [
          [
            [7.42, 43.73],
            [7.43, 43.73],
            [7.43, 43.74],
            [7.41, 43.74],
          ],
        ],
      },
      {
        type: 'Polygon',
        coordinates: [
          [
            [7.42, 43.73],
            [7.43, 43.73],
            [7.42, 43.73],
          ],
        ],
      },
      { type: 'FeatureCollection', features: [] },
      { type: 'Feature', geometry: null },
      { type: 'Point', coordinates: ['7.4', 43.7] },
    ]) {
      expectAppError(() => engine.addClosure(g), 'ROUTING_INVALID_GEOMETRY');
    }
    expectAppError(
      () => engine.addClosure({ type: 'Point', coordinates: [7.42, 43.73] }, { radiusMeters: -1 }),
      'ROUTING_INVALID_GEOMETRY',
    );
    expectAppError(
      () => engine.addSlowdown({ type: 'Point', coordinates: [7.42, 43.73] }, 0),
      'ROUTING_INVALID_ARGUMENT',
    );
    expectAppError(
      () => engine.addClosure({ type: 'Point', coordinates: [7.42, 43.73] }, { expiresAt: 'tomorrow-ish' }),
      'ROUTING_INVALID_ARGUMENT',
    );
    expectAppError(() => engine.liftClosure('no-such-id'), 'ROUTING_CLOSURE_NOT_FOUND');
    expectAppError(() => engine.liftSlowdown('no-such-id'), 'ROUTING_SLOWDOWN_NOT_FOUND');
    expect(engine.metric).toBe(before);
    expect(engine.liveChanges()).toEqual([]);
  });

  it('answers "unreachable" when closures cut the destination off', () => {
    const rnd = seededRandom(32);
    const a = randomRoadPoint(engine.network, rnd);
    let b = randomRoadPoint(engine.network, rnd);
    let r0 = engine.route(a, b);
    while (!r0.reachable || haversineMeters(a[0], a[1], b[0], b[1]) < 1200) {
      b = randomRoadPoint(engine.network, rnd);
      r0 = engine.route(a, b);
    }
    // a ring of closures around the target, leaving the target's own street open
    const to = r0.to;
    const ring = {
      type: 'Polygon',
      coordinates: [
        Array.from({ length: 33 }, (_, i) => {
          const ang = ((i % 32) / 32) * 2 * Math.PI;
          return [to.location[0] + 0.004 * Math.cos(ang), to.location[1] + 0.003 * Math.sin(ang)];
        }),
      ],
    };
    const donut = {
      type: 'Polygon',
      coordinates: [
        ring.coordinates[0]!.map(([x, y]) => [
          to.location[0] + (x! - to.location[0]) * 1.3,
          to.location[1] + (y! - to.location[1]) * 1.3,
        ]),
        [...ring.coordinates[0]!].reverse(),
      ],
    };
    const id = engine.addClosure(donut);
    const cut = engine.routeSnapped(r0.from, to);
    expect(oracle.cost(engine.metric.roadW, r0.from, to)).toBe(Number.POSITIVE_INFINITY);
    expect(cut.reachable).toBe(false);
    if (!cut.reachable) expect(cut.reason).toMatch(/no open road/);
    engine.liftClosure(id);
  });
});
