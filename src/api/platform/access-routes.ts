import type { FastifyInstance } from 'fastify';
import { verifyAuditChain } from '../../modules/audit/index.ts';
import { requireAnyAdmin } from '../../modules/sharing/index.ts';
import type { PlatformApiOptions } from './platform-deps.ts';
import { principalOf } from './principal-of.ts';
import { auditRecordOut, id, itemsOf, limit, markingOut, sharedObjectOut } from './schemas.ts';

export function accessRoutes(app: FastifyInstance, { access, gate }: PlatformApiOptions): void {
  const kind = { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,40}$' } as const;
  const tenant = { type: 'string', maxLength: 256 } as const;
  const tags = ['platform: access policy'];
  app.get<{ Querystring: { object: string; user: string; kind?: string; tenant?: string } }>(
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
                  scope: { type: 'string' },
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
        summary:
          'Why a user can or cannot see an object of any kind (report, entity, subscription, closure…): the rule that applied, in words. Asked by an administrator about an object its organisation owns or can see; `kind` (and `tenant` for NGSI-LD objects) names it when an id is shared by several kinds',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['object', 'user'],
          properties: { object: { type: 'string', minLength: 1, maxLength: 2048 }, user: id, kind, tenant },
        },
      },
    },
    async (request) => {
      const q = request.query;
      return gate.explain(principalOf(request), { kind: q.kind, scope: q.tenant, id: q.object }, q.user);
    },
  );

  app.post<{ Body: { object: string; reason: string; kind?: string; tenant?: string } }>(
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
          properties: {
            object: { type: 'string', minLength: 1, maxLength: 2048 },
            reason: {
              type: 'string',
              maxLength: 2000,
              description: 'Why (10 characters at least); shown to the owner organisation',
              examples: ['Bomb threat at gate 3: the camera report is needed now'],
            },
            kind,
            tenant,
          },
        },
      },
    },
    async (request) => {
      const b = request.body;
      return gate.breakGlass(principalOf(request), { kind: b.kind, scope: b.tenant, id: b.object }, b.reason);
    },
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
      items: await gate.breakGlassRecords(principalOf(request), request.query.limit),
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
        summary:
          'The audit log as the caller administers it: the records about its organisation’s objects and accounts and its users’ acts (organisation admin), and the platform’s administration (platform admin); filterable by object, actor, owner organisation, action and time. Records name objects, never their content',
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
            after: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
            limit,
            order: { type: 'string', enum: ['asc', 'desc'] },
          },
        },
      },
    },
    async (request) => {
      const q = request.query;
      const items = await gate.listAudit(principalOf(request), {
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
      requireAnyAdmin(principalOf(request), 'verifying the audit log');
      return verifyAuditChain(access.store);
    },
  );
}
