/**
 * RFC 9457 problem details for the platform APIs. AppError kinds map to HTTP statuses here, once; the
 * NGSI-LD and TAXII plugins map the same codes to their own standards' error shapes.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode, ErrorKind } from '../../kernel/error-codes.ts';
import { AppError } from '../../kernel/errors.ts';
import { frameworkAppError } from './framework-errors.ts';

export const STATUS_OF_KIND: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  timeout: 408,
  conflict: 409,
  too_large: 413,
  uri_too_long: 414,
  unsupported_media: 415,
  unprocessable: 422,
  rate_limited: 429,
  headers_too_large: 431,
  unavailable: 503,
  internal: 500,
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  errors?: unknown[];
}

/** Turns anything thrown into an AppError: Fastify's own errors become the matching platform code. */
export function toAppError(err: unknown): AppError {
  return (
    frameworkAppError(err) ?? new AppError('PLATFORM_INTERNAL', 'internal error', undefined, { cause: err })
  );
}

export function toProblem(err: AppError, instance?: string): Problem {
  const status = STATUS_OF_KIND[err.kind];
  const problem: Problem = {
    type: `urn:safecity:error:${err.code}`,
    title: titleOf(err),
    status,
    // Internal errors never leak their message (it may hold SQL or paths).
    detail: err.kind === 'internal' ? 'The server failed to answer; the error is logged.' : err.message,
    code: err.code,
  };
  if (instance) problem.instance = instance;
  const errors = err.details?.errors;
  if (Array.isArray(errors) && err.kind !== 'internal') problem.errors = errors;
  return problem;
}

function titleOf(err: AppError): string {
  return new AppError(err.code).message;
}

/** The error handler of the platform's own APIs: problem+json, 5xx logged, 4xx not. */
export function problemErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const appError = toAppError(error);
  if (appError.kind === 'internal') request.log.error({ err: error }, 'request failed');
  const problem = toProblem(appError, request.url.split('?')[0]);
  if (appError.kind === 'unauthenticated') reply.header('www-authenticate', 'Bearer');
  const allow = appError.details?.allow;
  if (Array.isArray(allow)) reply.header('allow', allow.join(', '));
  reply.status(problem.status).type('application/problem+json').send(problem);
}
