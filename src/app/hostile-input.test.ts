import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { createPlatform, type Platform } from './platform.ts';
import { embeddedTestEnv, SERVER_SKIP, seedWorld, serverPresetTestEnv } from './testing.ts';

const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';
const SEED = Number(process.env.SAFECITY_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const PER_OPERATION = Number(process.env.SAFECITY_FUZZ_PER_OPERATION ?? 35);
const ROLES = ['admin', 'operator'] as const;
const PROTO_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype'];

// ----------------------------------------------------------------------------------------- randomness

/** mulberry32: small, fast, good enough to pick mutations reproducibly. */
function rngOf(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T,
    shuffle<T>(xs: T[]): T[] {
      for (let i = xs.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
      }
      return xs;
    },
  };
}
type Rng = ReturnType<typeof rngOf>;

// ------------------------------------------------------------------------------- the OpenAPI document

// biome-ignore lint/suspicious/noExplicitAny: JSON Schema and OpenAPI objects are open-ended
type Schema = any;

interface Param {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: Schema;
}

interface Operation {
  method: string;
  path: string;
  params: Param[];
  body: { type: string; schema: Schema } | undefined;
}

function operationsOf(doc: Schema): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries<Schema>(doc.paths)) {
    for (const [method, op] of Object.entries<Schema>(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const params: Param[] = (op.parameters ?? []).map((p: Schema) => ({
        name: p.name,
        in: p.in,
        required: Boolean(p.required),
        schema: p.example === undefined ? (p.schema ?? {}) : { ...p.schema, examples: [p.example] },
      }));
      const content = op.requestBody?.content as
        | Record<
            string,
            { schema?: Schema; example?: unknown; examples?: Record<string, { value: unknown }> }
          >
        | undefined;
      const type = content ? Object.keys(content)[0] : undefined;
      const media = type ? content?.[type] : undefined;
      // @fastify/swagger moves a schema's `examples` to the media type's `example`.
      const example = media?.example ?? Object.values(media?.examples ?? {})[0]?.value;
      ops.push({
        method: method.toUpperCase(),
        path,
        params,
        body: type
          ? {
              type,
              schema:
                example === undefined ? (media?.schema ?? {}) : { ...media?.schema, examples: [example] },
            }
          : undefined,
      });
    }
  }
  return ops;
}

const PATTERN_CANDIDATES = [
  'fz-sample',
  'police',
  'infrastructure',
  '7.4245,43.7349',
  '7.42,43.73,7.43,43.74',
  'report,entity',
  'x',
];

/** A value that satisfies the schema, preferring its examples. */
function sample(schema: Schema, name: string, fixtures: Record<string, unknown>): unknown {
  if (!schema || typeof schema !== 'object') return 'x';
  if (name in fixtures) return structuredClone(fixtures[name]);
  if (Array.isArray(schema.examples) && schema.examples.length > 0)
    return structuredClone(schema.examples[0]);
  if (schema.example !== undefined) return structuredClone(schema.example);
  if (schema.const !== undefined) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if (schema.default !== undefined) return schema.default;
  const types: string[] = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  const type = types.find((t) => t !== 'null') ?? (schema.properties ? 'object' : 'string');
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, s] of Object.entries<Schema>(schema.properties ?? {})) out[k] = sample(s, k, fixtures);
      return out;
    }
    case 'array': {
      const n = Math.max(schema.minItems ?? 1, 1);
      return Array.from({ length: n }, () => sample(schema.items ?? {}, name, fixtures));
    }
    case 'integer':
    case 'number': {
      const ok = (n: number) =>
        (schema.minimum === undefined || n >= schema.minimum) &&
        (schema.maximum === undefined || n <= schema.maximum) &&
        (schema.exclusiveMinimum === undefined || n > schema.exclusiveMinimum) &&
        (schema.exclusiveMaximum === undefined || n < schema.exclusiveMaximum) &&
        (type === 'number' || Number.isInteger(n));
      return [5, 1, 0.5, 10, 100, 0].find(ok) ?? schema.minimum ?? 1;
    }
    case 'boolean':
      return false;
    default: {
      if (schema.format === 'date-time') return new Date(Date.now() + 3_600_000).toISOString();
      if (schema.pattern) {
        const re = new RegExp(schema.pattern);
        const hit = PATTERN_CANDIDATES.find((c) => re.test(c));
        if (hit) return hit;
      }
      return 'fz'.padEnd(Math.max(schema.minLength ?? 2, 2), 'z');
    }
  }
}

// ------------------------------------------------------------------------------------ requests

interface Req {
  label: string;
  method: string;
  path: string;
  pathParams: Record<string, string>;
  query: Array<[string, string]>;
  /** Raw query text appended as is (bad encodings). */
  rawQuery?: string;
  headers: Record<string, string>;
  /** The JSON body as a value; `raw` wins when set. */
  body?: unknown;
  raw?: string | Buffer | undefined;
  contentType?: string | undefined;
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function urlOf(r: Req): string {
  const path = r.path.replace(/\{([^}]+)\}/g, (_, n: string) => r.pathParams[n] ?? 'x');
  const q = r.query.map(([k, v]) => `${enc(k)}=${enc(v)}`);
  if (r.rawQuery) q.push(r.rawQuery);
  return q.length ? `${path}?${q.join('&')}` : path;
}

function injectOptions(r: Req, authorization: string) {
  const headers: Record<string, string> = { authorization, ...r.headers };
  let payload: string | Buffer | undefined;
  if (r.raw !== undefined) payload = r.raw;
  else if (r.body !== undefined) payload = JSON.stringify(r.body);
  if (payload !== undefined) headers['content-type'] = r.contentType ?? 'application/json';
  else if (r.contentType) headers['content-type'] = r.contentType;
  return { method: r.method, url: urlOf(r), headers, ...(payload !== undefined ? { payload } : {}) };
}

// -------------------------------------------------------------------------------------- mutations

type Mutation = (base: Req, rng: Rng) => Req | undefined;

const clone = (r: Req): Req => ({
  ...r,
  pathParams: { ...r.pathParams },
  query: r.query.map(([k, v]) => [k, v] as [string, string]),
  headers: { ...r.headers },
  body: r.body === undefined ? undefined : structuredClone(r.body),
});

/** Paths to every value of a JSON value (objects and arrays), the root excluded. */
function leaves(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []) {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      out.push([...at, i]);
      leaves(v[i], [...at, i], out);
    }
  } else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push([...at, k]);
      leaves(x, [...at, k], out);
    }
  }
  return out;
}

function objectsIn(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []) {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) objectsIn(v[i], [...at, i], out);
  } else if (v && typeof v === 'object') {
    out.push(at);
    for (const [k, x] of Object.entries(v)) objectsIn(x, [...at, k], out);
  }
  return out;
}

function getAt(v: unknown, path: (string | number)[]): unknown {
  let cur = v as Record<string | number, unknown>;
  for (const p of path) cur = cur?.[p] as Record<string | number, unknown>;
  return cur;
}

function setAt(v: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const parent = getAt(v, path.slice(0, -1)) as Record<string | number, unknown>;
  Object.defineProperty(parent, path.at(-1) as string | number, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return v;
}

function nested(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array'
    ? `${'['.repeat(depth)}${']'.repeat(depth)}`
    : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** A string made hostile: NUL, a lone surrogate, or huge. */
function hostileString(rng: Rng, base: string, where: 'url' | 'json'): string {
  const at = rng.int(base.length + 1);
  const insert = (s: string) => base.slice(0, at) + s + base.slice(at);
  switch (rng.int(4)) {
    case 0:
      return insert('\u0000');
    case 1:
      return insert(rng.pick(['\ud800', '\udfff', '\udc00\ud800', '\ud83d']));
    case 2:
      return where === 'url' ? insert('x'.repeat(9_000 + rng.int(12_000))) : insert('y'.repeat(300_000));
    default:
      return rng.pick(PROTO_KEYS);
  }
}

const HOSTILE_NUMBERS = [
  'Infinity',
  '-Infinity',
  '1e999',
  '-1',
  'NaN',
  '1.5',
  '-0',
  '9007199254740993',
  '0x10',
  ' 5',
  '',
];
const WRONG_TYPES: unknown[] = ['50', 1.5, true, null, [], {}, 'x', -1, 0];

function mutationsOf(op: Operation, base: Req): Mutation[] {
  const m: Mutation[] = [];
  // Strings and numbers in path and query parameters.
  for (const p of op.params.filter((x) => x.in === 'path')) {
    m.push((b, rng) => {
      const r = clone(b);
      const v = hostileString(rng, r.pathParams[p.name] ?? '', 'url');
      r.pathParams[p.name] =
        v.includes('\ud800') || /[\ud800-\udfff]/.test(v)
          ? `${enc(v.replace(/[\ud800-\udfff]/g, ''))}%ED%A0%80`
          : enc(v);
      r.label = `path ${p.name} hostile`;
      return r;
    });
    m.push((b, rng) => {
      const r = clone(b);
      r.pathParams[p.name] = rng.pick(['%', '%E0%A4%A', '%C0%AF', '%ED%A0%80', '%00', '%FF%FE']);
      r.label = `path ${p.name} bad encoding`;
      return r;
    });
    m.push((b, rng) => {
      const r = clone(b);
      r.pathParams[p.name] = enc(rng.pick(PROTO_KEYS));
      r.label = `path ${p.name} prototype key`;
      return r;
    });
  }
  const queryParams = op.params.filter((x) => x.in === 'query');
  for (const p of queryParams) {
    const numeric = ['integer', 'number'].includes(p.schema?.type);
    m.push((b, rng) => {
      const r = clone(b);
      const v = numeric
        ? rng.pick(HOSTILE_NUMBERS)
        : hostileString(rng, r.query.find(([k]) => k === p.name)?.[1] ?? '', 'url');
      r.query = r.query.filter(([k]) => k !== p.name);
      if (/[\ud800-\udfff]/.test(v))
        r.rawQuery = `${enc(p.name)}=${enc(v.replace(/[\ud800-\udfff]/g, ''))}%ED%A0%80`;
      else r.query.push([p.name, v]);
      r.label = `query ${p.name}=${v.length > 30 ? `${v.slice(0, 30)}…(${v.length})` : JSON.stringify(v)}`;
      return r;
    });
    m.push((b, rng) => {
      const r = clone(b);
      r.query.push([p.name, rng.pick(['a', '1', 'true'])]);
      r.query.push([p.name, rng.pick(HOSTILE_NUMBERS)]);
      r.label = `query ${p.name} repeated`;
      return r;
    });
  }
  m.push((b, rng) => {
    const r = clone(b);
    r.query.push([rng.pick(['zzUnknown', ...PROTO_KEYS]), rng.pick(['1', 'x', '\u0000'])]);
    r.label = 'query unknown parameter';
    return r;
  });
  m.push((b, rng) => {
    const r = clone(b);
    r.rawQuery = rng.pick(['%', 'a=%E0%A4%A', 'a=%ED%A0%80', '%00=1', 'a=%FF']);
    r.label = `query bad encoding ${r.rawQuery}`;
    return r;
  });
  m.push((b, rng) => {
    const r = clone(b);
    r.query.push(['q', 'u'.repeat(9_000 + rng.int(30_000))]);
    r.label = 'very long URL';
    return r;
  });
  m.push((b, rng) => {
    const r = clone(b);
    const name = rng.pick(['ngsild-tenant', 'link', 'accept', 'x-request-id']);
    r.headers[name] = rng.pick([
      'a\u0000b',
      `<https://example.org/ctx\u0000.jsonld>; rel="http://www.w3.org/ns/json-ld#context"`,
      '\u00ff'.repeat(3),
      'x'.repeat(5000),
      '__proto__',
    ]);
    r.label = `header ${name} hostile`;
    return r;
  });
  m.push((b, rng) => {
    const r = clone(b);
    r.method = rng.pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((x) => x !== b.method));
    r.label = `method ${r.method} instead of ${b.method}`;
    return r;
  });

  // Bodies: every operation gets them (routes without a body must refuse or ignore one).
  const hasBody = base.body !== undefined;
  const jsonOf = (b: Req) => (b.body === undefined ? {} : b.body);
  m.push((b, rng) => {
    const r = clone(b);
    const depth = rng.pick([5_000, 20_000]);
    r.raw = nested(depth, rng.pick(['array', 'object'] as const));
    r.label = `body nested ${depth} deep`;
    return r;
  });
  m.push((b, rng) => {
    const r = clone(b);
    const body = jsonOf(r);
    const spots = [[], ...objectsIn(body)];
    const at = rng.pick(spots);
    const marker = '"__DEEP__"';
    const target = getAt(body, at) as Record<string, unknown>;
    if (target && typeof target === 'object' && !Array.isArray(target)) target.deep = '__DEEP__';
    else return undefined;
    const depth = rng.pick([100, 5_000, 20_000]);
    r.raw = JSON.stringify(body).replace(marker, nested(depth, rng.pick(['array', 'object'] as const)));
    r.label = `field nested ${depth} deep at ${at.join('.')}`;
    return r;
  });
  m.push((b, rng) => {
    const r = clone(b);
    r.raw = rng.pick(['', ' ', 'null', '[]', '{}', '"x"', '1', 'true', '{"a":', '{"a":1}x', '\ufeff{}']);
    r.label = `body ${JSON.stringify(r.raw)}`;
    return r;
  });
  m.push((b, rng) => {
    const r = clone(b);
    r.raw = undefined;
    r.body = undefined;
    r.contentType = rng.pick([undefined, 'application/json']);
    r.label = `no body, content-type ${r.contentType}`;
    return r;
  });
  m.push((b, rng) => {
    const r = clone(b);
    r.raw = JSON.stringify(jsonOf(r));
    r.contentType = rng.pick([
      'text/plain',
      'application/xml',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset=utf-16',
      'application/json; charset=latin1',
      'application/octet-stream',
      'application/jsonx',
      'foo',
    ]);
    r.label = `content-type ${r.contentType}`;
    return r;
  });
  m.push((b, rng) => {
    const r = clone(b);
    const text = JSON.stringify(jsonOf(r));
    const variant = rng.int(3);
    const le = Buffer.from(text, 'utf16le');
    r.raw =
      variant === 0
        ? le
        : variant === 1
          ? Buffer.concat([Buffer.from([0xff, 0xfe]), le])
          : Buffer.from(text, 'latin1');
    if (variant === 0) r.contentType = rng.pick(['application/json', 'application/json; charset=utf-16le']);
    r.label = `body in UTF-16 (variant ${variant})`;
    return r;
  });
  m.push((b, rng) => {
    const r = clone(b);
    const body = jsonOf(r);
    const spots = objectsIn(body);
    const at = spots.length ? rng.pick(spots) : [];
    const target = getAt(body, at);
    if (!target || typeof target !== 'object') return undefined;
    const key = rng.pick(PROTO_KEYS);
    const value = rng.pick<unknown>([{ polluted: true }, 'x', 1, { type: 'Property', value: 1 }, [], null]);
    // JSON text so that __proto__ arrives as a key, as a client would send it.
    const marker = `"__PROTO_${rng.int(1e9)}__"`;
    (target as Record<string, unknown>)[marker.slice(1, -1)] = 0;
    r.raw = JSON.stringify(body).replace(`${marker}:0`, `${JSON.stringify(key)}:${JSON.stringify(value)}`);
    r.label = `body key ${key} at ${at.join('.') || 'root'}`;
    return r;
  });
  m.push((b, rng) => {
    const r = clone(b);
    const body = jsonOf(r);
    const spots = objectsIn(body);
    const target = getAt(body, spots.length ? rng.pick(spots) : []);
    if (!target || typeof target !== 'object' || Array.isArray(target)) return undefined;
    (target as Record<string, unknown>)[rng.pick(['zzUnknown', 'extra', 'id', 'type'])] =
      rng.pick(WRONG_TYPES);
    r.body = body;
    r.label = 'body unknown field';
    return r;
  });
  if (hasBody) {
    const paths = leaves(base.body);
    for (const path of paths) {
      const label = path.join('.');
      const value = getAt(base.body, path);
      if (typeof value === 'string') {
        m.push((b, rng) => {
          const r = clone(b);
          const v = hostileString(rng, value, 'json');
          r.body = setAt(r.body, path, v);
          r.label = `body ${label} hostile string`;
          return r;
        });
        m.push((b) => {
          const r = clone(b);
          // A lone surrogate as a JSON escape: what a client sends, whatever its language.
          r.raw = JSON.stringify(setAt(r.body, path, '__LONE__')).replace('"__LONE__"', '"a\\ud800b"');
          r.label = `body ${label} lone surrogate escape`;
          return r;
        });
        m.push((b) => {
          const r = clone(b);
          r.raw = JSON.stringify(setAt(r.body, path, '__NUL__')).replace('"__NUL__"', '"a\\u0000b"');
          r.label = `body ${label} NUL escape`;
          return r;
        });
      }
      if (typeof value === 'number') {
        m.push((b, rng) => {
          const r = clone(b);
          const n = rng.pick([
            '1e999',
            '-1e999',
            '-1',
            '1.5',
            '1e308',
            '-0',
            '123456789012345678901234567890',
          ]);
          r.raw = JSON.stringify(setAt(r.body, path, '__NUM__')).replace('"__NUM__"', n);
          r.label = `body ${label} = ${n}`;
          return r;
        });
      }
      m.push((b, rng) => {
        const r = clone(b);
        const v = rng.pick(WRONG_TYPES);
        r.body = setAt(r.body, path, structuredClone(v));
        r.label = `body ${label} = ${JSON.stringify(v)}`;
        return r;
      });
      m.push((b) => {
        const r = clone(b);
        const parent = getAt(r.body, path.slice(0, -1));
        if (Array.isArray(parent)) parent.splice(path.at(-1) as number, 1);
        else if (parent && typeof parent === 'object')
          delete (parent as Record<string, unknown>)[path.at(-1) as string];
        r.label = `body without ${label}`;
        return r;
      });
    }
  }
  return m;
}

// ------------------------------------------------------------------------------------ the oracle

interface Outcome {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}

function isNgsiLd(path: string): boolean {
  return path.startsWith('/ngsi-ld/') || path.startsWith('/ingest/');
}

/** What is wrong with an answer (5xx, a 4xx not in its surface's format, no nosniff), or undefined. */
function verdict(path: string, res: Outcome): string | undefined {
  if (res.statusCode >= 500) return `${res.statusCode}: ${res.body.slice(0, 300)}`;
  if (res.headers['x-content-type-options'] !== 'nosniff') return 'no X-Content-Type-Options: nosniff';
  if (res.statusCode < 400) return undefined;
  const type = String(res.headers['content-type'] ?? '');
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(res.body) as Record<string, unknown>;
  } catch {
    return `${res.statusCode} with a body that is not JSON (${type}): ${res.body.slice(0, 200)}`;
  }
  const shaped =
    typeof body.type === 'string' &&
    /^[a-z][a-z0-9+.-]*:/i.test(body.type) &&
    typeof body.title === 'string' &&
    body.status === res.statusCode;
  if (isNgsiLd(path)) {
    if (!type.startsWith('application/json') || !shaped || typeof body.detail !== 'string')
      return `${res.statusCode} not NGSI-LD ProblemDetails (${type}): ${res.body.slice(0, 200)}`;
  } else if (!type.startsWith('application/problem+json') || !shaped) {
    return `${res.statusCode} not problem+json (${type}): ${res.body.slice(0, 200)}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------- the run

interface World {
  auth: Record<(typeof ROLES)[number], string>;
  pathValue(path: string, name: string): string;
  fixtures: Record<string, unknown>;
  bodyFixtures(path: string): Record<string, unknown>;
  /** Signs the role in again (a password change ends the account's other sessions). */
  relogin(role: (typeof ROLES)[number]): Promise<void>;
}

async function seed(platform: Platform): Promise<World> {
  const auth = await seedWorld(platform, ADMIN_PASSWORD, PW, {
    orgs: [
      ['police', 'police'],
      ['metro', 'transport'],
    ],
    users: [
      ['op', 'police', 'operator'],
      ['victim', 'metro', 'viewer'],
    ],
  });
  const call = async (method: string, url: string, who: string, payload?: unknown, headers = {}) => {
    const res = await platform.server.inject({
      method: method as 'POST',
      url,
      headers: { authorization: auth[who] as string, ...headers },
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });
    if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res;
  };
  const me = (await call('GET', '/api/auth/me', 'op')).json() as { userId: string };
  const victim = (await call('GET', '/api/users/victim', 'admin')).json() as { id: string };
  const report = (
    await call('POST', '/api/reports', 'op', {
      title: 'Gate 3 camera offline',
      category: 'infrastructure',
      marking: { tlp: 'CLEAR' },
    })
  ).json() as { id: string };
  const token = (
    await call('POST', '/api/tokens', 'admin', { orgId: 'police', name: 'fz-sensors' })
  ).json() as {
    token: { id: string };
  };
  await call('POST', '/api/communities', 'admin', {
    id: 'fz-cell',
    name: 'Crisis cell',
    members: ['police'],
  });
  const entityId = 'urn:ngsi-ld:Vehicle:fz-1';
  await call(
    'POST',
    '/ngsi-ld/v1/entities',
    'op',
    {
      id: entityId,
      type: 'Vehicle',
      speed: { type: 'Property', value: 12, observedAt: new Date().toISOString() },
      location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [7.4245, 43.7349] } },
      marking: { type: 'Property', value: { tlp: 'CLEAR' } },
    },
    { 'content-type': 'application/json' },
  );
  const sub = await call(
    'POST',
    '/ngsi-ld/v1/subscriptions',
    'op',
    {
      type: 'Subscription',
      entities: [{ type: 'Vehicle' }],
      notification: { endpoint: { uri: 'https://receiver.example.org/notify', accept: 'application/json' } },
    },
    { 'content-type': 'application/json' },
  );
  const subId = decodeURIComponent(String(sub.headers.location).split('/').at(-1) ?? '');
  const ctx = await call(
    'POST',
    '/ngsi-ld/v1/jsonldContexts',
    'op',
    { '@context': { fz: 'https://example.org/fz#' } },
    { 'content-type': 'application/json' },
  );
  const ctxId = decodeURIComponent(String(ctx.headers.location).split('/').at(-1) ?? '');
  const closure = (
    await call('POST', '/api/routing/closures', 'op', {
      geometry: { type: 'Point', coordinates: [7.4245, 43.7349] },
      radius_m: 30,
      reason: 'fuzz',
    })
  ).json() as { id: string };
  const slowdown = (
    await call('POST', '/api/routing/slowdowns', 'op', {
      geometry: { type: 'Point', coordinates: [7.4283, 43.7394] },
      radius_m: 30,
      factor: 0.5,
    })
  ).json() as { id: string };
  const byPath: Array<[RegExp, Record<string, string>]> = [
    [/^\/api\/orgs\//, { id: 'police' }],
    [/^\/api\/communities\//, { id: 'fz-cell', orgId: 'metro' }],
    [/^\/api\/users\//, { id: victim.id }],
    [/^\/api\/tokens\//, { id: token.token.id }],
    [/^\/api\/reports\//, { id: report.id }],
    [/^\/ngsi-ld\/v1\/subscriptions\//, { id: subId }],
    [/^\/ngsi-ld\/v1\/temporal\/entities\//, { id: entityId }],
    [/^\/ngsi-ld\/v1\/jsonldContexts\//, { contextId: ctxId }],
    [/^\/api\/routing\/closures\//, { id: closure.id }],
    [/^\/api\/routing\/slowdowns\//, { id: slowdown.id }],
  ];
  const common: Record<string, string> = {
    entityId,
    attrId: 'speed',
    type: 'Vehicle',
    entityType: 'Vehicle',
    tenant: 'default',
    deviceId: 'fz-dev-1',
  };
  const roles = { admin: auth.admin as string, operator: auth.op as string };
  return {
    auth: roles,
    async relogin(role) {
      const [username, password] = role === 'admin' ? ['admin', ADMIN_PASSWORD] : ['op', PW];
      const res = await platform.server.inject({
        method: 'POST',
        url: '/api/auth/login',
        payload: { username, password },
      });
      if (res.statusCode !== 200) throw new Error(`login ${username}: ${res.statusCode} ${res.body}`);
      roles[role] = `Bearer ${(res.json() as { token: string }).token}`;
    },
    pathValue(path, name) {
      for (const [re, values] of byPath) if (re.test(path) && values[name]) return values[name];
      return common[name] ?? 'fz-unknown';
    },
    // Query parameters and body fields whose examples must name objects of this world.
    fixtures: { object: report.id, user: me.userId, actor: me.userId, owner: 'police', org: 'police' },
    bodyFixtures(path) {
      if (path === '/api/auth/login') return { username: 'op', password: PW, newPassword: PW };
      if (path === '/api/auth/password') return { currentPassword: PW, newPassword: PW };
      if (path === '/api/access/break-glass') return { object: report.id };
      if (path === '/api/tokens') return { orgId: 'police', name: 'fz-svc' };
      if (path === '/api/users') return { orgId: 'metro', roles: ['viewer'] };
      if (path === '/api/orgs/{id}') return { clients: ['metro'] };
      if (path === '/ngsi-ld/v1/entities/{entityId}') return { id: entityId };
      return {};
    },
  };
}

function baseRequest(op: Operation, world: World): Req {
  const pathParams: Record<string, string> = {};
  for (const p of op.params.filter((x) => x.in === 'path'))
    pathParams[p.name] = enc(world.pathValue(op.path, p.name));
  const query: Array<[string, string]> = [];
  for (const p of op.params.filter((x) => x.in === 'query')) {
    if (!p.required && p.schema?.examples === undefined && !(p.name in world.fixtures)) continue;
    query.push([p.name, String(sample(p.schema, p.name, world.fixtures))]);
  }
  const fixtures = world.bodyFixtures(op.path);
  const body = op.body ? sample(op.body.schema, '', fixtures) : undefined;
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    for (const [k, v] of Object.entries(fixtures)) if (k in body) (body as Record<string, unknown>)[k] = v;
  }
  return {
    label: 'well-formed',
    method: op.method,
    path: op.path,
    pathParams,
    query,
    headers: {},
    body,
    ...(op.body ? { contentType: op.body.type } : {}),
  };
}

/** Fresh ids for creations, so that mutated creations create instead of colliding. */
function freshen(r: Req, n: number): Req {
  const body = r.body as Record<string, unknown> | unknown[] | undefined;
  const renew = (o: unknown) => {
    if (o && typeof o === 'object' && !Array.isArray(o)) {
      const rec = o as Record<string, unknown>;
      if (typeof rec.id === 'string' && rec.id.startsWith('urn:')) rec.id = `${rec.id}-${n}`;
    }
  };
  if (r.method === 'POST' && body !== undefined) {
    if (Array.isArray(body)) body.forEach(renew);
    else renew(body);
  }
  return r;
}

async function run(platform: Platform, world: World, label: string) {
  const rng = rngOf(SEED);
  const doc = (await platform.server.inject({ method: 'GET', url: '/openapi.json' })).json();
  const ops = operationsOf(doc);
  // Deletions last, so that the objects the others name still exist while they run.
  ops.sort((a, b) => Number(a.method === 'DELETE') - Number(b.method === 'DELETE'));
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  const byOperation = new Map<string, Map<string, number>>();
  const wellFormedRefusals: string[] = [];
  const timing = new Map<string, number>();
  let sent = 0;
  let n = 0;
  const t0 = performance.now();
  for (const op of ops) {
    const base = baseRequest(op, world);
    const mutations = mutationsOf(op, base);
    for (const role of ROLES) {
      const plan: Array<Mutation | undefined> = [undefined, ...rng.shuffle([...mutations])].slice(
        0,
        PER_OPERATION,
      );
      while (plan.length < PER_OPERATION) plan.push(rng.pick(mutations));
      for (const mutation of plan) {
        n += 1;
        const req = mutation ? mutation(freshen(clone(base), n), rng) : freshen(clone(base), n);
        if (!req) continue;
        const started = performance.now();
        const options = injectOptions(req, world.auth[role]);
        const streaming = op.path === '/api/stream';
        const res = await platform.server.inject({
          ...options,
          ...(streaming ? { payloadAsStream: true } : {}),
        } as never);
        let body: string;
        const r = res as unknown as Outcome & { stream(): NodeJS.ReadableStream & { destroy(): void } };
        if (streaming && r.statusCode === 200) {
          r.stream().destroy();
          body = '';
        } else if (streaming) {
          const chunks: Buffer[] = [];
          for await (const c of r.stream()) chunks.push(Buffer.from(c as Buffer));
          body = Buffer.concat(chunks).toString('utf8');
        } else body = r.body;
        sent += 1;
        if (process.env.SAFECITY_FUZZ_REPORT) {
          const kind = `${op.method} ${op.path}`;
          timing.set(kind, (timing.get(kind) ?? 0) + (performance.now() - started));
        }
        // A password change (or a login that sets a new one) ends the account's other sessions.
        if (['/api/auth/password', '/api/auth/login'].includes(op.path) && res.statusCode < 300)
          for (const r of ROLES) await world.relogin(r);
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        const opKey = `${op.method} ${op.path}`;
        const seen = byOperation.get(opKey) ?? new Map<string, number>();
        const statusKey = mutation ? String(res.statusCode) : `well-formed ${role} ${res.statusCode}`;
        seen.set(statusKey, (seen.get(statusKey) ?? 0) + 1);
        byOperation.set(opKey, seen);
        const bad = verdict(op.path, { statusCode: res.statusCode, headers: res.headers, body });
        if (bad) failures.push(`${role} ${req.method} ${op.path} [${req.label}] → ${bad}`);
        if (!mutation && res.statusCode >= 400 && process.env.SAFECITY_FUZZ_REPORT)
          wellFormedRefusals.push(
            `${role} ${options.method} ${options.url} → ${res.statusCode} ${body.slice(0, 300)}`,
          );
      }
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const summary = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, c]) => `${s}×${c}`);
  console.log(
    `hostile input (${label}): seed ${SEED} (replay: SAFECITY_FUZZ_SEED=${SEED}), ${ops.length} operations, ${sent} requests in ${seconds.toFixed(1)} s; statuses ${summary.join(' ')}`,
  );
  if (process.env.SAFECITY_FUZZ_REPORT) {
    const { writeFileSync } = await import('node:fs');
    const table = [...byOperation].map(([k, m]) => `${k}: ${[...m].map(([s, c]) => `${s}×${c}`).join(' ')}`);
    writeFileSync(
      process.env.SAFECITY_FUZZ_REPORT,
      [
        ...failures,
        '',
        ...table,
        '',
        ...wellFormedRefusals,
        '',
        ...[...timing]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 20)
          .map(([k, ms]) => `${k}: ${Math.round(ms)} ms`),
      ].join('\n'),
    );
  }
  return { ops, sent, failures };
}

// ------------------------------------------------------------------ what reviewers reproduced

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
  json(): Record<string, unknown>;
}

/** Each gap the reviewers reproduced against the running platform, by name, with the answer it must get. */
function reproducedByReviewers(get: () => { platform: Platform; world: World }) {
  const send = async (
    who: 'admin' | 'operator' | undefined,
    method: string,
    url: string,
    opts: { body?: unknown; raw?: string | Buffer; type?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> => {
    const { platform, world } = get();
    const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
    const res = await platform.server.inject({
      method: method as 'GET',
      url,
      headers: {
        ...(who ? { authorization: world.auth[who] } : {}),
        ...(payload !== undefined ? { 'content-type': opts.type ?? 'application/json' } : {}),
        ...opts.headers,
      },
      ...(payload !== undefined ? { payload } : {}),
    });
    return { status: res.statusCode, headers: res.headers, body: res.body, json: () => res.json() };
  };
  /** A 4xx with this code, in the format of the surface the URL belongs to. */
  const refused = (url: string, res: Answer, status: number, code?: string) => {
    expect(
      verdict(url, { statusCode: res.status, headers: res.headers, body: res.body }),
      res.body,
    ).toBeUndefined();
    expect([res.status, code === undefined ? undefined : res.json().code], res.body).toEqual([status, code]);
  };
  const entity = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    type: 'Probe',
    speed: { type: 'Property', value: 1, observedAt: new Date().toISOString() },
    marking: { type: 'Property', value: { tlp: 'CLEAR' } },
    ...extra,
  });

  describe('what reviewers reproduced, each answered with a 4xx now', () => {
    it('a NUL character in a path, a query or a body answers 400, on every surface (was 500)', async () => {
      const nul = 'a\\u0000b';
      const withNul = (o: Record<string, unknown>, key: string) =>
        JSON.stringify({ ...o, [key]: '__NUL__' }).replace('"__NUL__"', `"${nul}"`);
      const cases: Array<[string, string, { raw?: string; type?: string }?]> = [
        ['GET', '/ngsi-ld/v1/entities/urn:ngsi-ld:Probe:a%00b'],
        ['GET', '/ngsi-ld/v1/entities?type=Probe&q=name==%22a%00%22'],
        ['GET', '/ngsi-ld/v1/types/Pro%00be'],
        ['GET', '/ngsi-ld/v1/temporal/entities?type=Probe&idPattern=a%00'],
        ['DELETE', '/ngsi-ld/v1/subscriptions/urn:x:%00'],
        ['GET', '/api/reports/r%00'],
        ['GET', '/api/audit?object=a%00b'],
        ['GET', '/api/users?org=a%00'],
        ['DELETE', '/api/routing/closures/c%00'],
        ['POST', '/api/reports', { raw: withNul({ category: 'other' }, 'title') }],
        ['POST', '/api/orgs', { raw: withNul({ id: 'nul-org', kind: 'police' }, 'name') }],
        [
          'POST',
          '/api/routing/closures',
          { raw: withNul({ geometry: { type: 'Point', coordinates: [7.42, 43.73] } }, 'reason') },
        ],
        ['POST', '/ngsi-ld/v1/entities', { raw: withNul(entity('urn:ngsi-ld:Probe:nul'), 'name') }],
        [
          'POST',
          '/ngsi-ld/v1/subscriptions',
          { raw: withNul({ type: 'Subscription', entities: [{ type: 'Probe' }] }, 'description') },
        ],
        ['POST', '/ingest/v1/default/measurements/Probe/nul-1', { raw: withNul({}, 'status') }],
      ];
      for (const [method, url, opts] of cases) {
        const res = await send('operator', method, url, opts ?? {});
        refused(
          url,
          res,
          400,
          res.json().code === 'CONTEXT_LIVE_INGEST_INVALID'
            ? 'CONTEXT_LIVE_INGEST_INVALID'
            : 'PLATFORM_INVALID_TEXT',
        );
      }
    });

    it('a lone UTF-16 surrogate in JSON answers 400 (was 500)', async () => {
      for (const [url, raw] of [
        ['/api/reports', '{"title":"\\ud800","category":"other"}'],
        [
          '/ngsi-ld/v1/entities',
          JSON.stringify(entity('urn:ngsi-ld:Probe:lone')).replace('"Probe"', '"Pro\\udc00be"'),
        ],
        [
          '/ngsi-ld/v1/entityOperations/upsert',
          `[${JSON.stringify(entity('urn:ngsi-ld:Probe:lone2', { note: 'x' })).replace('"x"', '"\\ud83d"')}]`,
        ],
      ] as const) {
        refused(url, await send('operator', 'POST', url, { raw }), 400, 'PLATFORM_INVALID_TEXT');
      }
      // A well-formed pair (an emoji) is text like any other.
      const ok = await send('operator', 'POST', '/api/reports', {
        raw: '{"title":"Fire \\ud83d\\udd25 at gate 3","category":"other"}',
      });
      expect(ok.status, ok.body).toBe(201);
      expect(ok.json().title).toBe('Fire 🔥 at gate 3');
    });

    it('GET /api/audit?after=Infinity or 1e999 answers 400 (was 500)', async () => {
      for (const after of ['Infinity', '1e999', '-1', 'NaN', '0x10', '1e3', '9007199254740993', '1.5']) {
        const url = `/api/audit?after=${after}`;
        refused(url, await send('admin', 'GET', url), 400, 'PLATFORM_VALIDATION_FAILED');
      }
      expect((await send('admin', 'GET', '/api/audit?after=0&limit=5')).status).toBe(200);
    });

    it('JSON nested 5,000 or 20,000 deep answers 400 on NGSI-LD and the platform (was 500, stack overflow)', async () => {
      for (const depth of [5_000, 20_000]) {
        const arrays = `${'['.repeat(depth)}${']'.repeat(depth)}`;
        const objects = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
        for (const [url, raw] of [
          [
            '/ngsi-ld/v1/entities',
            JSON.stringify(entity('urn:ngsi-ld:Probe:deep')).replace('1,', `${objects},`),
          ],
          ['/ngsi-ld/v1/entityOperations/create', arrays],
          ['/ngsi-ld/v1/subscriptions', objects],
          ['/api/reports', `{"title":"x","category":"other","location":${objects}}`],
          ['/api/routing/closures', `{"geometry":{"type":"Polygon","coordinates":${arrays}}}`],
        ] as const) {
          refused(url, await send('operator', 'POST', url, { raw }), 400, 'PLATFORM_JSON_TOO_DEEP');
        }
        // Ingestion keeps a refused message: it is dead-lettered with the reason.
        const ingest = await send('operator', 'POST', '/ingest/v1/default/entities', { raw: arrays });
        refused('/ingest/v1/default/entities', ingest, 400, 'CONTEXT_LIVE_INGEST_INVALID');
        expect(ingest.json().detail).toMatch(/deeper than 64/);
      }
      // 64 levels is within the limit: a compound value nested that deep is an ordinary value.
      const deep = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
      const raw = (n: number) =>
        JSON.stringify(entity(`urn:ngsi-ld:Probe:deep-${n}`)).replace('1,', `${deep(n)},`);
      expect((await send('operator', 'POST', '/ngsi-ld/v1/entities', { raw: raw(61) })).status).toBe(201);
      const over = await send('operator', 'POST', '/ngsi-ld/v1/entities', { raw: raw(63) });
      refused('/ngsi-ld/v1/entities', over, 400, 'PLATFORM_JSON_TOO_DEEP');
    });

    it('an NGSI-LD entity type of 300 kB answers 400 (was 500: index row size), and so do long ids and names', async () => {
      const big = 'T'.repeat(300_000);
      for (const body of [
        { ...entity('urn:ngsi-ld:Probe:big-type'), type: big },
        entity(`urn:ngsi-ld:Probe:${'i'.repeat(2000)}`),
        entity('urn:ngsi-ld:Probe:big-attr', { [`a${'n'.repeat(600)}`]: { type: 'Property', value: 1 } }),
        entity('urn:ngsi-ld:Probe:big-dataset', {
          level: { type: 'Property', value: 1, datasetId: `urn:ds:${'d'.repeat(600)}` },
        }),
      ]) {
        refused(
          '/ngsi-ld/v1/entities',
          await send('operator', 'POST', '/ngsi-ld/v1/entities', { body }),
          400,
          'CONTEXT_INVALID_ENTITY',
        );
      }
      const batch = await send('operator', 'POST', '/ngsi-ld/v1/entityOperations/upsert', {
        body: [{ ...entity('urn:ngsi-ld:Probe:big-batch'), type: big }],
      });
      expect(batch.status).toBe(207);
      expect(JSON.stringify(batch.json())).toContain('BadRequestData');
      const url = `/ngsi-ld/v1/temporal/retention/${'R'.repeat(3000)}`;
      refused(
        url,
        await send('admin', 'PUT', url, { body: { seconds: 3600 } }),
        400,
        'CONTEXT_LIVE_TEMPORAL_QUERY_INVALID',
      );
      const forever = '/ngsi-ld/v1/temporal/retention/Probe';
      refused(
        forever,
        await send('admin', 'PUT', forever, { body: { seconds: 1e12 } }),
        400,
        'CONTEXT_LIVE_TEMPORAL_QUERY_INVALID',
      );
    });

    it('attributes named constructor, toString, hasOwnProperty or valueOf keep temporal queries working (was 500: list.push is not a function)', async () => {
      const names = ['constructor', 'toString', 'hasOwnProperty', 'valueOf'];
      const at = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
      const attrs = (n: number) =>
        Object.fromEntries(names.map((a) => [a, { type: 'Property', value: n, observedAt: at(10 - n) }]));
      const id = 'urn:ngsi-ld:ProtoProbe:1';
      const created = await send('operator', 'POST', '/ngsi-ld/v1/entities', {
        body: { id, type: 'ProtoProbe', ...attrs(1), marking: { type: 'Property', value: { tlp: 'CLEAR' } } },
      });
      expect(created.status, created.body).toBe(201);
      expect(
        (await send('operator', 'PATCH', `/ngsi-ld/v1/entities/${id}/attrs`, { body: attrs(2) })).status,
      ).toBe(204);
      // History is recorded from the change events, a moment after the answer (longer through NATS).
      const recorded = async () => {
        const res = await send('operator', 'GET', `/ngsi-ld/v1/temporal/entities/${id}`);
        if (res.status !== 200) return false;
        const e = res.json();
        return names.every((n) => Array.isArray(e[n]) && (e[n] as unknown[]).length === 2);
      };
      const deadline = Date.now() + 30_000;
      while (!(await recorded()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      for (const query of [
        '',
        '&options=temporalValues',
        '&aggrMethods=totalCount,max&aggrPeriodDuration=PT1H',
        '&lastN=1',
      ]) {
        const url = `/ngsi-ld/v1/temporal/entities?type=ProtoProbe${query}`;
        const res = await send('operator', 'GET', url);
        expect(res.status, `${url}: ${res.body}`).toBe(200);
        const [e] = res.json() as unknown as Array<Record<string, unknown>>;
        expect(Object.keys(e ?? {})).toEqual(expect.arrayContaining(names));
      }
      const one = await send('operator', 'GET', `/ngsi-ld/v1/temporal/entities/${id}`);
      expect(one.status, one.body).toBe(200);
      for (const url of [
        `/ngsi-ld/v1/entities/${id}?options=keyValues`,
        `/ngsi-ld/v1/entities?type=ProtoProbe&q=constructor>=2`,
        `/ngsi-ld/v1/entities?type=ProtoProbe&q=speed[constructor]==1`,
        `/ngsi-ld/v1/entities?type=ProtoProbe&attrs=toString&lang=constructor`,
        '/ngsi-ld/v1/types/ProtoProbe',
        '/ngsi-ld/v1/attributes/constructor',
      ]) {
        const res = await send('operator', 'GET', url);
        expect(res.status, `${url}: ${res.body}`).toBe(200);
      }
      const q = (
        await send(
          'operator',
          'GET',
          '/ngsi-ld/v1/entities?type=ProtoProbe&q=constructor>=2&options=keyValues',
        )
      ).json();
      expect(q).toEqual([expect.objectContaining({ id, constructor: 2, toString: 2 })]);
      // An attribute the entity lacks is absent, not Object.prototype's member.
      const missing = `/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:fz-1/attrs/isPrototypeOf`;
      refused(missing, await send('operator', 'DELETE', missing), 404, 'CONTEXT_ATTRIBUTE_NOT_FOUND');
      // `__proto__` is refused wherever it would become a key.
      for (const raw of [
        `{"id":"urn:ngsi-ld:ProtoProbe:2","type":"ProtoProbe","__proto__":{"type":"Property","value":1}}`,
        `{"title":"x","category":"other","__proto__":{"admin":true}}`,
      ]) {
        const url = raw.includes('ProtoProbe') ? '/ngsi-ld/v1/entities' : '/api/reports';
        const res = await send('operator', 'POST', url, { raw });
        expect(res.status, res.body).toBe(400);
      }
      const attr = `/ngsi-ld/v1/entities/${id}/attrs/__proto__`;
      refused(
        attr,
        await send('operator', 'PUT', attr, { body: { type: 'Property', value: 1 } }),
        400,
        'CONTEXT_INVALID_ENTITY',
      );
    });

    it('an ingestion body in UTF-16 answers 400 (was 500), and a UTF-16 MQTT payload becomes a dead letter', async () => {
      const text = JSON.stringify({ speed: 42 });
      const url = '/ingest/v1/default/measurements/Probe/utf16';
      for (const [raw, type] of [
        [Buffer.from(text, 'utf16le'), 'application/json'],
        [Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]), 'application/json'],
        [Buffer.from(text, 'utf16le'), 'application/json; charset=utf-16le'],
      ] as const) {
        const res = await send('operator', 'POST', url, { raw, type });
        expect(res.status, res.body).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        expect(
          verdict(url, { statusCode: res.status, headers: res.headers, body: res.body }),
        ).toBeUndefined();
      }
      const { platform } = get();
      const me = (await send('operator', 'GET', '/api/auth/me')).json() as {
        userId: string;
        orgId: string;
        roles: string[];
        defaultMarking: never;
      };
      const outcome = await platform.live.ingestion?.ingest({
        source: 'mqtt',
        topic: 'safecity/v1/default/measurements/Probe/utf16-mqtt',
        payload: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]),
        principal: {
          userId: me.userId,
          orgId: me.orgId,
          roles: me.roles as never,
          defaultMarking: me.defaultMarking,
        },
      });
      expect(outcome).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/not UTF-8/) });
      const nul = await platform.live.ingestion?.ingest({
        source: 'mqtt',
        topic: 'safecity/v1/default/measurements/Probe/nul\u0000topic',
        payload: Buffer.from(text, 'utf16le'),
        principal: {
          userId: me.userId,
          orgId: me.orgId,
          roles: me.roles as never,
          defaultMarking: me.defaultMarking,
        },
      });
      expect(nul).toMatchObject({ status: 'rejected' });
      const letters = (
        await send('operator', 'GET', '/ingest/v1/dead-letters?limit=10')
      ).json() as unknown as Array<{
        topic: string;
        payload: string;
      }>;
      const kept = letters.find((l) => l.topic === 'safecity/v1/default/measurements/Probe/nul\ufffdtopic');
      expect(kept?.payload).toBe(`${text.split('').join('\ufffd')}\ufffd`);
    });

    it('routing bodies and queries are never coerced: "radius_m":"50", "reason":1.5, k:true, limit=1e999 answer 400 (were 2xx)', async () => {
      const point = { type: 'Point', coordinates: [7.4245, 43.7349] };
      for (const [url, body] of [
        ['/api/routing/closures', { geometry: point, radius_m: '50' }],
        ['/api/routing/closures', { geometry: point, radius_m: 50, reason: 1.5 }],
        ['/api/routing/slowdowns', { geometry: point, radius_m: 50, factor: '0.5' }],
        ['/api/routing/dispatch', { incident: [7.4245, 43.7349], k: true, units: [] }],
        ['/api/routing/dispatch', { incident: ['7.4245', '43.7349'], units: [] }],
        ['/api/routing/table', { sources: [[7.42, 43.73]], targets: [[7.43, '43.74']] }],
        ['/api/reports', { title: 12, category: 'other' }],
        [
          '/api/users',
          { username: 'coerced', orgId: 'police', roles: 'viewer', password: 'correct-horse-battery' },
        ],
      ] as const) {
        refused(url, await send('operator', 'POST', url, { body }), 400, 'PLATFORM_VALIDATION_FAILED');
      }
      for (const url of [
        '/api/routing/roads?bbox=7.42,43.73,7.43,43.74&limit=1e999',
        '/api/routing/roads?bbox=7.42,43.73,7.43,43.74&limit=Infinity',
        '/api/routing/roads?bbox=7.42,43.73,7.43,43.74&limit=%205',
        '/api/routing/isochrone?from=7.4245,43.7349&minutes=1e1',
        '/api/reports?limit=0x10',
      ]) {
        refused(url, await send('operator', 'GET', url), 400, 'PLATFORM_VALIDATION_FAILED');
      }
      expect(
        (await send('operator', 'GET', '/api/routing/roads?bbox=7.42,43.73,7.43,43.74&limit=5')).status,
      ).toBe(200);
    });

    it('a Query payload naming null entities or non-string attrs answers 400 (found by the generated test; was 500)', async () => {
      const url = '/ngsi-ld/v1/entityOperations/query';
      for (const body of [
        { type: 'Query', entities: [null] },
        { type: 'Query', entities: 'Vehicle' },
        { type: 'Query', entities: [{ type: 'Vehicle' }], attrs: [1] },
      ]) {
        refused(url, await send('operator', 'POST', url, { body }), 400, 'CONTEXT_INVALID_REQUEST');
      }
    });

    it("Fastify's own refusals and those before any route are in the surface's format: bad JSON, content type, size, 404, 405, 414", async () => {
      const cases: Array<[string, string, number, string, { raw?: string | Buffer; type?: string }?]> = [
        ['POST', '/api/reports', 400, 'PLATFORM_BAD_REQUEST', { raw: '{"title":' }],
        [
          'POST',
          '/api/reports',
          415,
          'PLATFORM_UNSUPPORTED_MEDIA_TYPE',
          { raw: 'title=x', type: 'application/x-www-form-urlencoded' },
        ],
        [
          'POST',
          '/api/reports',
          415,
          'PLATFORM_UNSUPPORTED_MEDIA_TYPE',
          { raw: '{}', type: 'application/json; charset=utf-16' },
        ],
        [
          'POST',
          '/api/reports',
          413,
          'PLATFORM_BODY_TOO_LARGE',
          { raw: `{"title":"${'x'.repeat(1_100_000)}"}` },
        ],
        ['POST', '/ngsi-ld/v1/entities', 400, 'CONTEXT_INVALID_JSON', { raw: '{"id":' }],
        [
          'POST',
          '/ngsi-ld/v1/entities',
          415,
          'PLATFORM_UNSUPPORTED_MEDIA_TYPE',
          { raw: '<x/>', type: 'application/xml' },
        ],
        ['POST', '/ngsi-ld/v1/subscriptions', 400, 'CONTEXT_INVALID_JSON', { raw: '' }],
        [
          'POST',
          '/ingest/v1/default/entities',
          415,
          'PLATFORM_UNSUPPORTED_MEDIA_TYPE',
          { raw: 'x', type: 'text/plain' },
        ],
        ['GET', '/api/no-such-thing', 404, 'PLATFORM_ROUTE_NOT_FOUND'],
        ['GET', '/ngsi-ld/v1/no-such-thing', 404, 'PLATFORM_ROUTE_NOT_FOUND'],
        ['GET', '/ingest/v1/no-such-thing', 404, 'PLATFORM_ROUTE_NOT_FOUND'],
        ['PUT', '/api/reports', 405, 'PLATFORM_METHOD_NOT_ALLOWED'],
        ['PUT', '/ngsi-ld/v1/entities', 405, 'PLATFORM_METHOD_NOT_ALLOWED'],
        ['GET', '/ngsi-ld/v1/subscriptions/x/y', 404, 'PLATFORM_ROUTE_NOT_FOUND'],
        ['DELETE', '/ngsi-ld/v1/temporal/entities', 405, 'PLATFORM_METHOD_NOT_ALLOWED'],
        ['GET', `/api/reports/${'r'.repeat(5000)}`, 414, 'PLATFORM_URI_TOO_LONG'],
        ['GET', `/ngsi-ld/v1/entities/urn:x:${'e'.repeat(5000)}`, 414, 'PLATFORM_URI_TOO_LONG'],
        ['GET', `/ngsi-ld/v1/entities?type=Probe&q=${'a'.repeat(9000)}`, 414, 'PLATFORM_URI_TOO_LONG'],
        ['GET', `/api/reports?before=${'b'.repeat(9000)}`, 414, 'PLATFORM_URI_TOO_LONG'],
        ['GET', '/api/reports/%E0%A4%A', 400, 'PLATFORM_INVALID_TEXT'],
        ['GET', '/ngsi-ld/v1/entities/%C0%AF', 400, 'PLATFORM_INVALID_TEXT'],
      ];
      for (const [method, url, status, code, opts] of cases) {
        refused(url, await send('operator', method, url, opts ?? {}), status, code);
      }
      const put = await send('operator', 'PUT', '/api/reports');
      expect(put.headers.allow).toBe('GET, HEAD, POST');
      const ngsi = await send('operator', 'PUT', '/ngsi-ld/v1/entities');
      // DELETE: purge (DELETE /entities?type=…).
      expect(ngsi.headers.allow).toBe('DELETE, GET, HEAD, POST');
      // Without a token too: the refusal comes first, in the surface's format.
      refused(
        '/ngsi-ld/v1/x',
        await send(undefined, 'GET', '/ngsi-ld/v1/entities/%C0%AF'),
        400,
        'PLATFORM_INVALID_TEXT',
      );
    });

    it('says X-Content-Type-Options: nosniff on every answer, success, refusal or stream', async () => {
      for (const [who, method, url] of [
        ['operator', 'GET', '/api/orgs'],
        [undefined, 'GET', '/api/orgs'],
        ['operator', 'GET', '/ngsi-ld/v1/types'],
        ['operator', 'GET', '/nowhere'],
        [undefined, 'GET', '/health'],
        [undefined, 'GET', '/openapi.json'],
        [undefined, 'GET', '/docs'],
        ['operator', 'GET', '/api/reports/%00'],
      ] as const) {
        const res = await send(who, method, url);
        expect(res.headers['x-content-type-options'], `${url} ${res.status}`).toBe('nosniff');
      }
      const { platform, world } = get();
      const stream = await platform.server.inject({
        method: 'GET',
        url: '/api/stream',
        headers: { authorization: world.auth.operator },
        payloadAsStream: true,
      });
      expect([stream.statusCode, stream.headers['x-content-type-options']]).toEqual([200, 'nosniff']);
      stream.stream().destroy();
    });
  });
}

function describePlatform(
  label: string,
  envOf: () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>,
) {
  describe(`hostile input at every operation of /openapi.json (${label})`, () => {
    let platform: Platform;
    let world: World;
    let cleanup: () => Promise<void> = async () => {};
    beforeAll(async () => {
      const { env, cleanup: c } = await envOf();
      cleanup = c;
      platform = await createPlatform(
        loadConfig({
          SAFECITY_MQTT_PORT: '0',
          PORT: '0',
          SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
          SAFECITY_ROADS: 'monaco',
          ...env,
        }),
        {
          log: process.env.SAFECITY_FUZZ_LOG
            ? pino({ level: 'error' }, pino.destination(process.env.SAFECITY_FUZZ_LOG))
            : pino({ level: 'silent' }),
        },
      );
      await platform.routing.whenLoaded();
      world = await seed(platform);
    });
    afterAll(async () => {
      await platform?.shutdown();
      await cleanup();
    });

    reproducedByReviewers(() => ({ platform, world }));

    it('answers every hostile request with a 4xx in its surface format, never a 5xx', async () => {
      const { ops, sent, failures } = await run(platform, world, label);
      expect(ops.length).toBeGreaterThanOrEqual(80);
      expect(sent).toBeGreaterThanOrEqual(ops.length * ROLES.length * Math.min(PER_OPERATION, 20));
      expect(failures.slice(0, 60), `${failures.length} failures (seed ${SEED})`).toEqual([]);
    }, 600_000);
  });
}

describePlatform('PGlite', () => embeddedTestEnv('hostile'));

describe.skipIf(SERVER_SKIP)(`server preset${SERVER_SKIP ? ` (skipped: ${SERVER_SKIP})` : ''}`, () => {
  describePlatform('PostgreSQL + NATS', () => serverPresetTestEnv('hostile'));
});
