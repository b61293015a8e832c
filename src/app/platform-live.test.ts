/**
 * The live context broker as composed by the platform: a sensor publishing over the embedded MQTT broker
 * with an API token, the entity it makes, its history, and a subscription notifying another
 * organisation's endpoint only of what that organisation may see.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Receiver, startReceiver } from '../modules/context-live/testing.ts';
import { loadConfig } from './config.ts';
import { createPlatform, type Platform } from './platform.ts';
import { seedWorld } from './testing.ts';

const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, ms = 10_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('platform: IoT over MQTT, history and subscriptions, under markings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'safecity-live-'));
  let platform: Platform;
  let rx: Receiver;
  const auth: Record<string, string> = {};
  let gatewayToken = '';
  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, who: string, payload?: unknown) =>
    platform.server.inject({
      method,
      url,
      headers: {
        authorization: auth[who] as string,
        ...(payload ? { 'content-type': 'application/json' } : {}),
      },
      ...(payload ? { payload: JSON.stringify(payload) } : {}),
    });

  beforeAll(async () => {
    const mqttPort = await freePort();
    platform = await createPlatform(
      loadConfig({
        SAFECITY_DATA_DIR: dir,
        SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
        SAFECITY_MQTT_PORT: String(mqttPort),
        // The receiver listens on 127.0.0.1, which the default egress policy refuses.
        SAFECITY_EGRESS_ALLOW: 'public,private,loopback',
        HOST: '127.0.0.1',
        PORT: '0',
      }),
      { log: pino({ level: 'silent' }) },
    );
    rx = await startReceiver();
    Object.assign(
      auth,
      await seedWorld(platform, ADMIN_PASSWORD, PW, {
        orgs: [
          ['metro', 'transport'],
          ['police', 'police'],
          ['venue', 'venue'],
        ],
        users: [
          ['analyst', 'police', 'analyst'],
          ['police-admin', 'police', 'admin'],
          ['police-viewer', 'police', 'viewer'],
          ['police-responder', 'police', 'responder'],
          ['steward', 'venue', 'analyst'],
        ],
      }),
    );
    const token = await call('POST', '/api/tokens', 'admin', { orgId: 'metro', name: 'gate-gateway' });
    expect(token.statusCode).toBe(201);
    gatewayToken = token.json().secret;
  });
  afterAll(async () => {
    await platform?.shutdown();
    await rx?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an MQTT client without a valid token', async () => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${platform.mqttPort}`, {
      username: 'gate-7',
      password: 'sc_not-a-token',
      reconnectPeriod: 0,
      connectTimeout: 3000,
    });
    const error = await new Promise<Error>((resolve) => client.on('error', resolve));
    client.end(true);
    expect(error.message).toMatch(/Bad username or password|Not authorized/i);
  });

  it('turns MQTT measurements into an entity of the gateway’s organisation, with history', async () => {
    expect(platform.mqttPort).toBeGreaterThan(0);
    // The police subscribe to crowd counts; TLP:GREEN data of metro reaches them, the venue's RED would not.
    const sub = await call('POST', '/ngsi-ld/v1/subscriptions', 'analyst', {
      type: 'Subscription',
      entities: [{ type: 'CrowdFlowObserved' }],
      notification: { endpoint: { uri: rx.url, accept: 'application/json' } },
    });
    expect(sub.statusCode, sub.body).toBe(201);

    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${platform.mqttPort}`, {
      username: 'gate-7',
      password: gatewayToken,
    });
    const t0 = Date.parse('2026-11-27T10:00:00Z');
    for (let i = 0; i < 5; i++) {
      await client.publishAsync(
        'safecity/v1/default/measurements/CrowdFlowObserved/gate-7',
        JSON.stringify({ peopleCount: 100 + i, observedAt: new Date(t0 + i * 1000).toISOString() }),
        { qos: 1 },
      );
    }
    await client.endAsync();

    // The gateway's organisation default is AMBER: metro sees it, the police (not metro's patron) do not yet.
    const asAdmin = await call('GET', '/ngsi-ld/v1/entities/urn:ngsi-ld:CrowdFlowObserved:gate-7', 'admin');
    expect(asAdmin.statusCode).toBe(404);

    // History, read by the owner through a token of its own.
    const reader = await call('POST', '/api/tokens', 'admin', { orgId: 'metro', name: 'metro-reader' });
    auth.metro = `Bearer ${reader.json().secret}`;
    const history = await until(async () => {
      const res = await call(
        'GET',
        '/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:CrowdFlowObserved:gate-7?attrs=peopleCount',
        'metro',
      );
      const values = res.statusCode === 200 ? (res.json().peopleCount as unknown[]) : [];
      return Array.isArray(values) && values.length === 5 ? values : undefined;
    }, 'five observations in the history');
    expect(history.map((v) => (v as { value: number }).value).sort()).toEqual([100, 101, 102, 103, 104]);
    expect(rx.received).toEqual([]);
  });

  it('notifies the subscriber of what its organisation may see, and only that', async () => {
    const put = (who: string, id: string, tlp: string, count: number) =>
      call('POST', '/ngsi-ld/v1/entityOperations/upsert', who, [
        {
          id,
          type: 'CrowdFlowObserved',
          peopleCount: { type: 'Property', value: count },
          marking: { type: 'Property', value: { tlp } },
        },
      ]);
    expect(
      (await put('steward', 'urn:ngsi-ld:CrowdFlowObserved:stand-red', 'RED', 900)).statusCode,
    ).toBeLessThan(300);
    expect(
      (await put('steward', 'urn:ngsi-ld:CrowdFlowObserved:gate-green', 'GREEN', 300)).statusCode,
    ).toBeLessThan(300);
    const got = await rx.waitFor(1);
    await new Promise((r) => setTimeout(r, 500));
    const ids = got.flatMap((n) => (n.body.data as { id: string }[]).map((e) => e.id));
    expect(ids).toContain('urn:ngsi-ld:CrowdFlowObserved:gate-green');
    expect(ids).not.toContain('urn:ngsi-ld:CrowdFlowObserved:stand-red');
    const status = (await call('GET', '/ngsi-ld/v1/subscriptions', 'analyst')).json()[0];
    expect(status.notification.timesSent).toBeGreaterThanOrEqual(1);
    expect(status.notification.status).toBe('ok');
  });

  it('notifications carry the marking of what they hold (gap 7)', async () => {
    const labels = rx.received.map((n) => n.headers['safecity-marking']);
    expect(labels.length).toBeGreaterThan(0);
    expect(labels).toContain('TLP:GREEN; owner=venue');
  });

  it('creating a subscription is a share: viewers and responders may not', async () => {
    for (const who of ['police-viewer', 'police-responder']) {
      const res = await call('POST', '/ngsi-ld/v1/subscriptions', who, {
        type: 'Subscription',
        entities: [{ type: 'CrowdFlowObserved' }],
        notification: { endpoint: { uri: rx.url } },
      });
      expect(res.statusCode, who).toBe(403);
    }
    // The police's viewer sees the police's subscription; the venue's users do not.
    expect((await call('GET', '/ngsi-ld/v1/subscriptions', 'police-viewer')).json()).toHaveLength(1);
    expect((await call('GET', '/ngsi-ld/v1/subscriptions', 'steward')).json()).toEqual([]);
  });

  describe('gap 1: history survives its entity', () => {
    it("an id deleted and created again by another organisation shows only the new entity's history", async () => {
      const id = 'urn:ngsi-ld:Camera:gap1';
      const observe = (who: string, count: number) =>
        call('PATCH', `/ngsi-ld/v1/entities/${id}/attrs`, who, {
          count: { type: 'Property', value: count },
        });
      const history = async (who: string) => {
        const res = await call('GET', `/ngsi-ld/v1/temporal/entities/${id}?attrs=count`, who);
        if (res.statusCode !== 200) return { status: res.statusCode, values: [] as number[] };
        const list = res.json().count as Array<{ value: number }> | { value: number } | undefined;
        const values = (Array.isArray(list) ? list : list ? [list] : []).map((i) => i.value).sort();
        return { status: 200, values, marking: res.headers['safecity-marking'] };
      };
      // The police record a TLP:RED camera's counts, then delete it.
      const created = await call('POST', '/ngsi-ld/v1/entities', 'analyst', {
        id,
        type: 'Camera',
        count: { type: 'Property', value: 1 },
        marking: { type: 'Property', value: { tlp: 'RED' } },
      });
      expect(created.statusCode, created.body).toBe(201);
      expect((await observe('analyst', 2)).statusCode).toBe(204);
      expect((await observe('analyst', 3)).statusCode).toBe(204);
      await until(async () => {
        const h = await history('analyst');
        return h.values.length === 3 ? h : undefined;
      }, "the police's history");
      expect((await call('DELETE', `/ngsi-ld/v1/entities/${id}`, 'analyst')).statusCode).toBe(204);
      // The venue creates the same id as TLP:CLEAR and records its own counts.
      const again = await call('POST', '/ngsi-ld/v1/entities', 'steward', {
        id,
        type: 'Camera',
        count: { type: 'Property', value: 100 },
        marking: { type: 'Property', value: { tlp: 'CLEAR' } },
      });
      expect(again.statusCode, again.body).toBe(201);
      expect((await observe('steward', 101)).statusCode).toBe(204);
      const mine = await until(async () => {
        const h = await history('steward');
        return h.values.length >= 2 ? h : undefined;
      }, "the venue's history");
      expect(mine).toEqual({ status: 200, values: [100, 101], marking: 'TLP:CLEAR; owner=venue' });
      // Whoever asks, the police's RED history is gone with its entity.
      await new Promise((r) => setTimeout(r, 500));
      for (const who of ['steward', 'analyst', 'police-viewer']) {
        expect((await history(who)).values, who).toEqual([100, 101]);
      }
    });
  });

  describe("gap 12: a disabled user's subscriptions keep delivering its organisation's AMBER data", () => {
    it('pauses the subscriptions of a disabled account within seconds, and resumes them when enabled', async () => {
      const me = (await call('GET', '/api/auth/me', 'analyst')).json() as { userId: string };
      const status = async () =>
        (await call('GET', '/ngsi-ld/v1/subscriptions', 'police-admin')).json() as Array<{
          status: string;
          statusReason?: string;
        }>;
      expect((await status()).map((s) => s.status)).toEqual(['active']);
      expect((await call('POST', `/api/users/${me.userId}/disable`, 'police-admin')).statusCode).toBe(200);
      const paused = await until(async () => {
        const [s] = await status();
        return s?.status === 'paused' ? s : undefined;
      }, 'the pause');
      expect(paused.statusReason).toMatch(/disabled/);
      const count = rx.received.length;
      await call('POST', '/ngsi-ld/v1/entityOperations/upsert', 'steward', [
        {
          id: 'urn:ngsi-ld:CrowdFlowObserved:gate-green',
          type: 'CrowdFlowObserved',
          peopleCount: { type: 'Property', value: 301 },
        },
      ]);
      await new Promise((r) => setTimeout(r, 700));
      expect(rx.received.length).toBe(count);
      const enabled = await call('PATCH', `/api/users/${me.userId}`, 'police-admin', { disabled: false });
      expect(enabled.statusCode, enabled.body).toBe(200);
      await until(
        async () => ((await status())[0]?.status === 'active' ? true : undefined),
        'the resumption',
      );
    });
  });
});
