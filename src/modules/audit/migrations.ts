import { sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { GENESIS_HASH } from './audit-record.ts';

/**
 * The audit log: `audit_record` holds the chain, `audit_head` one row with the last sequence number and
 * hash. Appends lock the head row, so the chain never forks across instances, and the head survives a
 * truncation at the end of the chain, which is how such a truncation is detected.
 */
export const auditMigrations: Record<string, Migration> = {
  audit_0001_log: {
    async up(db) {
      await db.schema
        .createTable('audit_record')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('at', 'timestamptz', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('actor_org', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('object_kind', 'text')
        .addColumn('object_id', 'text')
        .addColumn('owner_org', 'text')
        .addColumn('details', 'jsonb', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('audit_record_object')
        .on('audit_record')
        .columns(['object_id', 'seq'])
        .execute();
      await db.schema
        .createIndex('audit_record_actor')
        .on('audit_record')
        .columns(['actor_id', 'seq'])
        .execute();
      await db.schema
        .createIndex('audit_record_owner')
        .on('audit_record')
        .columns(['owner_org', 'seq'])
        .execute();
      await db.schema.createIndex('audit_record_at').on('audit_record').column('at').execute();
      await db.schema
        .createTable('audit_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await sql`insert into audit_head (id, seq, hash) values (1, 0, ${GENESIS_HASH})`.execute(db);
    },
  },
  audit_0002_deferred_chain: {
    // Appends write unchained records without locking; a chainer links them under the head's lock, so
    // audited writes no longer queue behind one another across the platform.
    async up(db) {
      await sql`alter table audit_record drop constraint audit_record_pkey`.execute(db);
      await sql`alter table audit_record alter column seq drop not null`.execute(db);
      await sql`alter table audit_record alter column prev_hash drop not null`.execute(db);
      await sql`alter table audit_record alter column hash drop not null`.execute(db);
      await sql`alter table audit_record add primary key (id)`.execute(db);
      await sql`create unique index audit_record_seq on audit_record (seq)`.execute(db);
      // The order records were written in (ids are time-ordered only to the millisecond).
      await sql`alter table audit_record add column written bigserial`.execute(db);
      await sql`create index audit_record_pending on audit_record (written) where seq is null`.execute(db);
    },
  },
};
