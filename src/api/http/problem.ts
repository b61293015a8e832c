/**
 * RFC 9457 problem details for the platform APIs. AppError kinds map to HTTP statuses here, once; the
 * NGSI-LD and TAXII plugins map the same codes to their own standards' error shapes.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode, ErrorKind } from '../../kernel/error-codes.ts';
import { AppError, isAppError } from '../../kernel/errors.ts';

export const STATUS_OF_KIND: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported_media: 415,
  unprocessable: 422,
  rate_limited: 429,
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
  if (isAppError(err)) return err;
  const e = err as Partial<FastifyError> & { validation?: unknown[] };
  if (e?.validation) {
    return new AppError('PLATFORM_VALIDATION_FAILED', e.message ?? 'invalid request', {
      errors: e.validation,
    });
  }
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('PLATFORM_BODY_TOO_LARGE', 'the request body is larger than this server accepts');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('PLATFORM_UNSUPPORTED_MEDIA_TYPE', e.message ?? 'unsupported media type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AppError('PLATFORM_BAD_REQUEST', e.message ?? 'malformed JSON');
    default:
      break;
  }
  if (e instanceof SyntaxError || (typeof e?.statusCode === 'number' && e.statusCode === 400)) {
    return new AppError('PLATFORM_BAD_REQUEST', `malformed request: ${e.message ?? ''}`.trim());
  }
  if (typeof e?.statusCode === 'number' && e.statusCode === 413) {
    return new AppError('PLATFORM_BODY_TOO_LARGE', 'the request body is larger than this server accepts');
  }
  if (typeof e?.statusCode === 'number' && e.statusCode === 415) {
    return new AppError('PLATFORM_UNSUPPORTED_MEDIA_TYPE', e.message ?? 'unsupported media type');
  }
  if (typeof e?.statusCode === 'number' && e.statusCode === 429) {
    return new AppError('PLATFORM_RATE_LIMITED');
  }
  return new AppError('PLATFORM_INTERNAL', 'internal error', undefined, { cause: err });
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
  reply.status(problem.status).type('application/problem+json').send(problem);
}
