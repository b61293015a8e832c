/**
 * First-responder routing API: routes, tables, dispatch, isochrones, and live closures and slow-downs.
 * Errors are RFC 9457 problem+json (the app's handler); an unreachable destination is an answer, not an error.
 *
 * Closures and slow-downs are marked objects: the routing service asks the sharing gate who may create,
 * lift and see them. Every route answer is computed with every active change (safety), but names none:
 * only the lists, single reads and counts describe changes, and only those the caller may see.
 */
import type { FastifyPluginAsync } from 'fastify';
import { AppError } from '../../kernel/errors.ts';
import type { Unit } from '../../modules/routing/index.ts';
import type { LiveChangeKind, RoutingService } from '../../modules/routing-live/index.ts';
import type { Principal } from '../http/principal.ts';
import { marking } from '../platform/schemas.ts';

export interface RoutingApiOptions {
  routing: RoutingService;
  /** Units the caller may see (vehicles in the context broker), for dispatch without a unit list. */
  unitSource?: (principal: Principal) => Promise<Unit[]>;
  /** Largest table (sources × targets) answered in one call (default 10,000 cells). */
  maxTableCells?: number;
}

const tags = ['routing'];
const lonLat = {
  type: 'array',
  minItems: 2,
  maxItems: 2,
  items: { type: 'number' },
  description: '[longitude, latitude] (WGS 84)',
  examples: [[7.4245, 43.7349]],
} as const;
const lonLatParam = {
  type: 'string',
  pattern: '^\\s*-?\\d+(\\.\\d+)?\\s*,\\s*-?\\d+(\\.\\d+)?\\s*$',
  description: 'LON,LAT (WGS 84)',
} as const;
const geometry = {
  type: 'object',
  required: ['type'],
  properties: { type: { type: 'string', maxLength: 40 } },
  description: 'GeoJSON geometry or Feature: Point (with radius_m), LineString, Polygon, their Multi* forms',
  examples: [{ type: 'Point', coordinates: [7.4245, 43.7349] }],
} as const;

function parseLonLat(value: string, name: string): [number, number] {
  const [lon, lat] = value.split(',').map((s) => Number(s.trim()));
  if (lon === undefined || lat === undefined || !Number.isFinite(lon) || !Number.isFinite(lat)) {
    throw new AppError('ROUTING_INVALID_COORDINATE', `${name} must be LON,LAT`);
  }
  if (lon < -180 || lon > 180 || lat < -90 || lat > 90) {
    throw new AppError(
      'ROUTING_INVALID_COORDINATE',
      `${name}: longitude must be within ±180 and latitude within ±90`,
    );
  }
  return [lon, lat];
}

function principalOf(p: Principal | undefined): Principal {
  if (!p) throw new AppError('AUTH_TOKEN_MISSING');
  return p;
}

export const routingApi: FastifyPluginAsync<RoutingApiOptions> = async (app, opts) => {
  const { routing } = opts;
  const maxCells = opts.maxTableCells ?? 10_000;

  app.get(
    '/api/routing/network',
    {
      schema: {
        tags,
        summary: 'The road network: status (loading progress), size, bounding box, attribution',
      },
    },
    async (request) => {
      const status = routing.status;
      if (status.state !== 'ready') return { status, attribution: routing.attribution };
      const engine = routing.engine();
      return {
        status,
        attribution: routing.attribution,
        bbox: engine.network.meta.bbox,
        profile: engine.network.meta.profile,
        builtAt: engine.network.meta.builtAt,
        // The engine counts every active change; the caller is told only of those it may see.
        stats: { ...engine.stats(), ...(await routing.countChanges(principalOf(request.principal))) },
      };
    },
  );

  app.get<{ Querystring: { bbox: string; limit?: number } }>(
    '/api/routing/roads',
    {
      schema: {
        tags,
        summary:
          'The roads of the network inside a bounding box, as a GeoJSON FeatureCollection (the offline base map of the web app)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['bbox'],
          properties: {
            bbox: {
              type: 'string',
              pattern: '^\\s*-?\\d+(\\.\\d+)?(\\s*,\\s*-?\\d+(\\.\\d+)?){3}\\s*$',
              description: 'minLon,minLat,maxLon,maxLat',
            },
            limit: { type: 'integer', minimum: 1, maximum: 50_000, default: 20_000 },
          },
        },
      },
    },
    async (request) => {
      const [minLon, minLat, maxLon, maxLat] = request.query.bbox.split(',').map((x) => Number(x.trim())) as [
        number,
        number,
        number,
        number,
      ];
      if (!(minLon < maxLon && minLat < maxLat)) {
        throw new AppError(
          'ROUTING_INVALID_ARGUMENT',
          'bbox must be minLon,minLat,maxLon,maxLat with min < max',
        );
      }
      const net = routing.engine().network;
      const limit = request.query.limit ?? 20_000;
      const features: unknown[] = [];
      const edges = net.edgeU.length;
      let truncated = false;
      for (let e = 0; e < edges; e++) {
        const first = net.edgeGeomFirst[e] as number;
        const last = (net.edgeGeomFirst[e + 1] as number) - 1;
        let inside = false;
        for (let p = first; p <= last && !inside; p++) {
          const lon = net.geomLon[p] as number;
          const lat = net.geomLat[p] as number;
          inside = lon >= minLon && lon <= maxLon && lat >= minLat && lat <= maxLat;
        }
        if (!inside) continue;
        if (features.length >= limit) {
          truncated = true;
          break;
        }
        const coordinates: [number, number][] = [];
        for (let p = first; p <= last; p++) {
          coordinates.push([
            Math.round((net.geomLon[p] as number) * 1e6) / 1e6,
            Math.round((net.geomLat[p] as number) * 1e6) / 1e6,
          ]);
        }
        const nameIndex = net.edgeName[e] as number;
        features.push({
          type: 'Feature',
          geometry: { type: 'LineString', coordinates },
          properties: { name: nameIndex >= 0 ? (net.meta.names[nameIndex] ?? null) : null },
        });
      }
      return { type: 'FeatureCollection', features, truncated, attribution: routing.attribution };
    },
  );

  app.get<{ Querystring: { from: string; to: string } }>(
    '/api/routing/route',
    {
      schema: {
        tags,
        summary:
          'Fastest route A → B on the live network: a GeoJSON Feature (LineString) with duration_s, distance_m, steps',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['from', 'to'],
          properties: { from: lonLatParam, to: lonLatParam },
        },
      },
    },
    async (request) => {
      const from = parseLonLat(request.query.from, 'from');
      const to = parseLonLat(request.query.to, 'to');
      const answer = routing.engine().route(from, to);
      if (!answer.reachable) {
        return {
          type: 'Feature',
          geometry: null,
          properties: { reachable: false, reason: answer.reason, from: answer.from, to: answer.to },
        };
      }
      return {
        type: 'Feature',
        geometry: answer.geometry,
        properties: {
          reachable: true,
          duration_s: answer.durationS,
          distance_m: Math.round(answer.distanceM * 10) / 10,
          steps: answer.steps,
          from: answer.from,
          to: answer.to,
          attribution: routing.attribution,
        },
      };
    },
  );

  app.post<{ Body: { sources: [number, number][]; targets: [number, number][] } }>(
    '/api/routing/table',
    {
      schema: {
        tags,
        summary: 'Many-to-many travel times in seconds (null where unreachable)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['sources', 'targets'],
          properties: {
            sources: { type: 'array', minItems: 1, maxItems: 1000, items: lonLat },
            targets: { type: 'array', minItems: 1, maxItems: 1000, items: lonLat },
          },
        },
      },
    },
    async (request) => {
      const { sources, targets } = request.body;
      if (sources.length * targets.length > maxCells) {
        throw new AppError(
          'ROUTING_INVALID_ARGUMENT',
          `a table may have at most ${maxCells} cells (sources × targets)`,
        );
      }
      const t = routing.engine().table(sources, targets);
      return { durations_s: t.durations, sources: t.sources, targets: t.targets };
    },
  );

  app.post<{
    Body: {
      incident: [number, number];
      units?: Unit[];
      k?: number;
      requiredCapabilities?: string[];
      availableStatuses?: string[];
    };
  }>(
    '/api/routing/dispatch',
    {
      schema: {
        tags,
        summary:
          'Rank units by arrival time at an incident, with routes for the first k. Without `units`, the vehicles visible to the caller in the context broker are used.',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['incident'],
          properties: {
            incident: lonLat,
            units: {
              type: 'array',
              maxItems: 5000,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['id', 'position'],
                properties: {
                  id: { type: 'string', minLength: 1, maxLength: 300 },
                  position: lonLat,
                  status: { type: 'string', maxLength: 50 },
                  capabilities: { type: 'array', maxItems: 50, items: { type: 'string', maxLength: 100 } },
                },
              },
            },
            k: { type: 'integer', minimum: 0, maximum: 50 },
            requiredCapabilities: { type: 'array', maxItems: 20, items: { type: 'string', maxLength: 100 } },
            availableStatuses: { type: 'array', maxItems: 20, items: { type: 'string', maxLength: 50 } },
          },
        },
      },
    },
    async (request) => {
      const p = principalOf(request.principal);
      const b = request.body;
      const engine = routing.engine();
      let units = b.units;
      if (!units) {
        if (!opts.unitSource)
          throw new AppError('ROUTING_INVALID_ARGUMENT', 'send `units`: no unit source is configured');
        units = await opts.unitSource(p);
      }
      const result = engine.dispatch(b.incident, units, {
        ...(b.k !== undefined ? { k: b.k } : {}),
        ...(b.requiredCapabilities ? { requiredCapabilities: b.requiredCapabilities } : {}),
        ...(b.availableStatuses ? { availableStatuses: b.availableStatuses } : {}),
      });
      return {
        incident: result.incident,
        ranked: result.ranked.map((r) => ({
          id: r.id,
          rank: r.rank,
          duration_s: r.durationS,
          ...(r.route
            ? {
                route: {
                  type: 'Feature',
                  geometry: r.route.geometry,
                  properties: {
                    duration_s: r.route.durationS,
                    distance_m: Math.round(r.route.distanceM * 10) / 10,
                  },
                },
              }
            : {}),
        })),
        unreachable: result.unreachable,
        excluded: result.excluded,
      };
    },
  );

  app.get<{ Querystring: { from: string; minutes: number; cell_m?: number } }>(
    '/api/routing/isochrone',
    {
      schema: {
        tags,
        summary: 'The area reachable from a point within N minutes, as a GeoJSON polygon (coverage maps)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['from', 'minutes'],
          properties: {
            from: lonLatParam,
            minutes: { type: 'number', exclusiveMinimum: 0, maximum: 120 },
            cell_m: { type: 'number', minimum: 10, maximum: 1000 },
          },
        },
      },
    },
    async (request) => {
      const from = parseLonLat(request.query.from, 'from');
      return routing
        .engine()
        .isochrone(
          from,
          request.query.minutes * 60,
          request.query.cell_m ? { cellMeters: request.query.cell_m } : {},
        );
    },
  );

  const changeBody = (kind: LiveChangeKind) => ({
    type: 'object',
    additionalProperties: false,
    required: kind === 'closure' ? ['geometry'] : ['geometry', 'factor'],
    properties: {
      geometry,
      ...(kind === 'slowdown'
        ? { factor: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 } }
        : {}),
      radius_m: { type: 'number', exclusiveMinimum: 0, maximum: 50_000 },
      expiresAt: { type: 'string', format: 'date-time' },
      reason: { type: 'string', maxLength: 500 },
      marking,
    },
  });
  const idParams = {
    type: 'object',
    additionalProperties: false,
    required: ['id'],
    properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
  } as const;

  for (const kind of ['closure', 'slowdown'] as const) {
    const path = `/api/routing/${kind === 'closure' ? 'closures' : 'slowdowns'}`;
    const one = kind === 'closure' ? 'closure' : 'slow-down';
    app.post<{
      Body: {
        geometry: unknown;
        factor?: number;
        radius_m?: number;
        expiresAt?: string;
        reason?: string;
        marking?: unknown;
      };
    }>(
      path,
      {
        schema: {
          tags,
          summary:
            kind === 'closure'
              ? 'Close the road segments a geometry covers (point with radius_m, line, polygon, multi-geometries); applied to the next route of everyone, listed only to who may see it (marking: the request’s or the organisation’s default)'
              : 'Slow down the road segments a geometry covers by a speed factor (0.5 = half speed); applied to everyone’s routes, listed only to who may see it',
          body: changeBody(kind),
        },
      },
      async (request, reply) => {
        const p = principalOf(request.principal);
        const b = request.body;
        const expiresAt = b.expiresAt ? new Date(b.expiresAt) : undefined;
        if (expiresAt && Number.isNaN(expiresAt.getTime())) {
          throw new AppError('ROUTING_INVALID_ARGUMENT', 'expiresAt must be an ISO 8601 date-time');
        }
        const change = await routing.addChange(p, {
          kind,
          geometry: b.geometry,
          ...(b.factor !== undefined ? { factor: b.factor } : {}),
          ...(b.radius_m !== undefined ? { radiusMeters: b.radius_m } : {}),
          ...(expiresAt ? { expiresAt } : {}),
          ...(b.reason !== undefined ? { reason: b.reason } : {}),
          ...(b.marking !== undefined ? { marking: b.marking } : {}),
        });
        reply.status(201).header('location', `${path}/${change.id}`);
        return change;
      },
    );
    app.get(
      path,
      {
        schema: {
          tags,
          summary: `Active ${kind === 'closure' ? 'closures' : 'slow-downs'} the caller may see, each with its marking and owner`,
        },
      },
      async (request) => ({
        items: await routing.listChanges(principalOf(request.principal), kind),
      }),
    );
    app.get<{ Params: { id: string } }>(
      `${path}/:id`,
      {
        schema: {
          tags,
          summary: `One active ${one} (404 when it does not exist or the caller may not see it)`,
          params: idParams,
        },
      },
      async (request) => routing.getChange(principalOf(request.principal), request.params.id, kind),
    );
    app.delete<{ Params: { id: string } }>(
      `${path}/:id`,
      {
        schema: {
          tags,
          summary: `Lift a ${one}: writers and responders of its owner organisation who can see it`,
          params: idParams,
        },
      },
      async (request, reply) => {
        await routing.liftChange(principalOf(request.principal), request.params.id, kind);
        reply.status(204);
      },
    );
  }
};
