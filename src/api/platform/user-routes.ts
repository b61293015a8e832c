import type { FastifyInstance } from 'fastify';
import { actorOf, type Role } from '../../modules/access/index.ts';
import type { PlatformApiOptions } from './platform-deps.ts';
import { principalOf } from './principal-of.ts';
import { idParams, itemsOf, name, password, roles, slug, tokenOut, username, userOut } from './schemas.ts';

export function userRoutes(app: FastifyInstance, { access }: PlatformApiOptions): void {
  const tags = ['platform: users'];
  app.get<{ Querystring: { org?: string; kind?: 'user' | 'service' } }>(
    '/api/users',
    {
      schema: {
        tags,
        response: { 200: itemsOf(userOut) },
        summary: 'Accounts, optionally of one organisation (admin)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { org: slug, kind: { type: 'string', enum: ['user', 'service'] } },
        },
      },
    },
    async (request) => {
      const p = principalOf(request);
      return {
        items: await access.accounts.listUsers(actorOf(p), {
          orgId: request.query.org,
          kind: request.query.kind,
        }),
      };
    },
  );

  app.post<{
    Body: { username: string; orgId: string; roles: Role[]; password: string; displayName?: string };
  }>(
    '/api/users',
    {
      schema: {
        tags,
        response: { 201: userOut },
        summary: 'Create a user in an organisation (admin)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['username', 'orgId', 'roles', 'password'],
          properties: { username, orgId: slug, roles, password, displayName: name },
        },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      reply.status(201);
      return access.accounts.createUser(actorOf(p), request.body);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/users/:id',
    {
      schema: {
        tags,
        response: { 200: userOut },
        summary: 'One account by id or username (admin, or the account itself)',
        params: idParams,
      },
    },
    async (request) => {
      return access.accounts.readUser(actorOf(principalOf(request)), request.params.id);
    },
  );

  app.patch<{
    Params: { id: string };
    Body: { roles?: Role[]; disabled?: boolean; password?: string; displayName?: string | null };
  }>(
    '/api/users/:id',
    {
      schema: {
        tags,
        response: { 200: userOut },
        summary:
          'Change roles, disable or enable, reset the password (the organisation’s admin; a reset makes the account set its own password at its next login)',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            roles,
            disabled: { type: 'boolean' },
            password,
            displayName: { type: ['string', 'null'], minLength: 1, maxLength: 200 },
          },
        },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const user = await access.accounts.readUser(actorOf(p), request.params.id);
      return access.accounts.updateUser(actorOf(p), user.id, request.body);
    },
  );

  app.post<{ Params: { id: string } }>(
    '/api/users/:id/disable',
    {
      schema: {
        tags,
        response: { 200: userOut },
        summary: 'Disable an account at once: its sessions and tokens stop working (admin)',
        params: idParams,
      },
    },
    async (request) => {
      const p = principalOf(request);
      const user = await access.accounts.readUser(actorOf(p), request.params.id);
      return access.accounts.updateUser(actorOf(p), user.id, { disabled: true });
    },
  );

  const ttags = ['platform: API tokens'];
  app.get<{ Querystring: { org?: string } }>(
    '/api/tokens',
    {
      schema: {
        tags: ttags,
        response: { 200: itemsOf(tokenOut) },
        summary: 'API tokens of service accounts, without their secrets (admin)',
        querystring: { type: 'object', additionalProperties: false, properties: { org: slug } },
      },
    },
    async (request) => {
      return {
        items: await access.accounts.listTokens(actorOf(principalOf(request)), { orgId: request.query.org }),
      };
    },
  );

  app.post<{ Body: { orgId: string; name: string; roles?: Role[]; label?: string; expiresAt?: string } }>(
    '/api/tokens',
    {
      schema: {
        tags: ttags,
        response: {
          201: {
            type: 'object',
            required: ['secret', 'token', 'serviceAccount'],
            properties: {
              secret: { type: 'string', description: 'The token: shown once, never again' },
              token: tokenOut,
              serviceAccount: userOut,
            },
          },
        },
        summary:
          'Create an API token for a service account (created if new); the secret is shown once (admin)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['orgId', 'name'],
          properties: {
            orgId: slug,
            name: username,
            roles,
            label: name,
            expiresAt: { type: 'string', format: 'date-time' },
          },
        },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const b = request.body;
      const created = await access.accounts.createServiceAccountToken(actorOf(p), {
        orgId: b.orgId,
        name: b.name,
        roles: b.roles,
        label: b.label,
        expiresAt: b.expiresAt ? new Date(b.expiresAt) : undefined,
      });
      reply.status(201).header('cache-control', 'no-store');
      return created;
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/tokens/:id',
    {
      schema: {
        tags: ttags,
        response: { 200: tokenOut },
        summary: 'Revoke an API token at once (admin)',
        params: idParams,
      },
    },
    async (request) => {
      const p = principalOf(request);
      return access.accounts.revokeToken(actorOf(p), request.params.id);
    },
  );
}
