/**
 * Which road edges does a GeoJSON geometry cover? Points (with a radius) cover the edges passing within
 * the radius; lines cover the edges they cross or run within `bufferMeters` of; polygons cover the edges
 * with any part inside (holes excluded) or crossing a ring. Accepts a Geometry, a GeometryCollection, a
 * Feature or a FeatureCollection (a feature's `properties.radius` overrides the point radius).
 */
import type Flatbush from 'flatbush';
import { AppError } from '../../kernel/index.ts';
import {
  type LocalProjection,
  pointInRing,
  pointSegmentDistance,
  segmentSegmentDistance,
  segmentsIntersect,
} from './geo.ts';
import type { RoadNetwork } from './road-network.ts';

export interface MatchOptions {
  /** radius around points, metres (default 20) */
  radiusMeters?: number | undefined;
  /** tolerance around lines, metres (default 5) */
  bufferMeters?: number | undefined;
}

type Position = [number, number];
interface Shape {
  kind: 'point' | 'line' | 'polygon';
  /** projected rings (polygon: first outer, rest holes) or one line / one point */
  parts: Float64Array[];
  radius: number;
}

function fail(message: string): never {
  throw new AppError('ROUTING_INVALID_GEOMETRY', message);
}

function position(p: unknown): Position {
  if (!Array.isArray(p) || p.length < 2) fail('a position must be [lon, lat]');
  const [lon, lat] = p as unknown[];
  if (typeof lon !== 'number' || typeof lat !== 'number' || !Number.isFinite(lon) || !Number.isFinite(lat))
    fail('coordinates must be finite numbers');
  if (lon < -180 || lon > 180 || lat < -90 || lat > 90)
    fail('coordinates out of range (expected [lon, lat])');
  return [lon, lat];
}

function positions(list: unknown, min: number, what: string): Position[] {
  if (!Array.isArray(list) || list.length < min) fail(`${what} needs at least ${min} positions`);
  return list.map(position);
}

function ring(list: unknown): Position[] {
  const r = positions(list, 4, 'a polygon ring');
  const a = r[0]!;
  const b = r[r.length - 1]!;
  if (a[0] !== b[0] || a[1] !== b[1]) fail('a polygon ring must be closed (first position = last)');
  return r;
}

export function parseShapes(input: unknown, proj: LocalProjection, options: MatchOptions): Shape[] {
  const shapes: Shape[] = [];
  const flat = (pts: Position[]) => {
    const out = new Float64Array(pts.length * 2);
    pts.forEach((p, i) => {
      out[2 * i] = proj.x(p[0]);
      out[2 * i + 1] = proj.y(p[1]);
    });
    return out;
  };
  const visit = (g: unknown, radius: number, depth: number) => {
    if (depth > 8) fail('geometry nesting too deep');
    if (typeof g !== 'object' || g === null) fail('a GeoJSON object is required');
    const o = g as Record<string, unknown>;
    switch (o.type) {
      case 'FeatureCollection':
        if (!Array.isArray(o.features)) fail('FeatureCollection.features must be an array');
        for (const f of o.features) visit(f, radius, depth + 1);
        return;
      case 'Feature': {
        const props = (o.properties ?? {}) as Record<string, unknown>;
        const r = typeof props.radius === 'number' ? props.radius : radius;
        if (o.geometry === null || o.geometry === undefined) fail('a Feature without geometry');
        visit(o.geometry, r, depth + 1);
        return;
      }
      case 'GeometryCollection':
        if (!Array.isArray(o.geometries)) fail('GeometryCollection.geometries must be an array');
        for (const x of o.geometries) visit(x, radius, depth + 1);
        return;
      case 'Point':
        shapes.push({ kind: 'point', parts: [flat([position(o.coordinates)])], radius });
        return;
      case 'MultiPoint':
        for (const p of positions(o.coordinates, 1, 'a MultiPoint'))
          shapes.push({ kind: 'point', parts: [flat([p])], radius });
        return;
      case 'LineString':
        shapes.push({ kind: 'line', parts: [flat(positions(o.coordinates, 2, 'a LineString'))], radius: 0 });
        return;
      case 'MultiLineString':
        if (!Array.isArray(o.coordinates) || o.coordinates.length === 0) fail('an empty MultiLineString');
        for (const l of o.coordinates)
          shapes.push({ kind: 'line', parts: [flat(positions(l, 2, 'a line'))], radius: 0 });
        return;
      case 'Polygon':
        if (!Array.isArray(o.coordinates) || o.coordinates.length === 0) fail('a Polygon needs rings');
        shapes.push({ kind: 'polygon', parts: o.coordinates.map((r) => flat(ring(r))), radius: 0 });
        return;
      case 'MultiPolygon':
        if (!Array.isArray(o.coordinates) || o.coordinates.length === 0) fail('an empty MultiPolygon');
        for (const poly of o.coordinates) {
          if (!Array.isArray(poly) || poly.length === 0) fail('a Polygon needs rings');
          shapes.push({ kind: 'polygon', parts: poly.map((r) => flat(ring(r))), radius: 0 });
        }
        return;
      default:
        fail(`unsupported GeoJSON type ${String(o.type)}`);
    }
  };
  const radius = options.radiusMeters ?? 20;
  if (!(radius > 0) || !Number.isFinite(radius)) fail('radius must be a positive number of metres');
  visit(input, radius, 0);
  for (const s of shapes)
    if (s.kind === 'point' && !(s.radius > 0 && Number.isFinite(s.radius))) fail('radius must be positive');
  if (shapes.length === 0) fail('the geometry is empty');
  return shapes;
}

/** Edge ids covered by the geometry. */
export function matchEdges(
  net: RoadNetwork,
  index: Flatbush,
  proj: LocalProjection,
  input: unknown,
  options: MatchOptions = {},
): number[] {
  const shapes = parseShapes(input, proj, options);
  const buffer = options.bufferMeters ?? 5;
  const edges = new Set<number>();
  const { segPoint, segEdge, geomLon, geomLat } = net;
  for (const s of shapes) {
    const pad = s.kind === 'point' ? s.radius : s.kind === 'line' ? buffer : 0;
    let minX = Number.POSITIVE_INFINITY;
    let minY = Number.POSITIVE_INFINITY;
    let maxX = Number.NEGATIVE_INFINITY;
    let maxY = Number.NEGATIVE_INFINITY;
    const outer = s.parts[0]!;
    for (let i = 0; i < outer.length; i += 2) {
      minX = Math.min(minX, outer[i]!);
      maxX = Math.max(maxX, outer[i]!);
      minY = Math.min(minY, outer[i + 1]!);
      maxY = Math.max(maxY, outer[i + 1]!);
    }
    const hits = index.search(minX - pad, minY - pad, maxX + pad, maxY + pad);
    for (const seg of hits) {
      const e = segEdge[seg]!;
      if (edges.has(e)) continue;
      const p = segPoint[seg]!;
      const ax = proj.x(geomLon[p]!);
      const ay = proj.y(geomLat[p]!);
      const bx = proj.x(geomLon[p + 1]!);
      const by = proj.y(geomLat[p + 1]!);
      let covered = false;
      if (s.kind === 'point') {
        covered = pointSegmentDistance(outer[0]!, outer[1]!, ax, ay, bx, by) <= s.radius;
      } else if (s.kind === 'line') {
        for (let i = 0; i + 3 < outer.length && !covered; i += 2) {
          covered =
            segmentSegmentDistance(ax, ay, bx, by, outer[i]!, outer[i + 1]!, outer[i + 2]!, outer[i + 3]!) <=
            buffer;
        }
      } else {
        const inside = (x: number, y: number) =>
          pointInRing(x, y, outer) && !s.parts.slice(1).some((h) => pointInRing(x, y, h));
        covered = inside(ax, ay) || inside(bx, by);
        for (const r of s.parts) {
          for (let i = 0; i + 3 < r.length && !covered; i += 2) {
            covered = segmentsIntersect(ax, ay, bx, by, r[i]!, r[i + 1]!, r[i + 2]!, r[i + 3]!);
          }
        }
      }
      if (covered) edges.add(e);
    }
  }
  return [...edges].sort((a, b) => a - b);
}
