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
  /**
   * The longest any statement may run (default 30,000 ms; 0: no limit), set on every connection so that it
   * costs no round trip: a statement past it fails with SQLSTATE 57014, which the modules turn into a 4xx
   * (the NGSI-LD broker: 403 TooComplexQuery). Migrations run on their own connection without it.
   */
  statementTimeoutMs?: number;
}

/** The default of `statementTimeoutMs`. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;

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
  const base: pg.PoolConfig = {
    connectionString: opts.url,
    types: types as never,
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  };
  const timeout = opts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = new pg.Pool({
    ...base,
    max: opts.poolSize ?? 10,
    ...(timeout > 0 ? { statement_timeout: timeout } : {}),
  });
  // An idle client's error (server restart) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) }) as unknown as AnyDb;
  // Migrations (and waiting for another instance's) may take longer than any query should.
  const openMigrationDb = () => {
    const migrationPool = new pg.Pool({ ...base, max: 1 });
    migrationPool.on('error', () => {});
    return new Kysely<unknown>({ dialect: new PostgresDialect({ pool: migrationPool }) }) as unknown as AnyDb;
  };
  return new KyselyStore({ kind: 'postgres', db, migrations: opts.migrations, openMigrationDb });
}
