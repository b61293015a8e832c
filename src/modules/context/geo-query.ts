/**
 * NGSI-LD geo-queries (clause 4.10): `georel`, `geometry`, `coordinates` and `geoproperty`.
 * `parseGeoQuery` validates the parameters (CONTEXT_INVALID_GEOQUERY / CONTEXT_UNSUPPORTED_GEOMETRY);
 * `matchesGeoQuery` tests one entity (expanded normalized form); the repository uses `searchBox` to
 * prefilter candidates in SQL before the exact test.
 */
import { AppError } from '../../kernel/errors.ts';
import type { ExpandedAttribute, ExpandedEntity } from './entity-model.ts';
import {
  type BBox,
  bbox,
  bboxAround,
  distanceToGeometry,
  type Geometry,
  geometryEquals,
  intersects,
  overlaps,
  validateGeometry,
  within,
} from './geometry.ts';

export const GEORELS = [
  'near',
  'within',
  'contains',
  'intersects',
  'disjoint',
  'equals',
  'overlaps',
] as const;
export type Georel = (typeof GEORELS)[number];

/** The expanded IRI of the default GeoProperty `location`. */
export const LOCATION_IRI = 'https://uri.etsi.org/ngsi-ld/location';

export interface GeoQuery {
  georel: Georel;
  maxDistance?: number;
  minDistance?: number;
  geometry: Geometry;
  /** Expanded IRI of the GeoProperty to test (default `location`). */
  geoproperty: string;
  /** Every matching geometry's bounding box overlaps this box; null when no box bounds the matches. */
  searchBox: BBox | null;
}

export interface GeoQueryInput {
  georel?: unknown;
  geometry?: unknown;
  coordinates?: unknown;
  geoproperty?: unknown;
}

function invalid(why: string): never {
  throw new AppError('CONTEXT_INVALID_GEOQUERY', `invalid geo-query: ${why}`);
}

/**
 * Parses a geo-query from query parameters (strings) or from a subscription's geoQ (coordinates may be
 * an array). `expand` maps the geoproperty term to its expanded IRI.
 */
export function parseGeoQuery(input: GeoQueryInput, expand: (term: string) => string = (t) => t): GeoQuery {
  const { georel, geometry, coordinates, geoproperty } = input;
  if (typeof georel !== 'string' || georel === '') invalid('georel is required');
  if (typeof geometry !== 'string' || geometry === '') invalid('geometry is required with georel');
  if (coordinates === undefined || coordinates === null || coordinates === '') {
    invalid('coordinates are required with georel');
  }
  const [relName, ...mods] = georel.split(';');
  if (!(GEORELS as readonly string[]).includes(relName!)) {
    invalid(`georel "${relName}" is not one of ${GEORELS.join(', ')}`);
  }
  const rel = relName as Georel;
  let maxDistance: number | undefined;
  let minDistance: number | undefined;
  for (const m of mods) {
    const match = /^(maxDistance|minDistance)==(\d+(\.\d+)?)$/.exec(m);
    if (!match || rel !== 'near') invalid(`"${m}" is not a valid georel modifier (near;maxDistance==metres)`);
    if (match[1] === 'maxDistance') maxDistance = Number(match[2]);
    else minDistance = Number(match[2]);
  }
  if (rel === 'near' && maxDistance === undefined && minDistance === undefined) {
    invalid('near needs maxDistance or minDistance (near;maxDistance==2000)');
  }
  let coords: unknown = coordinates;
  if (typeof coords === 'string') {
    const text = coords.trim().startsWith('[') ? coords : `[${coords}]`;
    try {
      coords = JSON.parse(text);
    } catch {
      invalid(`coordinates "${coordinates}" are not a JSON array of positions`);
    }
  }
  const geom = validateGeometry({ type: geometry, coordinates: coords }, 'geo-query geometry');
  if (rel === 'near' && geom.type !== 'Point') {
    throw new AppError('CONTEXT_UNSUPPORTED_GEOMETRY', 'near is supported with a Point geometry only');
  }
  let gp = LOCATION_IRI;
  if (geoproperty !== undefined && geoproperty !== null && geoproperty !== '') {
    if (typeof geoproperty !== 'string') invalid('geoproperty must be an attribute name');
    gp = geoproperty === 'location' ? expand('location') : expand(geoproperty);
  }
  const q: GeoQuery = { georel: rel, geometry: geom, geoproperty: gp, searchBox: null };
  if (maxDistance !== undefined) q.maxDistance = maxDistance;
  if (minDistance !== undefined) q.minDistance = minDistance;
  if (rel === 'near') {
    q.searchBox = maxDistance !== undefined ? bboxAround(geom.coordinates as number[], maxDistance) : null;
  } else if (rel !== 'disjoint') {
    q.searchBox = bbox(geom);
  }
  return q;
}

/** The geometries of a GeoProperty (several for a multi-attribute); invalid values are skipped. */
export function geoPropertyGeometries(entity: ExpandedEntity, geoproperty: string): Geometry[] {
  const raw = entity[geoproperty] as ExpandedAttribute | ExpandedAttribute[] | undefined;
  if (!raw || typeof raw !== 'object') return [];
  const out: Geometry[] = [];
  for (const a of Array.isArray(raw) ? raw : [raw]) {
    if (a?.type !== 'GeoProperty') continue;
    try {
      out.push(validateGeometry(a.value, 'value', { bounds: false }));
    } catch {
      // A stored value was validated on write; anything else is not a geometry to test.
    }
  }
  return out;
}

export function geometryMatches(g: Geometry, q: GeoQuery): boolean {
  switch (q.georel) {
    case 'near': {
      const d = distanceToGeometry(q.geometry.coordinates as number[], g);
      if (q.maxDistance !== undefined && d > q.maxDistance) return false;
      if (q.minDistance !== undefined && d < q.minDistance) return false;
      return true;
    }
    case 'within':
      return within(g, q.geometry);
    case 'contains':
      return within(q.geometry, g);
    case 'intersects':
      return intersects(g, q.geometry);
    case 'disjoint':
      return !intersects(g, q.geometry);
    case 'equals':
      return geometryEquals(g, q.geometry);
    case 'overlaps':
      return overlaps(g, q.geometry);
  }
}

/** True when one of the entity's values of the chosen GeoProperty satisfies the geo-query. */
export function matchesGeoQuery(entity: ExpandedEntity, q: GeoQuery): boolean {
  return geoPropertyGeometries(entity, q.geoproperty).some((g) => geometryMatches(g, q));
}

/** Distance in metres from a near-query's point to the entity (for ordering results), or Infinity. */
export function geoDistance(entity: ExpandedEntity, q: GeoQuery): number {
  if (q.geometry.type !== 'Point') return Infinity;
  let best = Infinity;
  for (const g of geoPropertyGeometries(entity, q.geoproperty)) {
    best = Math.min(best, distanceToGeometry(q.geometry.coordinates, g));
  }
  return best;
}
