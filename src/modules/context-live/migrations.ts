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
  context_live_0006_sharing_gate: {
    async up(db) {
      // Subscriptions are the sharing gate's objects: their read keys live in its registry (the module
      // registers older subscriptions at start). The platform pauses those of a disabled creator.
      await sql`alter table context_live_subscription add column paused_reason text`.execute(db);
      await sql`alter table context_live_subscription drop column read_keys`.execute(db);

      // History belongs to an incarnation of its entity, and each instance to the marking it was
      // recorded under (its segment).
      await sql`alter table context_live_temporal_entity add column incarnation text not null default ''`.execute(
        db,
      );
      await sql`alter table context_live_temporal_entity add column marking jsonb`.execute(db);
      await sql`alter table context_live_temporal_entity drop constraint context_live_temporal_entity_pk`.execute(
        db,
      );
      await sql`alter table context_live_temporal_entity add constraint context_live_temporal_entity_pk
        primary key (tenant, entity_id, incarnation)`.execute(db);
      await sql`create table context_live_temporal_segment (
        tenant text not null,
        entity_id text not null,
        seg text not null,
        incarnation text not null,
        owner_org text not null,
        marking jsonb not null,
        read_keys text[] not null,
        constraint context_live_temporal_segment_pk primary key (tenant, entity_id, seg)
      )`.execute(db);
      await sql`alter table context_live_attr_instance add column seg text not null default ''`.execute(db);
      await sql`alter table context_live_attr_rollup add column seg text not null default ''`.execute(db);
      await sql`alter table context_live_attr_rollup drop constraint context_live_attr_rollup_pk`.execute(db);
      await sql`alter table context_live_attr_rollup add constraint context_live_attr_rollup_pk
        primary key (tenant, entity_id, attr, dataset_id, seg, bucket)`.execute(db);

      // History recorded before: it is kept for an entity that still exists and whose history began with
      // it, under the entity's incarnation (the core's, or the one derived for events without it); anything
      // else — the entity is gone, or the history began before the entity was created, so it mixes an
      // earlier incarnation's — is closed and deleted. Kept history is recorded under the entity's marking.
      const entities = await sql<{
        t: string | null;
      }>`select to_regclass('context_entity')::text as t`.execute(db);
      if (entities.rows[0]?.t) {
        const columns = await sql<{ n: number }>`select count(*)::int as n from information_schema.columns
          where table_schema = current_schema() and table_name = 'context_entity'
            and column_name = 'incarnation'`.execute(db);
        const derived = sql`'createdAt:' || floor(extract(epoch from c.created_at) * 1000)::bigint::text`;
        const incarnation = columns.rows[0]?.n ? sql`coalesce(c.incarnation, ${derived})` : derived;
        await sql`update context_live_temporal_entity t set
            incarnation = ${incarnation},
            marking = c.marking, owner_org = c.owner_org, read_keys = c.read_keys, entity_types = c.types,
            created_at = c.created_at
          from context_entity c
          where c.tenant = t.tenant and c.id = t.entity_id and t.deleted_at is null
            and t.created_at >= c.created_at`.execute(db);
      }
      await sql`update context_live_temporal_entity set incarnation = 'before-incarnations',
          deleted_at = coalesce(deleted_at, now()),
          marking = '{"tlp":"RED","audience":{"orgs":[],"communities":[],"users":[]}}'
        where incarnation = ''`.execute(db);
      for (const table of ['context_live_attr_instance', 'context_live_attr_rollup']) {
        await sql`delete from ${sql.table(table)} i using context_live_temporal_entity e
          where e.tenant = i.tenant and e.entity_id = i.entity_id
            and e.incarnation = 'before-incarnations'`.execute(db);
      }
      await sql`alter table context_live_temporal_entity alter column marking set not null`.execute(db);
      await sql`insert into context_live_temporal_segment (tenant, entity_id, seg, incarnation, owner_org,
          marking, read_keys)
        select tenant, entity_id, '', incarnation, owner_org, marking, read_keys
        from context_live_temporal_entity where deleted_at is null`.execute(db);

      // Retention belongs to the owner organisation of the history. A rule set before for everyone becomes
      // the rule of every organisation that has history of that type, so nothing is kept longer or shorter.
      await sql`alter table context_live_retention add column owner_org text not null default ''`.execute(db);
      await sql`alter table context_live_retention drop constraint context_live_retention_pk`.execute(db);
      await sql`alter table context_live_retention add constraint context_live_retention_pk
        primary key (tenant, owner_org, entity_type)`.execute(db);
      await sql`insert into context_live_retention (tenant, owner_org, entity_type, retention_seconds)
        select distinct r.tenant, e.owner_org, r.entity_type, r.retention_seconds
        from context_live_retention r join context_live_temporal_entity e
          on e.tenant = r.tenant and r.entity_type = any(e.entity_types)
        where r.owner_org = '' and e.deleted_at is null
        on conflict do nothing`.execute(db);
      await sql`delete from context_live_retention where owner_org = ''`.execute(db);
      await sql`alter table context_live_retention alter column owner_org drop default`.execute(db);
    },
  },
  context_live_0007_temporal_provision: {
    async up(db) {
      // History has two sources: an entity's changes (kind 'entity', incarnations of the entity) and
      // instances provided through the temporal API (kind 'temporal', incarnations of the temporal entity,
      // a marked object of its own at the sharing gate). Each kind's incarnations supersede only their own.
      await sql`alter table context_live_temporal_entity add column kind text not null default 'entity'`.execute(
        db,
      );
      // Instances are named by their id (PATCH and DELETE of one instance).
      await sql`create index context_live_attr_instance_id on context_live_attr_instance (tenant, entity_id, instance_id)`.execute(
        db,
      );
    },
  },
  context_live_0008_temporal_scopes: {
    async up(db) {
      // scopeQ on temporal queries (clause 4.19, 5.7.4) tests the scopes of the entity or temporal entity
      // whose history is answered: kept beside its types.
      await sql`alter table context_live_temporal_entity add column scopes text[]`.execute(db);
      const entities = await sql<{
        t: string | null;
      }>`select to_regclass('context_entity')::text as t`.execute(db);
      if (entities.rows[0]?.t) {
        await sql`update context_live_temporal_entity t set scopes = c.scopes
          from context_entity c
          where c.tenant = t.tenant and c.id = t.entity_id and t.kind = 'entity' and t.deleted_at is null
            and c.scopes is not null`.execute(db);
      }
    },
  },
};
