/**
 * NGSI-LD request conventions (ETSI GS CIM 009 v1.8, clause 6.3): the JSON-LD Link header, payload media
 * types and where the @context comes from, Accept negotiation, `options`/`format`, the tenant header.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../kernel/errors.ts';
import type {
  ActiveContext,
  Caller,
  ContextService,
  EntityFormat,
  LdContext,
} from '../../modules/context/index.ts';
import { CORE_CONTEXT_URL, DEFAULT_TENANT, isUri } from '../../modules/context/index.ts';

export const JSONLD_CONTEXT_REL = 'http://www.w3.org/ns/json-ld#context';

export type ResponseType = 'application/json' | 'application/ld+json' | 'application/geo+json';

/** The @context URL of a JSON-LD Link header, or undefined. Several context links are an error. */
export function contextFromLink(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const raw = Array.isArray(header) ? header.join(',') : header;
  const found: string[] = [];
  for (const part of raw.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*(.*)$/.exec(part);
    if (!m) throw new AppError('CONTEXT_INVALID_JSONLD', `malformed Link header "${raw}"`);
    const params = m[2] ?? '';
    const rel = /rel\s*=\s*"?([^";]+)"?/i.exec(params)?.[1]?.trim();
    if (rel === JSONLD_CONTEXT_REL) found.push(m[1]!.trim());
  }
  if (found.length > 1)
    throw new AppError('CONTEXT_INVALID_JSONLD', 'more than one JSON-LD context Link header');
  const url = found[0];
  if (url !== undefined && !/^[a-z][a-z0-9+.-]*:\/\/\S+$/i.test(url)) {
    throw new AppError(
      'CONTEXT_INVALID_JSONLD',
      `the Link header's @context "${url}" is not an absolute URL`,
    );
  }
  return url;
}

export function mediaTypeOf(request: FastifyRequest): string {
  return (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/**
 * Takes the payload's @context per the spec: application/ld+json carries it in the body (and no Link
 * header); application/json takes it from the Link header (and has none in the body).
 */
export function splitPayload(
  request: FastifyRequest,
  body: unknown,
): { body: unknown; context: LdContext | undefined } {
  const type = mediaTypeOf(request);
  const link = contextFromLink(request.headers.link);
  const isObject = body !== null && typeof body === 'object' && !Array.isArray(body);
  if (type === 'application/ld+json') {
    if (link !== undefined) {
      throw new AppError(
        'CONTEXT_INVALID_JSONLD',
        'application/ld+json payloads carry @context in the body, not in a Link header',
      );
    }
    if (!isObject || !('@context' in (body as Record<string, unknown>))) {
      throw new AppError('CONTEXT_INVALID_JSONLD', 'an application/ld+json payload needs an @context member');
    }
    const { '@context': context, ...rest } = body as Record<string, unknown>;
    return { body: rest, context: context as LdContext };
  }
  if (isObject && '@context' in (body as Record<string, unknown>)) {
    throw new AppError(
      'CONTEXT_INVALID_JSONLD',
      'an application/json payload must not carry @context: send it in a Link header or use application/ld+json',
    );
  }
  return { body, context: link };
}

/** One entity of a batch: its own @context in the body (ld+json) or the request's Link context. */
export function splitBatchItem(
  type: string,
  item: unknown,
  linkContext: LdContext | undefined,
): { body: unknown; context: LdContext | undefined } {
  const isObject = item !== null && typeof item === 'object' && !Array.isArray(item);
  if (type === 'application/ld+json') {
    if (!isObject || !('@context' in (item as Record<string, unknown>))) {
      throw new AppError(
        'CONTEXT_INVALID_JSONLD',
        'each entity of an application/ld+json batch needs an @context',
      );
    }
    const { '@context': context, ...rest } = item as Record<string, unknown>;
    return { body: rest, context: context as LdContext };
  }
  if (isObject && '@context' in (item as Record<string, unknown>)) {
    throw new AppError(
      'CONTEXT_INVALID_JSONLD',
      'an application/json batch must not carry @context in its entities',
    );
  }
  return { body: item, context: linkContext };
}

/** Picks the answer's media type from Accept (default application/json), or CONTEXT_NOT_ACCEPTABLE. */
export function negotiate(request: FastifyRequest, allowGeo = true): ResponseType {
  const accept = request.headers.accept;
  if (!accept) return 'application/json';
  const ranges = accept
    .split(',')
    .map((r) => {
      const [type = '', ...params] = r.split(';').map((s) => s.trim().toLowerCase());
      const q = params.find((p) => p.startsWith('q='));
      return { type, q: q ? Number(q.slice(2)) : 1 };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q);
  for (const r of ranges) {
    if (r.type === 'application/json' || r.type === 'application/ld+json') return r.type;
    if (r.type === 'application/geo+json' && allowGeo) return r.type;
    if (r.type === '*/*' || r.type === 'application/*') return 'application/json';
  }
  throw new AppError(
    'CONTEXT_NOT_ACCEPTABLE',
    `no representation for Accept "${accept}" (application/json, application/ld+json${allowGeo ? ', application/geo+json' : ''})`,
  );
}

export interface OutputOptions {
  format: EntityFormat;
  sysAttrs: boolean;
  /** options=marking (platform extension): each entity's marking in the body. */
  marking: boolean;
  noOverwrite: boolean;
  upsertMode: 'replace' | 'update';
}

const KNOWN_OPTIONS = new Set([
  'keyValues',
  'simplified',
  'concise',
  'normalized',
  'sysAttrs',
  'noOverwrite',
  'replace',
  'update',
  // Platform extension: each entity's marking as the reserved `marking` member.
  'marking',
]);

/** `options=keyValues,sysAttrs` and `format=concise` (format wins). */
export function outputOptions(query: Record<string, unknown>): OutputOptions {
  const opts = String(query.options ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const o of opts) {
    if (!KNOWN_OPTIONS.has(o)) throw new AppError('CONTEXT_INVALID_REQUEST', `unknown option "${o}"`);
  }
  let format: EntityFormat = 'normalized';
  if (opts.includes('keyValues') || opts.includes('simplified')) format = 'keyValues';
  else if (opts.includes('concise')) format = 'concise';
  if (query.format !== undefined) {
    const f = String(query.format);
    if (f === 'keyValues' || f === 'simplified') format = 'keyValues';
    else if (f === 'concise' || f === 'normalized') format = f;
    else
      throw new AppError('CONTEXT_INVALID_REQUEST', `unknown format "${f}" (normalized, concise, keyValues)`);
  }
  return {
    format,
    sysAttrs: opts.includes('sysAttrs'),
    marking: opts.includes('marking'),
    noOverwrite: opts.includes('noOverwrite'),
    upsertMode: opts.includes('update') ? 'update' : 'replace',
  };
}

const TENANT_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,255}$/;

/** The caller of a request: its principal, read keys and the NGSILD-Tenant. */
export function callerOf(request: FastifyRequest): Caller {
  const header = request.headers['ngsild-tenant'];
  let tenant = DEFAULT_TENANT;
  if (typeof header === 'string' && header !== '') {
    if (!TENANT_RE.test(header))
      throw new AppError('CONTEXT_INVALID_REQUEST', `"${header}" is not a valid tenant name`);
    tenant = header;
  }
  const p = request.principal;
  if (!p) {
    return {
      tenant,
      principal: { userId: 'anonymous', orgId: 'anonymous', roles: [] },
      readKeys: ['public'],
      defaultMarking: { tlp: 'CLEAR', audience: { orgs: [], communities: [], users: [] } },
    };
  }
  return {
    tenant,
    principal: { userId: p.userId, username: p.username, orgId: p.orgId, roles: p.roles },
    readKeys: p.readKeys,
    defaultMarking: p.defaultMarking,
  };
}

/** Writes need a signed-in principal. */
export function requireWriter(request: FastifyRequest): void {
  if (!request.principal) throw new AppError('AUTH_TOKEN_MISSING', 'changes need an authenticated caller');
}

/** The request's @context for reads (Link header), resolved. */
export function readContext(service: ContextService, request: FastifyRequest): Promise<ActiveContext> {
  return service.resolveContext(contextFromLink(request.headers.link));
}

/** Sets the media type, the Link header for JSON answers, and echoes the tenant. */
export function answerHeaders(
  reply: FastifyReply,
  request: FastifyRequest,
  type: ResponseType,
  ctx: ActiveContext,
): void {
  reply.type(type);
  if (type !== 'application/ld+json') {
    const url = typeof ctx.echo === 'string' ? ctx.echo : CORE_CONTEXT_URL;
    reply.header('Link', `<${url}>; rel="${JSONLD_CONTEXT_REL}"; type="application/ld+json"`);
  }
  echoTenant(request, reply);
}

/** Echoes a valid NGSILD-Tenant header in the answer (an invalid one is refused, never echoed). */
export function echoTenant(request: FastifyRequest, reply: FastifyReply): void {
  const tenant = request.headers['ngsild-tenant'];
  if (typeof tenant === 'string' && TENANT_RE.test(tenant)) reply.header('NGSILD-Tenant', tenant);
}

/** Splits a comma-separated query parameter. */
export function list(v: unknown): string[] | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return String(v)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function intParam(v: unknown, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new AppError('CONTEXT_INVALID_REQUEST', `${name} must be a whole number ≥ 0`);
  return n;
}

/**
 * An id in the path (entity, subscription) must be a URI: anything else is 400 BadRequestData (clause 5.6 /
 * 5.8: "if the id is not present or not a valid URI"), before any lookup, as the ETSI tests expect.
 */
export function requireUriParam(value: string | undefined, what: string): void {
  if (value === undefined || isUri(value)) return;
  throw new AppError(
    'CONTEXT_INVALID_REQUEST',
    `the ${what} id "${String(value).slice(0, 200)}" is not a URI`,
  );
}

/**
 * A query parameter the operation does not define is 400 InvalidRequest (clause 6.3.20; ETSI tests 059_01),
 * never ignored: a client that misspells `q` would otherwise get every entity. The parameters an operation
 * defines are those its route documents (the querystring schema of src/api/ngsi-ld/openapi.ts), so the
 * OpenAPI document and the check cannot disagree. A preValidation hook of the NGSI-LD plugins.
 */
export function refuseUnknownParameters(request: FastifyRequest): void {
  if (request.is404) return;
  const i = request.url.indexOf('?');
  if (i < 0) return;
  const schema = request.routeOptions.schema?.querystring as
    | { properties?: Record<string, unknown> }
    | undefined;
  const known = schema?.properties ?? {};
  const unknown = Object.keys(request.query as Record<string, unknown>).filter(
    (k) => !Object.hasOwn(known, k),
  );
  if (unknown.length === 0) return;
  const names = unknown.map((k) => `"${k.slice(0, 64)}"`).join(', ');
  const defined = Object.keys(known);
  throw new AppError(
    'CONTEXT_UNKNOWN_PARAMETER',
    `${names} ${unknown.length === 1 ? 'is not a parameter' : 'are not parameters'} of this operation` +
      (defined.length > 0 ? ` (it takes ${defined.join(', ')})` : ' (it takes none)'),
  );
}

/**
 * Pagination links (clause 5.5.9 / 6.3.x): `Link: <path?…&limit=L&offset=O>;rel="prev";type="application/ld+json"`
 * when a page precedes this one, and `rel="next"` when one follows, with the request's other parameters
 * as they came. Added beside the JSON-LD context link, if any.
 */
export function paginationLinks(
  request: FastifyRequest,
  reply: FastifyReply,
  path: string,
  page: { limit: number; offset: number; more: boolean },
): void {
  const i = request.url.indexOf('?');
  const kept =
    i < 0
      ? []
      : request.url
          .slice(i + 1)
          .split('&')
          .filter((p) => p !== '' && !/^(limit|offset)(=|$)/.test(p));
  const link = (offset: number, rel: string) =>
    `<${path}?${[...kept, `limit=${page.limit}`, `offset=${offset}`].join('&')}>;rel="${rel}";type="application/ld+json"`;
  const links: string[] = [];
  if (page.offset > 0 && page.limit > 0) links.push(link(Math.max(0, page.offset - page.limit), 'prev'));
  if (page.more && page.limit > 0) links.push(link(page.offset + page.limit, 'next'));
  if (links.length === 0) return;
  const current = reply.getHeader('link');
  const before =
    current === undefined ? [] : Array.isArray(current) ? current.map(String) : [String(current)];
  const all = [...before, ...links];
  reply.header('link', all.length === 1 ? all[0] : all);
}
