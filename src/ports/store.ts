/**
 * The storage port. One interface over PGlite (embedded default) and PostgreSQL (`DATABASE_URL`):
 * the same SQL (Kysely, PostgreSQL dialect) and the same migrations run on both.
 *
 * Modules type their own tables: `store.db.withTables<MyTables>()` gives a typed Kysely for them
 * (declare MyTables with `type`, not `interface`: Kysely needs an index-signature-compatible type).
 * Every write spanning several rows goes through `transaction`.
 */
import type { Kysely } from 'kysely';

// biome-ignore lint/complexity/noBannedTypes: modules add their own tables with withTables<T>().
export type AnyDb = Kysely<{}>;

export interface MigrationResult {
  name: string;
  status: 'applied' | 'failed';
}

export interface Store {
  /** 'pglite' or 'postgres' — for reports and benchmarks only; the SQL is the same. */
  readonly kind: 'pglite' | 'postgres';
  readonly db: AnyDb;
  /**
   * Runs `fn` in one transaction; it commits when fn resolves, rolls back when it throws. Resolves after
   * the commit and after the hooks registered with `afterCommit` for it have run.
   */
  transaction<T>(fn: (trx: AnyDb) => Promise<T>): Promise<T>;
  /**
   * Runs `hook` once the transaction `trx` belongs to has committed, before `transaction` resolves; never
   * when it rolls back. `trx` is the one `transaction` gave (or one derived from it, e.g. `withTables`);
   * given `db` (no transaction), the hook runs at once, since each statement there commits by itself.
   * A hook handles its own errors: the transaction committed whatever a hook does.
   */
  afterCommit(trx: Pick<AnyDb, 'getExecutor' | 'isTransaction'>, hook: () => Promise<void>): void;
  /** Applies pending migrations in order; safe to call from several instances at once. */
  migrate(): Promise<MigrationResult[]>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
