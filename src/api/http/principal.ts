/**
 * Who is calling. The app's onRequest hook sets `request.principal` from the Authorization header
 * (JWT or API token) before any API plugin's route runs; public routes leave it undefined.
 */
// Route schemas may carry OpenAPI fields (tags, summary, security) in every plugin that imports this file.
import type {} from '@fastify/swagger';
import type { Marking } from '../../modules/access/marking.ts';

export type Role = 'admin' | 'operator' | 'analyst' | 'responder' | 'viewer';

export interface Principal {
  userId: string;
  username: string;
  orgId: string;
  roles: Role[];
  kind: 'user' | 'service';
  /** The keys this principal reads with (see modules/access/marking.ts). */
  readKeys: string[];
  /** The marking objects created by this principal get unless the request says otherwise. */
  defaultMarking: Marking;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}
