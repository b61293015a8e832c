/**
 * The little geometry detection needs, on WGS 84 longitude/latitude: point in polygon (on the lon/lat
 * plane, adequate at city scale), distances in metres (haversine) and whether a ring crosses itself.
 */
import type { GeoPolygon } from './rule-language.ts';

export interface GeoPoint {
  type: 'Point';
  coordinates: number[];
}

const EARTH_RADIUS = 6_371_008.8;
const RAD = Math.PI / 180;

/** Great-circle distance in metres. */
export function distanceMetres(a: readonly number[], b: readonly number[]): number {
  const dLat = (b[1]! - a[1]!) * RAD;
  const dLon = (b[0]! - a[0]!) * RAD;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a[1]! * RAD) * Math.cos(b[1]! * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS * Math.asin(Math.min(1, Math.sqrt(s)));
}

/** A polygon prepared for repeated point tests: its rings and bounding box. */
export interface PreparedArea {
  polygons: number[][][][];
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

export function prepareArea(g: GeoPolygon): PreparedArea {
  const polygons = g.type === 'Polygon' ? [g.coordinates] : g.coordinates;
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const poly of polygons) {
    for (const p of poly[0] ?? []) {
      if (p[0]! < minX) minX = p[0]!;
      if (p[0]! > maxX) maxX = p[0]!;
      if (p[1]! < minY) minY = p[1]!;
      if (p[1]! > maxY) maxY = p[1]!;
    }
  }
  return { polygons, minX, minY, maxX, maxY };
}

/** Whether a position is inside the area (boundary counts as inside; holes excluded). */
export function insideArea(p: readonly number[], a: PreparedArea): boolean {
  const x = p[0]!;
  const y = p[1]!;
  if (x < a.minX || x > a.maxX || y < a.minY || y > a.maxY) return false;
  for (const poly of a.polygons) {
    const outer = poly[0];
    if (!outer || !inRing(x, y, outer)) continue;
    let inHole = false;
    for (let h = 1; h < poly.length; h++) {
      if (inRing(x, y, poly[h]!) && !onRing(x, y, poly[h]!)) {
        inHole = true;
        break;
      }
    }
    if (!inHole) return true;
  }
  return false;
}

function inRing(x: number, y: number, ring: number[][]): boolean {
  if (onRing(x, y, ring)) return true;
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const xi = ring[i]![0]!;
    const yi = ring[i]![1]!;
    const xj = ring[j]![0]!;
    const yj = ring[j]![1]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function onRing(x: number, y: number, ring: number[][]): boolean {
  for (let i = 0; i + 1 < ring.length; i++) {
    const a = ring[i]!;
    const b = ring[i + 1]!;
    const cross = (b[0]! - a[0]!) * (y - a[1]!) - (b[1]! - a[1]!) * (x - a[0]!);
    if (Math.abs(cross) > 1e-12) continue;
    if (
      x >= Math.min(a[0]!, b[0]!) &&
      x <= Math.max(a[0]!, b[0]!) &&
      y >= Math.min(a[1]!, b[1]!) &&
      y <= Math.max(a[1]!, b[1]!)
    ) {
      return true;
    }
  }
  return false;
}

function orient(a: number[], b: number[], c: number[]): number {
  const v = (b[0]! - a[0]!) * (c[1]! - a[1]!) - (b[1]! - a[1]!) * (c[0]! - a[0]!);
  return v > 0 ? 1 : v < 0 ? -1 : 0;
}

function onSegment(a: number[], b: number[], p: number[]): boolean {
  return (
    p[0]! >= Math.min(a[0]!, b[0]!) &&
    p[0]! <= Math.max(a[0]!, b[0]!) &&
    p[1]! >= Math.min(a[1]!, b[1]!) &&
    p[1]! <= Math.max(a[1]!, b[1]!)
  );
}

function segmentsCross(a: number[], b: number[], c: number[], d: number[]): boolean {
  const o1 = orient(a, b, c);
  const o2 = orient(a, b, d);
  const o3 = orient(c, d, a);
  const o4 = orient(c, d, b);
  if (o1 !== o2 && o3 !== o4) return true;
  return (
    (o1 === 0 && onSegment(a, b, c)) ||
    (o2 === 0 && onSegment(a, b, d)) ||
    (o3 === 0 && onSegment(c, d, a)) ||
    (o4 === 0 && onSegment(c, d, b))
  );
}

/** Whether a closed ring crosses or touches itself (other than adjacent edges at their shared vertex). */
export function ringSelfIntersects(ring: number[][]): boolean {
  const n = ring.length - 1; // edges
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const adjacent = j === i + 1 || (i === 0 && j === n - 1);
      if (adjacent) {
        // Adjacent edges share one vertex; they intersect wrongly only when they fold back on each other.
        const [a, b] = [ring[i]!, ring[i + 1]!];
        const [c, d] = [ring[j]!, ring[j + 1]!];
        const shared = j === i + 1 ? b : a;
        const other1 = j === i + 1 ? a : b;
        const other2 = j === i + 1 ? d : c;
        if (orient(shared, other1, other2) === 0 && dot(shared, other1, other2) > 0) return true;
        continue;
      }
      if (segmentsCross(ring[i]!, ring[i + 1]!, ring[j]!, ring[j + 1]!)) return true;
    }
  }
  return false;
}

function dot(o: number[], a: number[], b: number[]): number {
  return (a[0]! - o[0]!) * (b[0]! - o[0]!) + (a[1]! - o[1]!) * (b[1]! - o[1]!);
}
