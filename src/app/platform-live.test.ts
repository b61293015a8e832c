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
  const call = (method: 'GET' | 'POST', url: string, who: string, payload?: unknown) =>
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
});
