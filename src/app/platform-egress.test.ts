/**
 * Regression test of gap 8 of issue 7 ("open channels out"), on the platform as composed with the
 * default configuration: no user makes the server connect where the egress policy refuses, no
 * subscription publishes onto another organisation's MQTT topics, and no user makes it fetch a remote
 * @context that the operator has not allowed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { createPlatform, type Platform } from './platform.ts';
import { seedWorld } from './testing.ts';

const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';
const ERR = 'https://uri.etsi.org/ngsi-ld/errors/';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('gap 8 — open channels out (default configuration)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'safecity-egress-'));
  let platform: Platform;
  let auth: Record<string, string> = {};
  let mqttBase = '';
  const call = (
    method: 'GET' | 'POST' | 'PATCH',
    url: string,
    who: string,
    payload?: unknown,
    link?: string,
  ) =>
    platform.server.inject({
      method,
      url,
      headers: {
        authorization: auth[who] as string,
        ...(payload ? { 'content-type': 'application/json' } : {}),
        ...(link
          ? { link: `<${link}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"` }
          : {}),
      },
      ...(payload ? { payload: JSON.stringify(payload) } : {}),
    });
  const subscription = (uri: string) => ({
    type: 'Subscription',
    entities: [{ type: 'Vehicle' }],
    notification: { endpoint: { uri } },
  });

  beforeAll(async () => {
    const mqttPort = await freePort();
    platform = await createPlatform(
      loadConfig({
        SAFECITY_DATA_DIR: dir,
        SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
        SAFECITY_MQTT_PORT: String(mqttPort),
        HOST: '127.0.0.1',
        PORT: '0',
      }),
      { log: pino({ level: 'silent' }) },
    );
    mqttBase = `mqtt://127.0.0.1:${mqttPort}`;
    auth = await seedWorld(platform, ADMIN_PASSWORD, PW, {
      orgs: [
        ['metro', 'transport'],
        ['police', 'police'],
      ],
      users: [
        ['analyst', 'police', 'analyst'],
        ['dispatcher', 'metro', 'operator'],
      ],
    });
  });
  afterAll(async () => {
    await platform?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses subscriptions to the platform host, link-local and metadata addresses and non-network schemes, naming the rule', async () => {
    const cases: Array<[string, number, string, string]> = [
      [
        'http://127.0.0.1:8080/api/orgs',
        400,
        'EGRESS_DESTINATION_REFUSED',
        'http://127.0.0.1:8080/api/orgs is refused by the egress policy: address 127.0.0.1 (loopback) is not in SAFECITY_EGRESS_ALLOW (unset: public, private)',
      ],
      [
        'http://localhost:5432/',
        400,
        'EGRESS_DESTINATION_REFUSED',
        'http://localhost:5432/ is refused by the egress policy: address 127.0.0.1 (loopback) of localhost is not in SAFECITY_EGRESS_ALLOW (unset: public, private)',
      ],
      [
        'http://169.254.169.254/latest/meta-data/',
        400,
        'EGRESS_DESTINATION_REFUSED',
        'http://169.254.169.254/latest/meta-data/ is refused by the egress policy: address 169.254.169.254 (cloud metadata) is always refused',
      ],
      [
        'http://[::ffff:a9fe:a9fe]/',
        400,
        'EGRESS_DESTINATION_REFUSED',
        'http://[::ffff:a9fe:a9fe]/ is refused by the egress policy: address 169.254.169.254 (cloud metadata) is always refused',
      ],
      [
        'mqtt://127.0.0.1:1883/city/x',
        400,
        'EGRESS_DESTINATION_REFUSED',
        'mqtt://127.0.0.1:1883/city/x is refused by the egress policy: address 127.0.0.1 (loopback) is not in SAFECITY_EGRESS_ALLOW (unset: public, private)',
      ],
    ];
    const got: Array<[string, number, string, string]> = [];
    for (const [uri] of cases) {
      const res = await call('POST', '/ngsi-ld/v1/subscriptions', 'analyst', subscription(uri));
      const body = res.json();
      expect(body.type, uri).toBe(`${ERR}BadRequestData`);
      got.push([uri, res.statusCode, body.code, body.detail]);
    }
    expect(got).toEqual(cases);
    const file = await call(
      'POST',
      '/ngsi-ld/v1/subscriptions',
      'analyst',
      subscription('file:///etc/passwd'),
    );
    expect([file.statusCode, file.json().type]).toEqual([400, `${ERR}BadRequestData`]);
    expect((await call('GET', '/ngsi-ld/v1/subscriptions', 'analyst')).json()).toEqual([]);
  });

  it("keeps MQTT notifications in the subscriber's organisation topics on the embedded broker", async () => {
    const foreign = await call(
      'POST',
      '/ngsi-ld/v1/subscriptions',
      'analyst',
      subscription(`${mqttBase}/notifications/metro/vehicles`),
    );
    expect([foreign.statusCode, foreign.json().code, foreign.json().detail]).toEqual([
      400,
      'CONTEXT_LIVE_MQTT_TOPIC_REFUSED',
      `${mqttBase}/notifications/metro/vehicles: topic "notifications/metro/vehicles" belongs to another organisation's notifications; yours are under notifications/police/`,
    ]);
    const ingest = await call(
      'POST',
      '/ngsi-ld/v1/subscriptions',
      'analyst',
      subscription(`${mqttBase}/safecity/v1/default/measurements/Vehicle/v-1`),
    );
    expect([ingest.statusCode, ingest.json().code]).toEqual([400, 'CONTEXT_LIVE_MQTT_TOPIC_REFUSED']);
    const own = await call(
      'POST',
      '/ngsi-ld/v1/subscriptions',
      'analyst',
      subscription(`${mqttBase}/notifications/police/vehicles`),
    );
    expect(own.statusCode, own.body).toBe(201);
    const moved = await call('PATCH', String(own.headers.location), 'analyst', {
      notification: { endpoint: { uri: `${mqttBase}/notifications/metro/vehicles` } },
    });
    expect([moved.statusCode, moved.json().code]).toEqual([400, 'CONTEXT_LIVE_MQTT_TOPIC_REFUSED']);
    const kept = await call('GET', String(own.headers.location), 'analyst');
    expect(kept.json().notification.endpoint.uri).toBe(`${mqttBase}/notifications/police/vehicles`);
  });

  it('fetches no remote @context unless SAFECITY_CONTEXT_ALLOW names its host; the core context works offline', async () => {
    const remote = await call(
      'GET',
      '/ngsi-ld/v1/entities?type=Vehicle',
      'dispatcher',
      undefined,
      'https://contexts.example.org/city.jsonld',
    );
    expect([remote.statusCode, remote.json().type]).toEqual([503, `${ERR}LdContextNotAvailable`]);
    expect(remote.json().detail).toContain(
      'remote @context fetching is off: to use it, name its host in SAFECITY_CONTEXT_ALLOW',
    );
    for (const version of ['1.3', '1.5', '1.7']) {
      const core = await call(
        'GET',
        '/ngsi-ld/v1/entities?type=Vehicle',
        'dispatcher',
        undefined,
        `https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v${version}.jsonld`,
      );
      expect([version, core.statusCode]).toEqual([version, 200]);
    }
  });
});
