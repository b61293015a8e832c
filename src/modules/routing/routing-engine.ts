/**
 * The routing engine over one built road network: snapping, routes, tables, dispatch, isochrones, and
 * live closures / slow-downs applied by partial CCH customization into a back buffer that is swapped
 * in whole (queries always read one complete metric).
 */
import type Flatbush from 'flatbush';
import { AppError, type Clock, newId, systemClock } from '../../kernel/index.ts';
import {
  buildLowerTriangles,
  type CchMetric,
  copyMetric,
  createMetric,
  customizeFull,
  type LowerTriangles,
  PartialCustomizer,
} from './cch-metric.ts';
import { CchQuery, type NodeCost } from './cch-query.ts';
import { bearing, closestT, haversineMeters, LocalProjection } from './geo.ts';
import { matchEdges } from './geometry-match.ts';
import { arcHead, arcTail, INF_WEIGHT } from './osm-import.ts';
import { tracePolygons } from './raster-polygon.ts';
import { networkBytes, type RoadNetwork, segmentIndex } from './road-network.ts';

/** Above this many changed road arcs in one update, a full customization is cheaper than a partial one. */
const FULL_CUSTOMIZATION_THRESHOLD = 600;

/** [longitude, latitude] in WGS 84, as in GeoJSON. */
export type LonLat = [number, number];

export interface EngineOptions {
  /** a point farther than this from every road is rejected (ROUTING_POINT_OUTSIDE_NETWORK); default 1000 */
  maxSnapMeters?: number;
  clock?: Clock;
}

export interface SnappedPoint {
  /** the point on the road */
  location: LonLat;
  /** metres from the requested point */
  distanceM: number;
  edge: number;
  /** 0..1 along the edge from its first to its last geometry point */
  fraction: number;
  name: string | undefined;
}

export interface RouteStep {
  name: string;
  distanceM: number;
  durationS: number;
  maneuver: {
    type: 'depart' | 'turn' | 'continue' | 'roundabout' | 'arrive';
    modifier?:
      | 'left'
      | 'slight left'
      | 'sharp left'
      | 'right'
      | 'slight right'
      | 'sharp right'
      | 'straight'
      | 'uturn';
    location: LonLat;
    bearingBefore: number;
    bearingAfter: number;
  };
}

export interface Route {
  reachable: true;
  /** travel time in seconds (= durationMs / 1000) */
  durationS: number;
  /** travel time in integer milliseconds, the engine's weight unit */
  durationMs: number;
  distanceM: number;
  geometry: { type: 'LineString'; coordinates: LonLat[] };
  steps: RouteStep[];
  from: SnappedPoint;
  to: SnappedPoint;
  /** road arcs driven (2·edge + direction), first and last partially; stable for one built network */
  arcs: number[];
}

export interface Unreachable {
  reachable: false;
  reason: string;
  from: SnappedPoint;
  to: SnappedPoint;
}

export type RouteAnswer = Route | Unreachable;

export interface Unit {
  id: string;
  position: LonLat;
  /** only units whose status is in `availableStatuses` are ranked (default ['available']) */
  status?: string;
  capabilities?: readonly string[];
}

export interface DispatchOptions {
  /** routes are returned for the first k ranked units (default 3) */
  k?: number;
  requiredCapabilities?: readonly string[];
  availableStatuses?: readonly string[];
}

export interface DispatchResult {
  incident: SnappedPoint;
  ranked: { id: string; rank: number; durationS: number; route?: Route }[];
  unreachable: { id: string; reason: string }[];
  excluded: { id: string; reason: string }[];
}

export interface TableResult {
  /** durations[i][j] in seconds from sources[i] to targets[j]; null = unreachable */
  durations: (number | null)[][];
  sources: SnappedPoint[];
  targets: SnappedPoint[];
}

export interface IsochroneOptions {
  /** raster cell size in metres (default 100) */
  cellMeters?: number;
}

export interface IsochroneFeature {
  type: 'Feature';
  geometry:
    | { type: 'Polygon'; coordinates: LonLat[][] }
    | { type: 'MultiPolygon'; coordinates: LonLat[][][] };
  properties: { seconds: number; cellMeters: number; reachableNodes: number };
}

export interface LiveChangeOptions {
  expiresAt?: Date | string | number;
  /** radius for Point geometries, metres (default 20; a Feature's properties.radius wins) */
  radiusMeters?: number;
  /** tolerance around LineString geometries, metres (default 5) */
  bufferMeters?: number;
}

export interface LiveChange {
  id: string;
  kind: 'closure' | 'slowdown';
  factor: number;
  edges: number;
  expiresAt: string | null;
}

export interface EngineStats {
  nodes: number;
  junctions: number;
  roadSegments: number;
  routingArcs: number;
  cchArcs: number;
  triangles: number;
  eliminationTreeHeight: number;
  networkBytes: number;
  metricBytes: number;
  closures: number;
  slowdowns: number;
  lastCustomization: { kind: 'full' | 'partial'; ms: number; arcsChanged: number } | null;
  source: string;
  profile: string;
}

interface Change {
  id: string;
  kind: 'closure' | 'slowdown';
  factor: number;
  edges: Uint32Array;
  expiresAt: number | undefined;
}

interface Piece {
  arc: number;
  from: number;
  to: number;
  ms: number;
}

export class RoutingEngine {
  readonly network: RoadNetwork;
  private readonly index: Flatbush;
  private readonly proj: LocalProjection;
  private readonly clock: Clock;
  private readonly maxSnapMeters: number;
  private front: CchMetric;
  private back: CchMetric;
  private readonly lower: LowerTriangles;
  private readonly partial: PartialCustomizer;
  private readonly query: CchQuery;
  private readonly changes = new Map<string, Change>();
  private readonly closedCount: Uint16Array;
  private readonly slowdownsByEdge = new Map<number, Set<string>>();
  /** indices changed by the last update, replayed into the back buffer before the next one */
  private pendingSync: { roadArcs: number[]; cchArcs: number[] } | 'all' = 'all';
  private lastCustomization: EngineStats['lastCustomization'] = null;
  private readonly scratchDist: Float64Array;
  private readonly height: number;

  constructor(network: RoadNetwork, options: EngineOptions = {}) {
    this.network = network;
    this.index = segmentIndex(network);
    this.proj = new LocalProjection(network.meta.refLat);
    this.clock = options.clock ?? systemClock;
    this.maxSnapMeters = options.maxSnapMeters ?? 1000;
    this.front = createMetric(network);
    this.back = createMetric(network);
    this.lower = buildLowerTriangles(network.topo);
    const t0 = performance.now();
    customizeFull(network, this.front, this.lower);
    this.lastCustomization = {
      kind: 'full',
      ms: performance.now() - t0,
      arcsChanged: network.topo.upHead.length,
    };
    this.partial = new PartialCustomizer(network, this.lower);
    this.query = new CchQuery(network, this.lower);
    this.closedCount = new Uint16Array(network.edgeU.length);
    this.scratchDist = new Float64Array(network.topo.n);
    const depth = new Uint32Array(network.topo.n);
    let h = 0;
    for (let v = network.topo.n - 1; v >= 0; v--) {
      const p = network.topo.parent[v]!;
      depth[v] = p >= 0 ? depth[p]! + 1 : 1;
      if (depth[v]! > h) h = depth[v]!;
    }
    this.height = h;
  }

  /** The metric queries read now; replaced whole on every update. */
  get metric(): CchMetric {
    return this.front;
  }

  // ---------------------------------------------------------------- snapping

  snap(point: LonLat): SnappedPoint {
    const [lon, lat] = validLonLat(point);
    const net = this.network;
    const px = this.proj.x(lon);
    const py = this.proj.y(lat);
    const roadW = this.front.roadW;
    const open = (seg: number) => {
      const e = net.segEdge[seg]!;
      return roadW[2 * e]! !== INF_WEIGHT || roadW[2 * e + 1]! !== INF_WEIGHT;
    };
    let best = -1;
    let bestD = Number.POSITIVE_INFINITY;
    let bestT = 0;
    const consider = (seg: number) => {
      const p = net.segPoint[seg]!;
      const ax = this.proj.x(net.geomLon[p]!);
      const ay = this.proj.y(net.geomLat[p]!);
      const bx = this.proj.x(net.geomLon[p + 1]!);
      const by = this.proj.y(net.geomLat[p + 1]!);
      const t = closestT(px, py, ax, ay, bx, by);
      const d = Math.hypot(ax + t * (bx - ax) - px, ay + t * (by - ay) - py);
      if (d < bestD) {
        bestD = d;
        best = seg;
        bestT = t;
      }
    };
    // boxes of growing radius: once the best exact distance is within the box radius, no segment
    // outside the box can be nearer (a box search is much cheaper than a k-nearest search)
    for (let r = 40; ; r *= 4) {
      const radius = Math.min(r, this.maxSnapMeters);
      for (const seg of this.index.search(px - radius, py - radius, px + radius, py + radius, open))
        consider(seg);
      if (bestD <= radius || radius >= this.maxSnapMeters) break;
    }
    if (best < 0 || bestD > this.maxSnapMeters) {
      throw new AppError(
        'ROUTING_POINT_OUTSIDE_NETWORK',
        `No open road within ${this.maxSnapMeters} m of [${lon}, ${lat}]`,
        { point: [lon, lat], maxSnapMeters: this.maxSnapMeters },
      );
    }
    const e = net.segEdge[best]!;
    const p = net.segPoint[best]!;
    let along = 0;
    for (let q = net.edgeGeomFirst[e]!; q < p; q++) along += segLength(net, q);
    along += bestT * segLength(net, p);
    const len = net.edgeLength[e]!;
    const fraction = len > 0 ? Math.min(1, along / len) : 0;
    const sLon = net.geomLon[p]! + bestT * (net.geomLon[p + 1]! - net.geomLon[p]!);
    const sLat = net.geomLat[p]! + bestT * (net.geomLat[p + 1]! - net.geomLat[p]!);
    const nameIdx = net.edgeName[e]!;
    return {
      location: [sLon, sLat],
      distanceM: haversineMeters(lon, lat, sLon, sLat),
      edge: e,
      fraction,
      name: nameIdx >= 0 ? net.meta.names[nameIdx] : undefined,
    };
  }

  /** Routing nodes a trip starting at the snapped point reaches first, with their cost (ms). */
  sourceStates(s: SnappedPoint, metric: CchMetric = this.front): NodeCost[] {
    const out: NodeCost[] = [];
    const e = s.edge;
    const fw = metric.roadW[2 * e]!;
    const bw = metric.roadW[2 * e + 1]!;
    const hf = this.network.arcHeadNode[2 * e]!;
    const hb = this.network.arcHeadNode[2 * e + 1]!;
    if (fw !== INF_WEIGHT && hf >= 0) out.push({ node: hf, cost: partialCost(1 - s.fraction, fw) });
    if (bw !== INF_WEIGHT && hb >= 0) out.push({ node: hb, cost: partialCost(s.fraction, bw) });
    return out;
  }

  /** Routing nodes from which the snapped point is reached, with the remaining cost (ms). */
  targetStates(s: SnappedPoint, metric: CchMetric = this.front): NodeCost[] {
    const out: NodeCost[] = [];
    const net = this.network;
    for (const dir of [0, 1]) {
      const arc = 2 * s.edge + dir;
      const w = metric.roadW[arc]!;
      if (w === INF_WEIGHT) continue;
      const cost = partialCost(dir === 0 ? s.fraction : 1 - s.fraction, w);
      for (let q = net.roadXFirst[arc]!; q < net.roadXFirst[arc + 1]!; q++) {
        const node = net.xTail[net.roadX[q]!]!;
        const known = out.find((o) => o.node === node);
        if (known) known.cost = Math.min(known.cost, cost);
        else out.push({ node, cost });
      }
    }
    return out;
  }

  /** Cost of staying on the shared edge when both points snap to it (Infinity when not possible). */
  private directCost(a: SnappedPoint, b: SnappedPoint, metric: CchMetric): { cost: number; arc: number } {
    if (a.edge !== b.edge) return { cost: Number.POSITIVE_INFINITY, arc: -1 };
    const e = a.edge;
    const fw = metric.roadW[2 * e]!;
    const bw = metric.roadW[2 * e + 1]!;
    if (b.fraction >= a.fraction && fw !== INF_WEIGHT)
      return { cost: partialCost(b.fraction - a.fraction, fw), arc: 2 * e };
    if (b.fraction <= a.fraction && bw !== INF_WEIGHT)
      return { cost: partialCost(a.fraction - b.fraction, bw), arc: 2 * e + 1 };
    return { cost: Number.POSITIVE_INFINITY, arc: -1 };
  }

  // ---------------------------------------------------------------- queries

  route(from: LonLat, to: LonLat): RouteAnswer {
    this.expireDue();
    const a = this.snap(from);
    const b = this.snap(to);
    return this.routeSnapped(a, b);
  }

  routeSnapped(a: SnappedPoint, b: SnappedPoint): RouteAnswer {
    const metric = this.front;
    const net = this.network;
    const sources = this.sourceStates(a, metric);
    const targets = this.targetStates(b, metric);
    const direct = this.directCost(a, b, metric);
    const path =
      sources.length > 0 && targets.length > 0
        ? this.query.shortestPath(metric, sources, targets)
        : undefined;
    if (direct.cost < INF_WEIGHT && (!path || direct.cost <= path.cost)) {
      const pa = arcPos(direct.arc, a.fraction);
      const pb = arcPos(direct.arc, b.fraction);
      return this.buildRoute(a, b, [{ arc: direct.arc, from: pa, to: pb, ms: direct.cost }], direct.cost);
    }
    if (!path) {
      return { reachable: false, reason: 'no open road connects these points', from: a, to: b };
    }
    const pieces: Piece[] = [];
    const srcArc = sourceArcFor(net, a.edge, path.sourceNode, metric);
    pieces.push({
      arc: srcArc,
      from: arcPos(srcArc, a.fraction),
      to: 1,
      ms: partialCost(1 - arcPos(srcArc, a.fraction), metric.roadW[srcArc]!),
    });
    for (const k of path.xArcs) {
      const r = net.xRoad[k]!;
      pieces.push({ arc: r, from: 0, to: 1, ms: metric.roadW[r]! });
    }
    const tgtArc = targetArcFor(net, b.edge, path.targetNode, metric);
    const tp = arcPos(tgtArc, b.fraction);
    pieces.push({ arc: tgtArc, from: 0, to: tp, ms: partialCost(tp, metric.roadW[tgtArc]!) });
    return this.buildRoute(a, b, pieces, path.cost);
  }

  /** Many-to-many travel times (seconds; null = unreachable). */
  table(sources: readonly LonLat[], targets: readonly LonLat[]): TableResult {
    this.expireDue();
    if (sources.length === 0 || targets.length === 0) {
      throw new AppError('ROUTING_INVALID_ARGUMENT', 'table needs at least one source and one target');
    }
    const metric = this.front;
    const s = sources.map((p) => this.snap(p));
    const t = targets.map((p) => this.snap(p));
    const q = this.query;
    // backward chains per target: (node, cost) pairs with finite cost
    const chainFirst = new Uint32Array(t.length + 1);
    const chainNode: number[] = [];
    const chainCost: number[] = [];
    t.forEach((tp, j) => {
      const states = this.targetStates(tp, metric);
      if (states.length > 0) {
        q.search(metric, states, false);
        for (const v of q.visited(false)) {
          const d = q.dB[v]!;
          if (d !== Number.POSITIVE_INFINITY) {
            chainNode.push(v);
            chainCost.push(d);
          }
        }
        q.reset(false);
      }
      chainFirst[j + 1] = chainNode.length;
    });
    const durations: (number | null)[][] = [];
    for (const sp of s) {
      const states = this.sourceStates(sp, metric);
      const row: (number | null)[] = [];
      q.search(metric, states, true);
      const dF = q.dF;
      for (let j = 0; j < t.length; j++) {
        let best = this.directCost(sp, t[j]!, metric).cost;
        for (let p = chainFirst[j]!; p < chainFirst[j + 1]!; p++) {
          const c = dF[chainNode[p]!]! + chainCost[p]!;
          if (c < best) best = c;
        }
        row.push(best < INF_WEIGHT ? best / 1000 : null);
      }
      q.reset(true);
      durations.push(row);
    }
    return { durations, sources: s, targets: t };
  }

  /** Ranks available units by arrival time at the incident; routes for the first k. */
  dispatch(incident: LonLat, units: readonly Unit[], options: DispatchOptions = {}): DispatchResult {
    this.expireDue();
    const k = options.k ?? 3;
    if (!Number.isInteger(k) || k < 0)
      throw new AppError('ROUTING_INVALID_ARGUMENT', 'k must be an integer ≥ 0');
    const statuses = options.availableStatuses ?? ['available'];
    const required = options.requiredCapabilities ?? [];
    const metric = this.front;
    const target = this.snap(incident);
    const targets = this.targetStates(target, metric);
    const excluded: DispatchResult['excluded'] = [];
    const unreachable: DispatchResult['unreachable'] = [];
    const timed: { id: string; ms: number; snap: SnappedPoint }[] = [];
    const candidates: { id: string; snap: SnappedPoint; states: NodeCost[] }[] = [];
    for (const u of units) {
      if (typeof u?.id !== 'string') throw new AppError('ROUTING_INVALID_ARGUMENT', 'every unit needs an id');
      if (!statuses.includes(u.status ?? 'available')) {
        excluded.push({ id: u.id, reason: `status ${u.status}` });
        continue;
      }
      const missing = required.filter((c) => !(u.capabilities ?? []).includes(c));
      if (missing.length > 0) {
        excluded.push({ id: u.id, reason: `lacks ${missing.join(', ')}` });
        continue;
      }
      let snap: SnappedPoint;
      try {
        snap = this.snap(u.position);
      } catch (e) {
        if (e instanceof AppError) {
          unreachable.push({ id: u.id, reason: e.message });
          continue;
        }
        throw e;
      }
      candidates.push({ id: u.id, snap, states: this.sourceStates(snap, metric) });
    }
    const costs =
      targets.length > 0
        ? this.query.manyToOne(
            metric,
            candidates.map((c) => c.states),
            targets,
          )
        : candidates.map(() => Number.POSITIVE_INFINITY);
    candidates.forEach((c, i) => {
      const best = Math.min(costs[i]!, this.directCost(c.snap, target, metric).cost);
      if (best < INF_WEIGHT) timed.push({ id: c.id, ms: best, snap: c.snap });
      else unreachable.push({ id: c.id, reason: 'no open road to the incident' });
    });
    timed.sort((x, y) => x.ms - y.ms);
    const ranked = timed.map((t, i) => {
      const entry: DispatchResult['ranked'][number] = { id: t.id, rank: i + 1, durationS: t.ms / 1000 };
      if (i < k) {
        const r = this.routeSnapped(t.snap, target);
        if (r.reachable) entry.route = r;
      }
      return entry;
    });
    return { incident: target, ranked, unreachable, excluded };
  }

  /** The area reachable from origin within `seconds`, as a GeoJSON polygon feature. */
  isochrone(origin: LonLat, seconds: number, options: IsochroneOptions = {}): IsochroneFeature {
    this.expireDue();
    if (!(seconds > 0) || seconds > 6 * 3600) {
      throw new AppError('ROUTING_INVALID_ARGUMENT', 'seconds must be in (0, 21600]');
    }
    const cell = options.cellMeters ?? 100;
    if (!(cell >= 10) || cell > 5000)
      throw new AppError('ROUTING_INVALID_ARGUMENT', 'cellMeters must be in [10, 5000]');
    const net = this.network;
    const metric = this.front;
    const s = this.snap(origin);
    const limit = seconds * 1000;
    const dist = this.scratchDist;
    this.query.oneToAll(metric, this.sourceStates(s, metric), dist);
    const [minLon, minLat, maxLon, maxLat] = net.meta.bbox;
    const x0 = this.proj.x(minLon) - 2 * cell;
    const y0 = this.proj.y(minLat) - 2 * cell;
    const width = Math.ceil((this.proj.x(maxLon) - x0) / cell) + 3;
    const height = Math.ceil((this.proj.y(maxLat) - y0) / cell) + 3;
    const hit = new Uint8Array(width * height);
    const mark = (lon: number, lat: number) => {
      const i = Math.floor((this.proj.x(lon) - x0) / cell);
      const j = Math.floor((this.proj.y(lat) - y0) / cell);
      if (i >= 0 && j >= 0 && i < width && j < height) hit[j * width + i] = 1;
    };
    const markLine = (plo: number, pla: number, lo: number, la: number) => {
      mark(lo, la);
      // planar step count in the local projection (cheaper than haversine, same within a city)
      const d = Math.hypot(this.proj.x(lo - plo), this.proj.y(la - pla));
      const steps = Math.floor(d / (cell / 2));
      for (let k = 1; k <= steps; k++)
        mark(plo + ((lo - plo) * k) / (steps + 1), pla + ((la - pla) * k) / (steps + 1));
    };
    const markPiece = (arc: number, from: number, to: number) => {
      if (from <= 0 && to >= 1) {
        // whole edge: walk its geometry in place
        const e = arc >>> 1;
        const first = net.edgeGeomFirst[e]!;
        const last = net.edgeGeomFirst[e + 1]! - 1;
        mark(net.geomLon[first]!, net.geomLat[first]!);
        for (let p = first + 1; p <= last; p++)
          markLine(net.geomLon[p - 1]!, net.geomLat[p - 1]!, net.geomLon[p]!, net.geomLat[p]!);
        return;
      }
      const pts = this.arcPoints(arc, from, to);
      mark(pts[0]![0], pts[0]![1]);
      for (let i = 1; i < pts.length; i++) markLine(pts[i - 1]![0], pts[i - 1]![1], pts[i]![0], pts[i]![1]);
    };
    mark(s.location[0], s.location[1]);
    let reachableNodes = 0;
    for (let v = 0; v < dist.length; v++) if (dist[v]! <= limit) reachableNodes++;
    // the origin's own edge
    for (const dir of [0, 1]) {
      const arc = 2 * s.edge + dir;
      const w = metric.roadW[arc]!;
      if (w === INF_WEIGHT) continue;
      const p = arcPos(arc, s.fraction);
      markPiece(arc, p, Math.min(1, p + limit / w));
    }
    for (let arc = 0; arc < metric.roadW.length; arc++) {
      const w = metric.roadW[arc]!;
      if (w === INF_WEIGHT) continue;
      let start = Number.POSITIVE_INFINITY;
      for (let q = net.roadXFirst[arc]!; q < net.roadXFirst[arc + 1]!; q++) {
        const d = dist[net.xTail[net.roadX[q]!]!]!;
        if (d < start) start = d;
      }
      if (start > limit) continue;
      markPiece(arc, 0, Math.min(1, (limit - start) / w));
    }
    // close one-cell gaps between neighbouring roads
    const filled = new Uint8Array(width * height);
    for (let j = 1; j < height - 1; j++) {
      for (let i = 1; i < width - 1; i++) {
        if (!hit[j * width + i]) continue;
        for (let dj = -1; dj <= 1; dj++)
          for (let di = -1; di <= 1; di++) filled[(j + dj) * width + i + di] = 1;
      }
    }
    const polys = tracePolygons({ width, height, x0, y0, cell, filled }).map((rings) =>
      rings.map((r) => {
        const out: LonLat[] = [];
        for (let i = 0; i < r.length; i += 2)
          out.push([round7(this.proj.lon(r[i]!)), round7(this.proj.lat(r[i + 1]!))]);
        return out;
      }),
    );
    const geometry: IsochroneFeature['geometry'] =
      polys.length === 1
        ? { type: 'Polygon', coordinates: polys[0]! }
        : { type: 'MultiPolygon', coordinates: polys };
    return { type: 'Feature', geometry, properties: { seconds, cellMeters: cell, reachableNodes } };
  }

  // ---------------------------------------------------------------- live closures and slow-downs

  /** Blocks every road segment the geometry covers; returns the closure id. */
  addClosure(geojson: unknown, options: LiveChangeOptions = {}): string {
    return this.addChange('closure', 0, geojson, options);
  }

  /** Multiplies the speed of every covered segment by factor (0 < factor ≤ 1 slows down). */
  addSlowdown(geojson: unknown, factor: number, options: LiveChangeOptions = {}): string {
    if (typeof factor !== 'number' || !(factor > 0) || factor > 10) {
      throw new AppError('ROUTING_INVALID_ARGUMENT', 'factor must be a number in (0, 10]');
    }
    return this.addChange('slowdown', factor, geojson, options);
  }

  liftClosure(id: string): void {
    const c = this.changes.get(id);
    if (c?.kind !== 'closure') throw new AppError('ROUTING_CLOSURE_NOT_FOUND', `No closure ${id}`, { id });
    this.removeChanges([c]);
  }

  liftSlowdown(id: string): void {
    const c = this.changes.get(id);
    if (c?.kind !== 'slowdown')
      throw new AppError('ROUTING_SLOWDOWN_NOT_FOUND', `No slow-down ${id}`, { id });
    this.removeChanges([c]);
  }

  liveChanges(): LiveChange[] {
    this.expireDue();
    return [...this.changes.values()].map((c) => ({
      id: c.id,
      kind: c.kind,
      factor: c.factor,
      edges: c.edges.length,
      expiresAt: c.expiresAt === undefined ? null : new Date(c.expiresAt).toISOString(),
    }));
  }

  /** Lifts the closures and slow-downs whose expiry time has passed (queries call it themselves). */
  expireDue(): void {
    if (this.changes.size === 0) return;
    const now = this.clock.now().getTime();
    const due = [...this.changes.values()].filter((c) => c.expiresAt !== undefined && c.expiresAt <= now);
    if (due.length > 0) this.removeChanges(due);
  }

  /** Recomputes the whole metric from the base weights and the active changes. */
  customizeAll(): void {
    const t0 = performance.now();
    const next = this.back;
    const net = this.network;
    for (let e = 0; e < net.edgeU.length; e++) this.writeEdgeWeights(next, e);
    customizeFull(net, next, this.lower);
    this.swap('all');
    this.lastCustomization = {
      kind: 'full',
      ms: performance.now() - t0,
      arcsChanged: net.topo.upHead.length,
    };
  }

  stats(): EngineStats {
    const net = this.network;
    const m = this.front;
    let closures = 0;
    let slowdowns = 0;
    for (const c of this.changes.values()) c.kind === 'closure' ? closures++ : slowdowns++;
    return {
      nodes: net.topo.n,
      junctions: net.junctionLon.length,
      roadSegments: net.edgeU.length,
      routingArcs: net.xTail.length,
      cchArcs: net.topo.upHead.length,
      triangles: net.topo.triangles.length,
      eliminationTreeHeight: this.height,
      networkBytes:
        networkBytes(net) +
        this.lower.first.byteLength +
        this.lower.pairs.byteLength +
        this.lower.position.byteLength,
      metricBytes:
        2 *
        (m.roadW.byteLength + m.inUp.byteLength + m.inDown.byteLength + m.up.byteLength + m.down.byteLength),
      closures,
      slowdowns,
      lastCustomization: this.lastCustomization,
      source: net.meta.source,
      profile: net.meta.profile,
    };
  }

  // ---------------------------------------------------------------- internals

  private addChange(
    kind: Change['kind'],
    factor: number,
    geojson: unknown,
    options: LiveChangeOptions,
  ): string {
    const expiresAt = parseExpiry(options.expiresAt);
    const edges = matchEdges(this.network, this.index, this.proj, geojson, {
      radiusMeters: options.radiusMeters,
      bufferMeters: options.bufferMeters,
    });
    const change: Change = { id: newId(), kind, factor, edges: Uint32Array.from(edges), expiresAt };
    this.changes.set(change.id, change);
    for (const e of edges) {
      if (kind === 'closure') this.closedCount[e]!++;
      else {
        let set = this.slowdownsByEdge.get(e);
        if (!set) {
          set = new Set();
          this.slowdownsByEdge.set(e, set);
        }
        set.add(change.id);
      }
    }
    this.applyEdges(edges);
    return change.id;
  }

  private removeChanges(list: Change[]): void {
    const touched = new Set<number>();
    for (const c of list) {
      this.changes.delete(c.id);
      for (const e of c.edges) {
        touched.add(e);
        if (c.kind === 'closure') this.closedCount[e]!--;
        else {
          const set = this.slowdownsByEdge.get(e);
          set?.delete(c.id);
          if (set && set.size === 0) this.slowdownsByEdge.delete(e);
        }
      }
    }
    this.applyEdges([...touched]);
  }

  private writeEdgeWeights(metric: CchMetric, e: number): void {
    const base = this.network.arcWeight;
    let factor = 1;
    const ids = this.slowdownsByEdge.get(e);
    if (ids && ids.size > 0) {
      factor = Number.POSITIVE_INFINITY;
      for (const id of ids) factor = Math.min(factor, this.changes.get(id)?.factor ?? 1);
    }
    const closed = this.closedCount[e]! > 0;
    for (const arc of [2 * e, 2 * e + 1]) {
      const b = base[arc]!;
      metric.roadW[arc] =
        b === INF_WEIGHT || closed
          ? INF_WEIGHT
          : Math.min(INF_WEIGHT - 1, Math.max(1, Math.round(b / factor)));
    }
  }

  /** Partial customization of the back buffer for the given edges, then swap. */
  private applyEdges(edges: readonly number[]): void {
    const t0 = performance.now();
    const next = this.back;
    this.syncBack();
    const changedArcs: number[] = [];
    for (const e of edges) {
      const before0 = next.roadW[2 * e]!;
      const before1 = next.roadW[2 * e + 1]!;
      this.writeEdgeWeights(next, e);
      if (next.roadW[2 * e] !== before0) changedArcs.push(2 * e);
      if (next.roadW[2 * e + 1] !== before1) changedArcs.push(2 * e + 1);
    }
    if (changedArcs.length > FULL_CUSTOMIZATION_THRESHOLD) {
      // many changes at once (a new traffic picture): one full pass beats re-deriving arcs one by one
      customizeFull(this.network, next, this.lower);
      this.swap('all');
      this.lastCustomization = {
        kind: 'full',
        ms: performance.now() - t0,
        arcsChanged: this.network.topo.upHead.length,
      };
      return;
    }
    const cchArcs = this.partial.run(next, changedArcs);
    this.swap({ roadArcs: changedArcs, cchArcs });
    this.lastCustomization = { kind: 'partial', ms: performance.now() - t0, arcsChanged: cchArcs.length };
  }

  private syncBack(): void {
    const from = this.front;
    const to = this.back;
    const p = this.pendingSync;
    if (p === 'all') copyMetric(from, to);
    else {
      for (const r of p.roadArcs) to.roadW[r] = from.roadW[r]!;
      for (const c of p.cchArcs) {
        to.inUp[c] = from.inUp[c]!;
        to.inDown[c] = from.inDown[c]!;
        to.up[c] = from.up[c]!;
        to.down[c] = from.down[c]!;
        to.midUp[c] = from.midUp[c]!;
        to.midDown[c] = from.midDown[c]!;
      }
    }
    this.pendingSync = { roadArcs: [], cchArcs: [] };
  }

  private swap(changed: RoutingEngine['pendingSync']): void {
    const old = this.front;
    this.front = this.back;
    this.back = old;
    this.pendingSync = changed;
  }

  /** Coordinates of the part [from, to] (fractions in driving direction) of a road arc. */
  arcPoints(arc: number, from: number, to: number): LonLat[] {
    const net = this.network;
    const e = arc >>> 1;
    const first = net.edgeGeomFirst[e]!;
    const last = net.edgeGeomFirst[e + 1]! - 1;
    const pts: LonLat[] = [];
    for (let p = first; p <= last; p++) pts.push([net.geomLon[p]!, net.geomLat[p]!]);
    if (arc & 1) pts.reverse();
    if (from <= 0 && to >= 1) return pts;
    const len = net.edgeLength[e]!;
    const a = from * len;
    const b = to * len;
    const out: LonLat[] = [];
    let acc = 0;
    for (let i = 0; i + 1 < pts.length; i++) {
      const [x0, y0] = pts[i]!;
      const [x1, y1] = pts[i + 1]!;
      const d = haversineMeters(x0, y0, x1, y1);
      const next = acc + d;
      const lerp = (m: number): LonLat => {
        const t = d > 0 ? Math.min(1, Math.max(0, (m - acc) / d)) : 0;
        return [x0 + t * (x1 - x0), y0 + t * (y1 - y0)];
      };
      if (out.length === 0 && a <= next) out.push(lerp(a));
      if (out.length > 0) {
        if (b <= next) {
          out.push(lerp(b));
          return out;
        }
        out.push([x1, y1]);
      }
      acc = next;
    }
    if (out.length === 0) out.push(pts[pts.length - 1]!);
    if (out.length === 1) out.push(out[0]!);
    return out;
  }

  private buildRoute(a: SnappedPoint, b: SnappedPoint, pieces: Piece[], cost: number): Route {
    const net = this.network;
    const coords: LonLat[] = [];
    const steps: RouteStep[] = [];
    let distance = 0;
    let current: { name: number; flags: number; step: RouteStep } | undefined;
    let lastBearing = 0;
    for (const piece of pieces) {
      const pts = this.arcPoints(piece.arc, piece.from, piece.to);
      const e = piece.arc >>> 1;
      const meters = net.edgeLength[e]! * Math.max(0, piece.to - piece.from);
      distance += meters;
      for (const p of pts) {
        const prev = coords[coords.length - 1];
        if (!prev || prev[0] !== p[0] || prev[1] !== p[1]) coords.push(p);
      }
      const startBearing = pts.length > 1 ? this.bearingOf(pts[0]!, pts[1]!) : lastBearing;
      const endBearing =
        pts.length > 1 ? this.bearingOf(pts[pts.length - 2]!, pts[pts.length - 1]!) : startBearing;
      const name = net.edgeName[e]!;
      const flags = net.edgeFlags[e]!;
      if (!current || current.name !== name || current.flags !== flags) {
        const isFirst = !current;
        const turn = isFirst ? 0 : ((startBearing - lastBearing + 540) % 360) - 180;
        const step: RouteStep = {
          name: name >= 0 ? net.meta.names[name]! : '',
          distanceM: 0,
          durationS: 0,
          maneuver: {
            type: isFirst ? 'depart' : flags & 1 ? 'roundabout' : Math.abs(turn) < 20 ? 'continue' : 'turn',
            location: pts[0]!,
            bearingBefore: Math.round(lastBearing),
            bearingAfter: Math.round(startBearing),
          },
        };
        if (!isFirst) step.maneuver.modifier = modifierOf(turn);
        steps.push(step);
        current = { name, flags, step };
      }
      current.step.distanceM += meters;
      current.step.durationS += piece.ms / 1000;
      lastBearing = endBearing;
    }
    if (coords.length === 1) coords.push(coords[0]!);
    steps.push({
      name: '',
      distanceM: 0,
      durationS: 0,
      maneuver: {
        type: 'arrive',
        location: coords[coords.length - 1]!,
        bearingBefore: Math.round(lastBearing),
        bearingAfter: 0,
      },
    });
    for (const s of steps) {
      s.distanceM = Math.round(s.distanceM * 10) / 10;
      s.durationS = Math.round(s.durationS * 1000) / 1000;
    }
    return {
      reachable: true,
      durationS: cost / 1000,
      durationMs: cost,
      distanceM: Math.round(distance * 10) / 10,
      geometry: { type: 'LineString', coordinates: coords.map(([x, y]) => [round7(x), round7(y)]) },
      steps,
      from: a,
      to: b,
      arcs: pieces.map((p) => p.arc),
    };
  }

  private bearingOf(p: LonLat, q: LonLat): number {
    return bearing(this.proj.x(p[0]), this.proj.y(p[1]), this.proj.x(q[0]), this.proj.y(q[1]));
  }
}

function modifierOf(turn: number): NonNullable<RouteStep['maneuver']['modifier']> {
  const a = Math.abs(turn);
  if (a < 20) return 'straight';
  if (a > 170) return 'uturn';
  const side = turn < 0 ? 'left' : 'right';
  if (a < 45) return `slight ${side}`;
  if (a > 135) return `sharp ${side}`;
  return side;
}

function round7(x: number): number {
  return Math.round(x * 1e7) / 1e7;
}

/** The cost of driving a fraction of an arc: rounded to whole milliseconds (shared with the oracle). */
export function partialCost(fraction: number, weight: number): number {
  return Math.round(Math.min(1, Math.max(0, fraction)) * weight);
}

/** Position along the arc's driving direction of an edge fraction. */
export function arcPos(arc: number, edgeFraction: number): number {
  return arc & 1 ? 1 - edgeFraction : edgeFraction;
}

function sourceArcFor(net: RoadNetwork, edge: number, node: number, metric: CchMetric): number {
  if (net.arcHeadNode[2 * edge] === node && metric.roadW[2 * edge] !== INF_WEIGHT) return 2 * edge;
  return 2 * edge + 1;
}

function targetArcFor(net: RoadNetwork, edge: number, node: number, metric: CchMetric): number {
  const arc = 2 * edge;
  if (metric.roadW[arc] !== INF_WEIGHT) {
    for (let q = net.roadXFirst[arc]!; q < net.roadXFirst[arc + 1]!; q++)
      if (net.xTail[net.roadX[q]!] === node) return arc;
  }
  return arc + 1;
}

function segLength(net: RoadNetwork, p: number): number {
  return haversineMeters(net.geomLon[p]!, net.geomLat[p]!, net.geomLon[p + 1]!, net.geomLat[p + 1]!);
}

export function validLonLat(p: unknown): LonLat {
  if (!Array.isArray(p) || p.length < 2) {
    throw new AppError('ROUTING_INVALID_COORDINATE', 'A coordinate must be [lon, lat]');
  }
  const [lon, lat] = p as unknown[];
  if (typeof lon !== 'number' || typeof lat !== 'number' || !Number.isFinite(lon) || !Number.isFinite(lat)) {
    throw new AppError('ROUTING_INVALID_COORDINATE', 'Coordinates must be finite numbers [lon, lat]');
  }
  if (lon < -180 || lon > 180 || lat < -90 || lat > 90) {
    throw new AppError('ROUTING_INVALID_COORDINATE', `[${lon}, ${lat}] is not a valid [lon, lat]`);
  }
  return [lon, lat];
}

function parseExpiry(v: LiveChangeOptions['expiresAt']): number | undefined {
  if (v === undefined) return undefined;
  const t = v instanceof Date ? v.getTime() : typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(t)) throw new AppError('ROUTING_INVALID_ARGUMENT', 'expiresAt is not a valid time');
  return t;
}

export { arcHead, arcTail };
