import type { FastifyInstance } from 'fastify';
import type { AlertStatus } from '../../modules/detection-live/index.ts';
import { principalOf } from '../platform/principal-of.ts';
import { limit, slug } from '../platform/schemas.ts';
import type { DetectionApiOptions } from './detection-deps.ts';
import { alertIdParams, alertOut, category, severity, status } from './schemas.ts';

const tags = ['detection: alerts'];
const reason = { type: 'string', minLength: 1, maxLength: 2000 } as const;

export function alertRoutes(app: FastifyInstance, { alerts }: DetectionApiOptions): void {
  app.get<{
    Querystring: {
      severity?: string;
      category?: string;
      status?: AlertStatus;
      organisation?: string;
      since?: string;
      limit?: number;
    };
  }>(
    '/api/alerts',
    {
      schema: {
        tags,
        summary:
          'Alerts (NGSI-LD Alert entities) the caller may see, newest first, filtered by severity, category, status, owner organisation and issue time',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            severity,
            category,
            status,
            organisation: slug,
            since: { type: 'string', format: 'date-time', maxLength: 40 },
            limit,
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['items'],
            properties: { items: { type: 'array', items: alertOut } },
          },
        },
      },
    },
    async (request) => ({ items: await alerts.list(principalOf(request), request.query) }),
  );

  app.get<{ Params: { id: string } }>(
    '/api/alerts/:id',
    {
      schema: {
        tags,
        summary: 'One alert (404 when it does not exist or the caller may not see it)',
        params: alertIdParams,
        response: { 200: alertOut },
      },
    },
    async (request) => alerts.get(principalOf(request), request.params.id),
  );

  app.post<{ Params: { id: string } }>(
    '/api/alerts/:id/acknowledge',
    {
      schema: {
        tags,
        summary: 'Acknowledge a new alert (writers of the alert’s owner organisation)',
        params: alertIdParams,
        response: { 200: alertOut },
      },
    },
    async (request) => alerts.acknowledge(principalOf(request), request.params.id),
  );

  app.post<{ Params: { id: string }; Body: { reason: string } }>(
    '/api/alerts/:id/dismiss',
    {
      schema: {
        tags,
        summary: 'Dismiss an alert with a reason (writers of the alert’s owner organisation); final',
        params: alertIdParams,
        body: { type: 'object', additionalProperties: false, required: ['reason'], properties: { reason } },
        response: { 200: alertOut },
      },
    },
    async (request) => alerts.dismiss(principalOf(request), request.params.id, request.body.reason),
  );

  app.post<{ Params: { id: string }; Body: { note?: string } }>(
    '/api/alerts/:id/promote',
    {
      schema: {
        tags,
        summary:
          'Promote an alert to an incident (writers of the alert’s owner organisation): status promoted, a hand-off recorded for the incidents module; final',
        params: alertIdParams,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { note: reason } },
        response: { 200: alertOut },
      },
    },
    async (request) => alerts.promote(principalOf(request), request.params.id, request.body?.note ?? ''),
  );
}
