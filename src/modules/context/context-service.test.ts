import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../adapters/bus/index.ts';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import type { AppError } from '../../kernel/errors.ts';
import type { EventBus, PlatformEvent } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { TransactionalOutbox } from '../events/index.ts';
import { emptyAudience, type Marking, principalReadKeys } from '../sharing/marking.ts';
import { type Caller, ContextService } from './context-service.ts';
import type { EntityChangeEvent } from './entity-change-event.ts';
import { ContextResolver } from './json-ld-context.ts';
import { CONTEXT_TEST_MIGRATIONS, openTestDirectory, type TestDirectory } from './testing.ts';

const DEFAULT_CTX = 'https://uri.etsi.org/ngsi-ld/default-context/';
const amber: Marking = { tlp: 'AMBER', audience: emptyAudience() };

function caller(userId: string, orgId: string, defaultMarking: Marking = amber, tenant = ''): Caller {
  return {
    tenant,
    principal: { userId, orgId, roles: ['operator'] },
    readKeys: principalReadKeys({ userId, orgId, communities: [], patronOrgs: [] }),
    defaultMarking,
  };
}

async function rejects(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    return e as AppError;
  }
  throw new Error('expected a rejection');
}

for (const f of testStoreFactories()) {
  describe.skipIf(f.skip)(`ContextService on ${f.name}${f.skip ? ` (skipped: ${f.skip})` : ''}`, () => {
    let store: Store;
    let bus: EventBus;
    let outbox: TransactionalOutbox;
    let svc: ContextService;
    let dir: TestDirectory;
    const events: PlatformEvent[] = [];
    const alice = caller('alice', 'metro');
    const bob = caller('bob', 'metro');
    const carol = caller('carol', 'police');

    beforeAll(async () => {
      store = await f.open(CONTEXT_TEST_MIGRATIONS);
      dir = openTestDirectory(store);
      await dir.addOrgs('metro', 'police');
      bus = createMemoryBus();
      outbox = new TransactionalOutbox({ store, bus });
      await bus.subscribe({ types: ['context.>'], mode: 'broadcast' }, async (e) => {
        events.push(e);
      });
      svc = new ContextService({
        store,
        bus,
        events: outbox.emitter('context'),
        gate: dir.gate,
        resolver: new ContextResolver(),
      });
    });
    afterAll(async () => {
      await outbox?.stop();
      await bus?.close();
      await store?.close();
    });

    const waitEvents = async (n: number) => {
      for (let i = 0; i < 100 && events.length < n; i++) await new Promise((r) => setTimeout(r, 10));
      return events;
    };

    it('creates, reads and publishes a created event with the expanded entity', async () => {
      const ctx = await svc.resolveContext(null);
      events.length = 0;
      await svc.createEntity(
        alice,
        {
          id: 'urn:ngsi-ld:Gate:1',
          type: 'Gate',
          gateState: { type: 'Property', value: 'open', observedAt: '2024-05-01T10:00:00Z' },
          location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [-8.61, 41.15] } },
        },
        ctx,
      );
      const v = await svc.getEntity(alice, 'urn:ngsi-ld:Gate:1');
      expect(v.entity.type).toEqual([`${DEFAULT_CTX}Gate`]);
      expect(v.entity[`${DEFAULT_CTX}gateState`]).toMatchObject({ type: 'Property', value: 'open' });
      expect(v.ownerOrg).toBe('metro');
      const [ev] = await waitEvents(1);
      expect(ev?.type).toBe('context.entity.created');
      const data = ev?.data as EntityChangeEvent;
      expect(data).toMatchObject({
        tenant: '',
        entityId: 'urn:ngsi-ld:Gate:1',
        entityType: [`${DEFAULT_CTX}Gate`],
        ownerOrg: 'metro',
        createdBy: 'alice',
        marking: amber,
        readKeys: ['amber:metro'],
        observedAt: '2024-05-01T10:00:00Z',
      });
      expect(data.changedAttributes.sort()).toEqual([
        `${DEFAULT_CTX}gateState`,
        'https://uri.etsi.org/ngsi-ld/location',
      ]);
      const again = await rejects(svc.createEntity(alice, { id: 'urn:ngsi-ld:Gate:1', type: 'Gate' }, ctx));
      expect(again.code).toBe('CONTEXT_ENTITY_EXISTS');
    });

    it('hides entities from other organisations and refuses changes by non-owners', async () => {
      const ctx = await svc.resolveContext(null);
      expect((await rejects(svc.getEntity(carol, 'urn:ngsi-ld:Gate:1'))).code).toBe(
        'CONTEXT_ENTITY_NOT_FOUND',
      );
      expect((await rejects(svc.deleteEntity(carol, 'urn:ngsi-ld:Gate:1'))).code).toBe(
        'CONTEXT_ENTITY_NOT_FOUND',
      );
      await svc.createEntity(
        alice,
        {
          id: 'urn:ngsi-ld:Gate:green',
          type: 'Gate',
          marking: { type: 'Property', value: { tlp: 'GREEN' } },
        },
        ctx,
      );
      expect((await svc.getEntity(carol, 'urn:ngsi-ld:Gate:green')).marking.tlp).toBe('GREEN');
      const e = await rejects(svc.appendAttributes(carol, 'urn:ngsi-ld:Gate:green', { x: 1 }, ctx));
      expect(e.code).toBe('ACCESS_DENIED');
      await svc.createEntity(
        alice,
        { id: 'urn:ngsi-ld:Gate:red', type: 'Gate', marking: { tlp: 'RED' } },
        ctx,
      );
      expect((await rejects(svc.getEntity(bob, 'urn:ngsi-ld:Gate:red'))).code).toBe(
        'CONTEXT_ENTITY_NOT_FOUND',
      );
      expect((await svc.getEntity(alice, 'urn:ngsi-ld:Gate:red')).marking.tlp).toBe('RED');
    });

    it('appends, updates, partially updates and deletes attributes with datasetIds', async () => {
      const ctx = await svc.resolveContext(null);
      const id = 'urn:ngsi-ld:Gate:1';
      const r1 = await svc.appendAttributes(
        bob,
        id,
        {
          flow: [
            { type: 'Property', value: 10, datasetId: 'urn:ds:cam' },
            { type: 'Property', value: 12 },
          ],
        },
        ctx,
      );
      expect(r1).toEqual({ updated: [`${DEFAULT_CTX}flow`], notUpdated: [] });
      const r2 = await svc.appendAttributes(bob, id, { gateState: 'closed' }, ctx, { noOverwrite: true });
      expect(r2.updated).toEqual([]);
      expect(r2.notUpdated[0]?.attributeName).toBe(`${DEFAULT_CTX}gateState`);
      const r3 = await svc.updateAttributes(bob, id, { gateState: 'closed', nothing: 1 }, ctx);
      expect(r3.updated).toEqual([`${DEFAULT_CTX}gateState`]);
      expect(r3.notUpdated.map((n) => n.attributeName)).toEqual([`${DEFAULT_CTX}nothing`]);
      await svc.partialUpdateAttribute(
        bob,
        id,
        'flow',
        { value: 11, datasetId: 'urn:ds:cam', unitCode: 'E50' },
        ctx,
      );
      let e = (await svc.getEntity(bob, id)).entity;
      expect(e[`${DEFAULT_CTX}flow`]).toMatchObject([
        { type: 'Property', value: 11, datasetId: 'urn:ds:cam', unitCode: 'E50' },
        { type: 'Property', value: 12 },
      ]);
      await svc.deleteAttribute(bob, id, 'flow', ctx, { datasetId: 'urn:ds:cam' });
      e = (await svc.getEntity(bob, id)).entity;
      expect(e[`${DEFAULT_CTX}flow`]).toMatchObject({ type: 'Property', value: 12 });
      expect(
        (await rejects(svc.deleteAttribute(bob, id, 'flow', ctx, { datasetId: 'urn:ds:cam' }))).code,
      ).toBe('CONTEXT_ATTRIBUTE_NOT_FOUND');
      await svc.deleteAttribute(bob, id, 'flow', ctx);
      e = (await svc.getEntity(bob, id)).entity;
      expect(e[`${DEFAULT_CTX}flow`]).toBeUndefined();
    });

    it('changes a marking, audits it with an event, and the entity follows its new visibility', async () => {
      const ctx = await svc.resolveContext(null);
      events.length = 0;
      const r = await svc.appendAttributes(
        alice,
        'urn:ngsi-ld:Gate:1',
        { marking: { value: { tlp: 'GREEN' } } },
        ctx,
      );
      expect(r.updated).toContain('marking');
      const evs = await waitEvents(2);
      const changed = evs.find((x) => x.type === 'context.entity.marking_changed');
      expect(changed?.data).toMatchObject({
        entityId: 'urn:ngsi-ld:Gate:1',
        changedBy: 'alice',
        previous: { tlp: 'AMBER' },
        marking: { tlp: 'GREEN' },
        readKeys: ['community:all', 'org:metro'],
      });
      expect((await svc.getEntity(carol, 'urn:ngsi-ld:Gate:1')).entity.id).toBe('urn:ngsi-ld:Gate:1');
      const bad = await rejects(
        svc.appendAttributes(alice, 'urn:ngsi-ld:Gate:1', { marking: { tlp: 'PURPLE' } }, ctx),
      );
      expect(bad.code).toBe('ACCESS_INVALID_TLP');
    });

    it('runs concurrent batch upserts of the same entities in opposite orders without deadlock', async () => {
      const ctx = await svc.resolveContext(null);
      const ids = Array.from(
        { length: 200 },
        (_, i) => `urn:ngsi-ld:Turnstile:${String(i).padStart(3, '0')}`,
      );
      const batch = (order: string[], v: number) =>
        svc.batchUpsert(
          alice,
          order.map((id) => ({ body: { id, type: 'Turnstile', count: v }, ctx })),
          'update',
        );
      for (let round = 0; round < 6; round++) {
        // New entities on the first round, existing ones after: both paths take their locks in one order.
        const shuffled = [...ids].sort(() => Math.random() - 0.5);
        const results = await Promise.all([
          batch(ids, round),
          batch([...ids].reverse(), round),
          batch(shuffled, round),
        ]);
        for (const r of results) {
          expect(r.errors.map((e) => e.error.message)).toEqual([]);
          expect(r.success).toHaveLength(200);
        }
      }
    });

    it('writes a batch of new and existing entities row by row as planned (rows travel as one JSON parameter)', async () => {
      const ctx = await svc.resolveContext(null);
      const ids = ['urn:ngsi-ld:Valve:a', 'urn:ngsi-ld:Valve:b', 'urn:ngsi-ld:Valve:c'];
      const tricky = 'he said "hi" \\ back\\slash, tab\t, ünïcödé 🙂 {"not": "json"}';
      await svc.batchCreate(
        alice,
        ids.slice(0, 2).map((id) => ({ body: { id, type: 'Valve', scope: '/Porto/East', open: true }, ctx })),
      );
      const rowsOf = async () =>
        (
          await sql<{
            id: string;
            types: string[];
            scopes: string[] | null;
            entity: unknown;
            created_at: Date;
            modified_at: Date;
            owner_org: string;
            created_by: string;
            marking: unknown;
            read_keys: string[];
            incarnation: string;
          }>`select id, types, scopes, entity, created_at, modified_at, owner_org, created_by, marking, read_keys,
              incarnation from context_entity where id = any(${ids}::text[]) order by id`.execute(store.db)
        ).rows.map((r) => ({
          ...r,
          entity: typeof r.entity === 'string' ? JSON.parse(r.entity) : r.entity,
          marking: typeof r.marking === 'string' ? JSON.parse(r.marking) : r.marking,
        }));
      const before = await rowsOf();
      const r = await svc.batchUpsert(
        bob,
        [
          { id: ids[0], type: ['Valve', 'Pump'], label: tricky },
          {
            id: ids[1],
            type: 'Valve',
            open: false,
            marking: { tlp: 'GREEN', audience: { orgs: [], communities: [], users: [] } },
          },
          { id: ids[2], type: 'Valve', label: tricky },
        ].map((body) => ({ body, ctx })),
        'update',
      );
      expect(r.errors.map((e) => e.error.message)).toEqual([]);
      expect(r.created).toEqual([ids[2]]);
      const after = await rowsOf();
      expect(after.map((x) => x.id)).toEqual(ids);
      for (const [i, row] of after.entries()) {
        const entity = row.entity as Record<string, unknown>;
        // The columns say what the entity says.
        expect(row.types).toEqual(entity.type);
        expect(row.scopes ?? undefined).toEqual(entity.scope);
        expect(row.modified_at.toISOString()).toBe(entity.modifiedAt);
        expect(row.created_at.toISOString()).toBe(entity.createdAt);
        // Written by alice (created) or bob (created the third): the owner and the creator stay.
        expect(row.owner_org).toBe('metro');
        expect(row.created_by).toBe(i < 2 ? 'alice' : 'bob');
        if (i < 2) {
          expect(row.incarnation).toBe(before[i]!.incarnation);
          expect(row.created_at).toEqual(before[i]!.created_at);
        }
      }
      expect(after[0]!.types).toEqual([`${DEFAULT_CTX}Valve`, `${DEFAULT_CTX}Pump`]);
      expect((after[0]!.entity as Record<string, { value: unknown }>)[`${DEFAULT_CTX}label`]?.value).toBe(
        tricky,
      );
      expect((after[2]!.entity as Record<string, { value: unknown }>)[`${DEFAULT_CTX}label`]?.value).toBe(
        tricky,
      );
      expect(after[1]!.marking).toMatchObject({ tlp: 'GREEN' });
      expect(after[1]!.read_keys).not.toEqual(before[1]!.read_keys);
      expect(after[0]!.read_keys).toEqual(before[0]!.read_keys);
      // Pages keep room for updates in place (migration context_0006).
      const opts = await sql<{
        reloptions: string[] | null;
      }>`select reloptions from pg_class where relname = 'context_entity' and relkind = 'r'
          and relnamespace = (select oid from pg_namespace where nspname = current_schema())`.execute(
        store.db,
      );
      expect(opts.rows[0]?.reloptions).toContain('fillfactor=70');
    });

    it('batch create, upsert, update and delete with per-entity results', async () => {
      const ctx = await svc.resolveContext(null);
      const items = (bodies: unknown[]) => bodies.map((body) => ({ body, ctx }));
      const c = await svc.batchCreate(
        alice,
        items([
          { id: 'urn:ngsi-ld:Cam:1', type: 'Camera', on: true },
          { id: 'urn:ngsi-ld:Cam:2', type: 'Camera', on: false },
          { id: 'not a uri', type: 'Camera' },
          { id: 'urn:ngsi-ld:Gate:1', type: 'Gate' },
        ]),
      );
      expect(c.success).toEqual(['urn:ngsi-ld:Cam:1', 'urn:ngsi-ld:Cam:2']);
      expect(c.errors.map((x) => [x.entityId, x.error.code])).toEqual([
        ['not a uri', 'CONTEXT_INVALID_ENTITY'],
        ['urn:ngsi-ld:Gate:1', 'CONTEXT_ENTITY_EXISTS'],
      ]);
      const u = await svc.batchUpsert(
        alice,
        items([
          { id: 'urn:ngsi-ld:Cam:1', type: 'Camera', fps: 25 },
          { id: 'urn:ngsi-ld:Cam:3', type: 'Camera', on: true },
        ]),
        'update',
      );
      expect(u).toMatchObject({
        success: ['urn:ngsi-ld:Cam:1', 'urn:ngsi-ld:Cam:3'],
        created: ['urn:ngsi-ld:Cam:3'],
      });
      const cam1 = (await svc.getEntity(alice, 'urn:ngsi-ld:Cam:1')).entity;
      expect([cam1[`${DEFAULT_CTX}on`], cam1[`${DEFAULT_CTX}fps`]]).toMatchObject([
        { value: true },
        { value: 25 },
      ]);
      await svc.batchUpsert(alice, items([{ id: 'urn:ngsi-ld:Cam:1', type: 'Camera', fps: 30 }]));
      const replaced = (await svc.getEntity(alice, 'urn:ngsi-ld:Cam:1')).entity;
      expect(replaced[`${DEFAULT_CTX}on`]).toBeUndefined();
      const up = await svc.batchUpdate(carol, items([{ id: 'urn:ngsi-ld:Cam:2', x: 1 }]));
      expect(up.errors.map((x) => x.error.code)).toEqual(['CONTEXT_ENTITY_NOT_FOUND']);
      const d = await svc.batchDelete(alice, ['urn:ngsi-ld:Cam:2', 'urn:ngsi-ld:Cam:9']);
      expect(d.success).toEqual(['urn:ngsi-ld:Cam:2']);
      expect(d.errors.map((x) => [x.entityId, x.error.code])).toEqual([
        ['urn:ngsi-ld:Cam:9', 'CONTEXT_ENTITY_NOT_FOUND'],
      ]);
      const tooMany = await rejects(
        svc.batchDelete(
          alice,
          Array.from({ length: 1001 }, (_, i) => `urn:x:${i}`),
        ),
      );
      expect(tooMany.code).toBe('CONTEXT_BATCH_TOO_LARGE');
    });

    it('queries by type, id pattern, q, attrs and geo with count and paging, within visibility', async () => {
      const ctx = await svc.resolveContext(null);
      const bodies = Array.from({ length: 30 }, (_, i) => ({
        id: `urn:ngsi-ld:Sensor:${String(i).padStart(2, '0')}`,
        type: 'Sensor',
        level: i,
        location: { type: 'Point', coordinates: [-8.6 + i * 0.001, 41.15] },
        ...(i % 2 === 0 ? { marking: { tlp: 'GREEN' } } : {}),
      }));
      const res = await svc.batchCreate(
        alice,
        bodies.map((body) => ({ body, ctx })),
      );
      expect(res.errors).toEqual([]);
      const all = await svc.queryEntities(alice, { type: 'Sensor', count: true, limit: 5 }, ctx);
      expect([all.count, all.items.length, all.items[0]?.entity.id]).toEqual([
        30,
        5,
        'urn:ngsi-ld:Sensor:00',
      ]);
      const police = await svc.queryEntities(carol, { type: 'Sensor', count: true, limit: 100 }, ctx);
      expect(police.count).toBe(15);
      const q = await svc.queryEntities(
        alice,
        { type: 'Sensor', q: 'level>=10;level<20', count: true, offset: 2, limit: 3 },
        ctx,
      );
      expect([q.count, q.items.map((i) => i.entity.id)]).toEqual([
        10,
        ['urn:ngsi-ld:Sensor:12', 'urn:ngsi-ld:Sensor:13', 'urn:ngsi-ld:Sensor:14'],
      ]);
      const near = await svc.queryEntities(
        alice,
        {
          type: 'Sensor',
          geo: { georel: 'near;maxDistance==250', geometry: 'Point', coordinates: '[-8.59,41.15]' },
          count: true,
        },
        ctx,
      );
      // 0.001 degrees of longitude at 41.15° N is about 84 m: sensors 8..12 are within 250 m of sensor 10.
      expect(near.count).toBe(5);
      expect(near.items[0]?.entity.id).toBe('urn:ngsi-ld:Sensor:10');
      const pattern = await svc.queryEntities(
        alice,
        { idPattern: '^urn:ngsi-ld:Sensor:0[0-4]$', count: true },
        ctx,
      );
      expect(pattern.count).toBe(5);
      const attrs = await svc.queryEntities(alice, { attrs: ['fps'], count: true }, ctx);
      expect(attrs.items.map((i) => i.entity.id)).toEqual(['urn:ngsi-ld:Cam:1']);
      expect((await rejects(svc.queryEntities(alice, {}, ctx))).code).toBe('CONTEXT_INVALID_REQUEST');
      expect((await rejects(svc.queryEntities(alice, { type: 'Sensor', limit: 5000 }, ctx))).code).toBe(
        'CONTEXT_TOO_MANY_RESULTS',
      );
      expect((await rejects(svc.queryEntities(alice, { type: 'Sensor', q: 'level>' }, ctx))).code).toBe(
        'CONTEXT_INVALID_QUERY',
      );
      const narrow = new ContextService({
        store,
        bus,
        events: outbox.emitter('context'),
        gate: dir.gate,
        resolver: new ContextResolver(),
        maxScan: 5,
      });
      const tooBroad = await rejects(narrow.queryEntities(alice, { type: 'Sensor', q: 'level>=0' }, ctx));
      expect([tooBroad.code, tooBroad.message]).toEqual([
        'CONTEXT_TOO_MANY_RESULTS',
        'the query would evaluate more than 5 entities; narrow it by type, id, attrs or geo-query',
      ]);
      // The q prefilter narrows in SQL first: level>=27 leaves three candidates.
      expect(
        (await narrow.queryEntities(alice, { type: 'Sensor', q: 'level>=27', count: true }, ctx)).count,
      ).toBe(3);
      const types = await svc.listTypes(carol);
      expect(types.map((t) => [t.type, t.count])).toContainEqual([`${DEFAULT_CTX}Sensor`, 15]);
    });

    it('keeps geo answers in step with writes, its own and those of another instance', async () => {
      const ctx = await svc.resolveContext(null);
      const other = new ContextService({
        store,
        bus,
        events: outbox.emitter('context'),
        gate: dir.gate,
        resolver: new ContextResolver(),
      });
      const sqlOnly = new ContextService({
        store,
        bus,
        events: outbox.emitter('context'),
        gate: dir.gate,
        resolver: new ContextResolver(),
        memoryGeoIndex: false,
      });
      const near = (s: ContextService, x: number) =>
        s
          .queryEntities(
            alice,
            {
              type: 'Van',
              geo: { georel: 'near;maxDistance==100', geometry: 'Point', coordinates: `[${x},40]` },
            },
            ctx,
          )
          .then((r) => r.items.map((i) => i.entity.id));
      await svc.createEntity(
        alice,
        { id: 'urn:ngsi-ld:Van:1', type: 'Van', location: { type: 'Point', coordinates: [1, 40] } },
        ctx,
      );
      expect(await near(svc, 1)).toEqual(['urn:ngsi-ld:Van:1']);
      expect(await near(other, 1)).toEqual(['urn:ngsi-ld:Van:1']);
      await svc.appendAttributes(
        alice,
        'urn:ngsi-ld:Van:1',
        { location: { type: 'Point', coordinates: [2, 40] } },
        ctx,
      );
      expect([await near(svc, 1), await near(svc, 2)]).toEqual([[], ['urn:ngsi-ld:Van:1']]);
      // The other instance learns of the change from the event.
      for (let i = 0; i < 100 && (await near(other, 2)).length === 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect([await near(other, 1), await near(other, 2)]).toEqual([[], ['urn:ngsi-ld:Van:1']]);
      expect([await near(sqlOnly, 1), await near(sqlOnly, 2)]).toEqual([[], ['urn:ngsi-ld:Van:1']]);
      await other.deleteEntity(alice, 'urn:ngsi-ld:Van:1');
      for (let i = 0; i < 100 && (await near(svc, 2)).length > 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect([await near(svc, 2), await near(other, 2)]).toEqual([[], []]);
      await other.close();
      await sqlOnly.close();
    });

    it('lets exactly one of two concurrent creations of an id succeed', async () => {
      const ctx = await svc.resolveContext(null);
      const other = new ContextService({
        store,
        bus,
        events: outbox.emitter('context'),
        gate: dir.gate,
        resolver: new ContextResolver(),
      });
      const results = await Promise.allSettled([
        svc.createEntity(alice, { id: 'urn:ngsi-ld:Race:1', type: 'Race', by: 'a' }, ctx),
        other.createEntity(bob, { id: 'urn:ngsi-ld:Race:1', type: 'Race', by: 'b' }, ctx),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect((failed.reason as AppError).code).toBe('CONTEXT_ENTITY_EXISTS');
      const batch = await Promise.all([
        svc.batchCreate(alice, [{ body: { id: 'urn:ngsi-ld:Race:2', type: 'Race' }, ctx }]),
        other.batchCreate(bob, [{ body: { id: 'urn:ngsi-ld:Race:2', type: 'Race' }, ctx }]),
      ]);
      expect(batch.map((b) => b.success.length).sort()).toEqual([0, 1]);
      expect(batch.flatMap((b) => b.errors.map((e) => e.error.code))).toEqual(['CONTEXT_ENTITY_EXISTS']);
      await other.close();
    });

    it('keeps tenants apart and reports unknown tenants', async () => {
      const ctx = await svc.resolveContext(null);
      const t1 = caller('alice', 'metro', amber, 'city-a');
      await svc.createEntity(t1, { id: 'urn:ngsi-ld:Gate:1', type: 'Gate', in: 'a' }, ctx);
      expect((await svc.getEntity(t1, 'urn:ngsi-ld:Gate:1')).entity[`${DEFAULT_CTX}in`]).toMatchObject({
        value: 'a',
      });
      expect((await svc.getEntity(alice, 'urn:ngsi-ld:Gate:1')).entity[`${DEFAULT_CTX}in`]).toBeUndefined();
      const e = await rejects(
        svc.getEntity(caller('alice', 'metro', amber, 'nowhere'), 'urn:ngsi-ld:Gate:1'),
      );
      expect(e.code).toBe('CONTEXT_TENANT_NOT_FOUND');
    });

    it('ingests fragments for the live module (upsertFragments) and evaluates compiled q', async () => {
      const out = await svc.upsertFragments(
        '',
        { userId: 'svc-iot', orgId: 'metro', roles: ['operator'] },
        [
          { id: 'urn:ngsi-ld:Counter:1', type: 'Counter', count: { type: 'Property', value: 3 } },
          { id: 'urn:ngsi-ld:Gate:red', type: 'Gate', count: { type: 'Property', value: 3 } },
        ],
        undefined,
      );
      expect(out[0]).toBeUndefined();
      expect(out[1]).toMatch(/already exists/);
      const pred = await svc.compileQ('count==3', undefined);
      const found = await svc.findEntities(
        '',
        { types: [`${DEFAULT_CTX}Counter`], ids: [], idPatterns: [] },
        ['amber:metro'],
      );
      expect(found.map((e) => [e.id, pred(e)])).toEqual([['urn:ngsi-ld:Counter:1', true]]);
    });
  });
}
