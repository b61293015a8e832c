/** Small geometry helpers for the map tools (WGS 84, lon/lat order as in GeoJSON). */

export type LonLat = [number, number];

export interface PolygonGeometry {
  type: 'Polygon';
  coordinates: LonLat[][];
}

const EARTH_RADIUS_M = 6_371_008.8;

/** A circle of `radiusM` metres around `center` as a closed polygon of `steps` vertices. */
export function circlePolygon(center: LonLat, radiusM: number, steps = 32): PolygonGeometry {
  const [lon, lat] = center;
  const ring: LonLat[] = [];
  const angular = radiusM / EARTH_RADIUS_M;
  const latR = (lat * Math.PI) / 180;
  const lonR = (lon * Math.PI) / 180;
  for (let i = 0; i < steps; i++) {
    const bearing = (2 * Math.PI * i) / steps;
    const lat2 = Math.asin(
      Math.sin(latR) * Math.cos(angular) + Math.cos(latR) * Math.sin(angular) * Math.cos(bearing),
    );
    const lon2 =
      lonR +
      Math.atan2(
        Math.sin(bearing) * Math.sin(angular) * Math.cos(latR),
        Math.cos(angular) - Math.sin(latR) * Math.sin(lat2),
      );
    ring.push([round6((lon2 * 180) / Math.PI), round6((lat2 * 180) / Math.PI)]);
  }
  ring.push([ring[0]![0], ring[0]![1]]);
  return { type: 'Polygon', coordinates: [ring] };
}

/** Parses "lon,lat" typed by an operator; null when it is not a valid WGS 84 position. */
export function parseLonLat(text: string): LonLat | null {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length !== 2 || parts.some((p) => p === '')) return null;
  const lon = Number(parts[0]);
  const lat = Number(parts[1]);
  if (!Number.isFinite(lon) || !Number.isFinite(lat) || Math.abs(lon) > 180 || Math.abs(lat) > 90)
    return null;
  return [lon, lat];
}

export function formatLonLat(p: LonLat): string {
  return `${round6(p[0])},${round6(p[1])}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatDistance(metres: number): string {
  return metres < 1000 ? `${Math.round(metres)} m` : `${(metres / 1000).toFixed(1)} km`;
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
