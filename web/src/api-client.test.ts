import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, ApiError, isNotConfigured } from './api-client.ts';

describe('ApiClient against a real HTTP server', () => {
  let server: Server;
  let base: string;
  const seen: { auth?: string | undefined; body?: string } = {};

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.auth = req.headers.authorization;
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.body = body;
        const problem = (status: number, p: object) => {
          res.writeHead(status, { 'content-type': 'application/problem+json' });
          res.end(JSON.stringify(p));
        };
        if (req.url === '/ok') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"items":[1]}');
        } else if (req.url === '/gone') {
          res.writeHead(204);
          res.end();
        } else if (req.url === '/denied') {
          problem(401, {
            title: 'Token expired',
            status: 401,
            detail: 'the token expired',
            code: 'AUTH_TOKEN_EXPIRED',
          });
        } else if (req.url === '/closure') {
          problem(404, {
            title: 'Unknown closure',
            status: 404,
            detail: 'no closure x',
            code: 'ROUTING_CLOSURE_NOT_FOUND',
          });
        } else if (req.url === '/html') {
          res.writeHead(502, { 'content-type': 'text/html' });
          res.end('<h1>Bad gateway</h1>');
        } else {
          problem(404, {
            title: 'No such route',
            status: 404,
            detail: `no route ${req.url}`,
            code: 'PLATFORM_ROUTE_NOT_FOUND',
          });
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sends the bearer token and JSON, and reads JSON and 204', async () => {
    const api = new ApiClient({ baseUrl: base });
    api.token = 'tok';
    expect(await api.post('/ok', { a: 1 })).toEqual({ items: [1] });
    expect(seen.auth).toBe('Bearer tok');
    expect(seen.body).toBe('{"a":1}');
    expect(await api.delete('/gone')).toBeUndefined();
  });

  it('turns problem+json into ApiError with the server’s detail and code', async () => {
    const api = new ApiClient({ baseUrl: base });
    const err = await api.get('/closure').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 404, message: 'no closure x', code: 'ROUTING_CLOSURE_NOT_FOUND' });
    expect(isNotConfigured(err)).toBe(false);
    expect(isNotConfigured(await api.get('/api/routing/route').catch((e: unknown) => e))).toBe(true);
    expect(await api.get('/html').catch((e: unknown) => e)).toMatchObject({
      status: 502,
      message: '502 Bad Gateway',
    });
  });

  it('calls onUnauthorized once a signed-in session gets 401, not before sign-in', async () => {
    let calls = 0;
    const api = new ApiClient({ baseUrl: base, onUnauthorized: () => calls++ });
    await api.get('/denied').catch(() => {});
    expect(calls).toBe(0);
    api.token = 'old';
    const err = await api.get('/denied').catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 401, message: 'the token expired' });
    expect(calls).toBe(1);
  });

  it('does not sign out for a 401 met by a call made with a token that a password change was replacing', async () => {
    let calls = 0;
    const api = new ApiClient({ baseUrl: base, onUnauthorized: () => calls++ });
    api.token = 'before-the-change';
    let release: () => void = () => {};
    const change = api.replacingToken(async () => {
      await new Promise<void>((r) => {
        release = r;
      });
      api.token = 'after-the-change';
    });
    const refused = api.get('/denied').catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    release();
    await change;
    expect(await refused).toMatchObject({ status: 401 });
    expect(calls).toBe(0);
    // A 401 for the token of the moment is the end of the session.
    await api.get('/denied').catch(() => {});
    expect(calls).toBe(1);
  });

  it('says the platform cannot be reached when the connection fails', async () => {
    const api = new ApiClient({ baseUrl: 'http://127.0.0.1:1' });
    expect(await api.get('/ok').catch((e: unknown) => e)).toMatchObject({
      status: 0,
      message: 'the platform cannot be reached; check the network',
    });
  });
});
