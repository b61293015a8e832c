import { sql } from 'kysely';
import type { Migration } from 'kysely/migration';

/** Live changes of the road network (closures, slow-downs): kept so every instance and every restart applies them. */
export const routingLiveMigrations: Record<string, Migration> = {
  routing_live_0001_changes: {
    async up(db) {
      await db.schema
        .createTable('routing_live_change')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('closure', 'slowdown')`))
        .addColumn('geometry', 'jsonb', (c) => c.notNull())
        .addColumn('factor', 'double precision', (c) => c.notNull())
        .addColumn('radius_m', 'double precision')
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text')
        .addColumn('owner_org', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz')
        .addColumn('lifted_at', 'timestamptz')
        .execute();
      await sql`create index routing_live_change_active on routing_live_change (lifted_at, expires_at)`.execute(
        db,
      );
      await sql`create unique index routing_live_change_source on routing_live_change (source) where lifted_at is null and source <> 'api'`.execute(
        db,
      );
    },
  },
};

export type RoutingLiveTables = {
  routing_live_change: {
    id: string;
    kind: 'closure' | 'slowdown';
    geometry: unknown;
    factor: number;
    radius_m: number | null;
    reason: string;
    /** 'api' for an operator's drawing; `entity:<id>` for a change derived from a context entity. */
    source: string;
    created_by: string | null;
    owner_org: string | null;
    created_at: Date;
    expires_at: Date | null;
    lifted_at: Date | null;
  };
};
