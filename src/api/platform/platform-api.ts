/**
 * The platform API: authentication, organisations, communities, users, API tokens, reports, the access
 * policy's explain and break-glass, and the audit log. An encapsulated plugin: it validates its own bodies
 * strictly (no type coercion, unknown fields rejected) and throws AppError; the app's common error handler
 * answers RFC 9457 problem+json.
 */
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyPluginAsync } from 'fastify';
import { accessRoutes } from './access-routes.ts';
import { authRoutes } from './auth-routes.ts';
import { orgRoutes } from './org-routes.ts';
import type { PlatformApiOptions } from './platform-deps.ts';
import { reportRoutes } from './report-routes.ts';
import { userRoutes } from './user-routes.ts';

export const platformApi: FastifyPluginAsync<PlatformApiOptions> = async (app, opts) => {
  const common = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false } as const;
  // Bodies are JSON: a number is not a string. Query strings and path parameters are text and coerced.
  const bodies = new Ajv({ ...common, coerceTypes: false });
  const params = new Ajv({ ...common, coerceTypes: 'array' });
  addFormats.default(bodies);
  addFormats.default(params);
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? bodies.compile(schema) : params.compile(schema),
  );

  authRoutes(app, opts);
  orgRoutes(app, opts);
  userRoutes(app, opts);
  reportRoutes(app, opts);
  accessRoutes(app, opts);
};
