import type { FastifyInstance } from 'fastify';
import type { LoginResult } from '../../modules/access/index.ts';
import type { PlatformApiOptions } from './platform-deps.ts';
import { principalOf } from './principal-of.ts';
import { password, principalOut, username } from './schemas.ts';

const tags = ['platform: authentication'];

const sessionOut = {
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
} as const;

function sessionOf(r: LoginResult) {
  const p = r.principal;
  return {
    token: r.token,
    tokenType: r.tokenType,
    expiresAt: r.expiresAt,
    user: { id: p.userId, username: p.username, orgId: p.orgId, roles: p.roles, kind: p.kind },
  };
}

export function authRoutes(app: FastifyInstance, { access, authenticator }: PlatformApiOptions): void {
  app.post<{ Body: { username: string; password: string; newPassword?: string } }>(
    '/api/auth/login',
    {
      config: { public: true },
      schema: {
        tags,
        summary:
          'Log in with a username and password; returns a session JWT. After an administrator reset the password (403 AUTH_PASSWORD_CHANGE_REQUIRED), send newPassword too: it replaces the password and logs in',
        security: [],
        response: { 200: sessionOut },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['username', 'password'],
          properties: { username, password, newPassword: password },
        },
      },
    },
    async (request) => {
      const r = await authenticator.login(
        request.body.username,
        request.body.password,
        request.body.newPassword,
      );
      return sessionOf(r);
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
      const user = await access.accounts.getUser(p.userId);
      return { ...p, displayName: user.displayName };
    },
  );

  app.post<{ Body: { currentPassword: string; newPassword: string } }>(
    '/api/auth/password',
    {
      schema: {
        tags,
        summary:
          'Change the caller’s own password (12 characters at least). Every session opened before ends; the answer holds a new session token',
        response: { 200: sessionOut },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['currentPassword', 'newPassword'],
          properties: { currentPassword: password, newPassword: password },
        },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const r = await authenticator.login(p.username, request.body.currentPassword, request.body.newPassword);
      return sessionOf(r);
    },
  );
}
