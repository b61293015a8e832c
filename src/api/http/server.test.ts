import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../kernel/errors.ts';
import type { Principal } from './principal.ts';
import { STATUS_OF_KIND, toAppError } from './problem.ts';
import { buildServer, WEB_APP_CSP } from './server.ts';

const alice: Principal = {
  userId: 'u-alice',
  username: 'alice',
  orgId: 'police',
  roles: ['operator'],
  kind: 'user',
  readKeys: ['public', 'org:police'],
  defaultMarking: { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } },
};

// A tiny surface to exercise the common layer: schema validation, auth, errors thrown by a module.
const echo: FastifyPluginAsync = async (app) => {
  app.post(
    '/api/echo',
    {
      schema: {
        summary: 'Echo',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['text'],
          properties: { text: { type: 'string', maxLength: 20 } },
        },
      },
    },
    async (request) => ({ text: (request.body as { text: string }).text, by: request.principal?.username }),
  );
  app.get('/api/missing-thing', async () => {
    throw new AppError('ACCESS_OBJECT_NOT_FOUND', 'no report r-1 is visible to you');
  });
  app.get('/api/boom', async () => {
    throw new Error('SELECT secret FROM users failed at /srv/db');
  });
  app.get('/api/public-feed', { config: { public: true } }, async (request) => ({
    who: request.principal?.username ?? 'anonymous',
  }));
};

describe('HTTP server: the common layer of every API', () => {
  let app: FastifyInstance;
  let storeUp = true;
  const logs: string[] = [];

  beforeAll(async () => {
    app = await buildServer({
      logger: pino({ level: 'info' }, { write: (s: string) => void logs.push(s) }),
      bodyLimit: 2048,
      instanceId: 'test-1',
      version: '0.0.0-test',
      authenticate: async (header) => {
        if (header === 'Bearer good') return alice;
        if (header === 'Bearer old') throw new AppError('AUTH_TOKEN_EXPIRED');
        throw new AppError('AUTH_TOKEN_INVALID');
      },
      healthChecks: [
        {
          name: 'store',
          check: async () => {
            if (!storeUp) throw new Error('connection refused');
          },
        },
      ],
      isReady: () => true,
      surfaces: [{ name: 'echo', plugin: echo }],
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('answers an authenticated call with the principal', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/echo',
      headers: { authorization: 'Bearer good' },
      payload: { text: 'hi' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ text: 'hi', by: 'alice' });
  });

  it('answers 401 problem+json without a token, with WWW-Authenticate', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/echo', payload: { text: 'hi' } });
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(res.json()).toMatchObject({
      status: 401,
      code: 'AUTH_TOKEN_MISSING',
      type: 'urn:safecity:error:AUTH_TOKEN_MISSING',
      instance: '/api/echo',
    });
  });

  it('answers 401 for a forged or expired token', async () => {
    const forged = await app.inject({
      method: 'GET',
      url: '/api/missing-thing',
      headers: { authorization: 'Bearer forged' },
    });
    expect([forged.statusCode, forged.json().code]).toEqual([401, 'AUTH_TOKEN_INVALID']);
    const old = await app.inject({
      method: 'GET',
      url: '/api/missing-thing',
      headers: { authorization: 'Bearer old' },
    });
    expect([old.statusCode, old.json().code]).toEqual([401, 'AUTH_TOKEN_EXPIRED']);
  });

  it('rejects malformed JSON with 400', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/echo',
      headers: { authorization: 'Bearer good', 'content-type': 'application/json' },
      payload: '{"text": "hi"',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('PLATFORM_BAD_REQUEST');
  });

  it('rejects unknown fields with 400 instead of dropping them', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/echo',
      headers: { authorization: 'Bearer good' },
      payload: { text: 'hi', isAdmin: true },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'PLATFORM_VALIDATION_FAILED' });
    expect(res.json().detail).toMatch(/additional properties/);
  });

  it('rejects a too long field and a missing field with 400', async () => {
    const long = await app.inject({
      method: 'POST',
      url: '/api/echo',
      headers: { authorization: 'Bearer good' },
      payload: { text: 'x'.repeat(21) },
    });
    expect(long.statusCode).toBe(400);
    const missing = await app.inject({
      method: 'POST',
      url: '/api/echo',
      headers: { authorization: 'Bearer good' },
      payload: {},
    });
    expect(missing.statusCode).toBe(400);
  });

  it('rejects an oversized body with 413', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/echo',
      headers: { authorization: 'Bearer good', 'content-type': 'application/json' },
      payload: JSON.stringify({ text: 'x'.repeat(5000) }),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toBe('PLATFORM_BODY_TOO_LARGE');
  });

  it('rejects a prototype-poisoning body', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/echo',
      headers: { authorization: 'Bearer good', 'content-type': 'application/json' },
      payload: '{"text":"a","__proto__":{"admin":true}}',
    });
    expect(res.statusCode).toBe(400);
  });

  it('rejects an unsupported media type with 415', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/echo',
      headers: { authorization: 'Bearer good', 'content-type': 'application/xml' },
      payload: '<text>hi</text>',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().code).toBe('PLATFORM_UNSUPPORTED_MEDIA_TYPE');
  });

  it('maps a module error code to its status', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/missing-thing',
      headers: { authorization: 'Bearer good' },
    });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({
      code: 'ACCESS_OBJECT_NOT_FOUND',
      detail: 'no report r-1 is visible to you',
      title: 'Unknown object',
    });
  });

  it('hides the cause of an internal error from the caller but logs it', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/boom',
      headers: { authorization: 'Bearer good' },
    });
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toMatch(/SELECT|secret|\/srv/);
    expect(logs.some((l) => l.includes('SELECT secret FROM users failed'))).toBe(true);
  });

  it('answers unknown routes with 404 problem+json, not 401', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/nothing-here' });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('PLATFORM_ROUTE_NOT_FOUND');
  });

  it('serves public routes to anonymous callers', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/public-feed' });
    expect(res.json()).toEqual({ who: 'anonymous' });
    const authed = await app.inject({
      method: 'GET',
      url: '/api/public-feed',
      headers: { authorization: 'Bearer good' },
    });
    expect(authed.json()).toEqual({ who: 'alice' });
  });

  it('never logs the Authorization header', async () => {
    logs.length = 0;
    await app.inject({
      method: 'POST',
      url: '/api/echo',
      headers: { authorization: 'Bearer good' },
      payload: { text: 'hi' },
    });
    expect(logs.join('\n')).not.toMatch(/Bearer good/);
  });

  it('reports health: 200 when the store answers, 503 when it does not', async () => {
    const up = await app.inject({ method: 'GET', url: '/health' });
    expect(up.statusCode).toBe(200);
    expect(up.json()).toMatchObject({
      status: 'up',
      ready: true,
      instance: 'test-1',
      checks: { store: { status: 'up' } },
    });
    storeUp = false;
    const down = await app.inject({ method: 'GET', url: '/health/ready' });
    storeUp = true;
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({
      status: 'down',
      checks: { store: { status: 'down', error: 'connection refused' } },
    });
    const live = await app.inject({ method: 'GET', url: '/health/live' });
    expect(live.statusCode).toBe(200);
  });

  it('exposes Prometheus metrics by route pattern', async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toMatch(
      /safecity_http_requests_total\{method="POST",route="\/api\/echo",status="200"\} \d+/,
    );
    expect(res.body).toMatch(/safecity_http_request_duration_seconds_bucket/);
    expect(res.body).toMatch(/safecity_process_cpu_seconds_total/);
  });

  it('publishes an OpenAPI 3.1 document and the docs page', async () => {
    const doc = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(doc.statusCode).toBe(200);
    const json = doc.json();
    expect(json.openapi).toBe('3.1.0');
    expect(json.paths['/api/echo'].post.summary).toBe('Echo');
    expect(json.components.securitySchemes.bearer.scheme).toBe('bearer');
    const page = await app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
  });
});

// Another standard's surface, with its own error shape, to show that errors raised before its routes run
// (router, parser, 404, 405, 414) reach its handler and not problem+json.
const otherStandard: FastifyPluginAsync = async (app) => {
  app.setErrorHandler((error, _request, reply) => {
    const e = toAppError(error);
    reply
      .status(STATUS_OF_KIND[e.kind])
      .type('application/vnd.other+json')
      .send({ failure: { code: e.code, status: STATUS_OF_KIND[e.kind] } });
  });
  app.post('/std/things', async (request) => ({ got: request.body }));
  app.get('/std/things/:id', async (request) => request.params);
};
const otherFormat = (error: unknown, _request: unknown, reply: import('fastify').FastifyReply) => {
  const e = toAppError(error);
  reply
    .status(STATUS_OF_KIND[e.kind])
    .type('application/vnd.other+json')
    .send({ failure: { code: e.code, status: STATUS_OF_KIND[e.kind] } });
};

const numbers: FastifyPluginAsync = async (app) => {
  app.post(
    '/api/measure',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { n: { type: 'integer', minimum: 0, maximum: 1000 }, exact: { type: 'boolean' } },
        },
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { radius: { type: 'number' }, label: { type: 'string' }, on: { type: 'boolean' } },
        },
      },
    },
    async (request) => ({ query: request.query, body: request.body }),
  );
};

describe('HTTP server: the edge policy every surface shares', () => {
  let app: FastifyInstance;
  let ready = true;
  const web = mkdtempSync(join(tmpdir(), 'safecity-web-root-'));
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>app</title>');

  beforeAll(async () => {
    app = await buildServer({
      logger: pino({ level: 'silent' }),
      bodyLimit: 64 * 1024,
      instanceId: 'test-2',
      version: '0.0.0-test',
      authenticate: async () => alice,
      healthChecks: [],
      isReady: () => ready,
      surfaces: [
        { name: 'numbers', plugin: numbers },
        {
          name: 'other',
          plugin: otherStandard,
          errors: { prefixes: ['/std/'], handler: otherFormat, mediaType: 'application/vnd.other+json' },
        },
      ],
      protectedPrefixes: ['/api/'],
      webRoot: web,
    });
  });
  afterAll(async () => {
    await app?.close();
    rmSync(web, { recursive: true, force: true });
  });

  const post = (url: string, payload: string | Buffer, type = 'application/json') =>
    app.inject({
      method: 'POST',
      url,
      headers: { authorization: 'Bearer good', 'content-type': type },
      payload,
    });

  it('never coerces a body: a number is not a string, a boolean not a number', async () => {
    expect((await post('/api/measure', '{"radius":50,"label":"a","on":true}')).json().body).toEqual({
      radius: 50,
      label: 'a',
      on: true,
    });
    for (const body of [
      '{"radius":"50"}',
      '{"label":1.5}',
      '{"on":"true"}',
      '{"radius":true}',
      '{"radius":1e999}',
    ]) {
      const res = await post('/api/measure', body);
      expect([res.statusCode, res.headers['content-type']], body).toEqual([
        400,
        'application/problem+json; charset=utf-8',
      ]);
    }
  });

  it('reads plain decimal numbers and true/false from a query string, and nothing else', async () => {
    expect((await post('/api/measure?n=42&exact=true', '{}')).json().query).toEqual({ n: 42, exact: true });
    for (const n of [
      'Infinity',
      '1e999',
      '1e3',
      '0x10',
      '%205',
      '-1',
      '1001',
      '1.5',
      'NaN',
      '',
      '9007199254740993',
    ]) {
      const res = await post(`/api/measure?n=${n}`, '{}');
      expect([res.statusCode, res.json().code], n).toEqual([400, 'PLATFORM_VALIDATION_FAILED']);
    }
    expect((await post('/api/measure?exact=1', '{}')).statusCode).toBe(400);
  });

  it('refuses JSON deeper than 64 levels, not in UTF-8, or with NUL, lone surrogates or __proto__', async () => {
    const cases: Array<[string | Buffer, string, number, string]> = [
      [
        `{"label":"x","radius":${'['.repeat(65)}${']'.repeat(65)}}`,
        'application/json',
        400,
        'PLATFORM_JSON_TOO_DEEP',
      ],
      ['{"label":"a\\u0000b"}', 'application/json', 400, 'PLATFORM_INVALID_TEXT'],
      ['{"label":"\\ud800"}', 'application/json', 400, 'PLATFORM_INVALID_TEXT'],
      [Buffer.from('{"label":"x"}', 'utf16le'), 'application/json', 400, 'PLATFORM_INVALID_TEXT'],
      [Buffer.from([0x7b, 0xff, 0x7d]), 'application/json', 400, 'PLATFORM_INVALID_TEXT'],
      ['{"label":"x"}', 'application/json; charset=iso-8859-1', 415, 'PLATFORM_UNSUPPORTED_MEDIA_TYPE'],
      ['{"label":"x","__proto__":{"a":1}}', 'application/json', 400, 'PLATFORM_BAD_REQUEST'],
      ['', 'application/json', 400, 'PLATFORM_BAD_REQUEST'],
    ];
    for (const [payload, type, status, code] of cases) {
      const res = await post('/api/measure', payload, type);
      expect([res.statusCode, res.json().code], String(payload).slice(0, 40)).toEqual([status, code]);
    }
    expect((await post('/api/measure', '\ufeff{"label":"BOM is dropped"}')).statusCode).toBe(200);
    expect(
      (await post('/api/measure', '{"label":"charset ok"}', 'application/json; charset=UTF-8')).statusCode,
    ).toBe(200);
  });

  it('refuses NUL and lone surrogates in the URL and headers, and malformed percent-encodings', async () => {
    for (const url of [
      '/api/measure?n=%00',
      '/api/me%00asure',
      '/api/measure?x=%ED%A0%80',
      '/api/measure?x=%E0%A4%A',
    ]) {
      const res = await post(url, '{}');
      expect([res.statusCode, res.json().code], url).toEqual([400, 'PLATFORM_INVALID_TEXT']);
    }
    const header = await app.inject({
      method: 'POST',
      url: '/api/measure',
      headers: { authorization: 'Bearer good', 'content-type': 'application/json', 'x-thing': 'a\u0000b' },
      payload: '{}',
    });
    expect([header.statusCode, header.json().code]).toEqual([400, 'PLATFORM_INVALID_TEXT']);
  });

  it('answers 405 with Allow for a path that has other methods, 404 for none, 414 for long URLs', async () => {
    const wrong = await app.inject({ method: 'DELETE', url: '/api/measure' });
    expect([wrong.statusCode, wrong.headers.allow, wrong.json().code]).toEqual([
      405,
      'POST',
      'PLATFORM_METHOD_NOT_ALLOWED',
    ]);
    expect((await app.inject({ method: 'GET', url: '/api/nowhere' })).statusCode).toBe(404);
    const longUrl = await post(`/api/measure?label=${'x'.repeat(9000)}`, '{}');
    expect([longUrl.statusCode, longUrl.json().code]).toEqual([414, 'PLATFORM_URI_TOO_LONG']);
  });

  it("answers what happens before another surface's routes run in that surface's format", async () => {
    const cases: Array<[string, string, string | undefined, number, string]> = [
      ['GET', '/std/nowhere', undefined, 404, 'PLATFORM_ROUTE_NOT_FOUND'],
      ['DELETE', '/std/things', undefined, 405, 'PLATFORM_METHOD_NOT_ALLOWED'],
      ['GET', `/std/things/${'i'.repeat(5000)}`, undefined, 414, 'PLATFORM_URI_TOO_LONG'],
      ['GET', '/std/things/%E0%A4%A', undefined, 400, 'PLATFORM_INVALID_TEXT'],
      ['GET', '/std/things/a%00b', undefined, 400, 'PLATFORM_INVALID_TEXT'],
      ['POST', '/std/things', '{"a":', 400, 'PLATFORM_BAD_REQUEST'],
      ['POST', '/std/things', `${'['.repeat(100)}${']'.repeat(100)}`, 400, 'PLATFORM_JSON_TOO_DEEP'],
      ['POST', '/std/things', `"${'x'.repeat(70_000)}"`, 413, 'PLATFORM_BODY_TOO_LARGE'],
    ];
    for (const [method, url, payload, status, code] of cases) {
      const res = await app.inject({
        method: method as 'GET',
        url,
        ...(payload !== undefined ? { payload, headers: { 'content-type': 'application/json' } } : {}),
      });
      expect([res.statusCode, res.headers['content-type'], res.json()], url.slice(0, 40)).toEqual([
        status,
        'application/vnd.other+json; charset=utf-8',
        { failure: { code, status } },
      ]);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('serves the web app with its Content-Security-Policy, and nosniff on everything', async () => {
    const page = await app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toBe(WEB_APP_CSP);
    expect(WEB_APP_CSP).toMatch(/script-src 'self';/);
    expect(WEB_APP_CSP).not.toMatch(/unsafe-inline|unsafe-eval/);
    for (const url of ['/', '/health/live', '/openapi.json', '/nowhere', '/std/nowhere']) {
      expect((await app.inject({ method: 'GET', url })).headers['x-content-type-options'], url).toBe(
        'nosniff',
      );
    }
  });

  it("answers the HTTP parser's own refusals in the surface's format (431 for huge headers)", async () => {
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = new URL(address);
    const raw = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => {
          socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
        });
        let text = '';
        socket.on('data', (d) => {
          text += d.toString();
        });
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
    const api = await raw('/api/measure');
    expect(api).toMatch(/^HTTP\/1.1 431 /);
    expect(api).toMatch(/Content-Type: application\/problem\+json/);
    expect(api).toMatch(/X-Content-Type-Options: nosniff/);
    expect(JSON.parse(api.slice(api.indexOf('\r\n\r\n') + 4))).toMatchObject({
      status: 431,
      code: 'PLATFORM_HEADERS_TOO_LARGE',
    });
    expect(await raw('/std/things')).toMatch(/Content-Type: application\/vnd.other\+json/);
  });

  it('refuses new requests in the surface format while shutting down; health still answers', async () => {
    ready = false;
    try {
      const res = await app.inject({ method: 'GET', url: '/std/things/1' });
      expect([res.statusCode, res.json()]).toEqual([
        503,
        { failure: { code: 'PLATFORM_SHUTTING_DOWN', status: 503 } },
      ]);
      expect(res.headers.connection).toBe('close');
      expect((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(503);
    } finally {
      ready = true;
    }
  });
});
