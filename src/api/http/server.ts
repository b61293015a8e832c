/**
 * The HTTP server: one Fastify instance, the common hooks (the edge guard, authentication, metrics), the
 * edge policy every surface shares (JSON body reader, schema validation without coercion, URL and text
 * bounds, security headers), the operations routes and the OpenAPI document; each API surface is an
 * encapsulated plugin registered on it, with its own error format. Errors raised before a route runs
 * (router, 404, 405, 414, client errors) are answered in the format of the surface the URL belongs to.
 */
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { AppError } from '../../kernel/errors.ts';
import { checkRequestText, setSecurityHeaders } from './edge-guard.ts';
import { jsonBodyParser } from './json-body.ts';
import { createMetrics, type HealthCheck, instrument, opsPlugin } from './ops-plugin.ts';
import type { Principal } from './principal.ts';
import { problemErrorHandler, STATUS_OF_KIND } from './problem.ts';
import { RouteTable, routeMissError } from './route-table.ts';
import { ROUTER_OPTIONS } from './router-options.ts';
import { edgeValidatorCompiler } from './validation.ts';

export type ErrorFormatter = (error: unknown, request: FastifyRequest, reply: FastifyReply) => void;

export interface ApiSurface {
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: each surface has its own options type
  plugin: FastifyPluginAsync<any>;
  options?: Record<string, unknown>;
  prefix?: string;
  /**
   * The URL prefixes whose errors this surface answers in its own format (its plugin's error handler), and
   * that format's media type: used for the errors raised before a route runs. Default: problem+json.
   */
  errors?: { prefixes: string[]; handler: ErrorFormatter; mediaType: string };
}

/**
 * The web app's Content-Security-Policy: everything from this origin only, no inline script or style
 * markup, MapLibre's worker from this origin (or a blob: URL, MapLibre's fallback), no framing.
 */
export const WEB_APP_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "child-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

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
  const formats = opts.surfaces
    .flatMap((s) => (s.errors ? s.errors.prefixes.map((prefix) => ({ prefix, ...s.errors! })) : []))
    .sort((a, b) => b.prefix.length - a.prefix.length);
  const formatOf = (url: string) => formats.find((f) => url.startsWith(f.prefix));
  const formatterOf = (url: string): ErrorFormatter => formatOf(url)?.handler ?? problemErrorHandler;

  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: opts.bodyLimit,
    requestIdHeader: 'x-request-id',
    trustProxy: true,
    // Refused by the edge guard instead, so that the answer is in the surface's format.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Plugins (the API docs read their static files) start in well under a second, but a machine under heavy
    // load has taken more than Fastify's default 10 s; a slow start is not a broken one.
    pluginTimeout: 60_000,
    routerOptions: ROUTER_OPTIONS,
    // A malformed percent-encoding or a too long segment, found by the router before any hook.
    frameworkErrors: (error, request, reply) => {
      setSecurityHeaders(reply);
      formatterOf(request.url)(error, request, reply);
    },
    // The HTTP parser's own refusals (431, 408, 400) come before any request object exists.
    clientErrorHandler: (error, socket: Socket) => {
      const err = error as Error & { code?: string; rawPacket?: unknown };
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const raw = Buffer.isBuffer(err.rawPacket) ? err.rawPacket : undefined;
      const code =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? 'PLATFORM_HEADERS_TOO_LARGE'
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? 'PLATFORM_REQUEST_TIMEOUT'
            : 'PLATFORM_BAD_REQUEST';
      const e = new AppError(code, code === 'PLATFORM_BAD_REQUEST' ? 'malformed HTTP request' : undefined);
      const status = STATUS_OF_KIND[e.kind];
      const path = /^[A-Z]+ (\S+)/.exec(raw?.subarray(0, 2048).toString('latin1') ?? '')?.[1] ?? '/';
      const mediaType = formatOf(path)?.mediaType ?? 'application/problem+json';
      const body = JSON.stringify({
        type: `urn:safecity:error:${code}`,
        title: new AppError(code).message,
        status,
        detail: e.message,
        code,
      });
      if (socket.writable) {
        socket.write(
          `HTTP/1.1 ${status} ${e.message}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: ${mediaType}\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy(err);
    },
  }) as unknown as FastifyInstance;

  const routes = new RouteTable();
  app.decorate('routeTable', routes);
  app.addHook('onRoute', (route) => routes.add(route.url, route.method));

  app.setValidatorCompiler(edgeValidatorCompiler());
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, jsonBodyParser());
  app.setErrorHandler(problemErrorHandler);
  app.setNotFoundHandler((request, reply) => {
    formatterOf(request.url)(routeMissError(request), request, reply);
  });

  // First of all hooks: what no code should see is refused before authentication and routes run.
  app.addHook('onRequest', async (request, reply) => {
    setSecurityHeaders(reply);
    if (!opts.isReady() && !request.url.startsWith('/health')) {
      reply.header('connection', 'close');
      throw new AppError('PLATFORM_SHUTTING_DOWN', 'this instance is shutting down: retry on another');
    }
    checkRequestText(request);
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
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list' },
    staticCSP: true,
  });
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
      setHeaders: (res) => res.setHeader('content-security-policy', WEB_APP_CSP),
    });
  }

  return app;
}
