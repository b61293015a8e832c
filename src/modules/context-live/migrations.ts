import { sql } from 'kysely';
import type { Migration } from 'kysely/migration';

/** The module's migrations; the composition root merges them into the store's migration set. */
export const contextLiveMigrations: Record<string, Migration> = {
  context_live_0001_subscriptions: {
    async up(db) {
      await db.schema
        .createTable('context_live_subscription')
        .addColumn('tenant', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('owner_org', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('read_keys', sql`text[]`, (c) => c.notNull())
        .addColumn('body', 'jsonb', (c) => c.notNull())
        .addColumn('is_active', 'boolean', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz')
        .addColumn('times_sent', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('times_failed', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_notification', 'timestamptz')
        .addColumn('last_success', 'timestamptz')
        .addColumn('last_failure', 'timestamptz')
        .addColumn('last_status', 'text')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('modified_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('context_live_subscription_pk', ['tenant', 'id'])
        .execute();
      await db.schema
        .createTable('context_live_outbox')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant', 'text', (c) => c.notNull())
        .addColumn('subscription_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_error', 'text')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('payload', 'jsonb', (c) => c.notNull())
        .execute();
      await sql`create index context_live_outbox_due on context_live_outbox (state, next_attempt_at)`.execute(
        db,
      );
      await sql`create index context_live_outbox_sub on context_live_outbox (tenant, subscription_id, id)`.execute(
        db,
      );
    },
  },
  context_live_0002_temporal: {
    async up(db) {
      await db.schema
        .createTable('context_live_temporal_entity')
        .addColumn('tenant', 'text', (c) => c.notNull())
        .addColumn('entity_id', 'text', (c) => c.notNull())
        .addColumn('entity_types', sql`text[]`, (c) => c.notNull())
        .addColumn('owner_org', 'text', (c) => c.notNull())
        .addColumn('read_keys', sql`text[]`, (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('modified_at', 'timestamptz', (c) => c.notNull())
        .addColumn('deleted_at', 'timestamptz')
        .addPrimaryKeyConstraint('context_live_temporal_entity_pk', ['tenant', 'entity_id'])
        .execute();
      await sql`create index context_live_temporal_entity_types on context_live_temporal_entity using gin (entity_types)`.execute(
        db,
      );
      await db.schema
        .createTable('context_live_attr_instance')
        .addColumn('tenant', 'text', (c) => c.notNull())
        .addColumn('entity_id', 'text', (c) => c.notNull())
        .addColumn('attr', 'text', (c) => c.notNull())
        .addColumn('dataset_id', 'text', (c) => c.notNull())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('attr_type', 'text', (c) => c.notNull())
        .addColumn('observed_at', 'timestamptz', (c) => c.notNull())
        .addColumn('modified_at', 'timestamptz', (c) => c.notNull())
        .addColumn('value_num', 'double precision')
        .addColumn('value_text', 'text')
        .addColumn('instance', 'jsonb', (c) => c.notNull())
        .execute();
      await sql`create index context_live_attr_instance_series on context_live_attr_instance (tenant, entity_id, attr, observed_at)`.execute(
        db,
      );
      await sql`create index context_live_attr_instance_modified on context_live_attr_instance (modified_at)`.execute(
        db,
      );
      await db.schema
        .createTable('context_live_retention')
        .addColumn('tenant', 'text', (c) => c.notNull())
        .addColumn('entity_type', 'text', (c) => c.notNull())
        .addColumn('retention_seconds', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('context_live_retention_pk', ['tenant', 'entity_type'])
        .execute();
    },
  },
  context_live_0003_dead_letters: {
    async up(db) {
      await db.schema
        .createTable('context_live_dead_letter')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('received_at', 'timestamptz', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('topic', 'text')
        .addColumn('tenant', 'text')
        .addColumn('org_id', 'text')
        .addColumn('principal', 'text')
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .execute();
      await sql`create index context_live_dead_letter_org on context_live_dead_letter (org_id, received_at)`.execute(
        db,
      );
    },
  },
  context_live_0004_rollups: {
    async up(db) {
      // Per-minute partial aggregates of numeric instances: aggregations over long ranges read these
      // instead of every instance (a day of 1-second observations is 1,440 rows instead of 86,400).
      await db.schema
        .createTable('context_live_attr_rollup')
        .addColumn('tenant', 'text', (c) => c.notNull())
        .addColumn('entity_id', 'text', (c) => c.notNull())
        .addColumn('attr', 'text', (c) => c.notNull())
        .addColumn('dataset_id', 'text', (c) => c.notNull())
        .addColumn('bucket', 'timestamptz', (c) => c.notNull())
        .addColumn('attr_type', 'text', (c) => c.notNull())
        .addColumn('n', 'bigint', (c) => c.notNull())
        .addColumn('n_num', 'bigint', (c) => c.notNull())
        .addColumn('sum', 'double precision')
        .addColumn('sumsq', 'double precision')
        .addColumn('min', 'double precision')
        .addColumn('max', 'double precision')
        .addPrimaryKeyConstraint('context_live_attr_rollup_pk', [
          'tenant',
          'entity_id',
          'attr',
          'dataset_id',
          'bucket',
        ])
        .execute();
    },
  },
  context_live_0005_lean_instances: {
    async up(db) {
      // Nothing reads instances by modification time: the index only slowed recording down.
      await sql`drop index if exists context_live_attr_instance_modified`.execute(db);
      // Plain numeric observations keep no JSON copy (rebuilt from the columns when read).
      await sql`alter table context_live_attr_instance alter column instance drop not null`.execute(db);
    },
  },
};
