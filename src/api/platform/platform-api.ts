/**
 * The platform API: authentication, organisations, communities, users, API tokens, reports, the access
 * policy's explain and break-glass, and the audit log. An encapsulated plugin: its schemas are validated by
 * the server's edge policy (no type coercion of bodies, unknown fields rejected, see http/validation.ts)
 * and it throws AppError; the app's common error handler answers RFC 9457 problem+json.
 */
import type { FastifyPluginAsync } from 'fastify';
import { accessRoutes } from './access-routes.ts';
import { authRoutes } from './auth-routes.ts';
import { orgRoutes } from './org-routes.ts';
import type { PlatformApiOptions } from './platform-deps.ts';
import { reportRoutes } from './report-routes.ts';
import { userRoutes } from './user-routes.ts';

export const platformApi: FastifyPluginAsync<PlatformApiOptions> = async (app, opts) => {
  authRoutes(app, opts);
  orgRoutes(app, opts);
  userRoutes(app, opts);
  reportRoutes(app, opts);
  accessRoutes(app, opts);
};
