/**
 * Every SQL statement of the context module. Functions take a Kysely handle (the store's db or a
 * transaction) so the service decides the transaction boundaries.
 */
import { type RawBuilder, sql } from 'kysely';
import type { AnyDb } from '../../ports/store.ts';
import type { Marking } from '../sharing/index.ts';
import { deleteAttributeValues } from './attribute-values.ts';
import { type ExpandedEntity, instancesOf } from './entity-model.ts';
import { type BBox, bbox, validateGeometry } from './geometry.ts';
import { likePrefixPattern } from './user-pattern.ts';

export interface EntityRecord {
  tenant: string;
  id: string;
  entity: ExpandedEntity;
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
  readKeys: string[];
  /** The registry's incarnation of the entity (a new one each time its id is created again). */
  incarnation: string;
}

export interface EntityFilter {
  tenant: string;
  readKeys: string[];
  ids?: string[] | undefined;
  /**
   * A literal the id starts with: the SQL prefilter of an idPattern (the pattern itself runs in memory,
   * see user-pattern.ts; user patterns never reach SQL's `~`).
   */
  idPrefix?: string | undefined;
  /** OR of AND-groups of expanded types. */
  typeGroups?: string[][] | undefined;
  /** The entity has at least one of these attributes (expanded). */
  attrsAny?: string[] | undefined;
  /** The entity has this GeoProperty, with a value whose bounding box meets `box` (when given). */
  geo?: { attr: string; box: BBox | null } | undefined;
  /** A further condition on `e` (the q prefilter). */
  where?: RawBuilder<unknown> | undefined;
  /** A condition on `e` served by the attribute value index (query-index.ts), beside visibility. */
  indexed?: RawBuilder<unknown> | undefined;
}

interface EntityRow {
  tenant: string;
  id: string;
  entity: ExpandedEntity | string;
  owner_org: string;
  created_by: string;
  marking: Marking | string;
  read_keys: string[];
  incarnation: string;
}

const parseJson = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

function toRecord(r: EntityRow): EntityRecord {
  return {
    tenant: r.tenant,
    id: r.id,
    entity: parseJson(r.entity),
    ownerOrg: r.owner_org,
    createdBy: r.created_by,
    marking: parseJson(r.marking),
    readKeys: r.read_keys,
    incarnation: r.incarnation,
  };
}

const textArray = (a: string[]): RawBuilder<unknown> => sql`${sql.val(a)}::text[]`;

/** The caller's visibility: the read keys meet. */
const visibleTo = (readKeys: string[]): RawBuilder<unknown> => sql`e.read_keys && ${textArray(readKeys)}`;

/**
 * Selectors served by indexes (tenant, ids, types, geo box, attribute values) stand beside visibility: an
 * invisible entity they select costs one visibility test, as one of another type does. Conditions on an
 * entity's content chosen by the caller (id prefix, attrs, the q prefilter) sit inside `case when visible`,
 * which PostgreSQL evaluates in order: they never run on a row the caller cannot see, so their cost cannot
 * tell anything about such rows.
 */
function whereClause(f: EntityFilter): RawBuilder<unknown> {
  const visible = visibleTo(f.readKeys);
  const parts: RawBuilder<unknown>[] = [sql`e.tenant = ${f.tenant}`, visible];
  if (f.ids && f.ids.length > 0) parts.push(sql`e.id = any(${textArray(f.ids)})`);
  if (f.typeGroups && f.typeGroups.length > 0) {
    const ors = f.typeGroups.map((g) => sql`e.types @> ${textArray(g)}`);
    parts.push(sql`(${sql.join(ors, sql` or `)})`);
  }
  if (f.geo) {
    const b = f.geo.box;
    const boxCond = b
      ? sql` and g.bb && box(point(${b.minX}, ${b.minY}), point(${b.maxX}, ${b.maxY}))`
      : sql``;
    parts.push(
      sql`e.id in (select g.entity_id from context_entity_geo g where g.tenant = ${f.tenant} and g.attr = ${f.geo.attr}${boxCond})`,
    );
  }
  if (f.indexed) parts.push(f.indexed);
  const content: RawBuilder<unknown>[] = [];
  if (f.idPrefix) content.push(sql`e.id like ${likePrefixPattern(f.idPrefix)}`);
  if (f.attrsAny && f.attrsAny.length > 0) content.push(sql`e.entity ?| ${textArray(f.attrsAny)}`);
  if (f.where) content.push(f.where);
  if (content.length > 0) {
    parts.push(sql`(case when ${visible} then ${sql.join(content, sql` and `)} else false end)`);
  }
  return sql.join(parts, sql` and `);
}

const COLUMNS = sql`e.tenant, e.id, e.entity, e.owner_org, e.created_by, e.marking, e.read_keys, e.incarnation`;

export async function findEntities(
  db: AnyDb,
  f: EntityFilter,
  page?: { limit: number; offset: number },
): Promise<EntityRecord[]> {
  const paging = page ? sql` limit ${page.limit} offset ${page.offset}` : sql``;
  const r =
    await sql<EntityRow>`select ${COLUMNS} from context_entity e where ${whereClause(f)} order by e.id${paging}`.execute(
      db,
    );
  return r.rows.map(toRecord);
}

/** The ids of the entities the filter selects, in id order, at most `limit`. */
export async function findEntityIds(db: AnyDb, f: EntityFilter, limit: number): Promise<string[]> {
  const r = await sql<{
    id: string;
  }>`select e.id from context_entity e where ${whereClause(f)} order by e.id limit ${limit}`.execute(db);
  return r.rows.map((x) => x.id);
}

/**
 * A page of the distinct ids a select yields (attribute value index: query-index.ts), in id order, and how
 * many there are (at most `max`), in one pass.
 */
export async function pageOfIds(
  db: AnyDb,
  ids: RawBuilder<unknown>,
  page: { limit: number; offset: number; max: number },
): Promise<{ ids: string[]; total: number }> {
  const r = await sql<{ total: string | number; ids: string[] }>`
    with m as materialized (select distinct s.id from (${ids}) as s(id) limit ${page.max})
    select (select count(*) from m) as total,
      array(select id from m order by id limit ${page.limit} offset ${page.offset}) as ids`.execute(db);
  const row = r.rows[0];
  return { ids: row?.ids ?? [], total: Number(row?.total ?? 0) };
}

export async function countEntities(db: AnyDb, f: EntityFilter): Promise<number> {
  const r = await sql<{
    n: string | number;
  }>`select count(*) as n from context_entity e where ${whereClause(f)}`.execute(db);
  return Number(r.rows[0]?.n ?? 0);
}

/** Rows by id regardless of visibility (the service decides what the caller learns). */
export async function getEntities(
  db: AnyDb,
  tenant: string,
  ids: string[],
  forUpdate = false,
): Promise<EntityRecord[]> {
  if (ids.length === 0) return [];
  // Locks are taken in id order, so concurrent batches over the same entities cannot deadlock.
  const lock = forUpdate ? sql` order by e.id for update` : sql``;
  const r =
    await sql<EntityRow>`select ${COLUMNS} from context_entity e where e.tenant = ${tenant} and e.id = any(${textArray(ids)})${lock}`.execute(
      db,
    );
  return r.rows.map(toRecord);
}

/**
 * Writes whole entities and refreshes their geo rows. `created` ones are inserted (a concurrent creation
 * of the same id fails with a unique violation, which the service retries); the others update rows the
 * transaction has locked. Each kind is one statement per chunk whose rows travel as one JSON parameter
 * (`jsonb_to_recordset`): a thousand rows are one serialisation in Node and one parse in PostgreSQL
 * instead of twelve thousand bound parameters.
 */
export async function writeEntities(
  db: AnyDb,
  records: EntityRecord[],
  created: Set<string>,
  /** Ids whose GeoProperty values changed (and new ids); only their geo rows are rewritten. */
  geoChanged: Set<string> = new Set(records.map((r) => r.id)),
): Promise<void> {
  if (records.length === 0) return;
  // New ids take their unique-index entries in id order too (see getEntities).
  const ordered = [...records].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (let i = 0; i < ordered.length; i += WRITE_CHUNK) {
    const chunk = ordered.slice(i, i + WRITE_CHUNK);
    const inserts = chunk.filter((r) => created.has(r.id));
    const updates = chunk.filter((r) => !created.has(r.id));
    if (inserts.length > 0) {
      await sql`insert into context_entity (tenant, id, types, scopes, entity, created_at, modified_at, owner_org, created_by, marking, read_keys, incarnation)
        select v.tenant, v.id, v.types, v.scopes, v.entity, v.created_at, v.modified_at, v.owner_org, v.created_by, v.marking, v.read_keys, v.incarnation
        from rows from (jsonb_to_recordset(${entityRows(inserts)}::jsonb) as (${ROW_TYPE})) with ordinality
          as v(${ROW_NAMES}, n)
        order by v.n`.execute(db);
    }
    if (updates.length > 0) {
      // Only the columns a write changes: owner, creator and incarnation stay. Rows whose types and read
      // keys are unchanged are updated in place (HOT, see migration context_0006).
      await sql`update context_entity e set types = v.types, scopes = v.scopes, entity = v.entity,
          modified_at = v.modified_at, marking = v.marking, read_keys = v.read_keys
        from jsonb_to_recordset(${entityRows(updates)}::jsonb) as v(${ROW_TYPE})
        where e.tenant = v.tenant and e.id = v.id`.execute(db);
    }
    const geo = chunk.filter((r) => geoChanged.has(r.id));
    if (geo.length > 0) await writeGeo(db, geo);
  }
}

/** Rows per statement of writeEntities. */
const WRITE_CHUNK = 1000;

/** The columns of `entityRows`, as `jsonb_to_recordset` reads them. */
const ROW_TYPE = sql`tenant text, id text, types text[], scopes text[], entity jsonb, created_at timestamptz,
  modified_at timestamptz, owner_org text, created_by text, marking jsonb, read_keys text[], incarnation text`;
const ROW_NAMES = sql`tenant, id, types, scopes, entity, created_at, modified_at, owner_org, created_by, marking,
  read_keys, incarnation`;

/** Records as the JSON text of `jsonb_to_recordset` (columns as in ROW_TYPE). */
function entityRows(records: EntityRecord[]): string {
  const now = new Date().toISOString();
  const rows = records.map((r) => ({
    tenant: r.tenant,
    id: r.id,
    types: r.entity.type,
    scopes: r.entity.scope ?? null,
    entity: r.entity,
    created_at: r.entity.createdAt ?? now,
    modified_at: r.entity.modifiedAt ?? now,
    owner_org: r.ownerOrg,
    created_by: r.createdBy,
    marking: r.marking,
    read_keys: r.readKeys,
    incarnation: r.incarnation,
  }));
  return JSON.stringify(rows);
}

/** A fingerprint of an entity's GeoProperty values (to skip rewriting unchanged geo rows). */
export function geoFingerprint(e: ExpandedEntity): string {
  const parts: string[] = [];
  for (const [attr, v] of Object.entries(e)) {
    for (const inst of instancesOf(v)) {
      if (inst !== null && typeof inst === 'object' && inst.type === 'GeoProperty') {
        parts.push(`${attr}\u0000${inst.datasetId ?? ''}\u0000${JSON.stringify(inst.value)}`);
      }
    }
  }
  return parts.sort().join('\u0001');
}

async function writeGeo(db: AnyDb, records: EntityRecord[]): Promise<void> {
  const tenant = records[0]!.tenant;
  await sql`delete from context_entity_geo where tenant = ${tenant} and entity_id = any(${textArray(records.map((r) => r.id))})`.execute(
    db,
  );
  const rows: RawBuilder<unknown>[] = [];
  for (const r of records) {
    for (const [attr, v] of Object.entries(r.entity)) {
      for (const inst of instancesOf(v)) {
        if (inst === null || typeof inst !== 'object' || inst.type !== 'GeoProperty') continue;
        let b: BBox;
        try {
          b = bbox(validateGeometry(inst.value, 'value', { bounds: false }));
        } catch {
          continue;
        }
        rows.push(
          sql`(${r.tenant}, ${r.id}, ${attr}, ${inst.datasetId ?? ''}, box(point(${b.minX}, ${b.minY}), point(${b.maxX}, ${b.maxY})), ${JSON.stringify(inst.value)}::jsonb)`,
        );
      }
    }
  }
  for (let i = 0; i < rows.length; i += 1000) {
    await sql`insert into context_entity_geo (tenant, entity_id, attr, dataset_id, bb, geometry) values ${sql.join(rows.slice(i, i + 1000))}
      on conflict do nothing`.execute(db);
  }
}

export async function deleteEntities(db: AnyDb, tenant: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`delete from context_entity where tenant = ${tenant} and id = any(${textArray(ids)})`.execute(db);
  await sql`delete from context_entity_geo where tenant = ${tenant} and entity_id = any(${textArray(ids)})`.execute(
    db,
  );
  await deleteAttributeValues(db, tenant, ids);
}

export async function tenantExists(db: AnyDb, tenant: string): Promise<boolean> {
  if (tenant === '') return true;
  const r = await sql<{ name: string }>`select name from context_tenant where name = ${tenant}`.execute(db);
  return r.rows.length > 0;
}

export async function ensureTenant(db: AnyDb, tenant: string): Promise<void> {
  if (tenant === '') return;
  await sql`insert into context_tenant (name) values (${tenant}) on conflict do nothing`.execute(db);
}

/** Visible entity types with how many entities have each. */
export async function typeCounts(
  db: AnyDb,
  tenant: string,
  readKeys: string[],
): Promise<Map<string, number>> {
  const r = await sql<{
    t: string;
    n: string | number;
  }>`select t, count(*) as n from context_entity e, unnest(e.types) as t
    where e.tenant = ${tenant} and e.read_keys && ${textArray(readKeys)} group by t order by t`.execute(db);
  return new Map(r.rows.map((x) => [x.t, Number(x.n)]));
}

/** Visible attribute names per type: rows (type, attribute, count, attribute types). */
export async function attributeStats(
  db: AnyDb,
  tenant: string,
  readKeys: string[],
): Promise<{ type: string; attr: string; n: number; attrTypes: string[] }[]> {
  const r = await sql<{ t: string; a: string; n: string | number; k: string[] }>`
    select t, a.key as a, count(*) as n,
      array_agg(distinct coalesce(case when jsonb_typeof(a.value) = 'array' then a.value->0->>'type' else a.value->>'type' end, 'Property')) as k
    from context_entity e, unnest(e.types) as t, jsonb_each(e.entity) as a
    where e.tenant = ${tenant} and e.read_keys && ${textArray(readKeys)}
      and a.key not in ('id', 'type', 'scope', 'createdAt', 'modifiedAt', 'deletedAt')
    group by t, a.key order by t, a.key`.execute(db);
  return r.rows.map((x) => ({ type: x.t, attr: x.a, n: Number(x.n), attrTypes: x.k }));
}

/**
 * Visible entities by id, in the order of `ids` (absent or invisible ones are skipped). Visibility is
 * tested in SQL, so an invisible row is never sent, parsed or timed, but inside `case` so that the lookup
 * always goes by primary key whatever the planner's statistics say (PGlite has no autovacuum): the read
 * keys' index cannot serve a `case`.
 */
export async function getVisibleEntities(
  db: AnyDb,
  tenant: string,
  ids: string[],
  readKeys: string[],
): Promise<EntityRecord[]> {
  if (ids.length === 0) return [];
  const r = await sql<EntityRow>`select ${COLUMNS} from context_entity e
    where e.tenant = ${tenant} and e.id = any(${textArray(ids)})
      and (case when ${visibleTo(readKeys)} then true else false end)`.execute(db);
  const byId = new Map<string, EntityRecord>();
  for (const row of r.rows) byId.set(row.id, toRecord(row));
  return ids.map((id) => byId.get(id)).filter((x): x is EntityRecord => x !== undefined);
}

/** Refreshes the planner's statistics of the module's tables. */
export async function analyzeTables(db: AnyDb): Promise<void> {
  await sql`analyze context_entity`.execute(db);
  await sql`analyze context_entity_geo`.execute(db);
  await sql`analyze context_entity_value`.execute(db);
}

export interface GeoRow {
  id: string;
  types: string[];
  readKeys: string[];
  modifiedAt: string;
  attr: string;
  geometry: unknown;
}

/** Every GeoProperty value of a tenant with its entity's types, read keys and modification time. */
export async function loadGeoRows(db: AnyDb, tenant: string): Promise<GeoRow[]> {
  const r = await sql<{
    id: string;
    types: string[];
    read_keys: string[];
    modified: string;
    attr: string;
    geometry: unknown;
  }>`select g.entity_id as id, e.types, e.read_keys, e.entity->>'modifiedAt' as modified, g.attr, g.geometry
    from context_entity_geo g join context_entity e on e.tenant = g.tenant and e.id = g.entity_id
    where g.tenant = ${tenant} and g.geometry is not null`.execute(db);
  return r.rows.map((x) => ({
    id: x.id,
    types: x.types,
    readKeys: x.read_keys,
    modifiedAt: x.modified,
    attr: x.attr,
    geometry: typeof x.geometry === 'string' ? JSON.parse(x.geometry) : x.geometry,
  }));
}

export interface HostedContextRow {
  id: string;
  body: unknown;
  ownerOrg: string;
  createdBy: string;
  createdAt: string;
}

export async function insertHostedContext(
  db: AnyDb,
  row: Omit<HostedContextRow, 'createdAt'>,
): Promise<void> {
  await sql`insert into context_jsonld (id, body, owner_org, created_by)
    values (${row.id}, ${JSON.stringify(row.body)}::jsonb, ${row.ownerOrg}, ${row.createdBy})`.execute(db);
}

export async function getHostedContext(
  db: AnyDb,
  id: string,
  opts: { forUpdate?: boolean } = {},
): Promise<HostedContextRow | undefined> {
  const r = await sql<{
    id: string;
    body: unknown;
    owner_org: string;
    created_by: string;
    created_at: Date | string;
  }>`
    select id, body, owner_org, created_by, created_at from context_jsonld where id = ${id}${opts.forUpdate ? sql` for update` : sql``}`.execute(
    db,
  );
  const x = r.rows[0];
  if (!x) return undefined;
  return {
    id: x.id,
    body: typeof x.body === 'string' ? JSON.parse(x.body) : x.body,
    ownerOrg: x.owner_org,
    createdBy: x.created_by,
    createdAt: new Date(x.created_at).toISOString(),
  };
}

export async function listHostedContexts(db: AnyDb): Promise<Omit<HostedContextRow, 'body'>[]> {
  const r = await sql<{ id: string; owner_org: string; created_by: string; created_at: Date | string }>`
    select id, owner_org, created_by, created_at from context_jsonld order by created_at, id`.execute(db);
  return r.rows.map((x) => ({
    id: x.id,
    ownerOrg: x.owner_org,
    createdBy: x.created_by,
    createdAt: new Date(x.created_at).toISOString(),
  }));
}

export async function deleteHostedContext(db: AnyDb, id: string): Promise<void> {
  await sql`delete from context_jsonld where id = ${id}`.execute(db);
}
