/**
 * Request conventions of the live NGSI-LD routes (ETSI GS CIM 009 v1.8, clause 6.3): the JSON-LD Link
 * header, where the @context of a payload comes from, the tenant header, Accept negotiation.
 */

import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../kernel/errors.ts';
import type { JsonLdContext, LivePrincipal } from '../../modules/context-live/index.ts';
import { negotiate as negotiateCore } from '../ngsi-ld/index.ts';

export const JSONLD_CONTEXT_REL = 'http://www.w3.org/ns/json-ld#context';
export const CORE_CONTEXT = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld';
const TENANT_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,255}$/;

function invalid(message: string): AppError {
  return new AppError('CONTEXT_INVALID_REQUEST', message);
}

/** The @context URL of a JSON-LD Link header, or undefined. */
export function contextFromLink(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const raw = Array.isArray(header) ? header.join(',') : header;
  let found: string | undefined;
  for (const part of raw.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*(.*)$/.exec(part);
    if (!m) throw invalid(`malformed Link header "${raw}"`);
    const rel = /rel\s*=\s*"?([^";]+)"?/i.exec(m[2] ?? '')?.[1]?.trim();
    if (rel !== JSONLD_CONTEXT_REL) continue;
    if (found !== undefined) throw invalid('more than one JSON-LD context Link header');
    found = m[1]!.trim();
    if (!/^[a-z][a-z0-9+.-]*:\/\/\S+$/i.test(found))
      throw invalid(`the Link header's @context "${found}" is not a URL`);
  }
  return found;
}

/** The payload and its @context: in the body for application/ld+json, in the Link header otherwise. */
export function splitPayload(
  request: FastifyRequest,
  body: unknown,
): { body: unknown; context: JsonLdContext | undefined } {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const link = contextFromLink(request.headers.link);
  const isObject = body !== null && typeof body === 'object' && !Array.isArray(body);
  if (type === 'application/ld+json') {
    if (link !== undefined)
      throw invalid('application/ld+json payloads carry @context in the body, not in a Link header');
    if (!isObject || !('@context' in body))
      throw invalid('an application/ld+json payload needs an @context member');
    const { '@context': context, ...rest } = body as Record<string, unknown>;
    return { body: rest, context: context as JsonLdContext };
  }
  if (isObject && '@context' in body) {
    throw invalid(
      'an application/json payload must not carry @context: send a Link header or use application/ld+json',
    );
  }
  return { body, context: link };
}

/** The NGSILD-Tenant of a request ('' is the default tenant). */
export function tenantOf(request: FastifyRequest): string {
  const header = request.headers['ngsild-tenant'];
  if (typeof header !== 'string' || header === '') return '';
  if (!TENANT_RE.test(header)) throw invalid(`"${header}" is not a valid tenant name`);
  return header;
}

export function principalOf(request: FastifyRequest): LivePrincipal {
  const p = request.principal;
  if (!p) throw new AppError('AUTH_TOKEN_MISSING', 'this operation needs an authenticated caller');
  return p;
}

/** Who reads: the caller, or null for an anonymous one (what that one may see, the gate's `readKeysOf` decides). */
export function readerOf(request: FastifyRequest): LivePrincipal | null {
  return request.principal ?? null;
}

export type ResponseType = 'application/json' | 'application/ld+json';

/** application/json (default) or application/ld+json from Accept, or 406: the core's negotiation, without GeoJSON. */
export function negotiate(request: FastifyRequest): ResponseType {
  return negotiateCore(request, false) as ResponseType;
}

/** Sets the answer's type and, for application/json, the Link header of the context in use. */
export function answerType(
  reply: FastifyReply,
  type: ResponseType,
  context: JsonLdContext | undefined,
): void {
  reply.type(type);
  if (type === 'application/json') {
    const url = typeof context === 'string' ? context : CORE_CONTEXT;
    reply.header('Link', `<${url}>; rel="${JSONLD_CONTEXT_REL}"; type="application/ld+json"`);
  }
}

/** limit/offset of a list request (defaults 20/0, limit at most 1000). */
export function pageOf(query: Record<string, unknown>): { limit: number; offset: number } {
  const limit = query.limit === undefined ? 20 : Number(query.limit);
  const offset = query.offset === undefined ? 0 : Number(query.offset);
  if (!Number.isInteger(limit) || limit < 0 || limit > 1000)
    throw invalid('limit must be an integer from 0 to 1000');
  if (!Number.isInteger(offset) || offset < 0) throw invalid('offset must be a non-negative integer');
  return { limit, offset };
}

/** A comma-separated query parameter as a list, or undefined. */
export function listParam(v: unknown): string[] | undefined {
  if (v === undefined || v === '') return undefined;
  return String(v)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
