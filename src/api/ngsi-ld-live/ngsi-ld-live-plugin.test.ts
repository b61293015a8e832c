import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../adapters/bus/index.ts';
import { openTestPgliteStore } from '../../adapters/storage/testing.ts';
import type { Principal } from '../../modules/access/index.ts';
import { ContextService, contextMigrations } from '../../modules/context/index.ts';
import {
  type ContextLive,
  createContextLive,
  createCoreQueryPort,
} from '../../modules/context-live/index.ts';
import {
  LIVE_TEST_MIGRATIONS,
  type LiveTestWorld,
  loopbackEgress,
  openLiveWorld,
  type Receiver,
  startReceiver,
  testLdContext,
} from '../../modules/context-live/testing.ts';
import { TransactionalOutbox } from '../../modules/events/index.ts';
import { MARKING_HEADER, type Tlp } from '../../modules/sharing/index.ts';
import type { EventBus } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { ROUTER_OPTIONS } from '../http/router-options.ts';
import { ngsiLdLivePlugin } from './index.ts';

const LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"';

describe('NGSI-LD live API (subscriptions, temporal, ingestion)', () => {
  let store: Store;
  let bus: EventBus;
  let core: ContextService;
  let live: ContextLive;
  let outbox: TransactionalOutbox;
  let app: FastifyInstance;
  let rx: Receiver;
  let world: LiveTestWorld;
  const principals = new Map<string, Principal>();
  /** An entity writer of org-a for the core (which is not on the gate in these tests). */
  const writerOf = (tlp: Tlp) => {
    const p = principals.get('org-a-operator') as Principal;
    return {
      tenant: '',
      principal: p,
      readKeys: p.readKeys,
      defaultMarking: { tlp, audience: { orgs: [], communities: [], users: [] } },
    };
  };

  beforeAll(async () => {
    store = await openTestPgliteStore({ ...contextMigrations, ...LIVE_TEST_MIGRATIONS });
    bus = createMemoryBus();
    world = await openLiveWorld(store);
    await world.access.accounts.createServiceAccountToken(null, { orgId: 'org-a', name: 'svc-noise' });
    for (const name of [...world.users.keys(), 'svc-noise']) principals.set(name, await world.as(name));
    const ld = testLdContext();
    outbox = new TransactionalOutbox({ store, bus });
    core = new ContextService({
      store,
      bus,
      events: outbox.emitter('context'),
      gate: world.gate,
      resolver: ld,
    });
    live = createContextLive({
      store,
      events: outbox.emitter('context-live'),
      gate: world.gate,
      ld,
      query: createCoreQueryPort(ld),
      writer: core,
      entityReader: core,
      busMembers: 8,
      retry: { firstDelayMs: 50, maxDelayMs: 200 },
      egress: loopbackEgress(),
    });
    await live.start(bus);
    rx = await startReceiver();
    app = Fastify({ routerOptions: ROUTER_OPTIONS });
    // Tests set the principal from `x-test-user: <username>` (accounts of the world: `org-b-operator`…).
    app.addHook('onRequest', async (request) => {
      const who = request.headers['x-test-user'];
      const p = typeof who === 'string' ? principals.get(who) : undefined;
      if (p) request.principal = p;
    });
    await app.register(ngsiLdLivePlugin, { live });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await live?.stop();
    await rx?.close();
    await outbox?.stop();
    await bus?.close();
    await store?.close();
  });

  const asB = { 'x-test-user': 'org-b-operator', 'content-type': 'application/json' };
  const subscription = (extra: Record<string, unknown> = {}) => ({
    type: 'Subscription',
    entities: [{ type: 'Vehicle' }],
    notification: { endpoint: { uri: rx.url } },
    ...extra,
  });

  describe('subscriptions', () => {
    it('creates (201 + Location), retrieves with status, lists with a count, updates and deletes', async () => {
      const created = await app.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/subscriptions',
        headers: asB,
        payload: subscription({
          id: 'urn:ngsi-ld:Subscription:s1',
          subscriptionName: 'cars',
          watchedAttributes: ['speed'],
        }),
      });
      expect(created.statusCode).toBe(201);
      expect(created.headers.location).toBe('/ngsi-ld/v1/subscriptions/urn%3Angsi-ld%3ASubscription%3As1');
      const got = await app.inject({
        method: 'GET',
        url: '/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:s1',
        headers: asB,
      });
      expect(got.statusCode).toBe(200);
      expect(got.headers['content-type']).toContain('application/json');
      expect(got.headers.link).toContain(LINK_REL);
      expect(got.json()).toMatchObject({
        id: 'urn:ngsi-ld:Subscription:s1',
        type: 'Subscription',
        subscriptionName: 'cars',
        entities: [{ type: 'Vehicle' }],
        watchedAttributes: ['speed'],
        notificationTrigger: ['attributeCreated', 'attributeUpdated'],
        status: 'active',
        notification: {
          format: 'normalized',
          endpoint: { uri: rx.url, accept: 'application/json' },
          timesSent: 0,
        },
      });
      const list = await app.inject({
        method: 'GET',
        url: '/ngsi-ld/v1/subscriptions?count=true',
        headers: asB,
      });
      expect(list.headers['ngsild-results-count']).toBe('1');
      expect(list.json()).toHaveLength(1);
      const patched = await app.inject({
        method: 'PATCH',
        url: '/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:s1',
        headers: asB,
        payload: { isActive: false, throttling: 2 },
      });
      expect(patched.statusCode).toBe(204);
      const after = await app.inject({
        method: 'GET',
        url: '/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:s1',
        headers: asB,
      });
      expect(after.json()).toMatchObject({ isActive: false, status: 'paused', throttling: 2 });
      const del = await app.inject({
        method: 'DELETE',
        url: '/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:s1',
        headers: asB,
      });
      expect(del.statusCode).toBe(204);
      const gone = await app.inject({
        method: 'GET',
        url: '/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:s1',
        headers: asB,
      });
      expect(gone.statusCode).toBe(404);
      expect(gone.json()).toMatchObject({
        type: 'https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound',
        status: 404,
      });
    });

    it('takes the @context of an application/ld+json body and answers ld+json with it', async () => {
      const ctx = { Car: 'https://example.org/Car', velocity: 'https://example.org/velocity' };
      const created = await app.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/subscriptions',
        headers: { ...asB, 'content-type': 'application/ld+json' },
        payload: {
          ...subscription({ entities: [{ type: 'Car' }], watchedAttributes: ['velocity'] }),
          '@context': [ctx],
        },
      });
      expect(created.statusCode).toBe(201);
      const id = decodeURIComponent(String(created.headers.location).split('/').pop() ?? '');
      const got = await app.inject({
        method: 'GET',
        url: `/ngsi-ld/v1/subscriptions/${id}`,
        headers: { ...asB, accept: 'application/ld+json' },
      });
      expect(got.headers['content-type']).toContain('application/ld+json');
      expect(got.json()).toMatchObject({
        entities: [{ type: 'Car' }],
        watchedAttributes: ['velocity'],
        '@context': [ctx],
      });
      // Without the context the terms come back as IRIs.
      const plain = await app.inject({
        method: 'GET',
        url: `/ngsi-ld/v1/subscriptions/${id}`,
        headers: { 'x-test-user': 'org-b-operator' },
      });
      expect(plain.json().entities).toEqual([{ type: 'Car' }]);
    });

    it('answers NGSI-LD ProblemDetails for bad requests, conflicts, strangers and anonymous callers', async () => {
      const bad = await app.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/subscriptions',
        headers: asB,
        payload: subscription({ throttling: -3 }),
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({
        type: 'https://uri.etsi.org/ngsi-ld/errors/BadRequestData',
        detail: expect.stringContaining('throttling'),
      });
      const json = await app.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/subscriptions',
        headers: asB,
        payload: '{oops',
      });
      expect(json.statusCode).toBe(400);
      expect(json.json().type).toBe('https://uri.etsi.org/ngsi-ld/errors/InvalidRequest');
      const body = subscription({ id: 'urn:ngsi-ld:Subscription:dup' });
      expect(
        (await app.inject({ method: 'POST', url: '/ngsi-ld/v1/subscriptions', headers: asB, payload: body }))
          .statusCode,
      ).toBe(201);
      const dup = await app.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/subscriptions',
        headers: asB,
        payload: body,
      });
      expect(dup.statusCode).toBe(409);
      expect(dup.json().type).toBe('https://uri.etsi.org/ngsi-ld/errors/AlreadyExists');
      const stranger = await app.inject({
        method: 'GET',
        url: '/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:dup',
        headers: { 'x-test-user': 'org-c-operator' },
      });
      expect(stranger.statusCode).toBe(404);
      const patchStranger = await app.inject({
        method: 'PATCH',
        url: '/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:dup',
        headers: { 'x-test-user': 'org-c-operator', 'content-type': 'application/json' },
        payload: { isActive: false },
      });
      expect(patchStranger.statusCode).toBe(404);
      const anon = await app.inject({ method: 'GET', url: '/ngsi-ld/v1/subscriptions' });
      expect(anon.statusCode).toBe(401);
      const notAcceptable = await app.inject({
        method: 'GET',
        url: '/ngsi-ld/v1/subscriptions',
        headers: { ...asB, accept: 'text/html' },
      });
      expect(notAcceptable.statusCode).toBe(406);
      await app.inject({
        method: 'DELETE',
        url: '/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:dup',
        headers: asB,
      });
    });
  });

  describe('notifications from entity changes', () => {
    it('notifies what the subscriber organisation may see and nothing else', async () => {
      rx.received.length = 0;
      const res = await app.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/subscriptions',
        headers: asB,
        payload: subscription({
          entities: [{ type: 'Ambulance' }],
          notification: { endpoint: { uri: rx.url }, format: 'keyValues' },
        }),
      });
      expect(res.statusCode).toBe(201);
      const id = decodeURIComponent(String(res.headers.location).split('/').pop() ?? '');
      const ctx = await core.resolveContext(null);
      await core.createEntity(
        writerOf('AMBER'),
        {
          id: 'urn:ngsi-ld:Ambulance:hidden',
          type: 'Ambulance',
          status: { type: 'Property', value: 'busy' },
        },
        ctx,
      );
      await core.createEntity(
        writerOf('GREEN'),
        { id: 'urn:ngsi-ld:Ambulance:a1', type: 'Ambulance', status: { type: 'Property', value: 'free' } },
        ctx,
      );
      const [n] = await rx.waitFor(1);
      await new Promise((r) => setTimeout(r, 100));
      expect(rx.received).toHaveLength(1);
      expect(n!.body).toMatchObject({
        subscriptionId: id,
        data: [{ id: 'urn:ngsi-ld:Ambulance:a1', type: 'Ambulance', status: 'free' }],
      });
      expect(n!.headers[MARKING_HEADER.toLowerCase()]).toBe('TLP:GREEN; owner=org-a');
      const got = await app.inject({ method: 'GET', url: `/ngsi-ld/v1/subscriptions/${id}`, headers: asB });
      expect(got.json().notification).toMatchObject({ timesSent: 1, status: 'ok' });
    });
  });

  describe('periodic notifications', () => {
    it('notifies the matching entities every timeInterval, whether they changed or not', async () => {
      const periodic = await startReceiver();
      const ctx = await core.resolveContext(null);
      await core.createEntity(
        writerOf('GREEN'),
        { id: 'urn:ngsi-ld:Shelter:s1', type: 'Shelter', capacity: { type: 'Property', value: 300 } },
        ctx,
      );
      const res = await app.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/subscriptions',
        headers: asB,
        payload: {
          type: 'Subscription',
          entities: [{ type: 'Shelter' }],
          timeInterval: 0.2,
          notification: { endpoint: { uri: periodic.url }, format: 'keyValues' },
        },
      });
      expect(res.statusCode).toBe(201);
      const got = await periodic.waitFor(2, 5000);
      // On a loaded machine two periods may leave in one notification: each holds the same entity.
      for (const n of got.slice(0, 2)) {
        for (const e of n.body.data as unknown[]) {
          expect(e).toEqual({ id: 'urn:ngsi-ld:Shelter:s1', type: 'Shelter', capacity: 300 });
        }
      }
      const id = decodeURIComponent(String(res.headers.location).split('/').pop() ?? '');
      await app.inject({ method: 'DELETE', url: `/ngsi-ld/v1/subscriptions/${id}`, headers: asB });
      await periodic.close();
    });
  });

  describe('gap 6: one admin for everything — history retention belongs to each owner', () => {
    it("lets an organisation's administrators set, list and clear its own retention, and no one else", async () => {
      const asAdmin = { 'x-test-user': 'org-a-admin', 'content-type': 'application/json' };
      const set = await app.inject({
        method: 'PUT',
        url: '/ngsi-ld/v1/temporal/retention/WeatherObserved',
        headers: asAdmin,
        payload: { seconds: 7 * 86400 },
      });
      expect(set.statusCode).toBe(204);
      const rule = [
        { entityType: 'https://uri.etsi.org/ngsi-ld/default-context/WeatherObserved', seconds: 604800 },
      ];
      const list = (who: string) =>
        app.inject({ method: 'GET', url: '/ngsi-ld/v1/temporal/retention', headers: { 'x-test-user': who } });
      expect((await list('org-a-admin')).json()).toEqual(rule);
      // Its organisation's users read it; another organisation's administrator has rules of its own only.
      expect((await list('org-a-viewer')).json()).toEqual(rule);
      expect((await list('org-b-admin')).json()).toEqual([]);
      const bad = await app.inject({
        method: 'PUT',
        url: '/ngsi-ld/v1/temporal/retention/WeatherObserved',
        headers: asAdmin,
        payload: { seconds: 'a week' },
      });
      expect(bad.statusCode).toBe(400);
      for (const who of ['org-a-operator', 'org-a-viewer', 'org-b-operator']) {
        const refused = await app.inject({
          method: 'PUT',
          url: '/ngsi-ld/v1/temporal/retention/WeatherObserved',
          headers: { 'x-test-user': who, 'content-type': 'application/json' },
          payload: { seconds: 60 },
        });
        expect(refused.statusCode).toBe(403);
        expect(refused.json()).toMatchObject({ code: 'AUTH_ROLE_REQUIRED' });
      }
      // org-b's administrator sets org-b's rule for the type: org-a's stays as it was.
      const other = await app.inject({
        method: 'PUT',
        url: '/ngsi-ld/v1/temporal/retention/WeatherObserved',
        headers: { 'x-test-user': 'org-b-admin', 'content-type': 'application/json' },
        payload: { seconds: 60 },
      });
      expect(other.statusCode).toBe(204);
      expect((await list('org-a-admin')).json()).toEqual(rule);
      expect((await list('org-b-operator')).json()).toEqual([{ ...rule[0], seconds: 60 }]);
      const anonymous = await app.inject({ method: 'GET', url: '/ngsi-ld/v1/temporal/retention' });
      expect(anonymous.statusCode).toBe(401);
      const cleared = await app.inject({
        method: 'DELETE',
        url: '/ngsi-ld/v1/temporal/retention/WeatherObserved',
        headers: { 'x-test-user': 'org-a-admin' },
      });
      expect(cleared.statusCode).toBe(204);
      expect((await list('org-a-admin')).json()).toEqual([]);
      expect((await list('org-b-admin')).json()).toHaveLength(1);
    });
  });

  describe('subscriptions are shares', () => {
    it.each([
      ['org-a-viewer', 403],
      ['org-a-responder', 403],
      ['org-a-analyst', 201],
    ])('POST /subscriptions as %s → %i', async (who, status) => {
      const res = await app.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/subscriptions',
        headers: { 'x-test-user': who, 'content-type': 'application/json' },
        payload: subscription(),
      });
      expect(res.statusCode).toBe(status);
      if (status === 403) {
        expect(res.json()).toMatchObject({ status: 403, code: 'AUTH_ROLE_REQUIRED' });
      } else {
        const id = decodeURIComponent(String(res.headers.location).split('/').pop() ?? '');
        // Its organisation's viewer sees it but may not change it.
        const patch = await app.inject({
          method: 'PATCH',
          url: `/ngsi-ld/v1/subscriptions/${id}`,
          headers: { 'x-test-user': 'org-a-viewer', 'content-type': 'application/json' },
          payload: { isActive: false },
        });
        expect(patch.statusCode).toBe(403);
        await app.inject({
          method: 'DELETE',
          url: `/ngsi-ld/v1/subscriptions/${id}`,
          headers: { 'x-test-user': who },
        });
      }
    });
  });

  describe('HTTP ingestion and the temporal API', () => {
    const asSensor = { 'x-test-user': 'svc-noise', 'content-type': 'application/json' };

    it('ingests measurements and serves their history, simplified and aggregated', async () => {
      for (let i = 0; i < 6; i++) {
        const r = await app.inject({
          method: 'POST',
          url: '/ingest/v1/default/measurements/NoiseLevelObserved/n1',
          headers: asSensor,
          payload: { laeq: 50 + i, observedAt: `2026-11-27T10:0${i}:00Z` },
        });
        expect(r.statusCode).toBe(200);
        expect(r.json()).toEqual({ accepted: 1 });
      }
      const id = 'urn:ngsi-ld:NoiseLevelObserved:n1';
      const asReader = { 'x-test-user': 'org-b-operator' };
      let values: unknown;
      for (let i = 0; i < 100; i++) {
        const r = await app.inject({
          method: 'GET',
          url: `/ngsi-ld/v1/temporal/entities/${id}?options=temporalValues`,
          headers: asReader,
        });
        values = r.statusCode === 200 ? r.json().laeq?.values : undefined;
        if (Array.isArray(values) && values.length === 6) break;
        await new Promise((res) => setTimeout(res, 20));
      }
      expect(values).toEqual([0, 1, 2, 3, 4, 5].map((i) => [50 + i, `2026-11-27T10:0${i}:00.000Z`]));
      // gap 7: the answer carries the marking of what it holds (the sensor's organisation's default).
      const labelled = await app.inject({
        method: 'GET',
        url: `/ngsi-ld/v1/temporal/entities/${id}?lastN=1`,
        headers: asReader,
      });
      expect(labelled.headers[MARKING_HEADER.toLowerCase()]).toBe('TLP:GREEN; owner=org-a');
      expect(Object.keys(labelled.json()).sort()).toEqual(['id', 'laeq', 'type']);
      const agg = await app.inject({
        method: 'GET',
        url: `/ngsi-ld/v1/temporal/entities/${id}?aggrMethods=avg,max&aggrPeriodDuration=PT3M&timerel=between&timeAt=2026-11-27T10:00:00Z&endTimeAt=2026-11-27T10:06:00Z`,
        headers: asReader,
      });
      expect(agg.json().laeq).toEqual({
        type: 'Property',
        avg: [
          [51, '2026-11-27T10:00:00.000Z', '2026-11-27T10:03:00.000Z'],
          [54, '2026-11-27T10:03:00.000Z', '2026-11-27T10:06:00.000Z'],
        ],
        max: [
          [52, '2026-11-27T10:00:00.000Z', '2026-11-27T10:03:00.000Z'],
          [55, '2026-11-27T10:03:00.000Z', '2026-11-27T10:06:00.000Z'],
        ],
      });
      const byType = await app.inject({
        method: 'GET',
        url: '/ngsi-ld/v1/temporal/entities?type=NoiseLevelObserved&lastN=1',
        headers: { ...asReader, accept: 'application/ld+json' },
      });
      expect(byType.json()).toMatchObject([{ id, laeq: [{ value: 55 }], '@context': expect.any(String) }]);
    });

    it('rejects temporal queries without a filter or with bad parameters, and unknown entities', async () => {
      const none = await app.inject({
        method: 'GET',
        url: '/ngsi-ld/v1/temporal/entities',
        headers: asSensor,
      });
      expect(none.statusCode).toBe(400);
      const bad = await app.inject({
        method: 'GET',
        url: '/ngsi-ld/v1/temporal/entities?type=X&timerel=after',
        headers: asSensor,
      });
      expect(bad.json()).toMatchObject({ status: 400, detail: 'timerel needs timeAt' });
      // Filters reach the module over HTTP, never ignored (they once were: the plugin did not pass them on,
      // and a filtered question got an unfiltered answer): q, scopeQ and geo-queries filter, csf is refused.
      for (const filter of [
        'q=laeq>100',
        'scopeQ=/nowhere',
        'georel=near;maxDistance==1&geometry=Point&coordinates=[0,0]',
      ]) {
        const filtered = await app.inject({
          method: 'GET',
          url: `/ngsi-ld/v1/temporal/entities?type=NoiseLevelObserved&${filter}`,
          headers: asSensor,
        });
        expect([filtered.statusCode, filtered.json()], filter).toEqual([200, []]);
      }
      for (const filter of ['csf=x']) {
        const refused = await app.inject({
          method: 'GET',
          url: `/ngsi-ld/v1/temporal/entities?type=NoiseLevelObserved&${filter}`,
          headers: asSensor,
        });
        expect(refused.json(), filter).toMatchObject({
          status: 422,
          type: 'https://uri.etsi.org/ngsi-ld/errors/OperationNotSupported',
        });
      }
      const refusedOne = await app.inject({
        method: 'GET',
        url: '/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:X:none?csf=x',
        headers: asSensor,
      });
      expect(refusedOne.statusCode).toBe(422);
      const unknown = await app.inject({
        method: 'GET',
        url: '/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:X:none',
        headers: asSensor,
      });
      expect(unknown.statusCode).toBe(404);
    });

    it('refuses anonymous ingestion, and dead-letters malformed messages with the reason', async () => {
      const anon = await app.inject({
        method: 'POST',
        url: '/ingest/v1/default/measurements/NoiseLevelObserved/n2',
        headers: { 'content-type': 'application/json' },
        payload: { laeq: 1 },
      });
      expect(anon.statusCode).toBe(401);
      const bad = await app.inject({
        method: 'POST',
        url: '/ingest/v1/default/measurements/NoiseLevelObserved/n2',
        headers: asSensor,
        payload: '{"laeq": ',
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({
        detail: 'the message is not JSON',
        code: 'CONTEXT_LIVE_INGEST_INVALID',
      });
      const letters = await app.inject({ method: 'GET', url: '/ingest/v1/dead-letters', headers: asSensor });
      expect(letters.json()[0]).toMatchObject({
        source: 'http',
        reason: 'the message is not JSON',
        payload: '{"laeq": ',
      });
      const others = await app.inject({
        method: 'GET',
        url: '/ingest/v1/dead-letters',
        headers: { 'x-test-user': 'org-b-operator' },
      });
      expect(others.json()).toEqual([]);
    });
  });

  describe('temporal provision (clause 6.18–6.22)', () => {
    const CORE = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld';
    const asA = { 'x-test-user': 'org-a-operator', 'content-type': 'application/json' };
    const at = (minute: number) => `2026-11-28T12:0${minute}:00Z`;
    const id = 'urn:ngsi-ld:Vehicle:temporal-http-1';
    const get = async (query = '') => {
      const r = await app.inject({
        method: 'GET',
        url: `/ngsi-ld/v1/temporal/entities/${id}${query}`,
        headers: { 'x-test-user': 'org-a-operator' },
      });
      return r;
    };

    it('creates (201 + Location, no body), adds (204), modifies and deletes instances, deletes (204 then 404)', async () => {
      const created = await app.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/temporal/entities',
        headers: { ...asA, 'content-type': 'application/ld+json' },
        payload: {
          id,
          type: 'Vehicle',
          speed: [
            { type: 'Property', value: 120, observedAt: at(3) },
            { type: 'Property', value: 80, observedAt: at(5) },
          ],
          fuelLevel: [
            { type: 'Property', value: 67, observedAt: at(3) },
            { type: 'Property', value: 40, observedAt: at(7), datasetId: 'urn:ngsi-ld:Dataset:fuel' },
          ],
          '@context': CORE,
        },
      });
      expect(created.statusCode, created.body).toBe(201);
      expect(created.body).toBe('');
      expect(created.headers.location).toBe(`/ngsi-ld/v1/temporal/entities/${encodeURIComponent(id)}`);
      const first = (await get()).json();
      expect(first).toMatchObject({
        id,
        type: 'Vehicle',
        speed: [
          { type: 'Property', value: 120, observedAt: '2026-11-28T12:03:00.000Z' },
          { type: 'Property', value: 80, observedAt: '2026-11-28T12:05:00.000Z' },
        ],
      });
      const again = await app.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/temporal/entities',
        headers: asA,
        payload: { id, type: 'Vehicle', speed: [{ type: 'Property', value: 90, observedAt: at(6) }] },
      });
      expect(again.statusCode).toBe(204);
      const appended = await app.inject({
        method: 'POST',
        url: `/ngsi-ld/v1/temporal/entities/${id}/attrs`,
        headers: asA,
        payload: { speed: { type: 'Property', value: 70, observedAt: at(8) } },
      });
      expect(appended.statusCode).toBe(204);
      const instanceId = first.speed[0].instanceId as string;
      const patched = await app.inject({
        method: 'PATCH',
        url: `/ngsi-ld/v1/temporal/entities/${id}/attrs/speed/${instanceId}`,
        headers: asA,
        payload: { type: 'Property', value: 129, observedAt: at(3) },
      });
      expect(patched.statusCode, patched.body).toBe(204);
      const speeds = (await get()).json().speed as Array<{ value: number; instanceId: string }>;
      expect(speeds.map((i) => i.value)).toEqual([129, 80, 90, 70]);
      expect(speeds[0]!.instanceId).toBe(instanceId);
      const dropDataset = await app.inject({
        method: 'DELETE',
        url: `/ngsi-ld/v1/temporal/entities/${id}/attrs/fuelLevel?datasetId=urn:ngsi-ld:Dataset:fuel`,
        headers: { 'x-test-user': 'org-a-operator' },
      });
      expect(dropDataset.statusCode).toBe(204);
      expect((await get()).json().fuelLevel).toMatchObject([{ value: 67 }]);
      const dropOne = await app.inject({
        method: 'DELETE',
        url: `/ngsi-ld/v1/temporal/entities/${id}/attrs/speed/${speeds[1]!.instanceId}`,
        headers: { 'x-test-user': 'org-a-operator' },
      });
      expect(dropOne.statusCode).toBe(204);
      expect(((await get()).json().speed as Array<{ value: number }>).map((i) => i.value)).toEqual([
        129, 90, 70,
      ]);
      const missing = await app.inject({
        method: 'DELETE',
        url: `/ngsi-ld/v1/temporal/entities/${id}/attrs/speed/${speeds[1]!.instanceId}`,
        headers: { 'x-test-user': 'org-a-operator' },
      });
      expect(missing.statusCode).toBe(404);
      expect(missing.json().type).toBe('https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound');
      const deleted = await app.inject({
        method: 'DELETE',
        url: `/ngsi-ld/v1/temporal/entities/${id}`,
        headers: { 'x-test-user': 'org-a-operator' },
      });
      expect(deleted.statusCode).toBe(204);
      expect((await get()).statusCode).toBe(404);
    });

    it('refuses malformed payloads (400) and callers without a writing role (403)', async () => {
      const post = (payload: string, headers: Record<string, string> = asA) =>
        app.inject({ method: 'POST', url: '/ngsi-ld/v1/temporal/entities', headers, payload });
      const invalid = await post('{"id": ');
      expect(invalid.statusCode).toBe(400);
      expect(invalid.json().type).toBe('https://uri.etsi.org/ngsi-ld/errors/InvalidRequest');
      const empty = await post('{}');
      expect(empty.statusCode).toBe(400);
      expect(empty.json().type).toBe('https://uri.etsi.org/ngsi-ld/errors/BadRequestData');
      const badId = await app.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/temporal/entities/thisIsAninvalidId/attrs',
        headers: asA,
        payload: { speed: [{ type: 'Property', value: 1, observedAt: at(1) }] },
      });
      expect(badId.statusCode).toBe(400);
      const viewer = await post(
        JSON.stringify({ id: 'urn:ngsi-ld:Vehicle:temporal-http-2', type: 'Vehicle' }),
        {
          ...asA,
          'x-test-user': 'org-a-viewer',
        },
      );
      expect(viewer.statusCode).toBe(403);
      expect(viewer.json().type).toBe('https://uri.etsi.org/ngsi-ld/errors/AccessDenied');
    });
  });
});
