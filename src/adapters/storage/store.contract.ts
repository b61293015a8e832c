/**
 * The contract every Store adapter keeps. Run against PGlite and PostgreSQL by store.test.ts.
 */
import { sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../ports/store.ts';
import type { TestStoreFactory } from './testing.ts';

type Tables = {
  contract_item: { id: string; n: number; doc: unknown; tags: string[]; at: Date };
};

const migrations: Record<string, Migration> = {
  contract_0001_items: {
    async up(db) {
      await db.schema
        .createTable('contract_item')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('n', 'bigint', (c) => c.notNull())
        .addColumn('doc', 'jsonb', (c) => c.notNull())
        .addColumn('tags', sql`text[]`, (c) => c.notNull())
        .addColumn('at', 'timestamptz', (c) => c.notNull())
        .execute();
      await sql`create index contract_item_tags on contract_item using gin (tags)`.execute(db);
    },
  },
  contract_0002_counter: {
    async up(db) {
      await db.schema
        .createTable('contract_counter')
        .addColumn('k', 'text', (c) => c.primaryKey())
        .execute();
    },
  },
};

export function runStoreContract(factory: TestStoreFactory): void {
  describe.skipIf(factory.skip)(
    `Store contract: ${factory.name}${factory.skip ? ` (skipped: ${factory.skip})` : ''}`,
    () => {
      let store: Store;
      const db = () => store.db.withTables<Tables>();

      beforeAll(async () => {
        store = await factory.open(migrations);
      });
      afterAll(async () => {
        await store?.close();
      });

      it('answers ping and reports its kind', async () => {
        await store.ping();
        expect(store.kind).toBe(factory.name);
      });

      it('applies migrations once: a second migrate applies nothing', async () => {
        expect(await store.migrate()).toEqual([]);
        const tables = await sql<{ n: number }>`select count(*)::int as n from information_schema.tables
        where table_name in ('contract_item', 'contract_counter') and table_schema = current_schema()`.execute(
          store.db,
        );
        expect(tables.rows[0]?.n).toBe(2);
      });

      it('round-trips bigint, jsonb, text[] and timestamptz the same way on every adapter', async () => {
        const at = new Date('2026-11-27T10:00:00.123Z');
        await db()
          .insertInto('contract_item')
          .values({
            id: 'a',
            n: 42,
            doc: JSON.stringify({ x: [1, 'two', null] }),
            tags: ['org:a', 'public'],
            at,
          })
          .execute();
        const row = await db()
          .selectFrom('contract_item')
          .selectAll()
          .where('id', '=', 'a')
          .executeTakeFirstOrThrow();
        expect(row).toEqual({ id: 'a', n: 42, doc: { x: [1, 'two', null] }, tags: ['org:a', 'public'], at });
        const count = await db()
          .selectFrom('contract_item')
          .select((eb) => eb.fn.countAll().as('c'))
          .executeTakeFirstOrThrow();
        expect(count.c).toBe(1);
      });

      it('filters arrays with && (the read-key visibility filter)', async () => {
        const at = new Date();
        await db()
          .insertInto('contract_item')
          .values([
            { id: 'k1', n: 1, doc: '{}', tags: ['org:x'], at },
            { id: 'k2', n: 2, doc: '{}', tags: ['user:u1', 'user:u2'], at },
          ])
          .execute();
        const keys = ['user:u2', 'org:y'];
        const rows = await db()
          .selectFrom('contract_item')
          .select('id')
          .where(sql<boolean>`tags && ${sql.val(keys)}::text[]`)
          .execute();
        expect(rows.map((r) => r.id)).toEqual(['k2']);
      });

      it('commits a transaction as a whole', async () => {
        await store.transaction(async (trx) => {
          const t = trx.withTables<Tables>();
          await t
            .insertInto('contract_item')
            .values({ id: 't1', n: 1, doc: '{}', tags: [], at: new Date() })
            .execute();
          await t
            .insertInto('contract_item')
            .values({ id: 't2', n: 2, doc: '{}', tags: [], at: new Date() })
            .execute();
        });
        const rows = await db()
          .selectFrom('contract_item')
          .select('id')
          .where('id', 'in', ['t1', 't2'])
          .execute();
        expect(rows).toHaveLength(2);
      });

      it('rolls back every row when a transaction fails part way: nothing half-written', async () => {
        await expect(
          store.transaction(async (trx) => {
            const t = trx.withTables<Tables>();
            await t
              .insertInto('contract_item')
              .values({ id: 'r1', n: 1, doc: '{}', tags: [], at: new Date() })
              .execute();
            // duplicate primary key: fails
            await t
              .insertInto('contract_item')
              .values({ id: 'r1', n: 2, doc: '{}', tags: [], at: new Date() })
              .execute();
          }),
        ).rejects.toThrow();
        const rows = await db().selectFrom('contract_item').select('id').where('id', '=', 'r1').execute();
        expect(rows).toEqual([]);
      });

      it('rolls back when the callback throws an application error', async () => {
        await expect(
          store.transaction(async (trx) => {
            await trx
              .withTables<Tables>()
              .insertInto('contract_item')
              .values({ id: 'r2', n: 1, doc: '{}', tags: [], at: new Date() })
              .execute();
            throw new Error('changed my mind');
          }),
        ).rejects.toThrow('changed my mind');
        const rows = await db().selectFrom('contract_item').select('id').where('id', '=', 'r2').execute();
        expect(rows).toEqual([]);
      });

      it('runs after-commit hooks once the commit is visible, before transaction resolves; never on rollback', async () => {
        const seen: string[] = [];
        const visibleToOthers = async (id: string) =>
          (await db().selectFrom('contract_item').select('id').where('id', '=', id).execute()).length === 1;
        await store.transaction(async (trx) => {
          await trx
            .withTables<Tables>()
            .insertInto('contract_item')
            .values({ id: 'h1', n: 1, doc: '{}', tags: [], at: new Date() })
            .execute();
          // Registered through an instance derived from the transaction, as modules pass it on.
          store.afterCommit(trx.withTables<Tables>(), async () => {
            seen.push(`h1 committed: ${await visibleToOthers('h1')}`);
          });
          store.afterCommit(trx, async () => {
            throw new Error('a failing hook does not fail the committed transaction');
          });
          seen.push('body done');
        });
        expect(seen).toEqual(['body done', 'h1 committed: true']);
        await expect(
          store.transaction(async (trx) => {
            store.afterCommit(trx, async () => {
              seen.push('rolled back yet hooked');
            });
            throw new Error('rolls back');
          }),
        ).rejects.toThrow('rolls back');
        expect(seen).toHaveLength(2);
        let outside = false;
        store.afterCommit(store.db, async () => {
          outside = true;
        });
        expect(outside).toBe(true);
      });

      it('keeps parameters as data: hostile strings are stored, never executed', async () => {
        const hostile = "x'); drop table contract_item; --";
        await db()
          .insertInto('contract_item')
          .values({ id: hostile, n: 1, doc: '{}', tags: [hostile], at: new Date() })
          .execute();
        const row = await db()
          .selectFrom('contract_item')
          .select('id')
          .where('id', '=', hostile)
          .executeTakeFirst();
        expect(row?.id).toBe(hostile);
      });

      it('serialises concurrent transactions without losing writes', async () => {
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.transaction(async (trx) => {
              await trx
                .withTables<Tables>()
                .insertInto('contract_item')
                .values({ id: `c${i}`, n: i, doc: '{}', tags: [], at: new Date() })
                .execute();
            }),
          ),
        );
        const count = await db()
          .selectFrom('contract_item')
          .select((eb) => eb.fn.countAll().as('c'))
          .where('id', 'like', 'c%')
          .executeTakeFirstOrThrow();
        expect(count.c).toBe(20);
      });
    },
  );
}
