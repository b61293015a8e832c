/**
 * Detection's scale-out, for real: two platform instances (child processes) on one PostgreSQL and one NATS
 * JetStream share the rule partitions; the instance evaluating the rule is killed (SIGKILL) while
 * measurements cross the rule's threshold. The survivor takes the dead instance's partitions over once their
 * leases lapse, restores their checkpoint and consumes what their consumer groups kept: every entity that
 * crossed has exactly one alert — none lost, none doubled.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../modules/detection-live/index.ts';
import { SERVER_SKIP, type ServerTestEnv, serverTestEnv } from './testing.ts';

const ROOT = join(import.meta.dirname, '../..');
const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';
const PARTITIONS = 4;
const ENTITIES = 60;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

interface Instance {
  name: string;
  url: string;
  child: ChildProcess;
  stderr: string[];
}

async function startInstance(name: string, env: Record<string, string>, dataDir: string): Promise<Instance> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin/run-ts.js'), join(import.meta.dirname, 'serve-instance.fixture.ts')],
    {
      env: {
        ...process.env,
        ...env,
        HOST: '127.0.0.1',
        PORT: String(port),
        SAFECITY_MQTT_PORT: '0',
        SAFECITY_DATA_DIR: dataDir,
        SAFECITY_INSTANCE_ID: name,
        SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
        SAFECITY_DETECTION_PARTITIONS: String(PARTITIONS),
        SAFECITY_DETECTION_LEASE_MS: '3000',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const stderr: string[] = [];
  child.stderr?.on('data', (b: Buffer) => stderr.push(b.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (line) resolve((JSON.parse(line) as { listening: string }).listening);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}): ${stderr.join('')}`)));
    setTimeout(() => reject(new Error(`${name} did not start: ${stderr.join('')}`)), 60_000);
  });
  return { name, url, child, stderr };
}

describe.skipIf(SERVER_SKIP)(
  `detection failover: two instances on PostgreSQL + NATS, the rule's instance killed${SERVER_SKIP ? ` (skipped: ${SERVER_SKIP})` : ''}`,
  () => {
    let server: ServerTestEnv;
    const dir = mkdtempSync(join(tmpdir(), 'safecity-det-failover-'));
    const instances: Instance[] = [];
    let db: pg.Client;

    const call = async (
      base: string,
      token: string | undefined,
      method: string,
      path: string,
      body?: unknown,
    ) => {
      const res = await fetch(new URL(path, base), {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
    };

    beforeAll(async () => {
      server = await serverTestEnv('det_failover');
      instances.push(
        ...(await Promise.all([
          startInstance('det-a', server.env, join(dir, 'a')),
          startInstance('det-b', server.env, join(dir, 'b')),
        ])),
      );
      db = new pg.Client({ connectionString: server.env.DATABASE_URL });
      await db.connect();
    }, 120_000);
    afterAll(async () => {
      for (const i of instances) i.child.kill('SIGKILL');
      await db?.end().catch(() => {});
      await server?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('moves the rule to the survivor: every crossing has exactly one alert', async () => {
      const [a] = instances as [Instance, Instance];
      const admin = (
        await call(a.url, undefined, 'POST', '/api/auth/login', {
          username: 'admin',
          password: ADMIN_PASSWORD,
        })
      ).json().token as string;
      expect(
        (await call(a.url, admin, 'POST', '/api/orgs', { id: 'police', name: 'police', kind: 'police' }))
          .status,
      ).toBe(201);
      const user = await call(a.url, admin, 'POST', '/api/users', {
        username: 'police-op',
        orgId: 'police',
        roles: ['operator'],
        password: PW,
      });
      expect(user.status, user.text).toBe(201);
      const token = (
        await call(a.url, undefined, 'POST', '/api/auth/login', { username: 'police-op', password: PW })
      ).json().token as string;
      const rule = await call(a.url, token, 'POST', '/api/rules', {
        rule: {
          name: 'Crowding',
          kind: 'threshold',
          severity: 'high',
          category: 'crowd',
          match: { types: ['CrowdFlowObserved'], attribute: 'peopleCount' },
          above: 100,
        },
      });
      expect(rule.status, rule.text).toBe(201);
      const ruleId = rule.json().id as string;
      const id = (n: number) => `urn:ngsi-ld:CrowdFlowObserved:gate-${n}`;
      const entities = Array.from({ length: ENTITIES }, (_, n) => ({
        id: id(n),
        type: 'CrowdFlowObserved',
        peopleCount: { type: 'Property', value: 10 },
      }));
      expect((await call(a.url, token, 'POST', '/ngsi-ld/v1/entityOperations/create', entities)).status).toBe(
        201,
      );

      // Both instances share the partitions; find who evaluates the rule.
      const partition = partitionOf(ruleId, PARTITIONS);
      let holder: string | undefined;
      for (let tries = 0; tries < 100; tries++) {
        const leases = await db.query<{ partition: number; holder: string }>(
          'select partition, holder from detection_partition_lease where expires_at > now()',
        );
        const holders = new Set(leases.rows.map((r) => r.holder));
        holder = leases.rows.find((r) => r.partition === partition)?.holder;
        if (holders.size === 2 && holder) break;
        await sleep(200);
      }
      const victim = instances.find((i) => i.name === holder) as Instance;
      const survivor = instances.find((i) => i.name !== holder) as Instance;
      expect(victim, 'the rule partition has a holder').toBeDefined();

      const cross = async (from: number, to: number) => {
        for (let n = from; n < to; n += 5) {
          const batch = Array.from({ length: Math.min(5, to - n) }, (_, k) => ({
            id: id(n + k),
            type: 'CrowdFlowObserved',
            peopleCount: { type: 'Property', value: 200, observedAt: new Date().toISOString() },
          }));
          const res = await call(
            survivor.url,
            token,
            'POST',
            '/ngsi-ld/v1/entityOperations/upsert?options=update',
            batch,
          );
          expect(res.status, res.text).toBeLessThan(300);
        }
      };
      await cross(0, ENTITIES / 2);
      await sleep(300);
      victim.child.kill('SIGKILL');
      await cross(ENTITIES / 2, ENTITIES);

      const alertsOf = async () =>
        (
          (await call(survivor.url, token, 'GET', '/api/alerts?limit=1000')).json().items as Array<{
            sourceRule: string;
            evidence: Array<{ entityId: string }>;
          }>
        ).filter((x) => x.sourceRule === ruleId);
      const started = Date.now();
      let alerts = await alertsOf();
      while (Date.now() - started < 60_000) {
        alerts = await alertsOf();
        if (alerts.length >= ENTITIES) break;
        await sleep(500);
      }
      const perEntity = new Map<string, number>();
      for (const x of alerts)
        for (const e of x.evidence) perEntity.set(e.entityId, (perEntity.get(e.entityId) ?? 0) + 1);
      const missing = Array.from({ length: ENTITIES }, (_, n) => id(n)).filter((e) => !perEntity.has(e));
      const doubled = [...perEntity].filter(([, c]) => c > 1);
      expect(missing, `alerts lost (survivor log: ${survivor.stderr.join('').slice(-2000)})`).toEqual([]);
      expect(doubled).toEqual([]);
      expect(alerts).toHaveLength(ENTITIES);
      const leases = await db.query<{ holder: string }>(
        'select distinct holder from detection_partition_lease where expires_at > now()',
      );
      expect(leases.rows.map((r) => r.holder)).toEqual([survivor.name]);
      process.stdout.write(
        `detection failover: ${victim.name} killed holding partition ${partition}; ${alerts.length}/${ENTITIES} alerts, none doubled, all within ${Math.round((Date.now() - started) / 100) / 10} s of the last write\n`,
      );
    }, 120_000);
  },
);
