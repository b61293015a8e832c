import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openTestPgliteStore } from '../../adapters/storage/testing.ts';
import type { Store } from '../../ports/store.ts';
import { MARKING_HEADER, parseMarkingLabel } from '../sharing/index.ts';
import { type ContextLive, createContextLive } from './context-live.ts';
import { createCoreQueryPort } from './core-query-port.ts';
import type { LivePrincipal } from './subscription-service.ts';
import {
  DEFAULT_VOCAB,
  entityChange,
  LIVE_TEST_MIGRATIONS,
  type LiveTestWorld,
  loopbackEgress,
  openLiveWorld,
  type Receiver,
  startReceiver,
  testLdContext,
} from './testing.ts';

const V = DEFAULT_VOCAB;

function vehicle(id: string, speed: number, extra: Record<string, unknown> = {}) {
  return {
    id,
    type: [`${V}Vehicle`],
    [`${V}speed`]: { type: 'Property', value: speed, observedAt: '2026-11-27T10:00:00.000Z' },
    ...extra,
  };
}

describe('notification delivery (PGlite, real HTTP receiver)', () => {
  let store: Store;
  let world: LiveTestWorld;
  let orgB: LivePrincipal;
  let live: ContextLive;
  let rx: Receiver;
  const ld = testLdContext();

  beforeAll(async () => {
    store = await openTestPgliteStore(LIVE_TEST_MIGRATIONS);
    world = await openLiveWorld(store);
    orgB = await world.as('org-b-operator');
  });
  afterAll(async () => {
    await store?.close();
  });

  async function setup(extra: Partial<Parameters<typeof createContextLive>[0]> = {}) {
    rx = await startReceiver();
    live = createContextLive({
      store,
      gate: world.gate,
      ld,
      query: createCoreQueryPort(ld),
      retry: { firstDelayMs: 50, maxDelayMs: 200 },
      egress: loopbackEgress(),
      ...extra,
    });
    await live.start();
  }
  afterEach(async () => {
    await live?.stop();
    await rx?.close();
    await store.db.deleteFrom('context_live_subscription' as never).execute();
    await store.db.deleteFrom('context_live_outbox' as never).execute();
    await store.db.deleteFrom('shared_object' as never).execute();
  });

  async function subscribe(body: Record<string, unknown>) {
    return live.subscriptions.create(
      '',
      orgB,
      {
        type: 'Subscription',
        entities: [{ type: 'Vehicle' }],
        notification: { endpoint: { uri: rx.url } },
        ...body,
      },
      undefined,
    );
  }

  it('notifies a matching update with the normalized entity, a Link header and delivery status', async () => {
    await setup();
    const sub = await subscribe({});
    await live.engine.handleChange('updated', entityChange(vehicle('urn:ngsi-ld:Vehicle:1', 50)));
    const [got] = await rx.waitFor(1);
    expect(got!.headers['content-type']).toBe('application/json');
    expect(got!.headers.link).toContain('rel="http://www.w3.org/ns/json-ld#context"');
    expect(got!.body).toMatchObject({
      type: 'Notification',
      subscriptionId: sub.spec.id,
      data: [{ id: 'urn:ngsi-ld:Vehicle:1', type: 'Vehicle', speed: { type: 'Property', value: 50 } }],
    });
    expect(String(got!.body.id)).toMatch(/^urn:ngsi-ld:Notification:/);
    const view = await live.subscriptions.view(
      await live.subscriptions.get('', orgB, sub.spec.id),
      undefined,
    );
    expect(view.status).toBe('active');
    expect(view.notification).toMatchObject({ timesSent: 1, timesFailed: 0, status: 'ok' });
    expect((view.notification as Record<string, unknown>).lastSuccess).toBeTypeOf('string');
  });

  it('honours watchedAttributes, q, keyValues and attributes', async () => {
    await setup();
    await subscribe({
      watchedAttributes: ['speed'],
      q: 'speed>80',
      notification: { endpoint: { uri: rx.url }, format: 'keyValues', attributes: ['speed'] },
    });
    const other = vehicle('urn:ngsi-ld:Vehicle:2', 90, {
      [`${V}colour`]: { type: 'Property', value: 'red' },
    });
    await live.engine.handleChange('updated', entityChange(other, { changed: [`${V}colour`] }));
    await live.engine.handleChange('updated', entityChange(vehicle('urn:ngsi-ld:Vehicle:2', 60)));
    await live.engine.handleChange('updated', entityChange(other, { changed: [`${V}speed`] }));
    const got = await rx.waitFor(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toHaveLength(1);
    expect(got[0]!.body.data).toEqual([{ id: 'urn:ngsi-ld:Vehicle:2', type: 'Vehicle', speed: 90 }]);
  });

  it('notifies deletions only to entityDeleted subscribers, with deletedAt', async () => {
    await setup();
    await subscribe({ notificationTrigger: ['entityDeleted'] });
    await live.engine.handleChange('updated', entityChange(vehicle('urn:ngsi-ld:Vehicle:3', 10)));
    await live.engine.handleChange(
      'deleted',
      entityChange(vehicle('urn:ngsi-ld:Vehicle:3', 10), { deleted: true }),
      '2026-11-27T11:00:00.000Z',
    );
    const got = await rx.waitFor(1);
    expect(got[0]!.body.data).toEqual([
      { id: 'urn:ngsi-ld:Vehicle:3', type: 'Vehicle', deletedAt: '2026-11-27T11:00:00.000Z' },
    ]);
  });

  it('never carries what the subscriber organisation may not read; a marking change applies at once', async () => {
    await setup();
    await subscribe({});
    const amber = { tlp: 'AMBER' as const, audience: { orgs: [], communities: [], users: [] } };
    const shared = { tlp: 'AMBER' as const, audience: { orgs: ['org-b'], communities: [], users: [] } };
    const e = vehicle('urn:ngsi-ld:Vehicle:4', 70);
    await live.engine.handleChange('updated', entityChange(e, { marking: amber }));
    await live.engine.handleChange('updated', entityChange(e, { marking: shared }));
    await live.engine.handleChange('updated', entityChange(e, { marking: amber }));
    const red = { tlp: 'RED' as const, audience: { orgs: [], communities: [], users: ['user-b'] } };
    // RED names users: a notification goes to the organisation's system, not to the named user.
    await live.engine.handleChange('updated', entityChange(e, { marking: red }));
    const got = await rx.waitFor(1);
    await new Promise((r) => setTimeout(r, 150));
    expect(got).toHaveLength(1);
    expect((got[0]!.body.data as unknown[]).length).toBe(1);
  });

  it('retries with backoff while the receiver is down and then delivers everything, in order', async () => {
    await setup();
    const sub = await subscribe({});
    rx.status = 503;
    for (let i = 0; i < 5; i++) {
      await live.engine.handleChange('updated', entityChange(vehicle('urn:ngsi-ld:Vehicle:5', i)));
    }
    expect(rx.received).toHaveLength(0);
    const pending = await live.engine.outbox('', sub.spec.id);
    expect(pending.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 400));
    rx.status = 200;
    const deadline = Date.now() + 5000;
    const speeds = () =>
      rx.received.flatMap((n) =>
        (n.body.data as Array<{ speed: { value: number } }>).map((d) => d.speed.value),
      );
    while (speeds().length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(speeds()).toEqual([0, 1, 2, 3, 4]);
    // The last answer's outbox row goes just after the receiver took it.
    const drained = Date.now() + 3000;
    while ((await live.engine.outbox('', sub.spec.id)).length > 0 && Date.now() < drained) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await live.engine.outbox('', sub.spec.id)).toEqual([]);
    const rec = await live.subscriptions.get('', orgB, sub.spec.id);
    expect(rec.delivery.timesFailed).toBeGreaterThan(0);
    expect(rec.delivery.status).toBe('ok');
    expect(rec.delivery.lastFailure).toBeTypeOf('string');
  });

  it('re-checks read keys when retrying: a marking tightened meanwhile stops the notification', async () => {
    await setup();
    const sub = await subscribe({});
    rx.status = 503;
    const e = vehicle('urn:ngsi-ld:Vehicle:6', 1);
    const change = entityChange(e);
    await live.engine.handleChange('updated', change);
    // The entity becomes AMBER for its owner only: the history's current keys say so.
    const tightened = entityChange(e, {
      marking: { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } },
    });
    await live.recordChanges([{ kind: 'updated', change: tightened, at: new Date().toISOString() }]);
    rx.status = 200;
    const deadline = Date.now() + 3000;
    while ((await live.engine.outbox('', sub.spec.id)).length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await live.engine.outbox('', sub.spec.id)).toEqual([]);
    expect(rx.received).toHaveLength(0);
  });

  it('throttling sends at most one notification per period, with the latest state', async () => {
    await setup();
    await subscribe({ throttling: 0.3 });
    for (let i = 0; i < 5; i++) {
      await live.engine.handleChange('updated', entityChange(vehicle('urn:ngsi-ld:Vehicle:7', i)));
    }
    const got = await rx.waitFor(2, 3000);
    await new Promise((r) => setTimeout(r, 400));
    expect(got).toHaveLength(2);
    // Sent 300 ms apart; arrival times at the receiver carry some jitter of a loaded machine (248 ms was seen).
    // Without throttling the two would arrive within a few milliseconds.
    expect(got[1]!.at - got[0]!.at).toBeGreaterThanOrEqual(200);
    expect(got[1]!.body.data).toMatchObject([{ speed: { value: 4 } }]);
  });

  it('a paused or expired subscription does not notify', async () => {
    await setup();
    const sub = await subscribe({});
    await live.subscriptions.update('', orgB, sub.spec.id, { isActive: false }, undefined);
    await live.engine.handleChange('updated', entityChange(vehicle('urn:ngsi-ld:Vehicle:8', 1)));
    await new Promise((r) => setTimeout(r, 100));
    expect(rx.received).toHaveLength(0);
    const view = await live.subscriptions.view(
      await live.subscriptions.get('', orgB, sub.spec.id),
      undefined,
    );
    expect(view.status).toBe('paused');
  });

  it("uses the subscriber organisation's keys at delivery time: a community membership acts at once", async () => {
    await setup();
    await world.access.orgs.createCommunity(null, { id: 'transport', name: 'Transport' });
    await subscribe({});
    const transport = {
      tlp: 'GREEN' as const,
      audience: { orgs: [], communities: ['transport'], users: [] },
    };
    const e = vehicle('urn:ngsi-ld:Vehicle:9', 1);
    await live.engine.handleChange('updated', entityChange(e, { marking: transport }));
    await world.access.orgs.setCommunityMember(null, 'transport', 'org-b', true);
    await live.engine.handleChange(
      'updated',
      entityChange(vehicle('urn:ngsi-ld:Vehicle:9', 2), { marking: transport }),
    );
    const got = await rx.waitFor(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toHaveLength(1);
    expect(got[0]!.body.data).toMatchObject([{ speed: { value: 2 } }]);
  });

  it('sends application/ld+json notifications with the subscription @context in the body', async () => {
    await setup();
    const ctx = { Car: `${V}Vehicle`, velocity: `${V}speed` };
    await live.subscriptions.create(
      '',
      orgB,
      {
        type: 'Subscription',
        entities: [{ type: 'Car' }],
        notification: { endpoint: { uri: rx.url, accept: 'application/ld+json' }, format: 'concise' },
        '@context': ctx,
      },
      undefined,
    );
    await live.engine.handleChange('updated', entityChange(vehicle('urn:ngsi-ld:Vehicle:10', 33)), undefined);
    const [got] = await rx.waitFor(1);
    expect(got!.headers['content-type']).toBe('application/ld+json');
    expect(got!.headers.link).toBeUndefined();
    expect(got!.body['@context']).toEqual(ctx);
    expect(got!.body.data).toEqual([
      {
        id: 'urn:ngsi-ld:Vehicle:10',
        type: 'Car',
        velocity: { value: 33, observedAt: '2026-11-27T10:00:00.000Z' },
        '@context': ctx,
      },
    ]);
  });

  it('does not hold the bus for a slow receiver: changes are made durable and still arrive, in order', async () => {
    await setup({ spillMs: 200 });
    const sub = await subscribe({});
    rx.delayMs = 600;
    const started = performance.now();
    for (let i = 0; i < 6; i++) {
      await live.engine.handleChange('updated', entityChange(vehicle('urn:ngsi-ld:Vehicle:11', i)));
    }
    // Six changes handed back well before six (or even one) 600 ms answers.
    expect(performance.now() - started).toBeLessThan(1500);
    rx.delayMs = 0;
    const speeds = () =>
      rx.received.flatMap((n) =>
        (n.body.data as Array<{ speed: { value: number } }>).map((d) => d.speed.value),
      );
    const deadline = Date.now() + 8000;
    while (speeds().length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(speeds()).toEqual([0, 1, 2, 3, 4, 5]);
    const end = Date.now() + 3000;
    while ((await live.engine.outbox('', sub.spec.id)).length > 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await live.engine.outbox('', sub.spec.id)).toEqual([]);
  });

  describe('gap 7: markings travel with notifications', () => {
    it('labels each notification with the tightest marking of what it holds (SafeCity-Marking)', async () => {
      await setup();
      await subscribe({
        notification: {
          endpoint: {
            uri: rx.url,
            // A subscriber names its own headers, never the platform's label.
            receiverInfo: [
              { key: 'safecity-marking', value: 'TLP:CLEAR; owner=nobody' },
              { key: 'X-Tag', value: 't1' },
            ],
          },
        },
      });
      const shared = {
        tlp: 'AMBER' as const,
        pap: 'GREEN' as const,
        audience: { orgs: ['org-b'], communities: [], users: [] },
      };
      rx.delayMs = 300;
      const first = live.engine.handleChange(
        'updated',
        entityChange(vehicle('urn:ngsi-ld:Vehicle:20', 1), { marking: shared }),
      );
      // While the first is in flight, two changes gather into the next notification.
      await new Promise((r) => setTimeout(r, 50));
      await Promise.all([
        first,
        live.engine.handleChange('updated', entityChange(vehicle('urn:ngsi-ld:Vehicle:21', 2))),
        live.engine.handleChange(
          'updated',
          entityChange(vehicle('urn:ngsi-ld:Vehicle:22', 3), { marking: shared, ownerOrg: 'org-c' }),
        ),
      ]);
      const got = await rx.waitFor(2);
      expect(got[0]!.headers[MARKING_HEADER.toLowerCase()]).toBe('TLP:AMBER; PAP:GREEN; owner=org-a');
      expect(got[0]!.headers['x-tag']).toBe('t1');
      expect(got[1]!.body.data).toHaveLength(2);
      expect(parseMarkingLabel(String(got[1]!.headers[MARKING_HEADER.toLowerCase()]))).toEqual({
        tlp: 'AMBER',
        pap: 'GREEN',
        owners: ['org-a', 'org-c'],
      });
      // The payload stays a standard NGSI-LD Notification.
      expect(Object.keys(got[0]!.body).sort()).toEqual([
        'data',
        'id',
        'notifiedAt',
        'subscriptionId',
        'type',
      ]);
    });
  });

  describe('derived data follows its sources: retries', () => {
    it('drops the retry of an entity that was deleted and created again (another incarnation)', async () => {
      await setup();
      const sub = await subscribe({});
      rx.status = 503;
      const e = vehicle('urn:ngsi-ld:Vehicle:30', 1);
      const first = entityChange(e, { incarnation: 'inc-1' });
      await live.recordChanges([{ kind: 'created', change: first, at: new Date().toISOString() }]);
      await live.engine.handleChange('updated', first);
      expect((await live.engine.outbox('', sub.spec.id)).length).toBeGreaterThan(0);
      // Deleted and created again by another organisation, marked so that org-b may see it too.
      const now = new Date().toISOString();
      await live.recordChanges([
        { kind: 'deleted', change: entityChange(e, { incarnation: 'inc-1', deleted: true }), at: now },
        { kind: 'created', change: entityChange(e, { incarnation: 'inc-2', ownerOrg: 'org-c' }), at: now },
      ]);
      rx.status = 200;
      const deadline = Date.now() + 3000;
      while ((await live.engine.outbox('', sub.spec.id)).length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await live.engine.outbox('', sub.spec.id)).toEqual([]);
      expect(rx.received).toHaveLength(0);
    });

    it('labels a retry with the tighter of the marking at the change and the marking now', async () => {
      await setup();
      const sub = await subscribe({});
      rx.status = 503;
      const e = vehicle('urn:ngsi-ld:Vehicle:31', 1);
      await live.engine.handleChange('updated', entityChange(e, { incarnation: 'inc-31' }));
      const amber = { tlp: 'AMBER' as const, audience: { orgs: ['org-b'], communities: [], users: [] } };
      await live.recordChanges([
        {
          kind: 'updated',
          change: entityChange(e, { incarnation: 'inc-31', marking: amber }),
          at: new Date().toISOString(),
        },
      ]);
      rx.status = 200;
      const [got] = await rx.waitFor(1, 5000);
      expect(got!.headers[MARKING_HEADER.toLowerCase()]).toBe('TLP:AMBER; owner=org-a');
      expect(rx.received).toHaveLength(1);
      const deadline = Date.now() + 3000;
      while ((await live.engine.outbox('', sub.spec.id)).length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await live.engine.outbox('', sub.spec.id)).toEqual([]);
    });
  });
});

describe('notification retries shared by instances (PGlite, real HTTP receivers)', () => {
  let store: Store;
  let world: LiveTestWorld;
  let orgB: LivePrincipal;
  const ld = testLdContext();
  const lives: ContextLive[] = [];
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    store = await openTestPgliteStore(LIVE_TEST_MIGRATIONS);
    world = await openLiveWorld(store);
    orgB = await world.as('org-b-operator');
  });
  afterAll(async () => {
    for (const l of lives) await l.stop();
    for (const r of receivers) await r.close();
    await store?.close();
  });

  async function instance(extra: Partial<Parameters<typeof createContextLive>[0]> = {}) {
    const live = createContextLive({
      store,
      gate: world.gate,
      ld,
      query: createCoreQueryPort(ld),
      egress: loopbackEgress(),
      retry: { firstDelayMs: 50, maxDelayMs: 200 },
      ...extra,
    });
    await live.start();
    lives.push(live);
    return live;
  }
  async function receiver() {
    const rx = await startReceiver();
    receivers.push(rx);
    return rx;
  }
  const subscribe = (live: ContextLive, rx: Receiver, type: string) =>
    live.subscriptions.create(
      '',
      orgB,
      { type: 'Subscription', entities: [{ type }], notification: { endpoint: { uri: rx.url } } },
      undefined,
    );
  const speeds = (rx: Receiver) =>
    rx.received.flatMap((n) =>
      (n.body.data as Array<{ speed: { value: number } }>).map((d) => d.speed.value),
    );

  it('a retry waiting for a slow receiver does not hold back another subscription’s retries', async () => {
    const live = await instance();
    const slow = await receiver();
    const quick = await receiver();
    await subscribe(live, slow, 'Bus');
    await subscribe(live, quick, 'Tram');
    const bus = (speed: number) => ({ ...vehicle('urn:ngsi-ld:Bus:1', speed), type: [`${V}Bus`] });
    const tram = (speed: number) => ({ ...vehicle('urn:ngsi-ld:Tram:1', speed), type: [`${V}Tram`] });
    slow.status = 503;
    await live.engine.handleChange('updated', entityChange(bus(1)));
    // The slow receiver is back but takes 3 s to answer: its retry is in flight for that long.
    slow.status = 200;
    slow.delayMs = 3000;
    await new Promise((r) => setTimeout(r, 300));
    quick.status = 503;
    await live.engine.handleChange('updated', entityChange(tram(2)));
    quick.status = 200;
    const t0 = Date.now();
    await quick.waitFor(1, 2500);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(slow.received).toHaveLength(0);
    await slow.waitFor(1, 6000);
    expect([speeds(slow), speeds(quick)]).toEqual([[1], [2]]);
  });

  it('a live instance keeps the lease of a slow notification: another instance does not send it again', async () => {
    const rx = await receiver();
    const a = await instance({ spillMs: 100, leaseMs: 300, retryPollMs: 50 });
    const sub = await subscribe(a, rx, 'Ferry');
    // A second instance, with the subscription loaded from the store and its retry worker polling.
    const b = await instance({ spillMs: 100, leaseMs: 300, retryPollMs: 50 });
    rx.delayMs = 1500;
    const ferry = { ...vehicle('urn:ngsi-ld:Ferry:1', 7), type: [`${V}Ferry`] };
    await a.engine.handleChange('updated', entityChange(ferry));
    // Made durable after spillMs, held by a for five lease periods while the receiver thinks.
    expect(await a.engine.outbox('', sub.spec.id)).toHaveLength(1);
    await rx.waitFor(1, 4000);
    await new Promise((r) => setTimeout(r, 800));
    expect(speeds(rx)).toEqual([7]);
    expect(await b.engine.outbox('', sub.spec.id)).toEqual([]);
  });

  it('after an outage the backlog leaves in a few notifications, in order', async () => {
    const rx = await receiver();
    const live = await instance();
    await subscribe(live, rx, 'Taxi');
    rx.status = 503;
    for (let i = 0; i < 60; i++) {
      await live.engine.handleChange(
        'updated',
        entityChange({ ...vehicle('urn:ngsi-ld:Taxi:1', i), type: [`${V}Taxi`] }),
      );
    }
    rx.status = 200;
    const deadline = Date.now() + 5000;
    while (speeds(rx).length < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(speeds(rx)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(rx.received.length).toBeLessThanOrEqual(5);
  });
});
