import type { FastifyInstance } from 'fastify';
import { AppError } from '../../kernel/errors.ts';
import { actorOf, isAdmin, type Role, requireAdmin } from '../../modules/access/index.ts';
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
      requireAdmin(principalOf(request));
      return { items: await access.listUsers({ orgId: request.query.org, kind: request.query.kind }) };
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
      requireAdmin(p);
      reply.status(201);
      return access.createUser(actorOf(p), request.body);
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
      const p = principalOf(request);
      const user = await access.getUser(request.params.id);
      if (!isAdmin(p) && user.id !== p.userId)
        throw new AppError('AUTH_ROLE_REQUIRED', 'this action needs the admin role');
      return user;
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
        summary: 'Change roles, disable or enable, reset the password (admin)',
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
      requireAdmin(p);
      const user = await access.getUser(request.params.id);
      if (
        user.id === p.userId &&
        (request.body.disabled === true || (request.body.roles && !request.body.roles.includes('admin')))
      ) {
        throw new AppError(
          'ACCESS_INVALID_INPUT',
          'an administrator cannot disable or demote their own account',
        );
      }
      return access.updateUser(actorOf(p), user.id, request.body);
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
      requireAdmin(p);
      const user = await access.getUser(request.params.id);
      if (user.id === p.userId)
        throw new AppError('ACCESS_INVALID_INPUT', 'an administrator cannot disable their own account');
      return access.updateUser(actorOf(p), user.id, { disabled: true });
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
      requireAdmin(principalOf(request));
      return { items: await access.listTokens({ orgId: request.query.org }) };
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
      requireAdmin(p);
      const b = request.body;
      const created = await access.createServiceAccountToken(actorOf(p), {
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
      requireAdmin(p);
      return access.revokeToken(actorOf(p), request.params.id);
    },
  );
}
