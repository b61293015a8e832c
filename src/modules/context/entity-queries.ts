/**
 * The read paths of the NGSI-LD broker: one entity, queries (type, ids, idPattern, attrs, q, scopeQ,
 * geo-queries, paging, count) and discovery (types, attributes), always within the caller's visibility —
 * the read keys are a condition of every SQL statement and of every walk over the geo index, tested before
 * the caller's own predicates, so an invisible entity answers exactly like an absent one, in content and
 * in time. Every query has a row and a time budget (query-budget.ts); user patterns run in RE2
 * (user-pattern.ts).
 */
import { type RawBuilder, sql } from 'kysely';
import { AppError } from '../../kernel/errors.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import { checkEntityId, type ExpandedEntity, MARKING_TERM } from './entity-model.ts';
import {
  attributeStats,
  countEntities,
  type EntityFilter,
  findEntities,
  findEntityIds,
  getVisibleEntities,
  pageOfIds,
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
import {
  followedRelationships,
  type JoinedAnswer,
  type JoinedNode,
  type JoinRequest,
  MAX_JOIN_LEVEL,
  type Projection,
} from './linked-entities.ts';
import { NARROW_HINT, QueryBudget } from './query-budget.ts';
import { type IndexedQuery, indexQuery } from './query-index.ts';
import type { QueryNode, ScopeNode } from './query-language.ts';
import {
  expandQueryValues,
  matchesQuery,
  matchesScopeQuery,
  parseQuery,
  parseScopeQuery,
} from './query-language.ts';
import { qPrefilter } from './query-prefilter.ts';
import type { TenantGeoIndexes } from './tenant-geo-indexes.ts';
import { compileUserPattern, type UserPattern } from './user-pattern.ts';

export interface EntityQuery {
  /** Type expression: `A,B` or `A|B` (or), `A;B` (and); terms are expanded with the context. */
  type?: string | undefined;
  ids?: string[] | undefined;
  idPattern?: string | undefined;
  /** Attribute terms: entities with at least one of them, and only them in the answer. */
  attrs?: string[] | undefined;
  q?: string | undefined;
  /** Attribute terms whose string values in `q` are terms of the @context too (`expandValues`). */
  expandValues?: string[] | undefined;
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
  /** Whether entities follow this page (for the pagination links of clause 5.5.9). */
  more: boolean;
}

export interface EntityQueriesOptions {
  store: Store;
  geoIndexes: TenantGeoIndexes;
  /** Page size when `limit` is absent (default 20) and the largest allowed (default 1000). */
  defaultLimit?: number | undefined;
  maxLimit?: number | undefined;
  /**
   * Most candidate rows a query may evaluate in memory (idPattern, q, scopeQ, exact geometry) (default
   * 200,000); past it 403 TooManyResults.
   */
  maxScan?: number | undefined;
  /** Most time a query may spend evaluating in memory (default 10,000 ms); past it 403 TooComplexQuery. */
  queryTimeoutMs?: number | undefined;
  /** Answer geo-queries from the in-memory index (default true); false answers them in SQL only. */
  memoryGeoIndex?: boolean | undefined;
  /**
   * Most relationship targets one answer may follow to join linked entities (default 5,000); past it 403
   * TooManyResults.
   */
  maxJoined?: number | undefined;
  /** Answer `q` from the attribute value index (query-index.ts) (default true). */
  attributeIndex?: boolean | undefined;
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
    const parsed = query.q ? parseQuery(query.q, ctx.expandTerm) : undefined;
    const ast =
      parsed && query.expandValues?.length
        ? expandQueryValues(parsed, new Set(query.expandValues.map((a) => ctx.expandTerm(a))), ctx.expandTerm)
        : parsed;
    const scope = query.scopeQ ? parseScopeQuery(query.scopeQ) : undefined;
    const geo: GeoQuery | undefined = query.geo ? parseGeoQuery(query.geo, ctx.expandTerm) : undefined;
    const idPattern = query.idPattern ? compileIdPattern(query.idPattern) : undefined;
    for (const id of query.ids ?? []) checkEntityId(id);
    if (!(await tenantExists(this.#o.store.db, caller.tenant))) {
      throw new AppError('CONTEXT_TENANT_NOT_FOUND', `tenant "${caller.tenant}" does not exist`);
    }
    const typeGroups = query.type ? parseTypeExpression(query.type, ctx) : undefined;
    const indexed =
      ast && this.#o.attributeIndex !== false
        ? indexQuery(ast, { tenant: caller.tenant, readKeys: caller.readKeys, typeGroups })
        : undefined;
    const filter: EntityFilter = {
      tenant: caller.tenant,
      readKeys: caller.readKeys,
      ids: query.ids,
      idPrefix: idPattern?.literalPrefix || undefined,
      typeGroups,
      attrsAny: attrFilter(query.attrs, ctx),
      geo: geo ? { attr: geo.geoproperty, box: geo.searchBox } : undefined,
      where: prefilter(indexed?.exact ? undefined : ast, scope !== undefined),
      indexed: indexed?.condition,
    };
    const budget = this.#budget();
    const page = { limit, offset, count: query.count === true };
    if (geo && this.#o.memoryGeoIndex !== false) {
      return this.#queryByGeoIndex(caller, filter, geo, { ast, indexed, scope, idPattern, budget, ...page });
    }
    // type and a q its index answers alone: the value rows select, page and count (they carry the
    // entities' read keys and types); then only the page's entities are read. The row budget still
    // bounds what one q may select (at most maxScan + 1 ids are gathered).
    if (indexed?.exact && !scope && !geo && !idPattern && !filter.ids && !filter.attrsAny) {
      const ids = indexed.ids;
      return this.#read(async (db) => {
        const p = await pageOfIds(db, ids, { limit, offset, max: this.#maxScan + 1 });
        if (p.total > this.#maxScan) budget.chargeRows(p.total);
        const rows = await getVisibleEntities(db, caller.tenant, p.ids, caller.readKeys);
        const result: QueryResult = { items: rows.map(view), more: p.total > offset + limit };
        if (query.count) result.count = p.total;
        return result;
      });
    }
    // Without q, or with a q its index answers alone: the store selects, pages and counts.
    if (!scope && !geo && (!ast || (indexed?.exact === true && !idPattern))) {
      if (idPattern) return this.#queryByIdPattern(caller, filter, idPattern, budget, page);
      return this.#read(async (db) => {
        // One more than the page tells whether another follows.
        const items = limit === 0 ? [] : await findEntities(db, filter, { limit: limit + 1, offset });
        const result: QueryResult = { items: items.slice(0, limit).map(view), more: items.length > limit };
        if (query.count) result.count = await countEntities(db, filter);
        return result;
      });
    }
    const rows = await this.#read((db) => findEntities(db, filter, { limit: this.#maxScan + 1, offset: 0 }));
    if (rows.length > this.#maxScan) budget.chargeRows(rows.length);
    // The store sent only rows the caller may see: the caller's predicates run on nothing else.
    const kept = await budget.filter(
      rows,
      (r) =>
        (!idPattern || idPattern.test(r.id)) &&
        (!ast || indexed?.exact === true || matchesQuery(r.entity, ast)) &&
        (!scope || matchesScopeQuery(r.entity, scope)) &&
        (!geo || matchesGeoQuery(r.entity, geo)),
    );
    if (geo?.georel === 'near') {
      const d = new Map(kept.map((r) => [r.id, geoDistance(r.entity, geo)]));
      kept.sort((a, b) => d.get(a.id)! - d.get(b.id)! || (a.id < b.id ? -1 : 1));
    }
    const result: QueryResult = {
      items: kept.slice(offset, offset + limit).map(view),
      more: kept.length > offset + limit,
    };
    if (query.count) result.count = kept.length;
    return result;
  }

  /** idPattern without q: the pattern runs over the visible ids, then only the page is read. */
  async #queryByIdPattern(
    caller: Caller,
    filter: EntityFilter,
    pattern: UserPattern,
    budget: QueryBudget,
    page: { limit: number; offset: number; count: boolean },
  ): Promise<QueryResult> {
    const ids = await this.#read((db) => findEntityIds(db, filter, this.#maxScan + 1));
    if (ids.length > this.#maxScan) budget.chargeRows(ids.length);
    const kept = await budget.filter(ids, (id) => pattern.test(id));
    const pageIds = kept.slice(page.offset, page.offset + page.limit);
    const rows = await this.#read((db) => getVisibleEntities(db, caller.tenant, pageIds, caller.readKeys));
    const result: QueryResult = { items: rows.map(view), more: kept.length > page.offset + page.limit };
    if (page.count) result.count = kept.length;
    return result;
  }

  /**
   * Linked entity retrieval (clause 4.5.23): follows, level by level up to `joinLevel`, the relationships
   * the answer shows (the projection decides which) and reads the entities they name within the caller's
   * visibility — SQL tests the read keys, so an invisible target is not joined, exactly like an absent one,
   * at the same cost. Every relationship target followed is counted before it is read (whether it exists, is
   * visible or not), so the count tells nothing about invisible entities; past `maxJoined`, 403
   * TooManyResults. An entity already on the path from its root, or named in `containedBy`,
   * is not joined again (no cycles); in flat answers each entity is joined once.
   */
  async joinLinked(
    caller: Caller,
    roots: readonly EntityView[],
    request: JoinRequest,
    projection: Projection,
  ): Promise<JoinedAnswer> {
    const { joinLevel } = request;
    if (!Number.isInteger(joinLevel) || joinLevel < 1 || joinLevel > MAX_JOIN_LEVEL) {
      throw new AppError(
        'CONTEXT_INVALID_QUERY',
        `joinLevel must be a whole number from 1 to ${MAX_JOIN_LEVEL} (got ${joinLevel})`,
      );
    }
    for (const id of request.containedBy) checkEntityId(id);
    const maxJoined = this.#o.maxJoined ?? 5000;
    const budget = new QueryBudget({ maxScan: maxJoined, maxEvaluationMs: this.#o.queryTimeoutMs ?? 10_000 });
    const flat = request.join === 'flat';
    const blocked = new Set(request.containedBy);
    const rootNodes: JoinedNode[] = roots.map((view) => ({ view, projection, links: new Map() }));
    const byId = new Map<string, EntityView>(roots.map((v) => [v.entity.id, v]));
    const rootIds = new Set(byId.keys());
    const linked: JoinedNode[] = [];
    const listed = new Set<string>();
    const joinedOnce = new Set<string>();
    /** Targets read and not found: absent and invisible alike. */
    const absent = new Set<string>();
    type Step = { node: JoinedNode; path: ReadonlySet<string> };
    let frontier: Step[] = rootNodes.map((node) => ({ node, path: new Set([node.view.entity.id]) }));
    for (let level = 1; level <= joinLevel && frontier.length > 0; level++) {
      const edges: { from: Step; attr: string; id: string; next: Projection }[] = [];
      for (const step of frontier) {
        for (const rel of followedRelationships(step.node.view.entity, step.node.projection)) {
          for (const id of rel.ids) {
            if (blocked.has(id) || step.path.has(id)) continue;
            if (flat && (rootIds.has(id) || joinedOnce.has(id))) continue;
            if (flat) joinedOnce.add(id);
            // Charged before anything is read: the budget depends on what the caller sees, never on the
            // targets (absent, invisible or visible alike).
            chargeJoin(budget, maxJoined);
            edges.push({ from: step, attr: rel.attr, id, next: rel.next });
          }
        }
      }
      const missing = [...new Set(edges.map((e) => e.id))].filter((id) => !byId.has(id) && !absent.has(id));
      for (let i = 0; i < missing.length; i += 500) {
        const chunk = missing.slice(i, i + 500);
        const rows = await this.#read((db) => getVisibleEntities(db, caller.tenant, chunk, caller.readKeys));
        for (const r of rows) byId.set(r.id, view(r));
        for (const id of chunk) if (!byId.has(id)) absent.add(id);
      }
      const next: Step[] = [];
      for (const e of edges) {
        const target = byId.get(e.id);
        if (!target) continue;
        const node: JoinedNode = { view: target, projection: e.next, links: new Map() };
        let byAttr = e.from.node.links.get(e.attr);
        if (!byAttr) {
          byAttr = new Map();
          e.from.node.links.set(e.attr, byAttr);
        }
        byAttr.set(e.id, node);
        if (!rootIds.has(e.id) && !listed.has(e.id)) {
          linked.push(node);
          listed.add(e.id);
        }
        next.push({ node, path: new Set([...e.from.path, e.id]) });
      }
      frontier = next;
    }
    return { roots: rootNodes, linked };
  }

  get #maxScan(): number {
    return this.#o.maxScan ?? 200_000;
  }

  #budget(): QueryBudget {
    return new QueryBudget({ maxScan: this.#maxScan, maxEvaluationMs: this.#o.queryTimeoutMs ?? 10_000 });
  }

  /**
   * Runs a query's reads. A statement past the store's statement timeout (PostgreSQL: set on every
   * connection, see postgres-store.ts) answers 403 TooComplexQuery, not 500. PGlite has no statement
   * timeout (it runs each statement to its end), so there the statements are bounded by their row limits.
   */
  async #read<T>(fn: (db: AnyDb) => Promise<T>): Promise<T> {
    try {
      return await fn(this.#o.store.db);
    } catch (e) {
      if ((e as { code?: unknown })?.code === '57014') {
        throw new AppError(
          'CONTEXT_QUERY_TOO_COMPLEX',
          `the query took longer than the database allows a statement; ${NARROW_HINT}`,
          undefined,
          { cause: e },
        );
      }
      throw e;
    }
  }

  /** Entity types visible to the caller (GET /types). */
  async listTypes(
    caller: Caller,
  ): Promise<{ type: string; count: number; attributes: Map<string, string[]> }[]> {
    await this.#requireTenant(caller.tenant);
    const [counts, stats] = await this.#read(async (db) => [
      await typeCounts(db, caller.tenant, caller.readKeys),
      await attributeStats(db, caller.tenant, caller.readKeys),
    ]);
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
    const stats = await this.#read((db) => attributeStats(db, caller.tenant, caller.readKeys));
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
      ast: QueryNode | undefined;
      indexed: IndexedQuery | undefined;
      scope: ScopeNode | undefined;
      idPattern: UserPattern | undefined;
      budget: QueryBudget;
      limit: number;
      offset: number;
      count: boolean;
    },
  ): Promise<QueryResult> {
    const index = await this.#o.geoIndexes.indexFor(caller.tenant);
    const keys = new Set(caller.readKeys);
    const ids = filter.ids ? new Set(filter.ids) : undefined;
    const pattern = o.idPattern;
    const groups = filter.typeGroups;
    const near = geo.georel === 'near' ? (geo.geometry.coordinates as number[]) : undefined;
    // Visibility first: the caller's own predicates (ids, idPattern, types, geometry) never run on an
    // entry it may not see, so an invisible entity costs what an absent one costs.
    const visibleHits = index
      .search(geo.geoproperty, geo.searchBox)
      .filter((e) => e.readKeys.some((k) => keys.has(k)));
    const matched = new Map<string, number>();
    await o.budget.filter(visibleHits, (e) => {
      if (ids && !ids.has(e.id)) return false;
      if (groups && !groups.some((g) => g.every((t) => e.types.includes(t)))) return false;
      if (pattern && !pattern.test(e.id)) return false;
      let d = 0;
      if (near) {
        d = distanceToGeometry(near, e.geometry);
        if (
          (geo.maxDistance !== undefined && d > geo.maxDistance) ||
          (geo.minDistance !== undefined && d < geo.minDistance)
        ) {
          return false;
        }
      } else if (!geometryMatches(e.geometry, geo)) return false;
      const prev = matched.get(e.id);
      if (prev === undefined || d < prev) matched.set(e.id, d);
      return true;
    });
    const order = (a: string, b: string) => matched.get(a)! - matched.get(b)! || (a < b ? -1 : a > b ? 1 : 0);
    let candidates = [...matched.keys()].sort(near ? order : undefined);
    let evaluate = o.ast !== undefined || o.scope !== undefined || filter.attrsAny !== undefined;
    if (o.indexed) {
      // The store narrows the geo matches by the value index (with the same box, the types, attrs and the q
      // prefilter): its planner starts from the box or from the values, whichever selects fewer.
      const hits = await this.#read((db) => findEntityIds(db, filter, this.#maxScan + 1));
      if (hits.length > this.#maxScan) o.budget.chargeRows(hits.length);
      const selected = new Set(hits);
      candidates = candidates.filter((id) => selected.has(id));
      if (o.indexed.exact && !o.scope) evaluate = false;
    }
    if (evaluate) {
      // Filters on attribute values need the entities: read the geo matches, then filter (the rows were
      // charged to the budget above).
      const attrs = filter.attrsAny;
      const rows = await this.#read((db) =>
        getVisibleEntities(db, caller.tenant, candidates, caller.readKeys),
      );
      const kept = await o.budget.filter(
        rows,
        (r) =>
          (!o.ast || o.indexed?.exact === true || matchesQuery(r.entity, o.ast)) &&
          (!o.scope || matchesScopeQuery(r.entity, o.scope)) &&
          (!attrs || attrs.some((a) => a in r.entity)),
        { charge: false },
      );
      const result: QueryResult = {
        items: kept.slice(o.offset, o.offset + o.limit).map(view),
        more: kept.length > o.offset + o.limit,
      };
      if (o.count) result.count = kept.length;
      return result;
    }
    const total = candidates.length;
    candidates = candidates.slice(o.offset, o.offset + o.limit);
    const rows = await this.#read((db) => getVisibleEntities(db, caller.tenant, candidates, caller.readKeys));
    const result: QueryResult = { items: rows.map(view), more: total > o.offset + o.limit };
    if (o.count) result.count = total;
    return result;
  }

  /** Visible entities of a tenant matching expanded types, ids or id patterns (for periodic notifications). */
  async findEntities(
    tenant: string,
    selection: { types: string[]; ids: string[]; idPatterns: string[] },
    readKeys: string[],
  ): Promise<ExpandedEntity[]> {
    const patterns = selection.idPatterns.map(compileIdPattern);
    const filter: EntityFilter = {
      tenant,
      readKeys,
      typeGroups: selection.types.length > 0 ? selection.types.map((t) => [t]) : undefined,
      ids: selection.ids.length > 0 && patterns.length === 0 ? selection.ids : undefined,
    };
    const budget = this.#budget();
    const rows = await this.#read((db) => findEntities(db, filter, { limit: this.#maxScan + 1, offset: 0 }));
    if (rows.length > this.#maxScan) budget.chargeRows(rows.length);
    const kept = await budget.filter(
      rows,
      (r) => patterns.length === 0 || patterns.some((p) => p.test(r.id)),
    );
    return kept.map((r) => r.entity);
  }

  async #requireTenant(tenant: string): Promise<void> {
    if (!(await tenantExists(this.#o.store.db, tenant))) {
      throw new AppError('CONTEXT_TENANT_NOT_FOUND', `tenant "${tenant}" does not exist`);
    }
  }
}

/** One relationship target followed by a join, charged to its budget (query-budget.ts). */
function chargeJoin(budget: QueryBudget, maxJoined: number): void {
  try {
    budget.chargeRows(1);
  } catch {
    throw new AppError(
      'CONTEXT_TOO_MANY_RESULTS',
      `the join would follow more than ${maxJoined} relationships; lower joinLevel or limit, or pick fewer relationships`,
    );
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

/** An idPattern compiled for RE2 (user-pattern.ts), or 400 saying why not. */
function compileIdPattern(p: string): UserPattern {
  return compileUserPattern(p, (why) => badRequest(`idPattern: ${why}`));
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
