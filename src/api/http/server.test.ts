import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../kernel/errors.ts';
import type { Principal } from './principal.ts';
import { buildServer } from './server.ts';

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
