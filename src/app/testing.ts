/**
 * Test helpers for whole platforms in the server preset: a fresh PostgreSQL schema and a fresh NATS
 * stream per test file, so parallel runs never collide, both removed afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const SERVER_SKIP: string | undefined =
  !process.env.DATABASE_URL || !process.env.NATS_URL
    ? 'DATABASE_URL and NATS_URL are not both set'
    : undefined;

export interface ServerTestEnv {
  /** Environment for loadConfig: DATABASE_URL (with its own search_path), NATS_URL, stream and prefix. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export async function serverTestEnv(name: string): Promise<ServerTestEnv> {
  const databaseUrl = process.env.DATABASE_URL as string;
  const natsUrl = process.env.NATS_URL as string;
  const tag = `${name}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`.toLowerCase();
  const schema = `t_${tag}`;
  const stream = `SAFECITY_TEST_${tag.toUpperCase()}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const url = new URL(databaseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    env: {
      DATABASE_URL: url.toString(),
      NATS_URL: natsUrl,
      NATS_STREAM: stream,
      NATS_SUBJECT_PREFIX: tag,
      SAFECITY_JWT_SECRET: 'x'.repeat(40),
    },
    async cleanup() {
      const { connect } = await import('@nats-io/transport-node');
      const { jetstreamManager } = await import('@nats-io/jetstream');
      const nc = await connect({ servers: natsUrl });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(stream).catch(() => {});
      await jsm.streams.delete(`${stream}_DEAD`).catch(() => {});
      await nc.close();
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      await c.query(`drop schema if exists ${schema} cascade`);
      await c.end();
    },
  };
}

/** Environment for a whole platform in the embedded preset: PGlite in a fresh data folder, removed afterwards. */
export async function embeddedTestEnv(name: string): Promise<ServerTestEnv> {
  const dir = mkdtempSync(join(tmpdir(), `safecity-${name}-`));
  return {
    env: { SAFECITY_DATA_DIR: dir },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Environment for a whole platform in the server preset (serverTestEnv) with a data folder of its own. */
export async function serverPresetTestEnv(name: string): Promise<ServerTestEnv> {
  const dir = mkdtempSync(join(tmpdir(), `safecity-${name}-pg-`));
  const server = await serverTestEnv(name);
  return {
    env: { ...server.env, SAFECITY_DATA_DIR: dir },
    cleanup: async () => {
      await server.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Organisations to create (id, kind) and users in them (username, org, role), for tests of whole platforms. */
export interface TestWorld {
  orgs: [id: string, kind: string][];
  users: [username: string, orgId: string, role: string][];
}

/**
 * Logs the first admin in, creates the world's organisations and users through the API, and answers
 * each account's `Authorization` header by username (`admin` included). Fails loudly on any refusal.
 */
export async function seedWorld(
  platform: {
    server: { inject: (opts: object) => Promise<{ statusCode: number; body: string; json(): unknown }> };
  },
  adminPassword: string,
  userPassword: string,
  world: TestWorld,
): Promise<Record<string, string>> {
  const login = async (username: string, password: string) => {
    const res = await platform.server.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username, password },
    });
    if (res.statusCode !== 200) throw new Error(`login ${username}: ${res.statusCode} ${res.body}`);
    return `Bearer ${(res.json() as { token: string }).token}`;
  };
  const auth: Record<string, string> = { admin: await login('admin', adminPassword) };
  const post = async (url: string, payload: object, as = auth.admin) => {
    const res = await platform.server.inject({
      method: 'POST',
      url,
      payload,
      headers: { authorization: as },
    });
    return res;
  };
  for (const [id, kind] of world.orgs) {
    const res = await post('/api/orgs', { id, name: id, kind });
    if (res.statusCode !== 201) throw new Error(`POST /api/orgs: ${res.statusCode} ${res.body}`);
  }
  // The platform administrator appoints an organisation's first accounts; once the organisation has an
  // administrator, that administrator creates the others (the platform administrator may not).
  const orgAdmin = new Map<string, string>();
  for (const [username, orgId, role] of world.users) {
    const payload = { username, orgId, roles: [role], password: userPassword };
    let res = await post('/api/users', payload);
    const admin = orgAdmin.get(orgId);
    if (res.statusCode === 403 && admin) res = await post('/api/users', payload, auth[admin]);
    if (res.statusCode !== 201) throw new Error(`POST /api/users ${username}: ${res.statusCode} ${res.body}`);
    auth[username] = await login(username, userPassword);
    if (role === 'admin' && !orgAdmin.has(orgId)) orgAdmin.set(orgId, username);
  }
  return auth;
}
