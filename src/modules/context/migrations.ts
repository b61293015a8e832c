/**
 * The context module's tables (same SQL on PGlite and PostgreSQL; no PostGIS):
 * - context_tenant: the NGSI-LD tenants that exist (the default tenant '' always exists);
 * - context_entity: one row per entity, the expanded normalized entity as jsonb, its marking and the
 *   read keys the visibility filter meets with `read_keys && $principalKeys` (GIN);
 * - context_entity_geo: one row per GeoProperty value with its bounding box in a core PostgreSQL `box`
 *   column under a GiST index (core PostgreSQL, available in PGlite), the prefilter of geo-queries.
 */
import { sql } from 'kysely';
import type { Migration } from 'kysely/migration';

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
};
