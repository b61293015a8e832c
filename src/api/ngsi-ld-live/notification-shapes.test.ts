/**
 * What notifications carry (ETSI GS CIM 009 clauses 5.2.12, 5.3.1, 4.5.x NGSI-LD Null) and how
 * subscriptions are shown and checked (5.2.12, 5.8), as the ETSI Subscription tests expect, on every store:
 * deleted attributes and entities, `showChanges`, `sysAttrs` in keyValues, the @context named in the `Link`
 * header, `jsonldContext`, `pick`/`omit`.
 */
import Fastify, { type FastifyInstance, type InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../adapters/bus/index.ts';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import {
  type ActiveContext,
  type Caller,
  ContextService,
  contextMigrations,
} from '../../modules/context/index.ts';
import {
  type ContextLive,
  createContextLive,
  createCoreQueryPort,
} from '../../modules/context-live/index.ts';
import {
  LIVE_TEST_MIGRATIONS,
  loopbackEgress,
  openLiveWorld,
  type ReceivedRequest,
  type Receiver,
  startReceiver,
  testLdContext,
} from '../../modules/context-live/testing.ts';
import { TransactionalOutbox } from '../../modules/events/index.ts';
import type { EventBus } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { ngsiLdLivePlugin } from './index.ts';

const NULL = 'urn:ngsi-ld:null';
const TS =
  'https://forge.etsi.org/rep/cim/ngsi-ld-test-suite/-/raw/develop/resources/jsonld-contexts/ngsi-ld-test-suite-compound.jsonld';
const CORE = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld';
const linkTo = (url: string) =>
  `<${url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`;
const SUBS = '/ngsi-ld/v1/subscriptions';

for (const f of testStoreFactories())
  describe.skipIf(f.skip)(
    `Notification shapes and subscriptions on ${f.name}${f.skip ? ` (skipped: ${f.skip})` : ''}`,
    () => {
      let store: Store;
      let bus: EventBus;
      let core: ContextService;
      let live: ContextLive;
      let outbox: TransactionalOutbox;
      let app: FastifyInstance;
      let rx: Receiver;
      let ctx: ActiveContext;
      let n = 0;
      let writer: Caller;

      beforeAll(async () => {
        store = await f.open({ ...contextMigrations, ...LIVE_TEST_MIGRATIONS });
        bus = createMemoryBus();
        const world = await openLiveWorld(store);
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
          contexts: core,
          retry: { firstDelayMs: 50, maxDelayMs: 200 },
          egress: loopbackEgress(),
        });
        await live.start(bus);
        rx = await startReceiver();
        const b = await world.as('org-b-operator');
        const a = await world.as('org-a-operator');
        writer = {
          tenant: '',
          principal: a,
          readKeys: a.readKeys,
          defaultMarking: { tlp: 'GREEN', audience: { orgs: [], communities: [], users: [] } },
        };
        app = Fastify();
        app.addHook('onRequest', async (request) => {
          request.principal = b;
        });
        await app.register(ngsiLdLivePlugin, { live });
        await app.ready();
        ctx = await core.resolveContext(TS);
      });
      afterAll(async () => {
        await app?.close();
        await live?.stop();
        await rx?.close();
        await outbox?.stop();
        await bus?.close();
        await store?.close();
      });

      const inject = (o: InjectOptions) => app.inject(o);
      /** A subscription to Buildings of this test (by id), created with the test suite's @context. */
      const subscribe = async (entityId: string, extra: Record<string, unknown> = {}) => {
        const { notification, ...rest } = extra;
        const res = await inject({
          method: 'POST',
          url: SUBS,
          headers: { 'content-type': 'application/json', link: linkTo(TS) },
          payload: {
            type: 'Subscription',
            entities: [{ type: 'Building', id: entityId }],
            ...rest,
            notification: { endpoint: { uri: rx.url }, ...(notification as object) },
          },
        });
        expect(res.statusCode, res.body).toBe(201);
        return decodeURIComponent(String(res.headers.location).split('/').pop() ?? '');
      };
      const building = async () => {
        const id = `urn:ngsi-ld:Building:${f.name}-${++n}`;
        await core.createEntity(
          writer,
          {
            id,
            type: 'Building',
            name: [
              { type: 'Property', value: 'Eiffel Tower' },
              { type: 'Property', value: 'Tour Eiffel', datasetId: 'urn:ngsi-ld:Dataset:fr' },
            ],
            locatedAt: { type: 'Relationship', object: 'urn:ngsi-ld:City:Paris' },
            street: { type: 'LanguageProperty', languageMap: { fr: 'Grand Place', nl: 'Grote Markt' } },
          },
          ctx,
        );
        return id;
      };
      /** The next notification of a subscription. */
      const next = async (subscriptionId: string): Promise<ReceivedRequest> => {
        const deadline = Date.now() + 10_000;
        for (;;) {
          const i = rx.received.findIndex((r) => r.body.subscriptionId === subscriptionId);
          if (i >= 0) return rx.received.splice(i, 1)[0]!;
          if (Date.now() > deadline) throw new Error(`no notification for ${subscriptionId}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      const data = (r: ReceivedRequest) => (r.body.data as Record<string, unknown>[])[0]!;

      describe('deleted attributes (attributeDeleted, NGSI-LD Null)', () => {
        it('shows the entity with the deleted attribute as the NGSI-LD Null of its kind', async () => {
          const id = await building();
          const sub = await subscribe(id, {
            watchedAttributes: ['locatedAt', 'street'],
            notificationTrigger: ['attributeDeleted'],
          });
          await core.mergeEntity(writer, id, { locatedAt: NULL }, ctx);
          expect(data(await next(sub))).toEqual({
            id,
            type: 'Building',
            name: [
              { type: 'Property', value: 'Eiffel Tower' },
              { type: 'Property', value: 'Tour Eiffel', datasetId: 'urn:ngsi-ld:Dataset:fr' },
            ],
            street: { type: 'LanguageProperty', languageMap: { fr: 'Grand Place', nl: 'Grote Markt' } },
            locatedAt: { type: 'Relationship', object: NULL },
          });
          await core.deleteAttribute(writer, id, 'street', ctx);
          expect(data(await next(sub)).street).toEqual({
            type: 'LanguageProperty',
            languageMap: { '@none': NULL },
          });
        });

        it('shows a deleted instance beside the ones left', async () => {
          const id = await building();
          const sub = await subscribe(id, {
            watchedAttributes: ['name'],
            notificationTrigger: ['attributeDeleted'],
          });
          await core.deleteAttribute(writer, id, 'name', ctx, { datasetId: 'urn:ngsi-ld:Dataset:fr' });
          expect(data(await next(sub)).name).toEqual([
            { type: 'Property', value: 'Eiffel Tower' },
            { type: 'Property', value: NULL, datasetId: 'urn:ngsi-ld:Dataset:fr' },
          ]);
        });

        it('on entity deletion: the watched attributes as NGSI-LD Nulls, with sysAttrs their times', async () => {
          const id = await building();
          const plain = await subscribe(id, {
            watchedAttributes: ['locatedAt'],
            notificationTrigger: ['attributeDeleted'],
          });
          const sys = await subscribe(id, {
            watchedAttributes: ['locatedAt'],
            notificationTrigger: ['attributeDeleted'],
            notification: { sysAttrs: true },
          });
          await core.deleteEntity(writer, id);
          const a = data(await next(plain));
          expect(Object.keys(a).sort()).toEqual(['deletedAt', 'id', 'locatedAt', 'type']);
          expect(a.locatedAt).toEqual({ type: 'Relationship', object: NULL });
          const b = data(await next(sys));
          expect(Object.keys(b).sort()).toEqual([
            'createdAt',
            'deletedAt',
            'id',
            'locatedAt',
            'modifiedAt',
            'type',
          ]);
          expect(b.locatedAt).toMatchObject({
            type: 'Relationship',
            object: NULL,
            createdAt: expect.any(String),
            modifiedAt: expect.any(String),
            deletedAt: b.deletedAt,
          });
        });
      });

      describe('entityDeleted and showChanges', () => {
        it('entityDeleted: id, type and deletedAt; keyValues with sysAttrs adds the entity times', async () => {
          const id = await building();
          const plain = await subscribe(id, { notificationTrigger: ['entityDeleted'] });
          const kv = await subscribe(id, {
            notificationTrigger: ['entityDeleted'],
            notification: { format: 'keyValues', sysAttrs: true },
          });
          await core.deleteEntity(writer, id);
          expect(Object.keys(data(await next(plain))).sort()).toEqual(['deletedAt', 'id', 'type']);
          expect(Object.keys(data(await next(kv))).sort()).toEqual([
            'createdAt',
            'deletedAt',
            'id',
            'modifiedAt',
            'type',
          ]);
        });

        it('showChanges: the previous value beside the new one, and every attribute of a deleted entity', async () => {
          const id = await building();
          const changes = await subscribe(id, {
            watchedAttributes: ['locatedAt'],
            notification: { showChanges: true },
          });
          await core.updateAttributes(
            writer,
            id,
            { locatedAt: { type: 'Relationship', object: 'urn:ngsi-ld:City:Lyon' } },
            ctx,
          );
          expect(data(await next(changes)).locatedAt).toEqual({
            type: 'Relationship',
            object: 'urn:ngsi-ld:City:Lyon',
            previousObject: 'urn:ngsi-ld:City:Paris',
          });
          const deleted = await subscribe(id, {
            notificationTrigger: ['entityDeleted'],
            notification: { showChanges: true },
          });
          await core.deleteEntity(writer, id);
          const d = data(await next(deleted));
          expect(d.locatedAt).toEqual({
            type: 'Relationship',
            object: NULL,
            previousObject: 'urn:ngsi-ld:City:Lyon',
          });
          expect(d.street).toEqual({
            type: 'LanguageProperty',
            languageMap: { '@none': NULL },
            previousLanguageMap: { fr: 'Grand Place', nl: 'Grote Markt' },
          });
          expect(d.name).toEqual([
            { type: 'Property', value: NULL, previousValue: 'Eiffel Tower' },
            {
              type: 'Property',
              value: NULL,
              datasetId: 'urn:ngsi-ld:Dataset:fr',
              previousValue: 'Tour Eiffel',
            },
          ]);
        });
      });

      describe('the @context of notifications', () => {
        it('names in the Link header the context the body is compacted with', async () => {
          const id = await building();
          const sub = await subscribe(id, { watchedAttributes: ['locatedAt'] });
          const core18 = await subscribe(id, { watchedAttributes: ['locatedAt'], jsonldContext: CORE });
          const ld = await subscribe(id, {
            watchedAttributes: ['locatedAt'],
            jsonldContext: CORE,
            notification: { endpoint: { uri: rx.url, accept: 'application/ld+json' } },
          });
          await core.mergeEntity(writer, id, { locatedAt: { object: 'urn:ngsi-ld:City:Nice' } }, ctx);
          const a = await next(sub);
          expect(a.headers.link).toBe(linkTo(TS));
          expect(data(a).locatedAt).toEqual({ type: 'Relationship', object: 'urn:ngsi-ld:City:Nice' });
          const b = await next(core18);
          expect(b.headers.link).toBe(linkTo(CORE));
          expect(data(b).type).toBe('https://ngsi-ld-test-suite/context#Building');
          // The test suite's context names Building; locatedAt is of the default vocabulary either way.
          expect(data(b).locatedAt).toEqual({ type: 'Relationship', object: 'urn:ngsi-ld:City:Nice' });
          const c = await next(ld);
          expect(c.headers.link).toBeUndefined();
          expect(c.body['@context']).toBe(CORE);
          expect(data(c)['@context']).toBe(CORE);
          expect(data(c).type).toBe('https://ngsi-ld-test-suite/context#Building');
        });
      });

      describe('ImplicitlyCreated @contexts', () => {
        it('hosts a compound @context, names it as jsonldContext and in the notifications’ Link', async () => {
          const id = await building();
          const compound = [TS, { nickname: 'https://city.example/vocab/nickname' }];
          const res = await inject({
            method: 'POST',
            url: SUBS,
            headers: { 'content-type': 'application/ld+json' },
            payload: {
              type: 'Subscription',
              entities: [{ type: 'Building', id }],
              watchedAttributes: ['locatedAt'],
              notification: { endpoint: { uri: rx.url } },
              '@context': compound,
            },
          });
          expect(res.statusCode, res.body).toBe(201);
          const sub = decodeURIComponent(String(res.headers.location).split('/').pop() ?? '');
          const view = (await inject({ method: 'GET', url: `${SUBS}/${sub}` })).json();
          const url = String(view.jsonldContext);
          expect(url).toMatch(/^http:\/\/localhost:80\/ngsi-ld\/v1\/jsonldContexts\/implicit-[0-9a-f]{32}$/);
          const localId = decodeURIComponent(url.split('/').pop() ?? '');
          expect(await core.hostedContextInfo(localId)).toMatchObject({
            kind: 'ImplicitlyCreated',
            numberOfHits: 0,
          });
          expect((await core.getHostedContext(localId)).body).toEqual({ '@context': compound });
          await core.mergeEntity(writer, id, { locatedAt: { object: 'urn:ngsi-ld:City:Caen' } }, ctx);
          const n = await next(sub);
          expect(n.headers.link).toBe(linkTo(url));
          expect(data(n).locatedAt).toEqual({ type: 'Relationship', object: 'urn:ngsi-ld:City:Caen' });
          // The same organisation and context: the same implicit context.
          const again = await inject({
            method: 'POST',
            url: SUBS,
            headers: { 'content-type': 'application/ld+json' },
            payload: {
              type: 'Subscription',
              entities: [{ type: 'Building' }],
              notification: { endpoint: { uri: rx.url } },
              '@context': compound,
            },
          });
          const other = decodeURIComponent(String(again.headers.location).split('/').pop() ?? '');
          expect((await inject({ method: 'GET', url: `${SUBS}/${other}` })).json().jsonldContext).toBe(url);
        });
      });

      describe('subscriptions: representation and validation', () => {
        it('shows the members the subscriber wrote, status and counters, system attributes on request', async () => {
          const id = await subscribe('urn:ngsi-ld:Building:shown', {
            notification: { format: 'keyValues', pick: ['id', 'name'] },
            jsonldContext: CORE,
          });
          const got = await inject({ method: 'GET', url: `${SUBS}/${id}`, headers: { link: linkTo(TS) } });
          expect(got.statusCode).toBe(200);
          expect(got.json()).toEqual({
            id,
            type: 'Subscription',
            entities: [{ id: 'urn:ngsi-ld:Building:shown', type: 'Building' }],
            notificationTrigger: ['attributeCreated', 'attributeUpdated'],
            notification: {
              format: 'keyValues',
              pick: ['id', 'name'],
              endpoint: { uri: rx.url, accept: 'application/json' },
              timesSent: 0,
              timesFailed: 0,
            },
            jsonldContext: CORE,
            status: 'active',
          });
          const sys = await inject({
            method: 'GET',
            url: `${SUBS}/${id}?options=sysAttrs`,
            headers: { link: linkTo(TS) },
          });
          expect(sys.json()).toMatchObject({ createdAt: expect.any(String), modifiedAt: expect.any(String) });
        });

        it('refuses a jsonldContext that is no URI and conflicting pick, omit and attributes with 400', async () => {
          const bad = async (extra: Record<string, unknown>) => {
            const res = await inject({
              method: 'POST',
              url: SUBS,
              headers: { 'content-type': 'application/json' },
              payload: {
                type: 'Subscription',
                entities: [{ type: 'Building' }],
                ...extra,
                notification: { endpoint: { uri: rx.url }, ...(extra.notification as object) },
              },
            });
            return [res.statusCode, res.json().type];
          };
          const BAD = [400, 'https://uri.etsi.org/ngsi-ld/errors/BadRequestData'];
          expect(await bad({ jsonldContext: 'unknownContext' })).toEqual(BAD);
          expect(await bad({ notification: { pick: ['id'], omit: ['id'] } })).toEqual(BAD);
          expect(await bad({ notification: { pick: ['name'], attributes: ['name'] } })).toEqual(BAD);
          expect(await bad({ notification: { omit: ['name'], attributes: ['name'] } })).toEqual(BAD);
        });

        it('datasetId: only the instances of the datasetIds named are notified', async () => {
          const id = await building();
          const fr = await subscribe(id, {
            watchedAttributes: ['name'],
            datasetId: ['urn:ngsi-ld:Dataset:fr'],
          });
          const view = (
            await inject({ method: 'GET', url: `${SUBS}/${fr}`, headers: { link: linkTo(TS) } })
          ).json();
          expect(view.datasetId).toEqual(['urn:ngsi-ld:Dataset:fr']);
          await core.updateAttributes(
            writer,
            id,
            { name: { type: 'Property', value: 'La Tour', datasetId: 'urn:ngsi-ld:Dataset:fr' } },
            ctx,
          );
          expect(data(await next(fr))).toEqual({
            id,
            type: 'Building',
            name: { type: 'Property', value: 'La Tour', datasetId: 'urn:ngsi-ld:Dataset:fr' },
          });
          const bad = await inject({
            method: 'POST',
            url: SUBS,
            headers: { 'content-type': 'application/json' },
            payload: {
              type: 'Subscription',
              entities: [{ type: 'Building' }],
              datasetId: ['not a uri'],
              notification: { endpoint: { uri: rx.url } },
            },
          });
          expect(bad.statusCode).toBe(400);
        });

        it('pick and omit choose the members of notified entities', async () => {
          const id = await building();
          const pick = await subscribe(id, {
            watchedAttributes: ['locatedAt'],
            notification: { pick: ['id', 'locatedAt'] },
          });
          const omit = await subscribe(id, {
            watchedAttributes: ['locatedAt'],
            notification: { omit: ['type', 'name'] },
          });
          await core.mergeEntity(writer, id, { locatedAt: { object: 'urn:ngsi-ld:City:Metz' } }, ctx);
          expect(data(await next(pick))).toEqual({
            id,
            locatedAt: { type: 'Relationship', object: 'urn:ngsi-ld:City:Metz' },
          });
          expect(Object.keys(data(await next(omit))).sort()).toEqual(['id', 'locatedAt', 'street']);
        });
      });
    },
  );
