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
};
