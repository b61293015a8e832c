import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadOrBuildRoadNetwork, type RoutingEngine } from './index.ts';
import { DijkstraOracle } from './testing/dijkstra-oracle.ts';
import { applyRandomChanges, checkRandomPairs } from './testing/oracle-check.ts';
import { randomRoadPoint, seededRandom } from './testing/random-points.ts';

// The built graph is cached between runs (keyed by the extract's size and mtime) to keep the suite fast.
// Alone these take seconds; beside the suite's heaviest files on two cores they take several times longer.
const HEAVY = { timeout: 240_000 };
const dataDir = join(tmpdir(), 'safecity-routing-test-cache');
let engine: RoutingEngine;
let oracle: DijkstraOracle;

beforeAll(async () => {
  ({ engine } = await loadOrBuildRoadNetwork({ source: 'porto', dataDir }));
  oracle = new DijkstraOracle(engine.network);
});

describe('Porto', () => {
  it('has the largest strongly connected component of the metro area, with turn restrictions', HEAVY, () => {
    const s = engine.stats();
    expect(s.junctions).toBeGreaterThan(55_000);
    expect(s.nodes).toBeGreaterThan(s.junctions);
    expect(engine.network.meta.importStats.restrictions).toBeGreaterThan(250);
  });

  it('equals a plain Dijkstra on 300 random pairs, with valid paths', HEAVY, () => {
    const res = checkRandomPairs(engine, oracle, seededRandom(100), 300);
    expect(res.mismatches).toEqual([]);
  });

  it('equals Dijkstra under random closures and slow-downs, and after they are lifted', HEAVY, () => {
    const rnd = seededRandom(101);
    const { closures, slowdowns } = applyRandomChanges(engine, rnd, 40);
    expect(checkRandomPairs(engine, oracle, rnd, 40).mismatches).toEqual([]);
    for (const id of closures) engine.liftClosure(id);
    expect(checkRandomPairs(engine, oracle, rnd, 20).mismatches).toEqual([]);
    for (const id of slowdowns) engine.liftSlowdown(id);
    expect(Array.from(engine.metric.roadW)).toEqual(Array.from(engine.network.arcWeight));
    expect(checkRandomPairs(engine, oracle, rnd, 20).mismatches).toEqual([]);
  });

  it('a partially customized metric equals a fully customized one', HEAVY, () => {
    const rnd = seededRandom(102);
    const { closures } = applyRandomChanges(engine, rnd, 30);
    const partial = engine.metric;
    const up = partial.up.slice();
    const down = partial.down.slice();
    engine.customizeAll();
    expect(engine.metric.up).toEqual(up);
    expect(engine.metric.down).toEqual(down);
    for (const c of engine.liveChanges()) {
      if (c.kind === 'closure') engine.liftClosure(c.id);
      else engine.liftSlowdown(c.id);
    }
    expect(closures.length).toBeGreaterThan(0);
  });

  it('dispatch agrees with one route per unit', HEAVY, () => {
    const rnd = seededRandom(103);
    const incident = randomRoadPoint(engine.network, rnd);
    const units = Array.from({ length: 50 }, (_, i) => ({
      id: `u${i}`,
      position: randomRoadPoint(engine.network, rnd),
    }));
    const res = engine.dispatch(incident, units, { k: 3 });
    expect(res.ranked.length + res.unreachable.length).toBe(50);
    for (const r of res.ranked) {
      const route = engine.route(units.find((u) => u.id === r.id)!.position, incident);
      expect(route.reachable && route.durationS).toBe(r.durationS);
    }
    expect(res.ranked.slice(0, 3).every((r) => r.route !== undefined)).toBe(true);
  });
});
