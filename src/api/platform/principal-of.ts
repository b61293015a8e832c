import type { FastifyRequest } from 'fastify';
import { AppError } from '../../kernel/errors.ts';
import type { Principal } from '../../modules/access/index.ts';
import type {} from '../http/principal.ts';

/** The authenticated caller; the app's onRequest hook set it, or the route is not meant to be reached. */
export function principalOf(request: FastifyRequest): Principal {
  const p = request.principal;
  if (!p) throw new AppError('AUTH_TOKEN_MISSING', 'send Authorization: Bearer <token>');
  return p;
}
