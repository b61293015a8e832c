import { sql } from 'kysely';
import type { Migration } from 'kysely/migration';

/**
 * The transactional outbox: one row per transaction that emitted events, holding them as a JSON array in
 * emit order, compressed (brotli) by the writer: a batch of 1,000 entity events is 2–3 MB of JSON and about
 * 100 kB compressed, so the row costs little to write and to log, and the database does not compress it
 * again (storage external). A row lives from the commit of its transaction until its events are on the bus
 * (normally milliseconds); `available_at` says when a sweeper may take it: the writer's grace period at
 * first, then a sweeper's lease, then the retry time after a failed relay.
 */
export const eventsMigrations: Record<string, Migration> = {
  events_0001_outbox: {
    async up(db) {
      await db.schema
        .createTable('event_outbox')
        .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
        .addColumn('events', 'bytea', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('available_at', 'timestamptz', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_error', 'text')
        .execute();
      await sql`alter table event_outbox alter column events set storage external`.execute(db);
      await sql`create index event_outbox_available on event_outbox (available_at)`.execute(db);
    },
  },
};

export type EventsTables = {
  event_outbox: {
    id: number;
    events: Uint8Array;
    created_at: Date;
    available_at: Date;
    attempts: number;
    last_error: string | null;
  };
};
