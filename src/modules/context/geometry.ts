/**
 * GeoJSON geometry for NGSI-LD GeoProperties and geo-queries: validation, bounding boxes, distances and
 * the spatial predicates. Coordinates are WGS 84 longitude/latitude. Predicates work on the plane of
 * lon/lat (adequate at city scale, as in most brokers); distances are metres on a local equirectangular
 * projection around the reference point (error under 0.1 % for distances of a few kilometres).
 */
import { AppError } from '../../kernel/errors.ts';

export type Position = number[];
export type Geometry =
  | { type: 'Point'; coordinates: Position }
  | { type: 'MultiPoint'; coordinates: Position[] }
  | { type: 'LineString'; coordinates: Position[] }
  | { type: 'MultiLineString'; coordinates: Position[][] }
  | { type: 'Polygon'; coordinates: Position[][] }
  | { type: 'MultiPolygon'; coordinates: Position[][][] };

export const GEOMETRY_TYPES = [
  'Point',
  'MultiPoint',
  'LineString',
  'MultiLineString',
  'Polygon',
  'MultiPolygon',
] as const;

export interface BBox {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

function bad(what: string, why: string): never {
  throw new AppError('CONTEXT_INVALID_GEOMETRY', `${what}: ${why}`);
}

/** Entity values accept positions outside WGS 84 bounds (published examples carry some); queries do not. */
let checkBounds = true;

function checkPosition(p: unknown, what: string): Position {
  if (
    !Array.isArray(p) ||
    p.length < 2 ||
    p.length > 3 ||
    !p.every((n) => typeof n === 'number' && Number.isFinite(n))
  ) {
    return bad(what, 'a position must be [longitude, latitude] or [longitude, latitude, altitude]');
  }
  const [x, y] = p as number[];
  if (checkBounds && (x! < -180 || x! > 180 || y! < -90 || y! > 90)) {
    bad(what, `position [${x}, ${y}] is outside WGS 84 bounds`);
  }
  return p as Position;
}

function checkLine(l: unknown, what: string): Position[] {
  if (!Array.isArray(l) || l.length < 2) bad(what, 'a LineString needs at least two positions');
  return (l as unknown[]).map((p) => checkPosition(p, what));
}

function checkPolygon(rings: unknown, what: string): Position[][] {
  if (!Array.isArray(rings) || rings.length === 0) bad(what, 'a Polygon needs at least one linear ring');
  return (rings as unknown[]).map((r) => {
    const ring = checkLine(r, what);
    if (ring.length < 4) bad(what, 'a linear ring needs at least four positions');
    const a = ring[0]!;
    const b = ring[ring.length - 1]!;
    if (a[0] !== b[0] || a[1] !== b[1]) bad(what, 'a linear ring must be closed (first position = last)');
    return ring;
  });
}

/**
 * Checks a GeoJSON geometry object; throws CONTEXT_INVALID_GEOMETRY (or CONTEXT_UNSUPPORTED_GEOMETRY for
 * a known but unsupported type) with a detail naming `what`.
 */
export function validateGeometry(g: unknown, what = 'geometry', opts: { bounds?: boolean } = {}): Geometry {
  checkBounds = opts.bounds ?? true;
  try {
    return validateShape(g, what);
  } finally {
    checkBounds = true;
  }
}

function validateShape(g: unknown, what: string): Geometry {
  if (g === null || typeof g !== 'object' || Array.isArray(g)) bad(what, 'must be a GeoJSON geometry object');
  const o = g as Record<string, unknown>;
  const c = o.coordinates;
  switch (o.type) {
    case 'Point':
      checkPosition(c, what);
      break;
    case 'MultiPoint':
      if (!Array.isArray(c) || c.length === 0) bad(what, 'a MultiPoint needs positions');
      for (const p of c as unknown[]) checkPosition(p, what);
      break;
    case 'LineString':
      checkLine(c, what);
      break;
    case 'MultiLineString':
      if (!Array.isArray(c) || c.length === 0) bad(what, 'a MultiLineString needs lines');
      for (const l of c as unknown[]) checkLine(l, what);
      break;
    case 'Polygon':
      checkPolygon(c, what);
      break;
    case 'MultiPolygon':
      if (!Array.isArray(c) || c.length === 0) bad(what, 'a MultiPolygon needs polygons');
      for (const p of c as unknown[]) checkPolygon(p, what);
      break;
    case 'GeometryCollection':
      throw new AppError('CONTEXT_UNSUPPORTED_GEOMETRY', `${what}: GeometryCollection is not supported`);
    default:
      if (typeof o.type === 'string') {
        throw new AppError(
          'CONTEXT_UNSUPPORTED_GEOMETRY',
          `${what}: geometry type "${o.type}" is not supported (${GEOMETRY_TYPES.join(', ')})`,
        );
      }
      bad(what, 'a GeoJSON geometry needs a "type"');
  }
  return g as Geometry;
}

export function isGeometryLike(v: unknown): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.type === 'string' &&
    ((GEOMETRY_TYPES as readonly string[]).includes(o.type) || o.type === 'GeometryCollection') &&
    ('coordinates' in o || 'geometries' in o)
  );
}

/** The parts of a geometry that the predicates need. */
interface Parts {
  points: Position[];
  lines: Position[][];
  polygons: Position[][][];
}

/** Parts and boxes of non-Point geometries, computed once per geometry object (query geometries are reused). */
const partsCache = new WeakMap<Geometry, Parts>();
const boxCache = new WeakMap<Geometry, BBox>();

function parts(g: Geometry): Parts {
  if (g.type === 'Point') return { points: [g.coordinates], lines: [], polygons: [] };
  let p = partsCache.get(g);
  if (!p) {
    p = computeParts(g);
    partsCache.set(g, p);
  }
  return p;
}

function computeParts(g: Geometry): Parts {
  switch (g.type) {
    case 'Point':
      return { points: [g.coordinates], lines: [], polygons: [] };
    case 'MultiPoint':
      return { points: g.coordinates, lines: [], polygons: [] };
    case 'LineString':
      return { points: [], lines: [g.coordinates], polygons: [] };
    case 'MultiLineString':
      return { points: [], lines: g.coordinates, polygons: [] };
    case 'Polygon':
      return { points: [], lines: [], polygons: [g.coordinates] };
    case 'MultiPolygon':
      return { points: [], lines: [], polygons: g.coordinates };
  }
}

export function bbox(g: Geometry): BBox {
  if (g.type === 'Point') {
    const [x, y] = g.coordinates as [number, number];
    return { minX: x, minY: y, maxX: x, maxY: y };
  }
  let b = boxCache.get(g);
  if (!b) {
    b = computeBox(g);
    boxCache.set(g, b);
  }
  return b;
}

function computeBox(g: Geometry): BBox {
  const b = { minX: Infinity, minY: Infinity, maxX: -Infinity, maxY: -Infinity };
  const add = (p: Position) => {
    const x = p[0]!;
    const y = p[1]!;
    if (x < b.minX) b.minX = x;
    if (x > b.maxX) b.maxX = x;
    if (y < b.minY) b.minY = y;
    if (y > b.maxY) b.maxY = y;
  };
  const pr = parts(g);
  for (const p of pr.points) add(p);
  for (const l of pr.lines) for (const p of l) add(p);
  for (const poly of pr.polygons) for (const p of poly[0] ?? []) add(p);
  return b;
}

const EARTH_RADIUS = 6_371_008.8;
const RAD = Math.PI / 180;

/** Great-circle distance in metres (haversine). */
export function haversine(a: Position, b: Position): number {
  const dLat = (b[1]! - a[1]!) * RAD;
  const dLon = (b[0]! - a[0]!) * RAD;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a[1]! * RAD) * Math.cos(b[1]! * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS * Math.asin(Math.min(1, Math.sqrt(s)));
}

/** The box (in degrees) that holds every point within `metres` of `p`. */
export function bboxAround(p: Position, metres: number): BBox {
  const dLat = metres / (EARTH_RADIUS * RAD);
  const cos = Math.cos(p[1]! * RAD);
  const dLon = cos < 1e-9 ? 180 : Math.min(180, dLat / cos);
  return { minX: p[0]! - dLon, minY: p[1]! - dLat, maxX: p[0]! + dLon, maxY: p[1]! + dLat };
}

/** Shortest distance in metres from a point to a geometry (0 inside a polygon). */
export function distanceToGeometry(p: Position, g: Geometry): number {
  const pr = parts(g);
  const kx = Math.cos(p[1]! * RAD) * EARTH_RADIUS * RAD;
  const ky = EARTH_RADIUS * RAD;
  // Local projection around p: metres east and north.
  const proj = (q: Position): [number, number] => [(q[0]! - p[0]!) * kx, (q[1]! - p[1]!) * ky];
  let best = Infinity;
  for (const q of pr.points) best = Math.min(best, haversine(p, q));
  const segDist = (line: Position[]) => {
    for (let i = 0; i + 1 < line.length; i++) {
      const [ax, ay] = proj(line[i]!);
      const [bx, by] = proj(line[i + 1]!);
      const dx = bx - ax;
      const dy = by - ay;
      const len2 = dx * dx + dy * dy;
      const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, -(ax * dx + ay * dy) / len2));
      const cx = ax + t * dx;
      const cy = ay + t * dy;
      best = Math.min(best, Math.sqrt(cx * cx + cy * cy));
    }
  };
  for (const l of pr.lines) segDist(l);
  for (const poly of pr.polygons) {
    if (pointInPolygon(p, poly) >= 0) return 0;
    for (const ring of poly) segDist(ring);
  }
  return best;
}

/** 1 inside, 0 on the boundary, -1 outside (holes excluded). */
function pointInPolygon(p: Position, poly: Position[][]): number {
  const outer = pointInRing(p, poly[0]!);
  if (outer <= 0) return outer;
  for (let i = 1; i < poly.length; i++) {
    const h = pointInRing(p, poly[i]!);
    if (h === 0) return 0;
    if (h > 0) return -1;
  }
  return 1;
}

function pointInRing(p: Position, ring: Position[]): number {
  const x = p[0]!;
  const y = p[1]!;
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const xi = ring[i]![0]!;
    const yi = ring[i]![1]!;
    const xj = ring[j]![0]!;
    const yj = ring[j]![1]!;
    if (onSegment(p, ring[j]!, ring[i]!)) return 0;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside ? 1 : -1;
}

function cross(o: Position, a: Position, b: Position): number {
  return (a[0]! - o[0]!) * (b[1]! - o[1]!) - (a[1]! - o[1]!) * (b[0]! - o[0]!);
}

function onSegment(p: Position, a: Position, b: Position): boolean {
  if (Math.abs(cross(a, b, p)) > 1e-12) return false;
  return (
    Math.min(a[0]!, b[0]!) - 1e-12 <= p[0]! &&
    p[0]! <= Math.max(a[0]!, b[0]!) + 1e-12 &&
    Math.min(a[1]!, b[1]!) - 1e-12 <= p[1]! &&
    p[1]! <= Math.max(a[1]!, b[1]!) + 1e-12
  );
}

/** Segments intersect (touching counts). `proper` = they cross at a point interior to both. */
function segmentsIntersect(a: Position, b: Position, c: Position, d: Position, proper = false): boolean {
  const d1 = cross(c, d, a);
  const d2 = cross(c, d, b);
  const d3 = cross(a, b, c);
  const d4 = cross(a, b, d);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) return true;
  if (proper) return false;
  return onSegment(a, c, d) || onSegment(b, c, d) || onSegment(c, a, b) || onSegment(d, a, b);
}

function edges(pr: Parts): [Position, Position][] {
  const out: [Position, Position][] = [];
  const add = (l: Position[]) => {
    for (let i = 0; i + 1 < l.length; i++) out.push([l[i]!, l[i + 1]!]);
  };
  for (const l of pr.lines) add(l);
  for (const poly of pr.polygons) for (const r of poly) add(r);
  return out;
}

function vertices(pr: Parts): Position[] {
  const out = [...pr.points];
  for (const l of pr.lines) out.push(...l);
  for (const poly of pr.polygons) for (const r of poly) out.push(...r);
  return out;
}

/** Where a point lies against a geometry: 1 interior, 0 boundary/on it, -1 outside. */
function locate(p: Position, pr: Parts): number {
  let best = -1;
  for (const q of pr.points) if (q[0] === p[0] && q[1] === p[1]) return 1;
  for (const l of pr.lines) {
    for (let i = 0; i + 1 < l.length; i++) if (onSegment(p, l[i]!, l[i + 1]!)) best = 0;
  }
  for (const poly of pr.polygons) {
    const r = pointInPolygon(p, poly);
    if (r > best) best = r;
    if (best === 1) return 1;
  }
  return best;
}

function boxesOverlap(a: BBox, b: BBox): boolean {
  return a.minX <= b.maxX && a.maxX >= b.minX && a.minY <= b.maxY && a.maxY >= b.minY;
}

export function intersects(a: Geometry, b: Geometry): boolean {
  if (!boxesOverlap(bbox(a), bbox(b))) return false;
  if (a.type === 'Point') return locate(a.coordinates, parts(b)) >= 0;
  const pa = parts(a);
  const pb = parts(b);
  for (const p of vertices(pa)) if (locate(p, pb) >= 0) return true;
  for (const p of vertices(pb)) if (locate(p, pa) >= 0) return true;
  const eb = edges(pb);
  for (const [p, q] of edges(pa)) for (const [r, s] of eb) if (segmentsIntersect(p, q, r, s)) return true;
  return false;
}

/** Every point of `a` lies in `b` (its interior or boundary), and no edge of `a` leaves `b`. */
export function within(a: Geometry, b: Geometry): boolean {
  const ba = bbox(a);
  const bb = bbox(b);
  if (ba.minX < bb.minX || ba.minY < bb.minY || ba.maxX > bb.maxX || ba.maxY > bb.maxY) return false;
  if (a.type === 'Point') return locate(a.coordinates, parts(b)) >= 0;
  const pa = parts(a);
  const pb = parts(b);
  for (const p of vertices(pa)) if (locate(p, pb) < 0) return false;
  if (pb.polygons.length > 0) {
    const eb = edges(pb);
    for (const [p, q] of edges(pa)) {
      for (const [r, s] of eb) if (segmentsIntersect(p, q, r, s, true)) return false;
      // An edge whose midpoint falls outside leaves the area (concave polygons).
      const mid = [(p[0]! + q[0]!) / 2, (p[1]! + q[1]!) / 2];
      if (locate(mid, pb) < 0) return false;
    }
  }
  return true;
}

export function geometryEquals(a: Geometry, b: Geometry): boolean {
  if (a.type !== b.type) return false;
  const flat = (c: unknown): number[] => (Array.isArray(c) ? c.flatMap((x) => flat(x)) : [c as number]);
  const fa = flat(a.coordinates);
  const fb = flat(b.coordinates);
  return fa.length === fb.length && fa.every((v, i) => Math.abs(v - fb[i]!) < 1e-12);
}

function dimension(g: Geometry): number {
  if (g.type === 'Point' || g.type === 'MultiPoint') return 0;
  if (g.type === 'LineString' || g.type === 'MultiLineString') return 1;
  return 2;
}

/** Same dimension, they intersect, and neither holds the other. */
export function overlaps(a: Geometry, b: Geometry): boolean {
  if (dimension(a) !== dimension(b)) return false;
  return intersects(a, b) && !within(a, b) && !within(b, a);
}
