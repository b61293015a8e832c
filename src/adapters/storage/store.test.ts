import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { runStoreContract } from './store.contract.ts';
import { openTestPostgresStore, testStoreFactories } from './testing.ts';

for (const factory of testStoreFactories()) runStoreContract(factory);

describe.skipIf(!process.env.DATABASE_URL)(
  `PostgreSQL schemas${process.env.DATABASE_URL ? '' : ' (skipped: DATABASE_URL is not set)'}`,
  () => {
    it('migrates two stores in two schemas of one database independently', async () => {
      const migrations = {
        s_0001: {
          async up(db: import('kysely').Kysely<unknown>) {
            await db.schema.createTable('s_thing').addColumn('id', 'text').execute();
          },
        },
      };
      const a = await openTestPostgresStore(migrations);
      const b = await openTestPostgresStore(migrations);
      try {
        for (const store of [a, b]) {
          const r = await sql<{ n: number }>`select count(*)::int as n from information_schema.tables
            where table_schema = current_schema() and table_name in ('s_thing', 'kysely_migration', 'kysely_migration_lock')`.execute(
            store.db,
          );
          expect(r.rows[0]?.n).toBe(3);
        }
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('stops a statement past the statement timeout (SQLSTATE 57014), but never a migration', async () => {
      const slow = {
        s_0001_slow: {
          async up(db: import('kysely').Kysely<unknown>) {
            await sql`select pg_sleep(0.3)`.execute(db);
          },
        },
      };
      const store = await openTestPostgresStore(slow, process.env.DATABASE_URL, { statementTimeoutMs: 100 });
      try {
        await expect(sql`select pg_sleep(0.3)`.execute(store.db)).rejects.toMatchObject({ code: '57014' });
        await expect(sql`select 1 as one`.execute(store.db)).resolves.toMatchObject({ rows: [{ one: 1 }] });
      } finally {
        await store.close();
      }
    });
  },
);
