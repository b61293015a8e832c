/**
 * The read paths of the NGSI-LD broker: one entity, queries (type, ids, idPattern, attrs, q, scopeQ,
 * geo-queries, paging, count) and discovery (types, attributes), always within the caller's visibility —
 * the read keys are a condition of every SQL statement and of every walk over the geo index, so an
 * invisible entity answers exactly like an absent one.
 */
import { type RawBuilder, sql } from 'kysely';
import { AppError } from '../../kernel/errors.ts';
import type { Store } from '../../ports/store.ts';
import { checkEntityId, type ExpandedEntity, MARKING_TERM } from './entity-model.ts';
import {
  attributeStats,
  countEntities,
  type EntityFilter,
  findEntities,
  getVisibleEntities,
  tenantExists,
  typeCounts,
} from './entity-repository.ts';
import { badRequest, type Caller, type EntityView, notFound, view } from './entity-view.ts';
import {
  type GeoQuery,
  type GeoQueryInput,
  geoDistance,
  geometryMatches,
  matchesGeoQuery,
  parseGeoQuery,
} from './geo-query.ts';
import { distanceToGeometry } from './geometry.ts';
import type { ActiveContext } from './json-ld-context.ts';
import type { QueryNode } from './query-language.ts';
import {
  matchesQuery,
  matchesScopeQuery,
  parseQuery,
  parseScopeQuery,
  unsafeRegexReason,
} from './query-language.ts';
import { qPrefilter } from './query-prefilter.ts';
import type { TenantGeoIndexes } from './tenant-geo-indexes.ts';

export interface EntityQuery {
  /** Type expression: `A,B` or `A|B` (or), `A;B` (and); terms are expanded with the context. */
  type?: string | undefined;
  ids?: string[] | undefined;
  idPattern?: string | undefined;
  /** Attribute terms: entities with at least one of them, and only them in the answer. */
  attrs?: string[] | undefined;
  q?: string | undefined;
  scopeQ?: string | undefined;
  geo?: GeoQueryInput | undefined;
  limit?: number | undefined;
  offset?: number | undefined;
  count?: boolean | undefined;
  /** Allows a query without any filter (NGSI-LD `local=true`). */
  local?: boolean | undefined;
}

export interface QueryResult {
  items: EntityView[];
  count?: number;
}

export interface EntityQueriesOptions {
  store: Store;
  geoIndexes: TenantGeoIndexes;
  /** Page size when `limit` is absent (default 20) and the largest allowed (default 1000). */
  defaultLimit?: number | undefined;
  maxLimit?: number | undefined;
  /** Most candidate rows a query may evaluate in memory (q, scopeQ, exact geometry) (default 200,000). */
  maxScan?: number | undefined;
  /** Answer geo-queries from the in-memory index (default true); false answers them in SQL only. */
  memoryGeoIndex?: boolean | undefined;
}

export class EntityQueries {
  readonly #o: EntityQueriesOptions;

  constructor(options: EntityQueriesOptions) {
    this.#o = options;
  }

  async getEntity(caller: Caller, id: string): Promise<EntityView> {
    checkEntityId(id);
    await this.#requireTenant(caller.tenant);
    const [rec] = await getVisibleEntities(this.#o.store.db, caller.tenant, [id], caller.readKeys);
    if (!rec) throw notFound(id);
    return view(rec);
  }

  async queryEntities(caller: Caller, query: EntityQuery, ctx: ActiveContext): Promise<QueryResult> {
    const limit = query.limit ?? this.#o.defaultLimit ?? 20;
    const offset = query.offset ?? 0;
    const maxLimit = this.#o.maxLimit ?? 1000;
    if (!Number.isInteger(limit) || limit < 0) throw badRequest('limit must be a whole number ≥ 0');
    if (limit === 0 && !query.count) throw badRequest('limit=0 is allowed only with count=true');
    if (limit > maxLimit) {
      throw new AppError(
        'CONTEXT_TOO_MANY_RESULTS',
        `limit ${limit} is above the maximum page size ${maxLimit}`,
      );
    }
    if (!Number.isInteger(offset) || offset < 0) throw badRequest('offset must be a whole number ≥ 0');
    const hasFilter =
      query.type ||
      (query.ids && query.ids.length > 0) ||
      query.idPattern ||
      query.attrs?.length ||
      query.q ||
      query.scopeQ ||
      query.geo;
    if (!hasFilter && !query.local) {
      throw badRequest(
        'a query needs at least one of type, id, idPattern, attrs, q, scopeQ or a geo-query (or local=true)',
      );
    }
    const ast = query.q ? parseQuery(query.q, ctx.expandTerm) : undefined;
    const scope = query.scopeQ ? parseScopeQuery(query.scopeQ) : undefined;
    const geo: GeoQuery | undefined = query.geo ? parseGeoQuery(query.geo, ctx.expandTerm) : undefined;
    if (query.idPattern) checkPattern(query.idPattern);
    for (const id of query.ids ?? []) checkEntityId(id);
    if (!(await tenantExists(this.#o.store.db, caller.tenant))) {
      throw new AppError('CONTEXT_TENANT_NOT_FOUND', `tenant "${caller.tenant}" does not exist`);
    }
    const filter: EntityFilter = {
      tenant: caller.tenant,
      readKeys: caller.readKeys,
      ids: query.ids,
      idPattern: query.idPattern,
      typeGroups: query.type ? parseTypeExpression(query.type, ctx) : undefined,
      attrsAny: attrFilter(query.attrs, ctx),
      geo: geo ? { attr: geo.geoproperty, box: geo.searchBox } : undefined,
      where: prefilter(ast, scope !== undefined),
    };
    const db = this.#o.store.db;
    if (geo && this.#o.memoryGeoIndex !== false) {
      return this.#queryByGeoIndex(caller, filter, geo, {
        ast,
        scope,
        limit,
        offset,
        count: query.count === true,
      });
    }
    if (!ast && !scope && !geo) {
      const items = limit === 0 ? [] : await findEntities(db, filter, { limit, offset });
      const result: QueryResult = { items: items.map(view) };
      if (query.count) result.count = await countEntities(db, filter);
      return result;
    }
    const maxScan = this.#o.maxScan ?? 200_000;
    let rows = await findEntities(db, filter, { limit: maxScan + 1, offset: 0 });
    if (rows.length > maxScan) {
      throw new AppError(
        'CONTEXT_TOO_MANY_RESULTS',
        `the query would evaluate more than ${maxScan} entities; narrow it by type, id, attrs or geo-query`,
      );
    }
    rows = rows.filter(
      (r) =>
        (!ast || matchesQuery(r.entity, ast)) &&
        (!scope || matchesScopeQuery(r.entity, scope)) &&
        (!geo || matchesGeoQuery(r.entity, geo)),
    );
    if (geo?.georel === 'near') {
      const d = new Map(rows.map((r) => [r.id, geoDistance(r.entity, geo)]));
      rows.sort((a, b) => d.get(a.id)! - d.get(b.id)! || (a.id < b.id ? -1 : 1));
    }
    const result: QueryResult = { items: rows.slice(offset, offset + limit).map(view) };
    if (query.count) result.count = rows.length;
    return result;
  }

  /** Entity types visible to the caller (GET /types). */
  async listTypes(
    caller: Caller,
  ): Promise<{ type: string; count: number; attributes: Map<string, string[]> }[]> {
    await this.#requireTenant(caller.tenant);
    const counts = await typeCounts(this.#o.store.db, caller.tenant, caller.readKeys);
    const stats = await attributeStats(this.#o.store.db, caller.tenant, caller.readKeys);
    return [...counts].map(([type, count]) => {
      const attributes = new Map<string, string[]>();
      for (const s of stats) if (s.type === type) attributes.set(s.attr, s.attrTypes);
      return { type, count, attributes };
    });
  }

  /** Attributes visible to the caller (GET /attributes): name, count, types of entities, attribute types. */
  async listAttributes(
    caller: Caller,
  ): Promise<{ attribute: string; count: number; typeNames: string[]; attributeTypes: string[] }[]> {
    await this.#requireTenant(caller.tenant);
    const stats = await attributeStats(this.#o.store.db, caller.tenant, caller.readKeys);
    const byAttr = new Map<string, { count: number; typeNames: Set<string>; attributeTypes: Set<string> }>();
    for (const s of stats) {
      let a = byAttr.get(s.attr);
      if (!a) {
        a = { count: 0, typeNames: new Set(), attributeTypes: new Set() };
        byAttr.set(s.attr, a);
      }
      a.count += s.n;
      a.typeNames.add(s.type);
      for (const t of s.attrTypes) a.attributeTypes.add(t);
    }
    return [...byAttr]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([attribute, a]) => ({
        attribute,
        count: a.count,
        typeNames: [...a.typeNames].sort(),
        attributeTypes: [...a.attributeTypes].sort(),
      }));
  }

  /** Geo-queries on the in-memory index: only the page's entities are read from the store. */
  async #queryByGeoIndex(
    caller: Caller,
    filter: EntityFilter,
    geo: GeoQuery,
    o: {
      ast: ReturnType<typeof parseQuery> | undefined;
      scope: ReturnType<typeof parseScopeQuery> | undefined;
      limit: number;
      offset: number;
      count: boolean;
    },
  ): Promise<QueryResult> {
    const index = await this.#o.geoIndexes.indexFor(caller.tenant);
    const keys = new Set(caller.readKeys);
    const ids = filter.ids ? new Set(filter.ids) : undefined;
    const pattern = filter.idPattern ? new RegExp(filter.idPattern) : undefined;
    const groups = filter.typeGroups;
    const near = geo.georel === 'near' ? (geo.geometry.coordinates as number[]) : undefined;
    const matched = new Map<string, number>();
    for (const e of index.search(geo.geoproperty, geo.searchBox)) {
      if (ids && !ids.has(e.id)) continue;
      if (pattern && !pattern.test(e.id)) continue;
      if (groups && !groups.some((g) => g.every((t) => e.types.includes(t)))) continue;
      if (!e.readKeys.some((k) => keys.has(k))) continue;
      let d = 0;
      if (near) {
        d = distanceToGeometry(near, e.geometry);
        if (
          (geo.maxDistance !== undefined && d > geo.maxDistance) ||
          (geo.minDistance !== undefined && d < geo.minDistance)
        ) {
          continue;
        }
      } else if (!geometryMatches(e.geometry, geo)) continue;
      const prev = matched.get(e.id);
      if (prev === undefined || d < prev) matched.set(e.id, d);
    }
    const order = (a: string, b: string) => matched.get(a)! - matched.get(b)! || (a < b ? -1 : a > b ? 1 : 0);
    let candidates = [...matched.keys()].sort(near ? order : undefined);
    const db = this.#o.store.db;
    if (o.ast || o.scope || filter.attrsAny) {
      // Filters on attribute values need the entities: read the geo matches, then filter.
      const maxScan = this.#o.maxScan ?? 200_000;
      if (candidates.length > maxScan) {
        throw new AppError(
          'CONTEXT_TOO_MANY_RESULTS',
          `the query would evaluate more than ${maxScan} entities; narrow it by type, id, attrs or geo-query`,
        );
      }
      const attrs = filter.attrsAny;
      const rows = await getVisibleEntities(db, caller.tenant, candidates, caller.readKeys);
      const kept = rows.filter(
        (r) =>
          (!o.ast || matchesQuery(r.entity, o.ast)) &&
          (!o.scope || matchesScopeQuery(r.entity, o.scope)) &&
          (!attrs || attrs.some((a) => a in r.entity)),
      );
      const result: QueryResult = { items: kept.slice(o.offset, o.offset + o.limit).map(view) };
      if (o.count) result.count = kept.length;
      return result;
    }
    const total = candidates.length;
    candidates = candidates.slice(o.offset, o.offset + o.limit);
    const rows = await getVisibleEntities(db, caller.tenant, candidates, caller.readKeys);
    const result: QueryResult = { items: rows.map(view) };
    if (o.count) result.count = total;
    return result;
  }

  /** Visible entities of a tenant matching expanded types, ids or id patterns (for periodic notifications). */
  async findEntities(
    tenant: string,
    selection: { types: string[]; ids: string[]; idPatterns: string[] },
    readKeys: string[],
  ): Promise<ExpandedEntity[]> {
    for (const p of selection.idPatterns) checkPattern(p);
    const filter: EntityFilter = {
      tenant,
      readKeys,
      typeGroups: selection.types.length > 0 ? selection.types.map((t) => [t]) : undefined,
      ids: selection.ids.length > 0 && selection.idPatterns.length === 0 ? selection.ids : undefined,
      idPattern:
        selection.idPatterns.length > 0 ? selection.idPatterns.map((p) => `(${p})`).join('|') : undefined,
    };
    const rows = await findEntities(this.#o.store.db, filter);
    return rows.map((r) => r.entity);
  }

  async #requireTenant(tenant: string): Promise<void> {
    if (!(await tenantExists(this.#o.store.db, tenant))) {
      throw new AppError('CONTEXT_TENANT_NOT_FOUND', `tenant "${tenant}" does not exist`);
    }
  }
}

/** The attributes an entity must have one of (`attrs`); the reserved `marking` is not an attribute. */
function attrFilter(attrs: string[] | undefined, ctx: ActiveContext): string[] | undefined {
  const names = attrs?.filter((a) => a !== MARKING_TERM).map((a) => ctx.expandTerm(a));
  return names && names.length > 0 ? names : undefined;
}

/** The SQL prefilter of q, and of scopeQ (only entities with scopes can match one). */
function prefilter(ast: QueryNode | undefined, hasScopeQuery: boolean): RawBuilder<unknown> | undefined {
  const q = ast ? qPrefilter(ast) : undefined;
  const scope = hasScopeQuery ? sql`e.scopes is not null` : undefined;
  if (q && scope) return sql`(${q} and ${scope})`;
  return q ?? scope;
}

/** Rejects id patterns that are not valid regular expressions (PostgreSQL evaluates them). */
function checkPattern(p: string): void {
  try {
    new RegExp(p);
  } catch {
    throw badRequest(`idPattern "${p}" is not a valid regular expression`);
  }
  const unsafe = unsafeRegexReason(p);
  if (unsafe) throw badRequest(`idPattern "${p}" ${unsafe}`);
}

/** `A,B` and `A|B`: either; `A;B`: both; parentheses are accepted around groups. */
export function parseTypeExpression(expr: string, ctx: ActiveContext): string[][] {
  const groups = expr
    .replace(/[()]/g, '')
    .split(/[,|]/)
    .map((g) => g.split(';').map((t) => t.trim()));
  for (const g of groups) {
    for (const t of g) {
      if (t === '' || /[\s<>"'=()]/.test(t))
        throw badRequest(`type "${expr}" is not a valid type expression`);
    }
  }
  return groups.map((g) => g.map((t) => ctx.expandTerm(t)));
}
