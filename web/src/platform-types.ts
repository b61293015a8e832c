/** The shapes of the platform's answers that the app reads (src/api/platform, ngsi-ld, routing). */
import type { LonLat } from './geo.ts';

export interface Audience {
  orgs: string[];
  communities: string[];
  users: string[];
}

export interface Marking {
  tlp: string;
  pap?: string;
  audience: Audience;
}

export interface PointGeometry {
  type: 'Point';
  coordinates: LonLat;
}

export interface Geometry {
  type: string;
  coordinates: unknown;
}

export interface Report {
  id: string;
  title: string;
  body: string;
  category: string;
  location?: PointGeometry | null;
  marking: Marking;
  ownerOrg: string;
  createdBy: string;
  createdAt: string;
}

export interface Me {
  userId?: string;
  id?: string;
  username: string;
  displayName?: string | null;
  orgId: string;
  roles: string[];
  /** `user` (a person, with a password) or `service` (a machine, with API tokens). */
  kind?: string;
  /** What the caller's new objects get unless they say otherwise. */
  defaultMarking?: Marking;
}

export interface Org {
  id: string;
  name: string;
  kind?: string;
}

export interface Feature<G = Geometry, P = Record<string, unknown>> {
  type: 'Feature';
  id?: string | number;
  geometry: G | null;
  properties: P;
}

export interface FeatureCollection<G = Geometry, P = Record<string, unknown>> {
  type: 'FeatureCollection';
  features: Feature<G, P>[];
}

export interface RouteProperties {
  reachable?: boolean;
  reason?: string;
  duration_s: number;
  distance_m: number;
  steps?: unknown[];
}

export interface Closure {
  id: string;
  geometry: Geometry;
  radiusMeters?: number | null;
  reason?: string;
  segments?: number | null;
  expiresAt?: string | null;
  /** Who may see it (the platform lists only the closures the operator may see) and who owns it. */
  marking?: Marking;
  ownerOrg?: string;
}

export interface NetworkInfo {
  status?: {
    state: 'off' | 'loading' | 'ready' | 'failed';
    progress?: { fraction: number; message?: string } | null;
    error?: string;
  };
  bbox?: [number, number, number, number];
  attribution?: string;
  name?: string;
  stats?: Record<string, unknown>;
  [k: string]: unknown;
}

/** Lists come back either bare or wrapped (`{items}`/`{reports}`...): accept both. */
export function listOf<T>(body: unknown, ...keys: string[]): T[] {
  if (Array.isArray(body)) return body as T[];
  if (body && typeof body === 'object') {
    for (const k of [...keys, 'items', 'data', 'results']) {
      const v = (body as Record<string, unknown>)[k];
      if (Array.isArray(v)) return v as T[];
    }
  }
  return [];
}
