/**
 * Which methods a path has, for the 405 answer: a route table filled by the server's `onRoute` hook (every
 * route of every surface), matched against the path of a request no route took.
 */
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../kernel/errors.ts';

export class RouteTable {
  readonly #routes: Array<{ pattern: RegExp; methods: Set<string> }> = [];
  readonly #byUrl = new Map<string, Set<string>>();

  add(url: string, method: string | string[]): void {
    let methods = this.#byUrl.get(url);
    if (!methods) {
      methods = new Set();
      this.#byUrl.set(url, methods);
      this.#routes.push({ pattern: patternOf(url), methods });
    }
    for (const m of Array.isArray(method) ? method : [method]) methods.add(m.toUpperCase());
  }

  /** The methods some route has for this path (without the query), sorted. */
  methodsOf(path: string): string[] {
    const out = new Set<string>();
    for (const r of this.#routes) if (r.pattern.test(path)) for (const m of r.methods) out.add(m);
    return [...out].sort();
  }
}

function patternOf(url: string): RegExp {
  const parts = url.split('/').map((segment) => {
    if (segment === '*') return '.*';
    // Parameters (`:id`, `:id(^\\d+)`) take one segment.
    return segment
      .split(/(:[A-Za-z0-9_]+(?:\([^)]*\))?)/)
      .map((piece) => (piece.startsWith(':') ? '[^/]+' : piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('');
  });
  return new RegExp(`^${parts.join('/')}/?$`);
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route of the server (set by buildServer), for 405 answers. */
    routeTable?: RouteTable;
  }
}

/** The error for a request no route took: 405 with the methods the path has, or 404. */
export function routeMissError(request: FastifyRequest, what = 'route'): AppError {
  const path = request.url.split('?')[0] ?? '';
  const methods = request.server.routeTable?.methodsOf(path) ?? [];
  if (methods.length > 0 && !methods.includes(request.method)) {
    return new AppError(
      'PLATFORM_METHOD_NOT_ALLOWED',
      `${path} answers ${methods.join(', ')}, not ${request.method}`,
      { allow: methods },
    );
  }
  return new AppError('PLATFORM_ROUTE_NOT_FOUND', `no ${what} ${request.method} ${path}`);
}
