import type { Store } from '../../ports/store.ts';
import type { MigrationSet } from './kysely-store.ts';
import { createPgliteStore } from './pglite-store.ts';
import { createPostgresStore } from './postgres-store.ts';

export type { MigrationSet } from './kysely-store.ts';
export { KyselyStore } from './kysely-store.ts';
export { createPgliteStore } from './pglite-store.ts';
export { createPostgresStore } from './postgres-store.ts';

export interface StoreConfig {
  /** PostgreSQL URL; without it the embedded PGlite store in `dataDir` is used. */
  databaseUrl?: string | undefined;
  dataDir?: string | undefined;
  poolSize?: number | undefined;
}

/** Picks the adapter: PostgreSQL when a URL is given, embedded PGlite otherwise. */
export async function createStore(config: StoreConfig, migrations: MigrationSet): Promise<Store> {
  if (config.databaseUrl) {
    return createPostgresStore({
      url: config.databaseUrl,
      migrations,
      ...(config.poolSize ? { poolSize: config.poolSize } : {}),
    });
  }
  return createPgliteStore({ ...(config.dataDir ? { dataDir: config.dataDir } : {}), migrations });
}
