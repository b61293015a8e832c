import {
  type Kysely,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  sql,
  type UnknownRow,
} from 'kysely';
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

  async transaction<T>(fn: (trx: AnyDb) => Promise<T>): Promise<T> {
    const hooks = new CommitHooks();
    const result = await this.db
      .transaction()
      .execute((trx) => fn(trx.withPlugin(hooks) as unknown as AnyDb));
    for (const hook of hooks.list) {
      try {
        await hook();
      } catch {
        // The transaction committed; a hook reports its own failures (see the Store port).
      }
    }
    return result;
  }

  afterCommit(trx: Pick<AnyDb, 'getExecutor' | 'isTransaction'>, hook: () => Promise<void>): void {
    const hooks = trx.getExecutor().plugins.find((p) => p instanceof CommitHooks);
    if (hooks) {
      hooks.list.push(hook);
      return;
    }
    if (trx.isTransaction) {
      throw new Error('afterCommit needs a transaction opened by Store.transaction');
    }
    void hook().catch(() => undefined);
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
    const schema = rows[0]?.schema ?? 'public';
    const migrator = new Migrator({
      db: withOwnSchemaIntrospection(db as Kysely<unknown>, schema),
      migrationTableSchema: schema,
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

/**
 * Marks the connection of one `Store.transaction` and holds its after-commit hooks. A plugin, because
 * Kysely carries plugins into every instance derived from the transaction (`withTables`, `withSchema`),
 * so the hooks are found from whichever one a module passes on. It changes no query and no result.
 */
class CommitHooks implements KyselyPlugin {
  readonly list: Array<() => Promise<void>> = [];

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

/**
 * The Migrator asks whether its schema and tables exist through Kysely's introspector, which lists every
 * column of every table of every schema and evaluates `has_schema_privilege(name)` and
 * `pg_get_serial_sequence(name)` by name on each: a schema dropped by someone else meanwhile (tests drop
 * theirs in parallel; an operator may drop one) fails the migration with "schema … does not exist", and a
 * database with many schemas makes every start slow. This answers the two questions for our schema only,
 * from the catalogs, by OID.
 */
function withOwnSchemaIntrospection(db: Kysely<unknown>, schema: string): Kysely<unknown> {
  const introspection = {
    getSchemas: async () => {
      const r = await sql<{ name: string }>`select nspname as name from pg_catalog.pg_namespace
        where nspname = ${schema}`.execute(db);
      return r.rows.map((x) => ({ name: x.name }));
    },
    getTables: async () => {
      const r = await sql<{ name: string }>`select c.relname as name from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = ${schema} and c.relkind in ('r', 'p', 'v', 'f')`.execute(db);
      return r.rows.map((x) => ({ name: x.name, schema, isView: false, columns: [] }));
    },
    getMetadata: async () => ({ tables: await introspection.getTables() }),
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'introspection') return introspection;
      const value = Reflect.get(target, prop, target);
      // Kysely keeps its state in private fields: its methods must run on the instance itself.
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
