/**
 * Upgrading a store written before history kept scopes (migration context_live_0008_temporal_scopes): the
 * live history of an entity takes the entity's scopes, so scopeQ selects it at once; closed history, and
 * temporal entities (whose scope was not kept), stay without.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import type { Store } from '../../ports/store.ts';
import { contextMigrations } from '../context/index.ts';
import { contextLiveMigrations } from './migrations.ts';
import { LIVE_TEST_MIGRATIONS } from './testing.ts';

const UPGRADE = 'context_live_0008_temporal_scopes';
const CAMERA = 'https://uri.etsi.org/ngsi-ld/default-context/Camera';
const amber = { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } };

for (const factory of testStoreFactories()) {
  describe.skipIf(factory.skip)(
    `upgrade to history with scopes on ${factory.name}${factory.skip ? ` (skipped: ${factory.skip})` : ''}`,
    () => {
      let store: Store;

      beforeAll(async () => {
        const before = Object.fromEntries(
          Object.entries({ ...contextMigrations, ...LIVE_TEST_MIGRATIONS }).filter(([k]) => k !== UPGRADE),
        );
        store = await factory.open(before);
        const db = store.db;
        const at = new Date('2026-11-01T00:00:00Z');
        for (const [id, scopes] of [
          ['urn:ngsi-ld:Camera:scoped', ['/Madrid/Centro', '/CompanyA/UnitC']],
          ['urn:ngsi-ld:Camera:plain', null],
        ] as const) {
          await sql`insert into context_entity (tenant, id, types, scopes, entity, created_at, modified_at,
              owner_org, created_by, marking, read_keys, incarnation)
            values ('', ${id}, ${sql.val([CAMERA])}::text[], ${scopes ? sql`${sql.val(scopes)}::text[]` : sql`null`},
              ${JSON.stringify({ id, type: [CAMERA] })}::jsonb, ${at}, ${at}, 'org-a', 'u', ${JSON.stringify(amber)}::jsonb,
              ${sql.val(['amber:org-a'])}::text[], ${`inc-${id}`})`.execute(db);
        }
        // Live history of both entities, a closed incarnation of the scoped one, and a temporal entity of
        // the same id as the scoped entity.
        for (const [id, incarnation, kind, deleted] of [
          ['urn:ngsi-ld:Camera:scoped', 'inc-urn:ngsi-ld:Camera:scoped', 'entity', null],
          ['urn:ngsi-ld:Camera:scoped', 'inc-old', 'entity', at],
          ['urn:ngsi-ld:Camera:scoped', 'inc-temporal', 'temporal', null],
          ['urn:ngsi-ld:Camera:plain', 'inc-urn:ngsi-ld:Camera:plain', 'entity', null],
        ] as const) {
          await sql`insert into context_live_temporal_entity (tenant, entity_id, incarnation, entity_types,
              owner_org, marking, read_keys, created_at, modified_at, deleted_at, kind)
            values ('', ${id}, ${incarnation}, ${sql.val([CAMERA])}::text[], 'org-a', ${JSON.stringify(amber)}::jsonb,
              ${sql.val(['amber:org-a'])}::text[], ${at}, ${at}, ${deleted}, ${kind})`.execute(db);
        }
        await contextLiveMigrations[UPGRADE]?.up(store.db as never);
      });
      afterAll(async () => {
        await store?.close();
      });

      it("gives an entity's live history the entity's scopes, and nothing else", async () => {
        const rows = await sql<{ entity_id: string; incarnation: string; scopes: string[] | null }>`
          select entity_id, incarnation, scopes from context_live_temporal_entity
          order by entity_id, incarnation`.execute(store.db);
        expect(rows.rows).toEqual([
          {
            entity_id: 'urn:ngsi-ld:Camera:plain',
            incarnation: 'inc-urn:ngsi-ld:Camera:plain',
            scopes: null,
          },
          { entity_id: 'urn:ngsi-ld:Camera:scoped', incarnation: 'inc-old', scopes: null },
          { entity_id: 'urn:ngsi-ld:Camera:scoped', incarnation: 'inc-temporal', scopes: null },
          {
            entity_id: 'urn:ngsi-ld:Camera:scoped',
            incarnation: 'inc-urn:ngsi-ld:Camera:scoped',
            scopes: ['/Madrid/Centro', '/CompanyA/UnitC'],
          },
        ]);
      });
    },
  );
}
