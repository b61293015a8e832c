/**
 * Who is calling. The app's onRequest hook sets `request.principal` from the Authorization header
 * (JWT or API token) before any API plugin's route runs; public routes leave it undefined.
 */
// Route schemas may carry OpenAPI fields (tags, summary, security) in every plugin that imports this file.
import type {} from '@fastify/swagger';
import type { Principal } from '../../modules/access/index.ts';

export type { Principal, Role } from '../../modules/access/index.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}
