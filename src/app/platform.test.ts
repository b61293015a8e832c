import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { createPlatform, openCore, type Platform } from './platform.ts';
import { SERVER_SKIP, type ServerTestEnv, serverTestEnv } from './testing.ts';

const silent = pino({ level: 'silent' });
const ADMIN_PASSWORD = 'long-secret-for-tests';

async function login(p: Platform, username: string, password: string): Promise<string> {
  const res = await p.server.inject({
    method: 'POST',
    url: '/api/auth/login',
    payload: { username, password },
  });
  expect(res.statusCode).toBe(200);
  return `Bearer ${res.json().token}`;
}

describe('platform, embedded preset (PGlite + in-process bus)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'safecity-platform-'));
  const config = loadConfig({
    SAFECITY_MQTT_PORT: '0',
    SAFECITY_DATA_DIR: dir,
    PORT: '0',
    HOST: '127.0.0.1',
    SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
  });
  let platform: Platform;

  beforeAll(async () => {
    platform = await createPlatform(config, { log: silent });
  });
  afterAll(async () => {
    await platform?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts with the first organisation and admin from SAFECITY_ADMIN_PASSWORD', async () => {
    expect(platform.store.kind).toBe('pglite');
    expect(platform.bus.kind).toBe('memory');
    expect(platform.generatedAdminPassword).toBeUndefined();
    const auth = await login(platform, 'admin', ADMIN_PASSWORD);
    const me = await platform.server.inject({
      method: 'GET',
      url: '/api/auth/me',
      headers: { authorization: auth },
    });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ username: 'admin', orgId: 'city', roles: ['platform-admin', 'admin'] });
  });

  it('is healthy, documents its API and counts requests', async () => {
    const health = await platform.server.inject({ method: 'GET', url: '/health' });
    expect(health.json()).toMatchObject({
      status: 'up',
      checks: { store: { status: 'up' }, bus: { status: 'up' } },
    });
    const doc = (await platform.server.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/api/auth/login', '/api/reports', '/api/access/explain']),
    );
    const metrics = await platform.server.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(
      /safecity_http_requests_total\{method="POST",route="\/api\/auth\/login",status="200"\}/,
    );
  });

  it('refuses a second process on the same embedded database', async () => {
    // Same process id would take the lock over, so fake another live owner: our parent process.
    const { writeFileSync } = await import('node:fs');
    const other = join(dir, 'other');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'safecity.lock'), String(process.ppid));
    await expect(openCore({ ...config, dataDir: other }, silent)).rejects.toThrow(/in use by process/);
  });

  it('loses nothing in flight on shutdown, and keeps its data across restarts', async () => {
    const address = await platform.listen();
    const auth = await login(platform, 'admin', ADMIN_PASSWORD);
    const sends = Array.from({ length: 15 }, (_, i) =>
      fetch(`${address}/api/reports`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({
          title: `in flight ${i}`,
          body: 'x',
          category: 'other',
          marking: { tlp: 'GREEN' },
        }),
      }).then(
        async (r) => ({
          status: r.status,
          id: r.status === 201 ? ((await r.json()) as { id: string }).id : undefined,
        }),
        () => ({ status: 0, id: undefined }),
      ),
    );
    await new Promise((r) => setTimeout(r, 5));
    await platform.shutdown();
    const results = await Promise.all(sends);
    // Every request got an answer: created, or told to retry (503) — none cut off half-way.
    for (const r of results) expect([201, 503, 0]).toContain(r.status);
    const created = results.filter((r) => r.status === 201).map((r) => r.id);

    platform = await createPlatform(config, { log: silent });
    expect(platform.generatedAdminPassword).toBeUndefined();
    const again = await login(platform, 'admin', ADMIN_PASSWORD);
    const list = await platform.server.inject({
      method: 'GET',
      url: '/api/reports?limit=100',
      headers: { authorization: again },
    });
    const ids = (list.json().items as { id: string }[]).map((r) => r.id);
    for (const id of created) expect(ids).toContain(id);
  });
});

describe.skipIf(SERVER_SKIP)(
  `two instances on one PostgreSQL and one NATS${SERVER_SKIP ? ` (skipped: ${SERVER_SKIP})` : ''}`,
  () => {
    let a: Platform;
    let b: Platform;
    let server: ServerTestEnv;

    beforeAll(async () => {
      server = await serverTestEnv('two');
      const env = { ...server.env, SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD, PORT: '0' };
      // Facts are cached for a minute here: only the bus can make instance B see A's change in time.
      a = await createPlatform(loadConfig({ SAFECITY_MQTT_PORT: '0', ...env, SAFECITY_INSTANCE_ID: 'a' }), {
        log: silent,
        accessFactsTtlMs: 60_000,
      });
      b = await createPlatform(loadConfig({ SAFECITY_MQTT_PORT: '0', ...env, SAFECITY_INSTANCE_ID: 'b' }), {
        log: silent,
        accessFactsTtlMs: 60_000,
      });
    });
    afterAll(async () => {
      await a?.shutdown();
      await b?.shutdown();
      await server?.cleanup();
    });

    it('share one database and one session secret: a token from A works on B', async () => {
      expect([a.store.kind, a.bus.kind, b.store.kind, b.bus.kind]).toEqual([
        'postgres',
        'nats',
        'postgres',
        'nats',
      ]);
      const token = await login(a, 'admin', ADMIN_PASSWORD);
      const me = await b.server.inject({
        method: 'GET',
        url: '/api/auth/me',
        headers: { authorization: token },
      });
      expect(me.json().username).toBe('admin');
    });

    it('cut off an account disabled on A at once on B, though B caches accounts', async () => {
      const admin = await login(a, 'admin', ADMIN_PASSWORD);
      const pw = 'correct-horse-staple-9';
      const created = await a.server.inject({
        method: 'POST',
        url: '/api/users',
        payload: { username: 'temp-operator', orgId: 'city', roles: ['operator'], password: pw },
        headers: { authorization: admin },
      });
      expect(created.statusCode).toBe(201);
      const token = await login(b, 'temp-operator', pw);
      expect(
        (await b.server.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: token } }))
          .statusCode,
      ).toBe(200);
      const disabled = await a.server.inject({
        method: 'POST',
        url: `/api/users/${created.json().id}/disable`,
        headers: { authorization: admin },
      });
      expect(disabled.statusCode).toBe(200);
      let status = 200;
      for (let i = 0; i < 50 && status === 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        status = (
          await b.server.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: token } })
        ).statusCode;
      }
      expect(status).toBe(401);
    });

    it("see each other's events: a client relationship declared on A reaches readers on B at once", async () => {
      const admin = await login(a, 'admin', ADMIN_PASSWORD);
      const post = (p: Platform, url: string, payload: unknown, auth = admin) =>
        p.server.inject({
          method: 'POST',
          url,
          payload: payload as object,
          headers: { authorization: auth },
        });
      expect((await post(a, '/api/orgs', { id: 'police', name: 'Police', kind: 'police' })).statusCode).toBe(
        201,
      );
      expect((await post(a, '/api/orgs', { id: 'metro', name: 'Metro', kind: 'transport' })).statusCode).toBe(
        201,
      );
      const pw = 'correct-horse-staple-9';
      expect(
        (
          await post(a, '/api/users', {
            username: 'officer',
            orgId: 'police',
            roles: ['operator'],
            password: pw,
          })
        ).statusCode,
      ).toBe(201);
      expect(
        (await post(a, '/api/users', { username: 'guard', orgId: 'metro', roles: ['viewer'], password: pw }))
          .statusCode,
      ).toBe(201);
      const officer = await login(a, 'officer', pw);
      const guard = await login(b, 'guard', pw);
      const report = await post(
        a,
        '/api/reports',
        { title: 'Suspicious package', body: 'platform 3', category: 'other', marking: { tlp: 'AMBER' } },
        officer,
      );
      expect(report.statusCode).toBe(201);
      const id = report.json().id as string;

      // B caches the guard's facts: metro is nobody's client yet.
      const before = await b.server.inject({
        method: 'GET',
        url: `/api/reports/${id}`,
        headers: { authorization: guard },
      });
      expect(before.statusCode).toBe(404);

      // On A, police declares metro as its client: AMBER reaches clients.
      const patch = await a.server.inject({
        method: 'PATCH',
        url: '/api/orgs/police',
        payload: { clients: ['metro'] },
        headers: { authorization: admin },
      });
      expect(patch.statusCode).toBe(200);

      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const fresh = await login(b, 'guard', pw);
        status = (
          await b.server.inject({
            method: 'GET',
            url: `/api/reports/${id}`,
            headers: { authorization: fresh },
          })
        ).statusCode;
      }
      expect(status).toBe(200);
    });
  },
);
