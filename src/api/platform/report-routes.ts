import type { FastifyInstance } from 'fastify';
import type { GeoPoint, ReportInput, ReportPatch } from '../../modules/reports/index.ts';
import type { PlatformApiOptions } from './platform-deps.ts';
import { principalOf } from './principal-of.ts';
import { id, idParams, limit, marking, point, reportOut, slug } from './schemas.ts';

const title = { type: 'string', minLength: 1, maxLength: 300 } as const;
const body = { type: 'string', maxLength: 100_000 } as const;
const category = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,63}$' } as const;

export function reportRoutes(app: FastifyInstance, { reports }: PlatformApiOptions): void {
  const tags = ['platform: reports'];
  app.get<{ Querystring: { limit?: number; before?: string; category?: string; owner?: string } }>(
    '/api/reports',
    {
      schema: {
        tags,
        response: {
          200: {
            type: 'object',
            required: ['items', 'next'],
            properties: { items: { type: 'array', items: reportOut }, next: { type: ['string', 'null'] } },
          },
        },
        summary: 'Reports the caller may see, newest first (filtered by the marking policy in the query)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit, before: id, category, owner: slug },
        },
      },
    },
    async (request) => {
      const q = request.query;
      const items = await reports.list(principalOf(request), {
        limit: q.limit,
        before: q.before,
        category: q.category,
        ownerOrg: q.owner,
      });
      return { items, next: items.length > 0 && items.length === (q.limit ?? 100) ? items.at(-1)?.id : null };
    },
  );

  app.post<{ Body: ReportInput & { location?: GeoPoint | null } }>(
    '/api/reports',
    {
      schema: {
        tags,
        response: { 201: reportOut },
        summary: 'Create a report; without a marking it gets the organisation’s default marking',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['title', 'category'],
          properties: { title, body, category, location: point, marking },
        },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const report = await reports.create(principalOf(request), { ...b, body: b.body ?? '' });
      reply.status(201).header('location', `/api/reports/${report.id}`);
      return report;
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/reports/:id',
    {
      schema: {
        tags,
        response: { 200: reportOut },
        summary: 'One report (404 when it does not exist or the caller may not see it)',
        params: idParams,
      },
    },
    async (request) => reports.get(principalOf(request), request.params.id),
  );

  app.patch<{ Params: { id: string }; Body: ReportPatch }>(
    '/api/reports/:id',
    {
      schema: {
        tags,
        response: { 200: reportOut },
        summary:
          'Change a report or its marking (writers of the owner organisation); audited, effective at once',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { title, body, category, location: point, marking },
        },
      },
    },
    async (request) => reports.update(principalOf(request), request.params.id, request.body),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/reports/:id',
    { schema: { tags, summary: 'Delete a report (writers of the owner organisation)', params: idParams } },
    async (request, reply) => {
      await reports.remove(principalOf(request), request.params.id);
      reply.status(204);
    },
  );
}
