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
  routing_live_0002_marked: {
    /**
     * Closures and slow-downs become marked objects of the sharing gate (kinds `closure` and `slowdown`):
     * each row keeps its owner, creator, marking, read keys and incarnation (a copy of its registry row),
     * and a derived one the incarnation of its source.
     *
     * Active changes of an existing deployment are marked once, here:
     * - derived from an entity that still exists: the entity's owner, creator, marking, read keys and
     *   incarnation (the entity's own row keeps a copy of its registry entry, `context_0004` runs before);
     * - drawn by an operator: TLP:GREEN for the community `all`, i.e. what every user saw before, owned by
     *   the operator's organisation;
     * - anything else (the entity is gone, no owner): lifted.
     * Lifted rows are history only and get a marking nobody reads with.
     */
    async up(db) {
      await sql`alter table routing_live_change
        add column tlp text,
        add column pap text,
        add column audience jsonb,
        add column read_keys text[],
        add column incarnation text,
        add column source_incarnation text`.execute(db);
      const entities = await sql<{
        t: string | null;
      }>`select to_regclass('context_entity')::text as t`.execute(db);
      if (entities.rows[0]?.t) {
        // A one-off upgrade: from now on a derived change learns its source's marking from the source's events.
        await sql`update routing_live_change c set
            owner_org = e.owner_org,
            created_by = e.created_by,
            tlp = e.marking->>'tlp',
            pap = e.marking->>'pap',
            audience = e.marking->'audience',
            read_keys = e.read_keys,
            source_incarnation = e.incarnation
          from context_entity e
          where c.lifted_at is null and c.source = 'entity:' || e.tenant || ':' || e.id`.execute(db);
      }
      await sql`update routing_live_change set
          tlp = 'GREEN',
          audience = '{"orgs":[],"communities":["all"],"users":[]}'::jsonb,
          read_keys = array['community:all', 'org:' || owner_org]
        where lifted_at is null and source = 'api' and owner_org is not null`.execute(db);
      await sql`update routing_live_change set lifted_at = now() where lifted_at is null and tlp is null`.execute(
        db,
      );
      await sql`update routing_live_change set
          tlp = 'RED',
          audience = '{"orgs":[],"communities":[],"users":[]}'::jsonb,
          read_keys = '{}'
        where tlp is null`.execute(db);
      await sql`update routing_live_change set
          incarnation = gen_random_uuid()::text,
          owner_org = coalesce(owner_org, ''),
          created_by = coalesce(created_by, '')`.execute(db);
      await sql`alter table routing_live_change
        alter column tlp set not null,
        alter column audience set not null,
        alter column read_keys set not null,
        alter column incarnation set not null,
        alter column owner_org set not null,
        alter column created_by set not null`.execute(db);
      await sql`insert into shared_object
          (kind, scope, id, incarnation, owner_org, created_by, tlp, pap, audience, read_keys, created_at, updated_at)
        select kind, '', id, incarnation, owner_org, created_by, tlp, pap, audience, read_keys, created_at, now()
        from routing_live_change where lifted_at is null
        on conflict do nothing`.execute(db);
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
    /** 'api' for an operator's drawing; `entity:<tenant>:<id>` for a change derived from a context entity. */
    source: string;
    /** The source's incarnation for a derived change (its entity's, at the sharing gate); null for 'api'. */
    source_incarnation: string | null;
    created_by: string;
    owner_org: string;
    tlp: string;
    pap: string | null;
    audience: unknown;
    /** A copy of the registry row's read keys, written in the same transaction (lists filter on it). */
    read_keys: string[];
    /** The change's incarnation at the sharing gate. */
    incarnation: string;
    created_at: Date;
    expires_at: Date | null;
    lifted_at: Date | null;
  };
};
