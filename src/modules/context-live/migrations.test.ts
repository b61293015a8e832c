/**
 * Upgrading a store written before subscriptions, history and retention went through the sharing gate
 * (migration context_live_0006_sharing_gate, then the registration at start): what is kept, what goes.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import { AppError } from '../../kernel/errors.ts';
import type { Store } from '../../ports/store.ts';
import type { Principal } from '../access/index.ts';
import { contextMigrations } from '../context/index.ts';
import { type ContextLive, createContextLive } from './context-live.ts';
import { contextLiveMigrations } from './migrations.ts';
import {
  DEFAULT_VOCAB,
  LIVE_TEST_MIGRATIONS,
  type LiveTestWorld,
  openLiveWorld,
  testLdContext,
} from './testing.ts';

const V = DEFAULT_VOCAB;
const UPGRADE = 'context_live_0006_sharing_gate';
const T = (sec: number) => new Date(Date.parse('2026-11-01T00:00:00Z') + sec * 1000);
const amber = { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } };

for (const factory of testStoreFactories()) {
  describe.skipIf(factory.skip)(
    `upgrade to the sharing gate on ${factory.name}${factory.skip ? ` (skipped: ${factory.skip})` : ''}`,
    () => {
      let store: Store;
      let world: LiveTestWorld;
      let live: ContextLive;
      let a: Principal;
      let b: Principal;

      beforeAll(async () => {
        const before = Object.fromEntries(
          Object.entries({ ...contextMigrations, ...LIVE_TEST_MIGRATIONS }).filter(([k]) => k !== UPGRADE),
        );
        store = await factory.open(before);
        world = await openLiveWorld(store);
        a = await world.as('org-a-operator');
        b = await world.as('org-b-operator');
        const db = store.db;
        const spec = {
          id: 'urn:ngsi-ld:Subscription:old',
          type: 'Subscription',
          entities: [{ type: `${V}Camera` }],
          notificationTrigger: ['attributeCreated', 'attributeUpdated'],
          isActive: true,
          notification: {
            format: 'normalized',
            endpoint: { uri: 'http://127.0.0.1:9/n', accept: 'application/json' },
          },
        };
        await sql`insert into context_live_subscription (tenant, id, owner_org, created_by, read_keys, body,
            is_active, created_at, modified_at)
          values ('', ${spec.id}, 'org-a', ${a.userId}, ${sql.val(['org:org-a'])}::text[],
            ${JSON.stringify(spec)}::jsonb, true, ${T(0)}, ${T(0)})`.execute(db);
        // Entities now: kept (history began with it), mixed (history began before it: an earlier
        // incarnation's), and one whose entity is gone.
        for (const [id, created] of [
          ['urn:ngsi-ld:Camera:kept', 100],
          ['urn:ngsi-ld:Camera:mixed', 300],
        ] as const) {
          await sql`insert into context_entity (tenant, id, types, entity, created_at, modified_at, owner_org,
              created_by, marking, read_keys, incarnation)
            values ('', ${id}, ${sql.val([`${V}Camera`])}::text[], ${JSON.stringify({ id, type: [`${V}Camera`] })}::jsonb,
              ${T(created)}, ${T(created)}, 'org-a', ${a.userId}, ${JSON.stringify(amber)}::jsonb,
              ${sql.val(['amber:org-a'])}::text[], ${`inc-${id}`})`.execute(db);
        }
        for (const [id, first] of [
          ['urn:ngsi-ld:Camera:kept', 101],
          ['urn:ngsi-ld:Camera:mixed', 200],
          ['urn:ngsi-ld:Camera:gone', 100],
        ] as const) {
          await sql`insert into context_live_temporal_entity (tenant, entity_id, entity_types, owner_org,
              read_keys, created_at, modified_at)
            values ('', ${id}, ${sql.val([`${V}Camera`])}::text[], 'org-a', ${sql.val(['public'])}::text[],
              ${T(first)}, ${T(first)})`.execute(db);
          await sql`insert into context_live_attr_instance (tenant, entity_id, attr, dataset_id, instance_id,
              attr_type, observed_at, modified_at, value_num)
            values ('', ${id}, ${`${V}count`}, '', ${`urn:ngsi-ld:attribute:instance:${id}`}, 'Property',
              ${T(first)}, ${T(first)}, 1)`.execute(db);
        }
        // A retention rule that an administrator set for everyone.
        await sql`insert into context_live_retention (tenant, entity_type, retention_seconds)
          values ('', ${`${V}Camera`}, 3600)`.execute(db);

        await contextLiveMigrations[UPGRADE]?.up(store.db as never);
        live = createContextLive({ store, gate: world.gate, ld: testLdContext() });
        await live.start();
      });
      afterAll(async () => {
        await live?.stop();
        await store?.close();
      });

      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e: unknown) => (e instanceof AppError ? e.code : String(e)),
        );

      it('registers existing subscriptions at the gate: their organisation sees them, no one else', async () => {
        const rec = await live.subscriptions.get('', a, 'urn:ngsi-ld:Subscription:old');
        expect(rec.createdBy).toBe(a.userId);
        expect(await code(live.subscriptions.get('', b, 'urn:ngsi-ld:Subscription:old'))).toBe(
          'ACCESS_OBJECT_NOT_FOUND',
        );
        await live.subscriptions.update(
          '',
          a,
          'urn:ngsi-ld:Subscription:old',
          { isActive: false },
          undefined,
        );
      });

      it("keeps only the history that began with its entity, under the entity's marking", async () => {
        const kept = await live.temporal.getEntity(
          '',
          a,
          'urn:ngsi-ld:Camera:kept',
          { params: {} },
          undefined,
        );
        expect(kept.value.count).toMatchObject([{ value: 1 }]);
        expect(kept.marking).toBe('TLP:AMBER; owner=org-a');
        // Kept under the entity's incarnation: the next event of the entity continues this history.
        const current = await sql<{
          incarnation: string;
        }>`select incarnation from context_live_temporal_entity
          where entity_id = 'urn:ngsi-ld:Camera:kept'`.execute(store.db);
        expect(current.rows.map((r) => r.incarnation)).toEqual(['inc-urn:ngsi-ld:Camera:kept']);
        // Its history was stored as public: it is now read under the entity's AMBER marking.
        expect(
          await code(live.temporal.getEntity('', b, 'urn:ngsi-ld:Camera:kept', { params: {} }, undefined)),
        ).toBe('CONTEXT_LIVE_TEMPORAL_ENTITY_NOT_FOUND');
        for (const id of ['urn:ngsi-ld:Camera:mixed', 'urn:ngsi-ld:Camera:gone']) {
          expect(await code(live.temporal.getEntity('', a, id, { params: {} }, undefined))).toBe(
            'CONTEXT_LIVE_TEMPORAL_ENTITY_NOT_FOUND',
          );
        }
        const left = await sql<{
          entity_id: string;
        }>`select entity_id from context_live_attr_instance`.execute(store.db);
        expect(left.rows.map((r) => r.entity_id)).toEqual(['urn:ngsi-ld:Camera:kept']);
      });

      it('gives a rule set for everyone to each organisation with history of the type, as its object', async () => {
        expect(await live.temporal.listRetention(a, '')).toEqual([
          { entityType: `${V}Camera`, seconds: 3600 },
        ]);
        expect(await live.temporal.listRetention(b, '')).toEqual([]);
        await live.temporal.setRetention(await world.as('org-a-admin'), '', 'Camera', 7200);
        expect(await live.temporal.listRetention(a, '')).toEqual([
          { entityType: `${V}Camera`, seconds: 7200 },
        ]);
      });
    },
  );
}
