/**
 * The HTTP server: one Fastify instance, the common hooks (authentication, metrics, problem+json errors),
 * the operations routes and the OpenAPI document; each API surface is an encapsulated plugin registered on it.
 */
import { existsSync } from 'node:fs';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { AppError } from '../../kernel/errors.ts';
import { createMetrics, type HealthCheck, instrument, opsPlugin } from './ops-plugin.ts';
import type { Principal } from './principal.ts';
import { problemErrorHandler } from './problem.ts';

export interface ApiSurface {
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: each surface has its own options type
  plugin: FastifyPluginAsync<any>;
  options?: Record<string, unknown>;
  prefix?: string;
}

export interface ServerOptions {
  logger: Logger;
  bodyLimit: number;
  instanceId: string;
  version: string;
  /** Turns an Authorization header into a principal, or throws AUTH_* errors. */
  authenticate?: (authorization: string) => Promise<Principal>;
  healthChecks: HealthCheck[];
  isReady: () => boolean;
  surfaces: ApiSurface[];
  /** URL prefixes whose routes need a token unless marked public (default /api/ and /ngsi-ld/). */
  protectedPrefixes?: string[];
  /** Folder with the built web app, served at `/`. */
  webRoot?: string | undefined;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A route anyone may call without a token (health, login, public feeds). */
    public?: boolean;
  }
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: opts.bodyLimit,
    requestIdHeader: 'x-request-id',
    trustProxy: true,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: {
      customOptions: {
        // Unknown fields are an error (400), never silently dropped.
        removeAdditional: false,
        coerceTypes: 'array',
        useDefaults: true,
        allErrors: false,
      },
    },
  }) as unknown as FastifyInstance;

  app.setErrorHandler(problemErrorHandler);
  app.setNotFoundHandler((request, reply) => {
    problemErrorHandler(
      new AppError('PLATFORM_ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`),
      request,
      reply,
    );
  });

  const metrics = createMetrics();
  instrument(app, metrics);

  // Authentication for every API route but the public ones (login, public feeds). The web app, API docs,
  // health and metrics are public. Unmatched routes fall through to the 404 handler.
  const protectedPrefixes = opts.protectedPrefixes ?? ['/api/', '/ngsi-ld/'];
  app.addHook('onRequest', async (request) => {
    const route = request.routeOptions.url;
    if (!route) return;
    const header = request.headers.authorization;
    if (request.routeOptions.config?.public || !protectedPrefixes.some((p) => route.startsWith(p))) {
      if (header && opts.authenticate) {
        try {
          request.principal = await opts.authenticate(header);
        } catch {
          // A public route answers the public with a bad token too, as anonymous.
        }
      }
      return;
    }
    if (!header) throw new AppError('AUTH_TOKEN_MISSING', 'send Authorization: Bearer <token>');
    if (!opts.authenticate) throw new AppError('AUTH_TOKEN_INVALID', 'authentication is not configured');
    request.principal = await opts.authenticate(header);
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'SafeCity Hub API',
        version: opts.version,
        description:
          'The open platform where a city’s public service operators and security practitioners share and manage security information. Errors are RFC 9457 problem+json (NGSI-LD routes answer NGSI-LD ProblemDetails).',
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'A session JWT from /api/auth/login or an API token',
          },
        },
      },
      security: [{ bearer: [] }],
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });
  app.get('/openapi.json', { schema: { hide: true }, config: { public: true } }, async () => app.swagger());

  await app.register(opsPlugin, {
    checks: opts.healthChecks,
    instanceId: opts.instanceId,
    version: opts.version,
    isReady: opts.isReady,
    registry: metrics.registry,
  });

  for (const surface of opts.surfaces) {
    await app.register(surface.plugin, {
      ...(surface.options ?? {}),
      ...(surface.prefix ? { prefix: surface.prefix } : {}),
    });
  }

  if (opts.webRoot && existsSync(opts.webRoot)) {
    await app.register(fastifyStatic, {
      root: opts.webRoot,
      prefix: '/',
      wildcard: false,
      index: ['index.html'],
    });
  }

  return app;
}
