import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect } from 'kysely';
import type { AnyDb } from '../../ports/store.ts';
import { KyselyStore, type MigrationSet } from './kysely-store.ts';

export interface PgliteStoreOptions {
  /** Folder for the database files; omitted: in memory. */
  dataDir?: string;
  migrations: MigrationSet;
  /** A data directory dump (from `dumpDataDir`) to start from instead of running initdb (tests). */
  loadDataDir?: Blob | File;
}

/** A Store on embedded PostgreSQL (PGlite, WASM), the default: no server to install. */
export async function createPgliteStore(opts: PgliteStoreOptions): Promise<KyselyStore & { pglite: PGlite }> {
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  const pglite = await PGlite.create({
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
    ...(opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {}),
  });
  const db = new Kysely<unknown>({ dialect: new PGliteDialect({ pglite }) }) as unknown as AnyDb;
  const store = new KyselyStore({ kind: 'pglite', db, migrations: opts.migrations }) as KyselyStore & {
    pglite: PGlite;
  };
  store.pglite = pglite;
  return store;
}
