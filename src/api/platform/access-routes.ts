import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../../modules/access/index.ts';
import { listAudit, verifyAuditChain } from '../../modules/audit/index.ts';
import type { PlatformApiOptions } from './platform-deps.ts';
import { principalOf } from './principal-of.ts';
import { auditRecordOut, id, itemsOf, limit, markingOut, sharedObjectOut } from './schemas.ts';

export function accessRoutes(app: FastifyInstance, { access }: PlatformApiOptions): void {
  const tags = ['platform: access policy'];
  app.get<{ Querystring: { object: string; user: string } }>(
    '/api/access/explain',
    {
      schema: {
        tags,
        response: {
          200: {
            type: 'object',
            required: ['visible', 'rule', 'reason', 'object', 'user'],
            properties: {
              visible: { type: 'boolean' },
              rule: { type: 'string' },
              reason: { type: 'string' },
              object: {
                type: 'object',
                properties: {
                  id: { type: 'string' },
                  kind: { type: 'string' },
                  ownerOrg: { type: 'string' },
                  createdBy: { type: 'string' },
                  marking: markingOut,
                },
              },
              user: {
                type: 'object',
                properties: {
                  id: { type: 'string' },
                  username: { type: 'string' },
                  orgId: { type: 'string' },
                },
              },
            },
          },
        },
        summary: 'Why a user can or cannot see an object: the rule that applied, in words (admin)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['object', 'user'],
          properties: { object: id, user: id },
        },
      },
    },
    async (request) => {
      requireAdmin(principalOf(request));
      return access.explain(request.query.object, request.query.user);
    },
  );

  app.post<{ Body: { object: string; reason: string } }>(
    '/api/access/break-glass',
    {
      schema: {
        tags,
        response: {
          200: {
            type: 'object',
            required: ['object', 'content', 'auditId'],
            properties: { object: sharedObjectOut, content: {}, auditId: { type: 'string' } },
          },
        },
        summary:
          'Read one object outside the marking policy, stating why; audited and shown to the owner (admin)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['object', 'reason'],
          properties: { object: id, reason: { type: 'string', maxLength: 2000 } },
        },
      },
    },
    async (request) => access.breakGlass(principalOf(request), request.body.object, request.body.reason),
  );

  app.get<{ Querystring: { limit?: number } }>(
    '/api/access/break-glass',
    {
      schema: {
        tags,
        response: { 200: itemsOf(auditRecordOut) },
        summary: 'Break-glass reads of the objects the caller’s organisation owns',
        querystring: { type: 'object', additionalProperties: false, properties: { limit } },
      },
    },
    async (request) => ({
      items: await access.breakGlassRecords(principalOf(request).orgId, request.query.limit),
    }),
  );

  const atags = ['platform: audit'];
  app.get<{
    Querystring: {
      object?: string;
      actor?: string;
      owner?: string;
      action?: string;
      from?: string;
      to?: string;
      after?: number;
      limit?: number;
      order?: 'asc' | 'desc';
    };
  }>(
    '/api/audit',
    {
      schema: {
        tags: atags,
        response: { 200: itemsOf(auditRecordOut) },
        summary: 'The audit log, filterable by object, actor, owner organisation, action and time (admin)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            object: id,
            actor: id,
            owner: id,
            action: { type: 'string', maxLength: 40 },
            from: { type: 'string', format: 'date-time' },
            to: { type: 'string', format: 'date-time' },
            after: { type: 'integer', minimum: 0 },
            limit,
            order: { type: 'string', enum: ['asc', 'desc'] },
          },
        },
      },
    },
    async (request) => {
      requireAdmin(principalOf(request));
      const q = request.query;
      const items = await listAudit(access.store.db, {
        objectId: q.object,
        actorId: q.actor,
        ownerOrg: q.owner,
        action: q.action,
        from: q.from ? new Date(q.from) : undefined,
        to: q.to ? new Date(q.to) : undefined,
        afterSeq: q.after,
        limit: q.limit,
        newestFirst: q.order === 'desc',
      });
      return { items };
    },
  );

  app.get(
    '/api/audit/verify',
    {
      schema: {
        tags: atags,
        response: {
          200: {
            type: 'object',
            required: ['ok', 'records'],
            properties: {
              ok: { type: 'boolean' },
              records: { type: 'integer' },
              firstBadId: { type: 'string' },
              firstBadSeq: { type: 'integer' },
              reason: { type: 'string' },
            },
          },
        },
        summary: 'Check the hash chain of the whole audit log (admin)',
      },
    },
    async (request) => {
      requireAdmin(principalOf(request));
      return verifyAuditChain(access.store);
    },
  );
}
