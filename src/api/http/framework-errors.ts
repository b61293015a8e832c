/**
 * Fastify's own errors, raised before a route's handler runs (router, content-type parser, body limit,
 * schema validation), as AppErrors: each surface then answers them in its own standard's format.
 */
import type { FastifyError } from 'fastify';
import { AppError, isAppError } from '../../kernel/errors.ts';

export function frameworkAppError(err: unknown): AppError | undefined {
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
      return new AppError('PLATFORM_BAD_REQUEST', 'the JSON body is empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AppError('PLATFORM_BAD_REQUEST', e.message ?? 'malformed JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('PLATFORM_BAD_REQUEST', 'the Content-Length does not match the body');
    case 'FST_ERR_BAD_URL':
      return new AppError('PLATFORM_INVALID_TEXT', 'the path has a malformed or non-UTF-8 percent-encoding');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new AppError('PLATFORM_URI_TOO_LONG', 'a path segment is longer than this server accepts');
    default:
      break;
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  if (status === 400 || e instanceof SyntaxError || e instanceof URIError)
    return new AppError('PLATFORM_BAD_REQUEST', `malformed request: ${e?.message ?? ''}`.trim());
  if (status === 405) return new AppError('PLATFORM_METHOD_NOT_ALLOWED', e?.message);
  if (status === 408) return new AppError('PLATFORM_REQUEST_TIMEOUT');
  if (status === 413)
    return new AppError('PLATFORM_BODY_TOO_LARGE', 'the request body is larger than this server accepts');
  if (status === 414) return new AppError('PLATFORM_URI_TOO_LONG');
  if (status === 415)
    return new AppError('PLATFORM_UNSUPPORTED_MEDIA_TYPE', e?.message ?? 'unsupported media type');
  if (status === 429) return new AppError('PLATFORM_RATE_LIMITED');
  if (status === 431) return new AppError('PLATFORM_HEADERS_TOO_LARGE');
  return undefined;
}
