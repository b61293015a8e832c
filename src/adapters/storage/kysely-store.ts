import { type Kysely, sql } from 'kysely';
import { type Migration, Migrator } from 'kysely/migration';
import { AppError } from '../../kernel/errors.ts';
import type { AnyDb, MigrationResult, Store } from '../../ports/store.ts';

export type MigrationSet = Record<string, Migration>;

/**
 * The Store implementation shared by PGlite and PostgreSQL: both speak the PostgreSQL dialect, so the
 * SQL, the transactions and the migrations are the same code.
 */
export class KyselyStore implements Store {
  readonly kind: 'pglite' | 'postgres';
  readonly db: AnyDb;
  readonly #migrations: MigrationSet;
  readonly #onClose: () => Promise<void>;
  readonly #openMigrationDb: (() => AnyDb) | undefined;
  #closed = false;

  constructor(opts: {
    kind: 'pglite' | 'postgres';
    db: AnyDb;
    migrations: MigrationSet;
    onClose?: () => Promise<void>;
    /** A handle for migrations only (without the statement timeout of `db`), destroyed after them. */
    openMigrationDb?: () => AnyDb;
  }) {
    this.kind = opts.kind;
    this.db = opts.db;
    this.#migrations = opts.migrations;
    this.#onClose = opts.onClose ?? (async () => {});
    this.#openMigrationDb = opts.openMigrationDb;
  }

  transaction<T>(fn: (trx: AnyDb) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => fn(trx as unknown as AnyDb));
  }

  async migrate(): Promise<MigrationResult[]> {
    const db = this.#openMigrationDb?.() ?? this.db;
    try {
      return await this.#migrate(db);
    } finally {
      if (db !== this.db) await db.destroy();
    }
  }

  async #migrate(db: AnyDb): Promise<MigrationResult[]> {
    // Kysely looks its bookkeeping tables up by name in any schema; name ours, or a database with another
    // SafeCity schema (or a stray table in public) would make it skip creating them here.
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
    const migrator = new Migrator({
      db: db as Kysely<unknown>,
      migrationTableSchema: rows[0]?.schema ?? 'public',
      provider: { getMigrations: async () => this.#migrations },
      // Modules own their migrations; names are prefixed by module, so the global order is by name and a
      // module added later may bring names that sort earlier than ones already applied.
      allowUnorderedMigrations: true,
    });
    const { error, results } = await migrator.migrateToLatest();
    const out: MigrationResult[] = (results ?? []).map((r) => ({
      name: r.migrationName,
      status: r.status === 'Success' ? 'applied' : 'failed',
    }));
    if (error) {
      const failed = out.find((r) => r.status === 'failed')?.name ?? 'unknown';
      throw new AppError(
        'STORE_MIGRATION_FAILED',
        `migration ${failed} failed: ${String(error)}`,
        { failed },
        {
          cause: error,
        },
      );
    }
    return out;
  }

  async ping(): Promise<void> {
    try {
      await sql`select 1`.execute(this.db);
    } catch (e) {
      throw new AppError(
        'STORE_UNAVAILABLE',
        `the store does not answer: ${(e as Error).message}`,
        undefined,
        {
          cause: e,
        },
      );
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.db.destroy();
    await this.#onClose();
  }
}
