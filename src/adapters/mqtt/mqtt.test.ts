/**
 * IoT ingestion and MQTT notifications end to end: MQTT client → broker → ingestion → NGSI-LD core
 * (PGlite) → bus → history and notifications. Runs against the embedded aedes broker always, and against
 * Mosquitto when MQTT_URL is set.
 */
import { sql } from 'kysely';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppError } from '../../kernel/errors.ts';
import type { Principal } from '../../modules/access/index.ts';
import { ContextService, contextMigrations } from '../../modules/context/index.ts';
import {
  type ContextLive,
  createContextLive,
  createCoreQueryPort,
  type IngestPrincipal,
} from '../../modules/context-live/index.ts';
import {
  LIVE_TEST_MIGRATIONS,
  type LiveTestWorld,
  loopbackEgress,
  openLiveWorld,
  testLdContext,
} from '../../modules/context-live/testing.ts';
import { EgressPolicy } from '../../modules/egress/index.ts';
import { TransactionalOutbox } from '../../modules/events/index.ts';
import { MARKING_HEADER } from '../../modules/sharing/index.ts';
import type { EventBus } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { createMemoryBus } from '../bus/index.ts';
import { openTestPgliteStore } from '../storage/testing.ts';
import {
  type EmbeddedMqttBroker,
  type MqttConnection,
  startEmbeddedMqttBroker,
} from './embedded-mqtt-broker.ts';
import { startExternalMqttIngest } from './external-mqtt-ingest.ts';
import { createMqttNotificationSender } from './mqtt-notification-sender.ts';
import { type MqttRuntime, startMqttRuntime } from './mqtt-runtime.ts';

const V = 'https://uri.etsi.org/ngsi-ld/default-context/';
const sensor: IngestPrincipal = { userId: 'svc-sensors', orgId: 'org-a', roles: ['operator'] };
const tokens: Record<string, IngestPrincipal> = {
  'token-a': sensor,
  'token-b': { userId: 'svc-b', orgId: 'org-b', roles: ['operator'] },
  'token-viewer': { userId: 'svc-viewer', orgId: 'org-c', roles: ['viewer'] },
};
const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

async function connect(url: string, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 3000, ...opts });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return c;
}

async function until<T>(f: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('IoT ingestion and MQTT notifications', () => {
  let store: Store;
  let bus: EventBus;
  let core: ContextService;
  let live: ContextLive;
  let outbox: TransactionalOutbox;
  let runtime: MqttRuntime;
  let broker: EmbeddedMqttBroker;
  let url: string;
  let world: LiveTestWorld;
  /** An operator of org-a (the sensors' organisation): reads history, subscribes. */
  let userA: Principal;

  beforeAll(async () => {
    store = await openTestPgliteStore({ ...contextMigrations, ...LIVE_TEST_MIGRATIONS });
    bus = createMemoryBus();
    world = await openLiveWorld(store);
    userA = await world.as('org-a-operator');
    const ld = testLdContext();
    outbox = new TransactionalOutbox({ store, bus });
    core = new ContextService({
      store,
      bus,
      events: outbox.emitter('context'),
      gate: world.gate,
      resolver: ld,
    });
    runtime = await startMqttRuntime({
      port: 0,
      host: '127.0.0.1',
      // Mosquitto (MQTT_URL) listens on 127.0.0.1 here, which the default egress policy refuses.
      egress: loopbackEgress(),
      authenticate: async (_u, password) => {
        const principal = password ? tokens[password] : undefined;
        return principal ? { principal } : null;
      },
    });
    broker = runtime.broker!;
    url = `mqtt://127.0.0.1:${broker.port}`;
    live = createContextLive({
      store,
      events: outbox.emitter('context-live'),
      gate: world.gate,
      ld,
      query: createCoreQueryPort(ld),
      writer: core,
      entityReader: core,
      senders: [runtime.sender],
      busMembers: 8,
    });
    await live.start(bus);
    await runtime.start((m) => live.ingestion!.ingest({ source: 'mqtt', ...m }));
  });
  afterAll(async () => {
    await live?.stop();
    await runtime?.close();
    await outbox?.stop();
    await bus?.close();
    await store?.close();
  });

  const history = (id: string) =>
    live.temporal
      .getEntity('', userA, id, { params: {} }, undefined)
      .then((a) => a.value)
      .catch(() => undefined);

  it('refuses a connection without a valid token', async () => {
    await expect(connect(url, { username: 'x', password: 'wrong' })).rejects.toThrow(
      /Bad username or password/i,
    );
  });

  it('ingests plain measurements published with QoS 1: written before the PUBACK, then in the history', async () => {
    const c = await connect(url, { username: 'gw-1', password: 'token-a' });
    await c.publishAsync(
      'safecity/v1/default/measurements/AirQualityObserved/aq-1',
      JSON.stringify([
        { no2: 41, observedAt: '2026-11-27T10:00:00Z' },
        { no2: 44, observedAt: '2026-11-27T10:00:01Z' },
      ]),
      { qos: 1 },
    );
    const caller = {
      tenant: '',
      principal: userA,
      readKeys: userA.readKeys,
      defaultMarking: { tlp: 'AMBER' as const, audience: { orgs: [], communities: [], users: [] } },
    };
    const view = await core.getEntity(caller, 'urn:ngsi-ld:AirQualityObserved:aq-1');
    expect(view.entity[`${V}no2`]).toMatchObject({ value: 44, observedAt: '2026-11-27T10:00:01.000Z' });
    expect(view.ownerOrg).toBe('org-a');
    const h = await until(async () => {
      const e = await history('urn:ngsi-ld:AirQualityObserved:aq-1');
      return (e?.no2 as unknown[] | undefined)?.length === 2 ? e : undefined;
    });
    expect((h.no2 as Array<{ value: number }>).map((i) => i.value)).toEqual([41, 44]);
    await c.endAsync();
  });

  it('dead-letters malformed messages with the reason, and lists them for the organisation', async () => {
    const c = await connect(url, { username: 'gw-1', password: 'token-a' });
    await c.publishAsync('safecity/v1/default/measurements/AirQualityObserved/aq-2', '{not json', { qos: 1 });
    await c.publishAsync('safecity/v1/default/nowhere', '{}', { qos: 1 });
    await c.publishAsync('safecity/v1/default/entities', JSON.stringify({ id: 'urn:x:1', type: 'T' }), {
      qos: 1,
    });
    const letters = await live.deadLetters.list({ orgId: 'org-a', limit: 10 });
    expect(letters.map((l) => l.reason)).toEqual([
      'the entity has no attribute',
      expect.stringContaining('is neither'),
      'the message is not JSON',
    ]);
    expect(letters[2]).toMatchObject({ source: 'mqtt', payload: '{not json', principal: 'svc-sensors' });
    expect(await live.deadLetters.list({ orgId: 'org-b', limit: 10 })).toEqual([]);
    await c.endAsync();
  });

  describe('gap 4: no role on NGSI-LD writes', () => {
    it('dead-letters what an account without a writing role publishes, and writes nothing', async () => {
      const c = await connect(url, { username: 'gw-v', password: 'token-viewer' });
      await c.publishAsync(
        'safecity/v1/default/measurements/NoiseLevelObserved/nl-1',
        JSON.stringify({ laeq: 55 }),
        { qos: 1 },
      );
      const letters = await live.deadLetters.list({ orgId: 'org-c', limit: 10 });
      expect(letters.map((l) => [l.principal, l.reason])).toEqual([
        ['svc-viewer', expect.stringContaining('needs one of the roles admin, operator, analyst')],
      ]);
      const viewer = await world.as('org-c-viewer');
      const reader = {
        tenant: '',
        principal: viewer,
        readKeys: viewer.readKeys,
        defaultMarking: viewer.defaultMarking,
      };
      await expect(core.getEntity(reader, 'urn:ngsi-ld:NoiseLevelObserved:nl-1')).rejects.toMatchObject({
        code: 'CONTEXT_ENTITY_NOT_FOUND',
      });
      await c.endAsync();
    });
  });

  it('lets a client subscribe only to its organisation notification topics', async () => {
    const c = await connect(url, { username: 'gw-1', password: 'token-a' });
    // The broker answers SUBACK 0x80 (refused), which mqtt.js reports as an error.
    await expect(c.subscribeAsync('safecity/v1/#', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    await expect(c.subscribeAsync('notifications/org-b/#', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    const mine = await c.subscribeAsync('notifications/org-a/#', { qos: 1 });
    expect(mine[0]?.qos).toBe(1);
    await c.endAsync();
  });

  it('closes the connection of a client that publishes outside the ingestion topics', async () => {
    const c = await connect(url, { username: 'gw-1', password: 'token-a' });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish('city/other', 'x', { qos: 1 });
    await closed;
    c.end(true);
  });

  it('sends MQTT notifications as { metadata, body } to the embedded broker', async () => {
    const c = await connect(url, { username: 'ops', password: 'token-a' });
    await c.subscribeAsync('notifications/org-a/air', { qos: 1 });
    const got = new Promise<Record<string, unknown>>((resolve) => {
      c.on('message', (_t, payload) => resolve(JSON.parse(payload.toString()) as Record<string, unknown>));
    });
    await live.subscriptions.create(
      '',
      userA,
      {
        type: 'Subscription',
        entities: [{ type: 'AirQualityObserved' }],
        watchedAttributes: ['no2'],
        notification: {
          endpoint: {
            uri: `${url}/notifications/org-a/air`,
            notifierInfo: [{ key: 'MQTT-QoS', value: '1' }],
          },
          format: 'keyValues',
        },
      },
      undefined,
    );
    const p = await connect(url, { username: 'gw-1', password: 'token-a' });
    await p.publishAsync(
      'safecity/v1/default/measurements/AirQualityObserved/aq-3',
      JSON.stringify({ no2: 12 }),
      {
        qos: 1,
      },
    );
    const n = await got;
    // gap 7: the MQTT binding's metadata carries the marking of what the notification holds.
    expect(n.metadata).toMatchObject({
      'Content-Type': 'application/json',
      [MARKING_HEADER]: 'TLP:AMBER; owner=org-a',
    });
    expect(n.body).toMatchObject({
      type: 'Notification',
      data: [{ id: 'urn:ngsi-ld:AirQualityObserved:aq-3', type: 'AirQualityObserved', no2: 12 }],
    });
    await c.endAsync();
    await p.endAsync();
  });

  it('gap 8: confines MQTT notifications to the subscriber organisation (two organisations on the embedded broker)', async () => {
    const a = userA;
    const clientB = await connect(url, { username: 'ops-b', password: 'token-b' });
    // Organisation B's clients subscribe to B's notification topics only.
    for (const filter of [
      'notifications/org-a/#',
      'notifications/#',
      '#',
      '+/org-a/#',
      '$share/g/notifications/org-a/#',
    ]) {
      await expect(clientB.subscribeAsync(filter, { qos: 1 }), filter).rejects.toThrow(/Subscribe error/);
    }
    expect((await clientB.subscribeAsync('notifications/org-b/#', { qos: 1 }))[0]?.qos).toBe(1);
    const seenByB: string[] = [];
    clientB.on('message', (topic) => seenByB.push(topic));

    const create = (uri: string) =>
      live.subscriptions
        .create(
          '',
          a,
          {
            type: 'Subscription',
            entities: [{ type: 'TrafficFlowObserved' }],
            notification: { endpoint: { uri } },
          },
          undefined,
        )
        .then(
          () => 'created',
          (e: AppError) => `${e.code}: ${e.message}`,
        );
    const refusals: Array<[string, string]> = [
      [
        `${url}/notifications/org-b/stolen`,
        `CONTEXT_LIVE_MQTT_TOPIC_REFUSED: ${url}/notifications/org-b/stolen: topic "notifications/org-b/stolen" belongs to another organisation's notifications; yours are under notifications/org-a/`,
      ],
      [
        `${url}/safecity/v1/default/measurements/TrafficFlowObserved/forged`,
        `CONTEXT_LIVE_MQTT_TOPIC_REFUSED: ${url}/safecity/v1/default/measurements/TrafficFlowObserved/forged: topic "safecity/v1/default/measurements/TrafficFlowObserved/forged" is under safecity/, the platform's ingestion topics`,
      ],
      [
        `${url}/city/alerts`,
        `CONTEXT_LIVE_MQTT_TOPIC_REFUSED: ${url}/city/alerts: on the platform's broker, notifications of organisation org-a go under notifications/org-a/ only`,
      ],
      [
        `${url}/notifications/org-a/%23`,
        `CONTEXT_LIVE_MQTT_TOPIC_REFUSED: ${url}/notifications/org-a/%23: topic "notifications/org-a/#" holds a wildcard or NUL; a publish names one topic`,
      ],
      [
        `${url}/%24SYS/broker/uptime`,
        `CONTEXT_LIVE_MQTT_TOPIC_REFUSED: ${url}/%24SYS/broker/uptime: topic "$SYS/broker/uptime" is a broker system topic`,
      ],
      [
        'mqtt://broker.other.example/notifications/org-b/x',
        `CONTEXT_LIVE_MQTT_TOPIC_REFUSED: mqtt://broker.other.example/notifications/org-b/x: topic "notifications/org-b/x" belongs to another organisation's notifications; yours are under notifications/org-a/`,
      ],
      [
        'mqtt://169.254.169.254:1883/anything',
        'EGRESS_DESTINATION_REFUSED: mqtt://169.254.169.254:1883/anything is refused by the egress policy: address 169.254.169.254 (cloud metadata) is always refused',
      ],
    ];
    const got: Array<[string, string]> = [];
    for (const [uri] of refusals) got.push([uri, await create(uri)]);
    expect(got).toEqual(refusals);

    // A subscription stored before these rules (or edited in the database) is refused at delivery too.
    const legacy = await live.subscriptions.create(
      '',
      a,
      {
        type: 'Subscription',
        entities: [{ type: 'TrafficFlowObserved' }],
        notification: { endpoint: { uri: `${url}/notifications/org-a/legacy` } },
      },
      undefined,
    );
    await sql`update context_live_subscription
      set body = jsonb_set(body, '{notification,endpoint,uri}', to_jsonb(${`${url}/notifications/org-b/legacy`}::text))
      where id = ${legacy.spec.id}`.execute(store.db);
    await live.subscriptions.refresh('', legacy.spec.id);
    await live.ingestion!.ingest({
      source: 'http',
      topic: 'safecity/v1/default/measurements/TrafficFlowObserved/tf-gap8',
      payload: JSON.stringify({ intensity: 12 }),
      principal: sensor,
    });
    const status = await until(async () => {
      const rec = await live.subscriptions.get('', a, legacy.spec.id);
      const v = await live.subscriptions.view(rec, undefined);
      const n = v.notification as Record<string, unknown>;
      return n.status === 'failed' ? n : undefined;
    });
    expect(status.lastFailureReason).toBe(
      `${url}/notifications/org-b/legacy: topic "notifications/org-b/legacy" belongs to another organisation's notifications; yours are under notifications/org-a/`,
    );
    // The broker itself refuses an in-process publish outside the organisation's topics.
    await expect(broker.publishNotification('org-a', 'notifications/org-b/x', '{}', 1)).rejects.toThrow(
      /another organisation's notifications/,
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(seenByB).toEqual([]);
    await live.subscriptions.delete('', a, legacy.spec.id);
    await clientB.endAsync();
  });

  it('sends to other brokers only where the egress policy allows, and to the platform broker only under the organisation topics', async () => {
    const strict = createMqttNotificationSender({
      egress: new EgressPolicy(),
      platformBrokerUrl: 'mqtt://127.0.0.1:1883',
    });
    const check = (uri: string) =>
      strict.checkEndpoint(uri, 'org-a').then(
        () => 'ok',
        (e: AppError) => e.code,
      );
    expect(
      await Promise.all([
        check('mqtt://127.0.0.1:1884/notifications/org-a/x'),
        check('mqtt://127.0.0.1:1883/notifications/org-a/x'),
        check('mqtt://127.0.0.1:1883/city/x'),
        check('mqtts://[::1]:8883/notifications/org-a/x'),
        check('mqtt://10.1.2.3/city/x'),
      ]),
    ).toEqual([
      'EGRESS_DESTINATION_REFUSED',
      'ok',
      'CONTEXT_LIVE_MQTT_TOPIC_REFUSED',
      'EGRESS_DESTINATION_REFUSED',
      'ok',
    ]);
    await strict.close();
  });

  describe.skipIf(!process.env.MQTT_URL)(
    `with Mosquitto${process.env.MQTT_URL ? '' : ' (skipped: MQTT_URL is not set, no external broker to test against)'}`,
    () => {
      const ext = process.env.MQTT_URL ?? '';

      it('ingests from the external broker and acknowledges after writing', async () => {
        const topic = `safecity/v1/default/measurements/NoiseLevelObserved/${run}`;
        const bridge = await startExternalMqttIngest({
          url: ext,
          principal: sensor,
          ingest: (m) => live.ingestion!.ingest({ source: 'mqtt', ...m }),
          group: `safecity-test-${run}`,
          topic: `safecity/v1/default/measurements/NoiseLevelObserved/${run}`,
          connections: 2,
        });
        const c = await connect(ext);
        await c.publishAsync(topic, JSON.stringify({ laeq: 61.5, observedAt: '2026-11-27T10:00:00Z' }), {
          qos: 1,
        });
        const id = `urn:ngsi-ld:NoiseLevelObserved:${run}`;
        const h = await until(async () => {
          const e = await history(id);
          return e?.laeq ? e : undefined;
        });
        expect(h.laeq).toMatchObject([{ value: 61.5 }]);
        await c.endAsync();
        await bridge.close();
      });

      it('sends MQTT notifications to the external broker', async () => {
        const topic = `notifications/org-a/${run}`;
        const c = await connect(ext);
        await c.subscribeAsync(topic, { qos: 1 });
        const got = new Promise<Record<string, unknown>>((resolve) => {
          c.on('message', (_t, payload) =>
            resolve(JSON.parse(payload.toString()) as Record<string, unknown>),
          );
        });
        await live.subscriptions.create(
          '',
          userA,
          {
            type: 'Subscription',
            entities: [{ type: 'AirQualityObserved', id: 'urn:ngsi-ld:AirQualityObserved:aq-ext' }],
            notification: {
              endpoint: { uri: `${ext}/${topic}`, notifierInfo: [{ key: 'MQTT-Version', value: 'mqtt5.0' }] },
            },
          },
          undefined,
        );
        await live.ingestion!.ingest({
          source: 'http',
          topic: 'safecity/v1/default/measurements/AirQualityObserved/aq-ext',
          payload: JSON.stringify({ no2: 7 }),
          principal: sensor,
        });
        const n = await got;
        expect(n.body).toMatchObject({
          data: [{ id: 'urn:ngsi-ld:AirQualityObserved:aq-ext', no2: { value: 7 } }],
        });
        await c.endAsync();
      });
    },
  );
});

describe('gap 9: an MQTT connection is a live session', () => {
  it('ingests nothing the connection sends once its session ended, and disconnects it when the session ends', async () => {
    const ingested: string[] = [];
    let valid = true;
    let connection: MqttConnection | undefined;
    let sessionsClosed = 0;
    const broker = await startEmbeddedMqttBroker({
      port: 0,
      host: '127.0.0.1',
      authenticate: async (_u, password, conn) => {
        if (password !== 'token-a') return null;
        connection = conn;
        return {
          principal: sensor,
          valid: async () => valid,
          close: () => {
            sessionsClosed += 1;
          },
        };
      },
      ingest: async (m) => {
        ingested.push(m.topic);
      },
    });
    const at = `mqtt://127.0.0.1:${broker.port}`;
    try {
      const c = await connect(at, { username: 'gw', password: 'token-a' });
      await c.publishAsync('safecity/v1/default/measurements/Thing/before', '{}', { qos: 1 });
      expect(ingested).toEqual(['safecity/v1/default/measurements/Thing/before']);

      // The session ended (token revoked) but the connection is still open: what it sends is refused.
      valid = false;
      const refused = new Promise<void>((resolve) => c.once('close', () => resolve()));
      c.publish('safecity/v1/default/measurements/Thing/after', '{}', { qos: 1 });
      await refused;
      c.end(true);
      expect(ingested).toEqual(['safecity/v1/default/measurements/Thing/before']);
      await until(async () => (sessionsClosed === 1 ? true : undefined));

      // The platform ends a session: the broker closes that connection.
      valid = true;
      const d = await connect(at, { username: 'gw', password: 'token-a' });
      const closed = new Promise<void>((resolve) => d.once('close', () => resolve()));
      connection?.disconnect('AUTH_TOKEN_REVOKED: this API token was revoked');
      await closed;
      d.end(true);
      await until(async () => (sessionsClosed === 2 ? true : undefined));
    } finally {
      await broker.close();
    }
  });
});
