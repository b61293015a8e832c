import { sql } from 'kysely';
import type { Migration } from 'kysely/migration';

/**
 * Detection as a platform service: rules (marked objects of the sharing gate, kind `rule`) with every version
 * kept, the engine's checkpoints, and the hand-offs of promoted alerts. The same SQL on PGlite and PostgreSQL.
 */
export const detectionLiveMigrations: Record<string, Migration> = {
  detection_live_0001_rules: {
    async up(db) {
      await db.schema
        .createTable('detection_rule')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('enabled', 'boolean', (c) => c.notNull())
        .addColumn('body', 'jsonb', (c) => c.notNull())
        // A copy of the registry row (shared_object), written in the same transaction as it.
        .addColumn('owner_org', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('tlp', 'text', (c) => c.notNull())
        .addColumn('pap', 'text')
        .addColumn('audience', 'jsonb', (c) => c.notNull())
        .addColumn('read_keys', sql`text[]`, (c) => c.notNull())
        .addColumn('incarnation', 'text', (c) => c.notNull())
        .addColumn('suspended_reason', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await sql`create index detection_rule_read_keys on detection_rule using gin (read_keys)`.execute(db);
      await sql`create index detection_rule_enabled on detection_rule (enabled)`.execute(db);
      await db.schema
        .createTable('detection_rule_version')
        .addColumn('rule_id', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('body', 'jsonb', (c) => c.notNull())
        .addColumn('author', 'text', (c) => c.notNull())
        .addColumn('at', 'timestamptz', (c) => c.notNull())
        /** What made the version: created, updated, restored (from `restored_from`). */
        .addColumn('change', 'text', (c) => c.notNull())
        .addColumn('restored_from', 'integer')
        .addPrimaryKeyConstraint('detection_rule_version_pk', ['rule_id', 'version'])
        .execute();
      // The engine's state of each partition (its rules' and what it learnt of entities), written by the
      // partition's holder; `partitions` is how many there were, so a changed count starts afresh.
      await db.schema
        .createTable('detection_checkpoint')
        .addColumn('partition', 'integer', (c) => c.primaryKey())
        .addColumn('partitions', 'integer', (c) => c.notNull())
        .addColumn('state', 'jsonb', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .execute();
      // Scale-out: rules are split into partitions (by rule id); each partition is evaluated by the one
      // instance holding its lease, which consumes the partition's own durable consumer group.
      await db.schema
        .createTable('detection_partition_lease')
        .addColumn('partition', 'integer', (c) => c.primaryKey())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('detection_member')
        .addColumn('holder', 'text', (c) => c.primaryKey())
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('detection_alert_handoff')
        .addColumn('alert_id', 'text', (c) => c.notNull())
        .addColumn('tenant', 'text', (c) => c.notNull())
        .addColumn('owner_org', 'text', (c) => c.notNull())
        .addColumn('promoted_by', 'text', (c) => c.notNull())
        .addColumn('note', 'text', (c) => c.notNull())
        .addColumn('at', 'timestamptz', (c) => c.notNull())
        /** Set by the incidents module when it takes the hand-off. */
        .addColumn('taken_at', 'timestamptz')
        .addPrimaryKeyConstraint('detection_alert_handoff_pk', ['tenant', 'alert_id'])
        .execute();
    },
  },
};

export type DetectionLiveTables = {
  detection_rule: {
    id: string;
    name: string;
    version: number;
    enabled: boolean;
    body: unknown;
    owner_org: string;
    created_by: string;
    tlp: string;
    pap: string | null;
    audience: unknown;
    read_keys: string[];
    incarnation: string;
    suspended_reason: string | null;
    created_at: Date;
    updated_at: Date;
  };
  detection_rule_version: {
    rule_id: string;
    version: number;
    body: unknown;
    author: string;
    at: Date;
    change: 'created' | 'updated' | 'restored';
    restored_from: number | null;
  };
  detection_checkpoint: {
    partition: number;
    partitions: number;
    state: unknown;
    updated_at: Date;
  };
  detection_partition_lease: {
    partition: number;
    holder: string;
    expires_at: Date;
  };
  detection_member: {
    holder: string;
    expires_at: Date;
  };
  detection_alert_handoff: {
    alert_id: string;
    tenant: string;
    owner_org: string;
    promoted_by: string;
    note: string;
    at: Date;
    taken_at: Date | null;
  };
};
