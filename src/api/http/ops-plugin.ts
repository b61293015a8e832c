/**
 * Operations surface: liveness and readiness (`/health`), Prometheus metrics (`/metrics`).
 */

import type {} from '@fastify/swagger';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

export interface HealthCheck {
  name: string;
  check(): Promise<void>;
}

export interface OpsOptions {
  checks: HealthCheck[];
  instanceId: string;
  version: string;
  /** false while shutting down: readiness fails so a load balancer stops sending traffic. */
  isReady: () => boolean;
  registry: Registry;
}

/** A metrics registry with the HTTP metrics and the process defaults. */
export function createMetrics(): {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route'>;
} {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'safecity_' });
  const requests = new Counter({
    name: 'safecity_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'safecity_http_request_duration_seconds',
    help: 'HTTP request duration in seconds, by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return { registry, requests, duration };
}

/** Counts and times every request by its route pattern (never the raw URL: ids would explode cardinality). */
export function instrument(app: FastifyInstance, metrics: ReturnType<typeof createMetrics>): void {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
}

async function runChecks(checks: HealthCheck[]) {
  const results: Record<string, { status: 'up' | 'down'; latencyMs: number; error?: string }> = {};
  await Promise.all(
    checks.map(async (c) => {
      const t0 = performance.now();
      try {
        await Promise.race([
          c.check(),
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error('timed out after 2 s')), 2000).unref(),
          ),
        ]);
        results[c.name] = { status: 'up', latencyMs: Math.round((performance.now() - t0) * 10) / 10 };
      } catch (e) {
        results[c.name] = {
          status: 'down',
          latencyMs: Math.round(performance.now() - t0),
          error: (e as Error).message.slice(0, 200),
        };
      }
    }),
  );
  return results;
}

export const opsPlugin: FastifyPluginAsync<OpsOptions> = async (app, opts) => {
  const healthSchema = {
    tags: ['operations'],
    summary: 'Liveness and readiness of this instance and its store and bus',
    security: [],
  };
  app.get(
    '/health/live',
    { schema: { ...healthSchema, summary: 'Liveness: the process answers' } },
    async () => ({
      status: 'up',
      instance: opts.instanceId,
    }),
  );
  const ready = async (_req: unknown, reply: import('fastify').FastifyReply) => {
    const checks = await runChecks(opts.checks);
    const up = opts.isReady() && Object.values(checks).every((c) => c.status === 'up');
    reply.status(up ? 200 : 503);
    return {
      status: up ? 'up' : 'down',
      live: true,
      ready: up,
      shuttingDown: !opts.isReady(),
      instance: opts.instanceId,
      version: opts.version,
      checks,
    };
  };
  app.get('/health', { schema: healthSchema }, ready);
  app.get(
    '/health/ready',
    { schema: { ...healthSchema, summary: 'Readiness: store and bus answer' } },
    ready,
  );
  app.get(
    '/metrics',
    {
      schema: { tags: ['operations'], summary: 'Prometheus metrics (text exposition format)', security: [] },
    },
    async (_req, reply) => {
      reply.type(opts.registry.contentType);
      return opts.registry.metrics();
    },
  );
};
