/**
 * The context module's tables (same SQL on PGlite and PostgreSQL; no PostGIS):
 * - context_tenant: the NGSI-LD tenants that exist (the default tenant '' always exists);
 * - context_entity: one row per entity, the expanded normalized entity as jsonb, its marking and the
 *   read keys the visibility filter meets with `read_keys && $principalKeys` (GIN);
 * - context_entity_geo: one row per GeoProperty value with its bounding box in a core PostgreSQL `box`
 *   column under a GiST index (core PostgreSQL, available in PGlite), the prefilter of geo-queries;
 * - context_entity_value: the attribute value index of `q` (attribute-values.ts, decision record 0007): one
 *   row per scalar a comparison can meet, with its entity's read keys and types, under B-tree indexes by
 *   number or time and by string;
 * - context_jsonld: the @contexts the broker hosts.
 * Every entity and hosted @context also has its row in the sharing gate's registry (`shared_object`, kinds
 * `entity` with the tenant as scope, and `jsonld-context`), written in the same transaction as its own row;
 * context_entity keeps a copy of the entity's marking, read keys and incarnation.
 */
import { sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { backfillAttributeValues } from './attribute-values.ts';

export const contextMigrations: Record<string, Migration> = {
  context_0001_entities: {
    async up(db) {
      await sql`create table context_tenant (
        name text primary key,
        created_at timestamptz not null default now()
      )`.execute(db);
      await sql`create table context_entity (
        tenant text not null,
        id text not null,
        types text[] not null,
        scopes text[],
        entity jsonb not null,
        created_at timestamptz not null,
        modified_at timestamptz not null,
        owner_org text not null,
        created_by text not null,
        marking jsonb not null,
        read_keys text[] not null,
        primary key (tenant, id)
      )`.execute(db);
      await sql`create index context_entity_read_keys_idx on context_entity using gin (read_keys)`.execute(
        db,
      );
      await sql`create index context_entity_types_idx on context_entity using gin (types)`.execute(db);
      await sql`create table context_entity_geo (
        tenant text not null,
        entity_id text not null,
        attr text not null,
        dataset_id text not null default '',
        bb box not null,
        primary key (tenant, entity_id, attr, dataset_id)
      )`.execute(db);
      await sql`create index context_entity_geo_bb_idx on context_entity_geo using gist (bb)`.execute(db);
    },
    async down(db) {
      await sql`drop table if exists context_entity_geo`.execute(db);
      await sql`drop table if exists context_entity`.execute(db);
      await sql`drop table if exists context_tenant`.execute(db);
    },
  },
  context_0002_geo_geometry: {
    // The in-memory geo index loads geometries from here instead of from whole entities.
    async up(db) {
      await sql`alter table context_entity_geo add column geometry jsonb`.execute(db);
    },
    async down(db) {
      await sql`alter table context_entity_geo drop column geometry`.execute(db);
    },
  },
  context_0003_hosted_contexts: {
    // @contexts the broker hosts for clients (NGSI-LD @context API, POST /jsonldContexts).
    async up(db) {
      await sql`create table context_jsonld (
        id text primary key,
        body jsonb not null,
        owner_org text not null,
        created_by text not null,
        created_at timestamptz not null default now()
      )`.execute(db);
    },
    async down(db) {
      await sql`drop table if exists context_jsonld`.execute(db);
    },
  },
  context_0004_register_entities: {
    // Entities and hosted @contexts go through the sharing gate (decision record 0004): the ones that
    // exist get their registry rows, each entity a new incarnation, which its own row keeps a copy of.
    async up(db) {
      await sql`alter table context_entity add column incarnation text`.execute(db);
      await sql`insert into shared_object (kind, scope, id, incarnation, owner_org, created_by, tlp, pap, audience,
          read_keys, created_at, updated_at)
        select 'entity', e.tenant, e.id, gen_random_uuid()::text, e.owner_org, e.created_by, e.marking->>'tlp',
          e.marking->>'pap', coalesce(e.marking->'audience', '{"orgs":[],"communities":[],"users":[]}'::jsonb),
          e.read_keys, e.created_at, e.modified_at
        from context_entity e
        on conflict (kind, scope, id) do nothing`.execute(db);
      await sql`update context_entity e set incarnation = s.incarnation from shared_object s
        where s.kind = 'entity' and s.scope = e.tenant and s.id = e.id`.execute(db);
      await sql`alter table context_entity alter column incarnation set not null`.execute(db);
      await sql`insert into shared_object (kind, scope, id, incarnation, owner_org, created_by, tlp, pap, audience,
          read_keys, created_at, updated_at)
        select 'jsonld-context', '', c.id, gen_random_uuid()::text, c.owner_org, c.created_by, 'CLEAR', null,
          '{"orgs":[],"communities":[],"users":[]}'::jsonb, array['public'], c.created_at, c.created_at
        from context_jsonld c
        on conflict (kind, scope, id) do nothing`.execute(db);
    },
    async down(db) {
      await sql`delete from shared_object where kind in ('entity', 'jsonld-context')`.execute(db);
      await sql`alter table context_entity drop column incarnation`.execute(db);
    },
  },
  context_0006_entity_updates_in_place: {
    // IoT ingestion rewrites every entity's row several times a second (docs/benchmarks.md, "Writes keep up
    // with a city"). Room left in each page lets PostgreSQL update a row on its own page without touching
    // its indexes when types and read keys stay the same (a HOT update: the GIN indexes are the costly
    // part), and lz4 compresses the 2-3 kB entity documents several times faster than pglz. PGlite is
    // built without lz4 (feature_not_supported): it keeps pglz. The fill factor applies to pages written
    // from now on.
    async up(db) {
      await sql`alter table context_entity set (fillfactor = 70)`.execute(db);
      await sql`do $$ begin
          alter table context_entity alter column entity set compression lz4;
        exception when feature_not_supported then null;
        end $$`.execute(db);
    },
    async down(db) {
      await sql`alter table context_entity reset (fillfactor)`.execute(db);
      await sql`alter table context_entity alter column entity set compression default`.execute(db);
    },
  },
  context_0007_attribute_values: {
    // The attribute value index of q (decision record 0007), filled from the entities that exist.
    async up(db) {
      await sql`create table context_entity_value (
        tenant text not null,
        entity_id text not null,
        attr text not null,
        kind text not null,
        num double precision,
        str text collate "C",
        read_keys text[] not null,
        types text[] not null
      )`.execute(db);
      await sql`create index context_entity_value_entity_idx on context_entity_value (tenant, entity_id, attr)`.execute(
        db,
      );
      await sql`create index context_entity_value_num_idx on context_entity_value (tenant, attr, kind, num)`.execute(
        db,
      );
      await sql`create index context_entity_value_str_idx on context_entity_value (tenant, attr, str)
        where kind = 's' and str is not null`.execute(db);
      await backfillAttributeValues(db);
    },
    async down(db) {
      await sql`drop table if exists context_entity_value`.execute(db);
    },
  },
};
