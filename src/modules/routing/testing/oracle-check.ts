/** Shared by the tests and bench/routing/verify.ts: engine answers compared with the Dijkstra oracle. */
import { AppError } from '../../../kernel/index.ts';
import type { LonLat, RoutingEngine, SnappedPoint } from '../routing-engine.ts';
import type { DijkstraOracle } from './dijkstra-oracle.ts';
import { randomRoadPoint } from './random-points.ts';

export interface PairCheck {
  checked: number;
  unreachable: number;
  /** points with no open road within the snap limit (possible under closures in sparse areas) */
  snapFailures: number;
  mismatches: string[];
}

export function checkRandomPairs(
  engine: RoutingEngine,
  oracle: DijkstraOracle,
  rnd: () => number,
  pairs: number,
): PairCheck {
  const net = engine.network;
  const out: PairCheck = { checked: 0, unreachable: 0, snapFailures: 0, mismatches: [] };
  for (let i = 0; i < pairs; i++) {
    const pa = randomRoadPoint(net, rnd, 0.0003);
    const pb = randomRoadPoint(net, rnd, 0.0003);
    let a: SnappedPoint;
    let b: SnappedPoint;
    try {
      a = engine.snap(pa);
      b = engine.snap(pb);
    } catch (e) {
      if (e instanceof AppError && e.code === 'ROUTING_POINT_OUTSIDE_NETWORK') {
        out.snapFailures++;
        continue;
      }
      throw e;
    }
    const r = engine.routeSnapped(a, b);
    const expected = oracle.cost(engine.metric.roadW, a, b);
    const got = r.reachable ? r.durationMs : Number.POSITIVE_INFINITY;
    out.checked++;
    if (!r.reachable) out.unreachable++;
    if (got !== expected) {
      out.mismatches.push(
        `pair ${i} ${JSON.stringify(a.location)} → ${JSON.stringify(b.location)}: engine ${got}, oracle ${expected}`,
      );
      continue;
    }
    if (r.reachable) {
      const problems = oracle.validate(engine.metric.roadW, r);
      if (problems.length > 0) out.mismatches.push(`pair ${i}: ${problems.join('; ')}`);
    }
  }
  return out;
}

/** Random closures (points, lines, polygons) and slow-downs; returns their ids. */
export function applyRandomChanges(
  engine: RoutingEngine,
  rnd: () => number,
  count: number,
): { closures: string[]; slowdowns: string[] } {
  const net = engine.network;
  const closures: string[] = [];
  const slowdowns: string[] = [];
  for (let i = 0; i < count; i++) {
    const c = randomRoadPoint(net, rnd);
    const kind = Math.floor(rnd() * 4);
    let geometry: unknown;
    if (kind === 0) geometry = { type: 'Point', coordinates: c };
    else if (kind === 1) {
      const d: LonLat = [c[0] + (rnd() - 0.5) * 0.004, c[1] + (rnd() - 0.5) * 0.004];
      geometry = { type: 'LineString', coordinates: [c, d] };
    } else {
      const r = 0.0005 + rnd() * 0.0015;
      geometry = {
        type: 'Polygon',
        coordinates: [
          [
            [c[0] - r, c[1] - r],
            [c[0] + r, c[1] - r],
            [c[0] + r, c[1] + r],
            [c[0] - r, c[1] + r],
            [c[0] - r, c[1] - r],
          ],
        ],
      };
    }
    if (rnd() < 0.5) closures.push(engine.addClosure(geometry, { radiusMeters: 30 + rnd() * 150 }));
    else slowdowns.push(engine.addSlowdown(geometry, 0.2 + rnd() * 0.7, { radiusMeters: 50 + rnd() * 200 }));
  }
  return { closures, slowdowns };
}
