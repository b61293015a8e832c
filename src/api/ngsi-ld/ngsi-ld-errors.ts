/**
 * AppError codes to NGSI-LD ProblemDetails (ETSI GS CIM 009 v1.8, clause 5.5.2 / table 5.5.2-1):
 * `{ type, title, status, detail }` with the NGSI-LD error type URIs, answered as application/json.
 *
 * Refusals of the sharing gate (a role missing, not the owner organisation) are 403 `AccessDenied`, the type
 * NGSI-LD brokers with access control answer (docs/ngsi-ld-conformance.md); an entity the caller cannot see
 * is 404 ResourceNotFound, exactly as a missing one. An audience naming an unknown organisation, community
 * or user is bad data in the payload (400 BadRequestData), not a missing resource of the request's URL.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, type ErrorCode } from '../../kernel/error-codes.ts';
import { AppError, isAppError } from '../../kernel/errors.ts';
import { frameworkAppError } from '../http/framework-errors.ts';
import { STATUS_OF_KIND } from '../http/problem.ts';
import { echoTenant } from './ngsi-ld-request.ts';

export const NGSI_LD_ERRORS = 'https://uri.etsi.org/ngsi-ld/errors/';

export type NgsiLdErrorType =
  | 'InvalidRequest'
  | 'BadRequestData'
  | 'AlreadyExists'
  | 'OperationNotSupported'
  | 'ResourceNotFound'
  | 'InternalError'
  | 'TooComplexQuery'
  | 'TooManyResults'
  | 'LdContextNotAvailable'
  | 'NonexistentTenant'
  | 'AccessDenied';

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code?: string;
}

/** Codes whose NGSI-LD type is not the default for their kind. */
const TYPE_OF_CODE: Partial<Record<ErrorCode, NgsiLdErrorType>> = {
  CONTEXT_INVALID_JSON: 'InvalidRequest',
  CONTEXT_UNKNOWN_PARAMETER: 'InvalidRequest',
  PLATFORM_BAD_REQUEST: 'InvalidRequest',
  PLATFORM_UNSUPPORTED_MEDIA_TYPE: 'InvalidRequest',
  PLATFORM_INVALID_TEXT: 'InvalidRequest',
  PLATFORM_JSON_TOO_DEEP: 'InvalidRequest',
  CONTEXT_NOT_ACCEPTABLE: 'InvalidRequest',
  CONTEXT_ENTITY_EXISTS: 'AlreadyExists',
  CONTEXT_LDCONTEXT_NOT_AVAILABLE: 'LdContextNotAvailable',
  CONTEXT_TOO_MANY_RESULTS: 'TooManyResults',
  CONTEXT_QUERY_TOO_COMPLEX: 'TooComplexQuery',
  CONTEXT_TENANT_NOT_FOUND: 'NonexistentTenant',
  CONTEXT_UNSUPPORTED_GEOMETRY: 'OperationNotSupported',
  CONTEXT_OPERATION_NOT_SUPPORTED: 'OperationNotSupported',
  AUTH_ROLE_REQUIRED: 'AccessDenied',
  ACCESS_DENIED: 'AccessDenied',
  ACCESS_ORG_NOT_FOUND: 'BadRequestData',
  ACCESS_COMMUNITY_NOT_FOUND: 'BadRequestData',
  ACCESS_USER_NOT_FOUND: 'BadRequestData',
};

/** Codes whose HTTP status is not their kind's. */
const STATUS_OF_CODE: Partial<Record<ErrorCode, number>> = {
  CONTEXT_NOT_ACCEPTABLE: 406,
  CONTEXT_LDCONTEXT_NOT_AVAILABLE: 503,
  ACCESS_ORG_NOT_FOUND: 400,
  ACCESS_COMMUNITY_NOT_FOUND: 400,
  ACCESS_USER_NOT_FOUND: 400,
};

export function toNgsiLdAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  switch ((err as Partial<FastifyError>)?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('PLATFORM_BODY_TOO_LARGE', 'the payload is larger than this broker accepts');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError(
        'PLATFORM_UNSUPPORTED_MEDIA_TYPE',
        'send application/json or application/ld+json (NGSI-LD accepts no other payload type)',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('CONTEXT_INVALID_JSON', 'the payload is empty');
    default:
      break;
  }
  const mapped = frameworkAppError(err);
  if (mapped?.code === 'PLATFORM_VALIDATION_FAILED' || mapped?.code === 'PLATFORM_BAD_REQUEST')
    return new AppError('CONTEXT_INVALID_REQUEST', mapped.message, mapped.details);
  return mapped ?? new AppError('PLATFORM_INTERNAL', 'internal error', undefined, { cause: err });
}

export function toProblemDetails(err: AppError): ProblemDetails {
  const status = STATUS_OF_CODE[err.code] ?? STATUS_OF_KIND[err.kind];
  let type: string;
  const mapped = TYPE_OF_CODE[err.code];
  if (mapped) type = mapped;
  else if (err.kind === 'invalid' || err.kind === 'too_large') type = 'BadRequestData';
  else if (err.kind === 'not_found') type = 'ResourceNotFound';
  else if (err.kind === 'conflict') type = 'AlreadyExists';
  else if (err.kind === 'unprocessable') type = 'OperationNotSupported';
  else if (err.kind === 'internal') type = 'InternalError';
  else type = '';
  return {
    // Statuses NGSI-LD has no error type for (401, 429, 503) carry the platform's code URN.
    type: type ? `${NGSI_LD_ERRORS}${type}` : `urn:safecity:error:${err.code}`,
    title: err.kind === 'internal' ? 'Internal error' : titleOf(err),
    status,
    detail: err.kind === 'internal' ? 'The broker failed to answer; the error is logged.' : err.message,
    code: err.code,
  };
}

function titleOf(err: AppError): string {
  return ERROR_CODES[err.code].title;
}

export function ngsiLdErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const err = toNgsiLdAppError(error);
  const problem = toProblemDetails(err);
  if (err.kind === 'internal') request.log.error({ err: error }, 'ngsi-ld: internal error');
  echoTenant(request, reply);
  const allow = err.details?.allow;
  if (Array.isArray(allow)) reply.header('allow', allow.join(', '));
  reply.status(problem.status).type('application/json').send(problem);
}
