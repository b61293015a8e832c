import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { createPlatform, type Platform } from './platform.ts';
import { embeddedTestEnv, SERVER_SKIP, seedWorld, serverPresetTestEnv } from './testing.ts';

const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';
const ROUTE_MISSES = ['PLATFORM_ROUTE_NOT_FOUND', 'PLATFORM_METHOD_NOT_ALLOWED'];

// biome-ignore lint/suspicious/noExplicitAny: OpenAPI objects are open-ended
type Doc = any;

interface Operation {
  method: string;
  path: string;
  body: unknown;
  contentType: string | undefined;
}

function ngsiLdOperations(doc: Doc): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries<Doc>(doc.paths)) {
    if (!path.startsWith('/ngsi-ld/')) continue;
    for (const [method, op] of Object.entries<Doc>(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const content = op.requestBody?.content as Record<string, Doc> | undefined;
      const contentType = content ? Object.keys(content)[0] : undefined;
      const media = contentType ? content?.[contentType] : undefined;
      const body = media?.example ?? Object.values<Doc>(media?.examples ?? {})[0]?.value;
      ops.push({ method: method.toUpperCase(), path, body, contentType });
    }
  }
  // Deletions last, so that what the others name still exists while they run.
  return ops.sort((a, b) => Number(a.method === 'DELETE') - Number(b.method === 'DELETE'));
}

function describePlatform(
  label: string,
  envOf: () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>,
) {
  describe(`a trailing slash is the same path (${label})`, () => {
    let platform: Platform;
    let auth: string;
    let cleanup: () => Promise<void> = async () => {};
    const ids: Record<string, string> = {};

    const send = (method: string, url: string, body?: unknown, contentType = 'application/json') =>
      platform.server.inject({
        method: method as 'GET',
        url,
        headers: {
          authorization: auth,
          ...(body === undefined ? {} : { 'content-type': contentType }),
        },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });

    beforeAll(async () => {
      const { env, cleanup: c } = await envOf();
      cleanup = c;
      platform = await createPlatform(
        loadConfig({
          SAFECITY_MQTT_PORT: '0',
          PORT: '0',
          SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
          ...env,
        }),
        { log: pino({ level: 'silent' }) },
      );
      const accounts = await seedWorld(platform, ADMIN_PASSWORD, PW, {
        orgs: [['police', 'police']],
        users: [['op', 'police', 'operator']],
      });
      auth = accounts.op as string;
    });
    afterAll(async () => {
      await platform?.shutdown();
      await cleanup();
    });

    it('creates, updates, lists and deletes through paths ending with a slash', async () => {
      const id = 'urn:ngsi-ld:Vehicle:slash-1';
      const created = await send('POST', '/ngsi-ld/v1/entities/', {
        id,
        type: 'Vehicle',
        speed: { type: 'Property', value: 12 },
      });
      expect(created.statusCode, created.body).toBe(201);
      expect(created.headers.location).toBe(`/ngsi-ld/v1/entities/${encodeURIComponent(id)}`);
      const patched = await send('PATCH', `/ngsi-ld/v1/entities/${id}/attrs/`, {
        speed: { type: 'Property', value: 30 },
      });
      expect(patched.statusCode, patched.body).toBe(204);
      const appended = await send('POST', `/ngsi-ld/v1/entities/${id}/attrs/`, {
        brand: { type: 'Property', value: 'Mercedes' },
      });
      expect(appended.statusCode, appended.body).toBe(204);
      const read = await send('GET', `/ngsi-ld/v1/entities/${id}/?options=keyValues`);
      expect(read.statusCode).toBe(200);
      expect(read.json()).toEqual({ id, type: 'Vehicle', speed: 30, brand: 'Mercedes' });
      const batch = await send('POST', '/ngsi-ld/v1/entityOperations/create/', [
        { id: 'urn:ngsi-ld:Vehicle:slash-2', type: 'Vehicle' },
      ]);
      expect(batch.statusCode, batch.body).toBe(201);
      const listed = await send('GET', '/ngsi-ld/v1/entities/?type=Vehicle&options=keyValues');
      expect(listed.statusCode).toBe(200);
      expect((listed.json() as { id: string }[]).map((e) => e.id).sort()).toEqual([
        id,
        'urn:ngsi-ld:Vehicle:slash-2',
      ]);
      const types = await send('GET', '/ngsi-ld/v1/types/');
      expect(types.json()).toMatchObject({ typeList: ['Vehicle'] });
      const sub = await send('POST', '/ngsi-ld/v1/subscriptions/', {
        type: 'Subscription',
        entities: [{ type: 'Vehicle' }],
        notification: { endpoint: { uri: 'https://receiver.example.org/notify' } },
      });
      expect(sub.statusCode, sub.body).toBe(201);
      ids.subscription = decodeURIComponent(String(sub.headers.location).split('/').at(-1) ?? '');
      const ctx = await send('POST', '/ngsi-ld/v1/jsonldContexts/', {
        '@context': { slash: 'https://example.org/slash#' },
      });
      expect(ctx.statusCode, ctx.body).toBe(201);
      ids.context = decodeURIComponent(String(ctx.headers.location).split('/').at(-1) ?? '');
      ids.entity = id;
      const deleted = await send('DELETE', '/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:slash-2/');
      expect(deleted.statusCode, deleted.body).toBe(204);
      expect((await send('GET', '/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:slash-2')).statusCode).toBe(404);
    });

    it('answers a path without its last segment, slash and all, with 405 and the methods it has', async () => {
      // ETSI 032_01_01 / 029_01_01: DELETE or PATCH /subscriptions/ (no id) is 405.
      for (const method of ['DELETE', 'PATCH']) {
        const res = await send(method, '/ngsi-ld/v1/subscriptions/', method === 'PATCH' ? {} : undefined);
        expect(res.statusCode, `${method}: ${res.body}`).toBe(405);
        expect(String(res.headers.allow)).toContain('POST');
        expect(res.json()).toMatchObject({ status: 405 });
      }
    });

    it('answers a subscription id that is not a URI with 400 BadRequestData, an unknown one with 404', async () => {
      for (const method of ['GET', 'DELETE', 'PATCH']) {
        const body = method === 'PATCH' ? { type: 'Subscription', description: 'x' } : undefined;
        const bad = await send(method, '/ngsi-ld/v1/subscriptions/InvalidUri', body);
        expect([bad.statusCode, (bad.json() as { type: string }).type], method).toEqual([
          400,
          'https://uri.etsi.org/ngsi-ld/errors/BadRequestData',
        ]);
        const unknown = await send(
          method,
          '/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:unknown',
          body,
        );
        expect([unknown.statusCode, (unknown.json() as { type: string }).type], method).toEqual([
          404,
          'https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound',
        ]);
      }
    });

    it('links the previous and next pages of subscriptions (ETSI 031_02)', async () => {
      for (const n of [2, 3]) {
        const sub = await send('POST', '/ngsi-ld/v1/subscriptions', {
          type: 'Subscription',
          entities: [{ type: 'Vehicle' }],
          notification: { endpoint: { uri: `https://receiver.example.org/notify/${n}` } },
        });
        expect(sub.statusCode, sub.body).toBe(201);
      }
      const page = (query: string) =>
        platform.server.inject({
          method: 'GET',
          url: `/ngsi-ld/v1/subscriptions?${query}`,
          headers: { authorization: auth, accept: 'application/ld+json' },
        });
      const second = await page('limit=1&offset=1');
      expect(second.json()).toHaveLength(1);
      expect(second.headers.link).toEqual([
        '</ngsi-ld/v1/subscriptions?limit=1&offset=0>;rel="prev";type="application/ld+json"',
        '</ngsi-ld/v1/subscriptions?limit=1&offset=2>;rel="next";type="application/ld+json"',
      ]);
      const last = await page('limit=1&offset=2');
      expect(last.headers.link).toBe(
        '</ngsi-ld/v1/subscriptions?limit=1&offset=1>;rel="prev";type="application/ld+json"',
      );
      const all = await page('limit=15&offset=0');
      expect(all.json()).toHaveLength(3);
      expect(all.headers.link).toBeUndefined();
    });

    it('takes every NGSI-LD operation of /openapi.json with a trailing slash, as without it', async () => {
      const doc = (await send('GET', '/openapi.json')).json();
      const ops = ngsiLdOperations(doc);
      expect(ops.length).toBeGreaterThanOrEqual(30);
      const values: Record<string, string> = {
        entityId: ids.entity as string,
        attrId: 'speed',
        type: 'Vehicle',
        entityType: 'Vehicle',
        contextId: ids.context as string,
      };
      const pathValue = (path: string, name: string) =>
        name === 'id'
          ? path.includes('/subscriptions/')
            ? (ids.subscription as string)
            : (ids.entity as string)
          : (values[name] ?? 'urn:ngsi-ld:Unknown:slash');
      const misses: string[] = [];
      const differences: string[] = [];
      for (const op of ops) {
        const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) =>
          encodeURIComponent(pathValue(op.path, name)),
        );
        const query = op.path === '/ngsi-ld/v1/entities' && op.method === 'GET' ? '?type=Vehicle' : '';
        const withSlash = await send(op.method, `${path}/${query}`, op.body, op.contentType);
        const code = withSlash.statusCode >= 400 ? (withSlash.json() as { code?: string }).code : undefined;
        if (withSlash.statusCode === 405 || (code && ROUTE_MISSES.includes(code)))
          misses.push(`${op.method} ${op.path}/ → ${withSlash.statusCode} ${withSlash.body.slice(0, 160)}`);
        if (op.method === 'GET') {
          const without = await send(op.method, `${path}${query}`);
          if (without.statusCode !== withSlash.statusCode || without.body !== withSlash.body)
            differences.push(
              `GET ${op.path}: ${without.statusCode} without the slash, ${withSlash.statusCode} with it`,
            );
        }
      }
      expect(misses).toEqual([]);
      expect(differences).toEqual([]);
    });

    it('refuses a parameter the operation does not define with 400 InvalidRequest, on every NGSI-LD operation (ETSI 059_01)', async () => {
      const doc = (await send('GET', '/openapi.json')).json();
      const ops = ngsiLdOperations(doc);
      const wrong: string[] = [];
      for (const op of ops) {
        const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) =>
          encodeURIComponent(name === 'attrId' ? 'speed' : (ids.entity as string)),
        );
        // Refused before the operation runs: nothing is created, changed or deleted.
        const r = await send(op.method, `${path}?invalidParams=invalidValue`, op.body, op.contentType);
        const body = r.json() as { type?: string; code?: string };
        if (r.statusCode !== 400 || body.type !== 'https://uri.etsi.org/ngsi-ld/errors/InvalidRequest')
          wrong.push(`${op.method} ${op.path}: ${r.statusCode} ${r.body.slice(0, 160)}`);
      }
      expect(wrong).toEqual([]);
      // What an operation defines passes the check, `local=true` on reads included (clause 6.3.18).
      for (const url of [
        '/ngsi-ld/v1/entities?type=Vehicle&local=true',
        `/ngsi-ld/v1/entities/${encodeURIComponent(ids.entity as string)}?local=true&options=keyValues`,
        '/ngsi-ld/v1/types?local=true&details=true',
        '/ngsi-ld/v1/attributes?local=true',
        '/ngsi-ld/v1/subscriptions?limit=5&count=true',
      ]) {
        const r = await send('GET', url);
        // The entity is gone by now (the operations above deleted it): its own 404 is the operation's answer.
        expect([url, r.statusCode === 200 || r.statusCode === 404]).toEqual([url, true]);
        expect((r.json() as { code?: string }).code).not.toBe('CONTEXT_UNKNOWN_PARAMETER');
      }
      // The ingestion surface is the platform's own: the NGSI-LD rule does not reach it.
      const ingest = await send('GET', '/ingest/v1/dead-letters?invalidParams=x');
      expect((ingest.json() as { code?: string }).code).not.toBe('CONTEXT_UNKNOWN_PARAMETER');
    });

    it('keeps the other surfaces consistent: /api and /health paths with a trailing slash', async () => {
      for (const url of ['/api/reports', '/api/auth/me', '/health']) {
        const without = await send('GET', url);
        const withSlash = await send('GET', `${url}/`);
        expect(withSlash.statusCode, url).toBe(without.statusCode);
        expect(withSlash.statusCode, url).toBe(200);
      }
    });
  });
}

describePlatform('PGlite', () => embeddedTestEnv('slash'));

describe.skipIf(SERVER_SKIP)(`server preset${SERVER_SKIP ? ` (skipped: ${SERVER_SKIP})` : ''}`, () => {
  describePlatform('PostgreSQL + NATS', () => serverPresetTestEnv('slash'));
});
