import type { FastifyInstance } from 'fastify';
import type { PlatformApiOptions } from './platform-deps.ts';
import { principalOf } from './principal-of.ts';
import { password, principalOut, username } from './schemas.ts';

const tags = ['platform: authentication'];

export function authRoutes(app: FastifyInstance, { access, authenticator }: PlatformApiOptions): void {
  app.post<{ Body: { username: string; password: string } }>(
    '/api/auth/login',
    {
      config: { public: true },
      schema: {
        tags,
        summary: 'Log in with a username and password; returns a session JWT',
        security: [],
        response: {
          200: {
            type: 'object',
            properties: {
              token: { type: 'string' },
              tokenType: { type: 'string' },
              expiresAt: { type: 'string', format: 'date-time' },
              user: {
                type: 'object',
                properties: {
                  id: { type: 'string' },
                  username: { type: 'string' },
                  orgId: { type: 'string' },
                  roles: { type: 'array', items: { type: 'string' } },
                  kind: { type: 'string' },
                },
              },
            },
          },
        },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['username', 'password'],
          properties: { username, password },
        },
      },
    },
    async (request) => {
      const r = await authenticator.login(request.body.username, request.body.password);
      const p = r.principal;
      return {
        token: r.token,
        tokenType: r.tokenType,
        expiresAt: r.expiresAt,
        user: { id: p.userId, username: p.username, orgId: p.orgId, roles: p.roles, kind: p.kind },
      };
    },
  );

  app.get(
    '/api/auth/me',
    {
      schema: {
        tags,
        summary: 'Who the caller is: account, organisation, roles, read keys',
        response: { 200: principalOut },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const user = await access.getUser(p.userId);
      return { ...p, displayName: user.displayName };
    },
  );

  app.post<{ Body: { currentPassword: string; newPassword: string } }>(
    '/api/auth/password',
    {
      schema: {
        tags,
        summary: 'Change the caller’s own password (12 characters at least)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['currentPassword', 'newPassword'],
          properties: { currentPassword: password, newPassword: password },
        },
      },
    },
    async (request, reply) => {
      await access.changeOwnPassword(
        principalOf(request),
        request.body.currentPassword,
        request.body.newPassword,
      );
      reply.status(204);
    },
  );
}
