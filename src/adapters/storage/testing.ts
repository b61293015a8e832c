/**
 * Stores for tests: a fresh PGlite always, and a fresh schema on PostgreSQL when DATABASE_URL is set.
 * A new PGlite database costs 6–10 s of initdb on two cores, so the first one of a machine is dumped to a
 * template in the temp folder and later ones load that dump (about a second).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { Store } from '../../ports/store.ts';
import type { MigrationSet } from './kysely-store.ts';
import { createPgliteStore } from './pglite-store.ts';
import { createPostgresStore } from './postgres-store.ts';

const TEMPLATE = join(tmpdir(), 'safecity-pglite-0.5-template.tar');
let templatePromise: Promise<Blob> | undefined;

async function pgliteTemplate(): Promise<Blob> {
  templatePromise ??= (async () => {
    if (existsSync(TEMPLATE)) return new Blob([readFileSync(TEMPLATE)]);
    const db = await PGlite.create();
    const dump = await db.dumpDataDir('none');
    await db.close();
    const bytes = Buffer.from(await dump.arrayBuffer());
    const tmp = `${TEMPLATE}.${process.pid}`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, TEMPLATE);
    return new Blob([bytes]);
  })();
  return templatePromise;
}

/** A fresh in-memory PGlite store, migrated. */
export async function openTestPgliteStore(migrations: MigrationSet = {}): Promise<Store> {
  const store = await createPgliteStore({ migrations, loadDataDir: await pgliteTemplate() });
  await store.migrate();
  return store;
}

/** A store in a fresh schema of the PostgreSQL at DATABASE_URL, migrated; the schema is dropped on close. */
export async function openTestPostgresStore(
  migrations: MigrationSet = {},
  url = process.env.DATABASE_URL,
  opts: { statementTimeoutMs?: number } = {},
): Promise<Store> {
  if (!url) throw new Error('DATABASE_URL is not set');
  const schema = `t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const store = await createPostgresStore({ url, migrations, schema, poolSize: 4, ...opts });
  await store.migrate();
  const close = store.close.bind(store);
  return Object.assign(store, {
    close: async () => {
      await close();
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        await admin.query(`drop schema if exists ${schema} cascade`);
      } finally {
        await admin.end();
      }
    },
  });
}

export interface TestStoreFactory {
  name: 'pglite' | 'postgres';
  /** Why this adapter is skipped, or undefined when it runs. */
  skip: string | undefined;
  open(migrations?: MigrationSet): Promise<Store>;
}

/** Every adapter, for contract suites: `for (const f of testStoreFactories()) describe.skipIf(f.skip)(...)`. */
export function testStoreFactories(): TestStoreFactory[] {
  return [
    { name: 'pglite', skip: undefined, open: (m) => openTestPgliteStore(m) },
    {
      name: 'postgres',
      skip: process.env.DATABASE_URL
        ? undefined
        : 'DATABASE_URL is not set (no PostgreSQL server to test against)',
      open: (m) => openTestPostgresStore(m),
    },
  ];
}
