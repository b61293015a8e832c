import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { AnyDb } from '../../ports/store.ts';
import { KyselyStore, type MigrationSet } from './kysely-store.ts';

export interface PostgresStoreOptions {
  url: string;
  migrations: MigrationSet;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** A schema to work in (created if missing); tests use a fresh one each. */
  schema?: string;
}

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

// int8 (count(*), bigint columns) as JS numbers, as PGlite returns them: same results on both adapters.
const types = {
  getTypeParser(oid: number, format?: string) {
    if (oid === 20) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** A Store on a PostgreSQL server (`DATABASE_URL`). */
export async function createPostgresStore(opts: PostgresStoreOptions): Promise<KyselyStore> {
  if (opts.schema !== undefined && !SCHEMA_RE.test(opts.schema)) {
    throw new Error(`invalid schema name "${opts.schema}"`);
  }
  if (opts.schema) {
    const admin = new pg.Client({ connectionString: opts.url });
    await admin.connect();
    try {
      await admin.query(`create schema if not exists ${opts.schema}`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize ?? 10,
    types: types as never,
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  });
  // An idle client's error (server restart) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) }) as unknown as AnyDb;
  return new KyselyStore({ kind: 'postgres', db, migrations: opts.migrations });
}
