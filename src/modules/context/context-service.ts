/**
 * The NGSI-LD context service: entity and attribute operations, batches, queries and discovery, with
 * markings enforced on every path. It works on the expanded normalized form; the API layer resolves
 * @contexts and renders representations.
 *
 * Visibility: an entity is visible when its read keys meet the caller's (filtered in SQL). Invisible
 * entities answer exactly like absent ones (CONTEXT_ENTITY_NOT_FOUND). Changes: only users of the owner
 * organisation may modify or delete (only the creator, for TLP:RED); others who can see the entity get
 * CONTEXT_NOT_OWNER.
 *
 * Every committed write publishes `context.entity.created|updated|deleted` (and
 * `context.entity.marking_changed` when a marking changes) after the commit.
 */

import { type RawBuilder, sql } from 'kysely';
import { type Clock, systemClock } from '../../kernel/clock.ts';
import { AppError, isAppError } from '../../kernel/errors.ts';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { EventBus, PlatformEvent, Subscription } from '../../ports/event-bus.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import { emptyAudience, type Marking, objectReadKeys, parseMarking } from '../sharing/marking.ts';
import {
  ENTITY_CREATED,
  ENTITY_DELETED,
  ENTITY_MARKING_CHANGED,
  ENTITY_UPDATED,
  type EntityChangeEvent,
  type EntityMarkingChangedEvent,
} from './entity-change-event.ts';
import {
  attributeNamesOf,
  checkAttributeName,
  checkEntityId,
  type ExpandedAttribute,
  type ExpandedEntity,
  instancesOf,
  MARKING_TERM,
  parseAttribute,
  parseEntity,
  stampAttribute,
} from './entity-model.ts';
import {
  analyzeTables,
  attributeStats,
  countEntities,
  deleteEntities,
  deleteHostedContext,
  type EntityFilter,
  type EntityRecord,
  ensureTenant,
  findEntities,
  geoFingerprint,
  getEntities,
  getHostedContext,
  getVisibleEntities,
  type HostedContextRow,
  insertHostedContext,
  listHostedContexts,
  loadGeoRows,
  tenantExists,
  typeCounts,
  writeEntities,
} from './entity-repository.ts';
import { type EntityFormat, renderEntity } from './entity-representation.ts';
import { GeoIndexHolder, type TenantGeoIndex } from './geo-index.ts';
import {
  type GeoQuery,
  type GeoQueryInput,
  geoDistance,
  geometryMatches,
  matchesGeoQuery,
  parseGeoQuery,
} from './geo-query.ts';
import { distanceToGeometry } from './geometry.ts';
import type { ActiveContext, ContextResolver, LdContext } from './json-ld-context.ts';
import type { QueryNode } from './query-language.ts';
import {
  matchesQuery,
  matchesScopeQuery,
  parseQuery,
  parseScopeQuery,
  unsafeRegexReason,
} from './query-language.ts';
import { qPrefilter } from './query-prefilter.ts';

/** Who asks, in which tenant, with which read keys and default marking. */
export interface Caller {
  tenant: string;
  principal: { userId: string; orgId: string; roles?: readonly string[] };
  readKeys: string[];
  defaultMarking: Marking;
}

/** An entity as a caller sees it: the entity and its marking facts. */
export interface EntityView {
  entity: ExpandedEntity;
  marking: Marking;
  ownerOrg: string;
  createdBy: string;
}

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

export interface UpdateResult {
  /** Expanded names of updated attributes. */
  updated: string[];
  notUpdated: { attributeName: string; reason: string }[];
}

export interface BatchError {
  entityId: string;
  error: AppError;
}

export interface BatchResult {
  success: string[];
  errors: BatchError[];
  /** For upserts: the ids that were created (the others were updated). */
  created?: string[];
}

export interface BatchItem {
  body: unknown;
  ctx: ActiveContext;
}

export interface ContextServiceOptions {
  store: Store;
  bus: EventBus;
  resolver: ContextResolver;
  clock?: Clock;
  /** Most entities in one batch call (default 1000). */
  maxBatch?: number;
  /** Page size when `limit` is absent (default 20) and the largest allowed (default 1000). */
  defaultLimit?: number;
  maxLimit?: number;
  /** Most candidate rows a query may evaluate in memory (q, scopeQ, exact geometry) (default 200,000). */
  maxScan?: number;
  /** Marking for writes by principals without one (IoT ingestion) (default TLP:AMBER). */
  defaultMarking?: Marking;
  /**
   * Answer geo-queries from an in-memory spatial index kept in step with the store (default true); false
   * answers them in SQL (GiST box prefilter) only.
   */
  memoryGeoIndex?: boolean;
  /** Rebuild a tenant's geo index from the store when older than this (default 10 min; 0: never). */
  geoIndexRefreshMs?: number;
  /** Called when an event cannot be published after a commit (default: console.error). */
  onPublishError?: (error: unknown, event: PlatformEvent) => void;
}

interface Change {
  kind: 'created' | 'updated' | 'deleted';
  record: EntityRecord;
  changed: string[];
  created: string[];
  deleted: string[];
  previousMarking?: { marking: Marking; readKeys: string[] };
  by: string;
}

interface WritePlan<T> {
  writes: EntityRecord[];
  deletes: string[];
  changes: Change[];
  result: T;
}

const NULL_URI = 'urn:ngsi-ld:null';

export class ContextService {
  readonly #o: ContextServiceOptions;
  readonly #clock: Clock;
  readonly resolver: ContextResolver;
  readonly #geo = new Map<string, Promise<GeoIndexHolder>>();
  #geoSync: Promise<Subscription> | undefined;
  /** Rows written since the planner statistics were last refreshed. */
  #unanalyzed = 0;
  #analyzedAt = 0;

  constructor(options: ContextServiceOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.resolver = options.resolver;
    options.resolver.setHostedLoader(async (id) => (await getHostedContext(options.store.db, id))?.body);
  }

  get maxBatch(): number {
    return this.#o.maxBatch ?? 1000;
  }

  resolveContext(ctx: LdContext | null | undefined): Promise<ActiveContext> {
    return this.#o.resolver.resolve(ctx);
  }

  // ------------------------------------------------------------------------------------------ reads

  async getEntity(caller: Caller, id: string): Promise<EntityView> {
    checkEntityId(id);
    await this.#requireTenant(caller.tenant);
    const [rec] = await getEntities(this.#o.store.db, caller.tenant, [id]);
    if (!rec || !visible(caller, rec)) throw notFound(id);
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

  // ----------------------------------------------------------------------------------------- writes

  async createEntity(caller: Caller, body: unknown, ctx: ActiveContext): Promise<EntityView> {
    const parsed = parseEntity(body, ctx.expandTerm, { requireIdAndType: true });
    const marking = parsed.marking === undefined ? caller.defaultMarking : parseMarking(parsed.marking);
    return this.#write(caller, [parsed.entity.id], (existing) => {
      if (existing.has(parsed.entity.id)) {
        throw new AppError('CONTEXT_ENTITY_EXISTS', `entity ${parsed.entity.id} already exists`);
      }
      const rec = this.#newRecord(caller, parsed.entity, marking);
      return { writes: [rec], deletes: [], changes: [created(rec, caller)], result: view(rec) };
    });
  }

  /** POST /entities/{id}/attrs: adds attributes, replacing existing ones unless noOverwrite. */
  async appendAttributes(
    caller: Caller,
    id: string,
    body: unknown,
    ctx: ActiveContext,
    opts: { noOverwrite?: boolean } = {},
  ): Promise<UpdateResult> {
    const fragment = parseFragment(body, ctx, id);
    return this.#updateOne(
      caller,
      id,
      (rec) => applyAttributes(rec, fragment.entity, this.#now(), 'append', opts),
      fragment,
    );
  }

  /** PATCH /entities/{id}/attrs: replaces existing attributes only; others are reported as not updated. */
  async updateAttributes(
    caller: Caller,
    id: string,
    body: unknown,
    ctx: ActiveContext,
  ): Promise<UpdateResult> {
    const fragment = parseFragment(body, ctx, id);
    return this.#updateOne(
      caller,
      id,
      (rec) => applyAttributes(rec, fragment.entity, this.#now(), 'update', {}),
      fragment,
    );
  }

  /** PATCH /entities/{id}: merges attributes (members of existing attributes are merged; urn:ngsi-ld:null deletes). */
  async mergeEntity(caller: Caller, id: string, body: unknown, ctx: ActiveContext): Promise<UpdateResult> {
    const merge = prepareMerge(body, ctx, id);
    return this.#updateOne(caller, id, (rec) => merge(rec, this.#now()), merge.fragment);
  }

  /** POST /entityOperations/merge: merges each entity like PATCH /entities/{id}; per-entity results. */
  async batchMerge(caller: Caller, items: BatchItem[]): Promise<BatchResult> {
    this.#checkBatchSize(items.length);
    const errors: BatchError[] = [];
    const merges: { id: string; merge: ReturnType<typeof prepareMerge> }[] = [];
    for (const item of items) {
      const raw = isPlainObject(item.body) ? item.body : {};
      const id = typeof raw.id === 'string' ? raw.id : '';
      try {
        if (!id) throw new AppError('CONTEXT_INVALID_ENTITY', 'the entity id is missing');
        merges.push({ id, merge: prepareMerge(item.body, item.ctx, id) });
      } catch (e) {
        errors.push({ entityId: id, error: asAppError(e) });
      }
    }
    return this.#write(caller, [...new Set(merges.map((m) => m.id))], (existing) =>
      this.#planEach(caller, existing, errors, merges, ({ merge }, base, original, prior) => {
        const r = merge(base, this.#now());
        const change = mergeChange(prior, updated(base, caller, r.updated), r);
        change.deleted = [...new Set([...change.deleted, ...r.deletedNames])];
        if (merge.fragment.marking !== undefined) {
          this.#applyMarking(base, original, merge.fragment.marking, change);
        }
        return change;
      }),
    );
  }

  /** PUT /entities/{id}: replaces the whole entity (keeps its id, createdAt, owner and, unless given, marking). */
  async replaceEntity(caller: Caller, id: string, body: unknown, ctx: ActiveContext): Promise<void> {
    checkEntityId(id);
    const raw = withId(body, id);
    const parsed = parseEntity(raw, ctx.expandTerm, { requireIdAndType: true });
    await this.#write(caller, [id], (existing) => {
      const old = this.#modifiable(caller, existing.get(id), id);
      const now = this.#now();
      const next: EntityRecord = {
        ...old,
        entity: { ...parsed.entity, createdAt: old.entity.createdAt ?? now, modifiedAt: now },
      };
      for (const name of attributeNamesOf(parsed.entity)) {
        next.entity[name] = stampValue(parsed.entity[name], now);
      }
      const change = updated(
        next,
        caller,
        attributeNamesOf(old.entity).concat(attributeNamesOf(next.entity)),
      );
      change.created = attributeNamesOf(next.entity).filter((n) => !(n in old.entity));
      change.deleted = attributeNamesOf(old.entity).filter((n) => !(n in next.entity));
      this.#applyMarking(next, old, parsed.marking, change);
      return { writes: [next], deletes: [], changes: [change], result: undefined };
    });
  }

  /** PATCH /entities/{id}/attrs/{attr}: merges the given members into one attribute instance. */
  async partialUpdateAttribute(
    caller: Caller,
    id: string,
    attrTerm: string,
    body: unknown,
    ctx: ActiveContext,
  ): Promise<void> {
    checkAttributeName(attrTerm);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new AppError('CONTEXT_INVALID_ENTITY', 'the attribute fragment must be a JSON object');
    }
    const name = ctx.expandTerm(attrTerm);
    if (attrTerm === MARKING_TERM) {
      await this.appendAttributes(caller, id, { [MARKING_TERM]: body }, ctx);
      return;
    }
    const raw = body as Record<string, unknown>;
    const datasetId = typeof raw.datasetId === 'string' ? raw.datasetId : undefined;
    await this.#write(caller, [id], (existing) => {
      const rec = clone(this.#modifiable(caller, existing.get(id), id));
      const instances = [...instancesOf(rec.entity[name])];
      const idx = instances.findIndex((i) => (i.datasetId ?? '') === (datasetId ?? ''));
      if (idx < 0) {
        throw new AppError(
          'CONTEXT_ATTRIBUTE_NOT_FOUND',
          `entity ${id} has no attribute ${attrTerm}${datasetId ? ` with datasetId ${datasetId}` : ''}`,
        );
      }
      const now = this.#now();
      const old = instances[idx]!;
      // The fragment is merged over the attribute: members it does not give (the value, the type) stay.
      const shell = shellOf(old, raw);
      const parsed = parseAttribute(attrTerm, { ...shell, ...raw }, ctx.expandTerm, 0);
      if (Array.isArray(parsed))
        throw new AppError('CONTEXT_INVALID_ENTITY', 'one attribute instance at a time');
      const merged: ExpandedAttribute = {
        ...old,
        ...stampMembers(parsed, now),
        createdAt: old.createdAt ?? now,
        modifiedAt: now,
      };
      instances[idx] = merged;
      rec.entity[name] = instances.length === 1 ? instances[0] : instances;
      rec.entity.modifiedAt = now;
      return { writes: [rec], deletes: [], changes: [updated(rec, caller, [name])], result: undefined };
    });
  }

  /** DELETE /entities/{id}/attrs/{attr}: one instance (datasetId), the default one, or all (deleteAll). */
  async deleteAttribute(
    caller: Caller,
    id: string,
    attrTerm: string,
    ctx: ActiveContext,
    opts: { datasetId?: string | undefined; deleteAll?: boolean } = {},
  ): Promise<void> {
    checkAttributeName(attrTerm);
    const name = ctx.expandTerm(attrTerm);
    await this.#write(caller, [id], (existing) => {
      const rec = clone(this.#modifiable(caller, existing.get(id), id));
      const instances = [...instancesOf(rec.entity[name])];
      const keep = opts.deleteAll
        ? []
        : instances.filter((i) => (i.datasetId ?? '') !== (opts.datasetId ?? ''));
      if (instances.length === 0 || keep.length === instances.length) {
        throw new AppError(
          'CONTEXT_ATTRIBUTE_NOT_FOUND',
          `entity ${id} has no attribute ${attrTerm}${opts.datasetId ? ` with datasetId ${opts.datasetId}` : ''}`,
        );
      }
      if (keep.length === 0) delete rec.entity[name];
      else rec.entity[name] = keep.length === 1 ? keep[0] : keep;
      rec.entity.modifiedAt = this.#now();
      const change = updated(rec, caller, [name]);
      if (keep.length === 0) change.deleted = [name];
      return { writes: [rec], deletes: [], changes: [change], result: undefined };
    });
  }

  async deleteEntity(caller: Caller, id: string): Promise<void> {
    checkEntityId(id);
    await this.#write(caller, [id], (existing) => {
      const rec = this.#modifiable(caller, existing.get(id), id);
      const names = attributeNamesOf(rec.entity);
      return {
        writes: [],
        deletes: [id],
        changes: [
          {
            kind: 'deleted',
            record: rec,
            changed: names,
            created: [],
            deleted: names,
            by: caller.principal.userId,
          },
        ],
        result: undefined,
      };
    });
  }

  // ---------------------------------------------------------------------------------------- batches

  async batchCreate(caller: Caller, items: BatchItem[]): Promise<BatchResult> {
    this.#checkBatchSize(items.length);
    const { parsed, errors } = parseBatch(items);
    return this.#write(
      caller,
      parsed.map((p) => p.entity.id),
      (existing) => {
        const errs = [...errors];
        const seen = new Set<string>();
        const writes: EntityRecord[] = [];
        const changes: Change[] = [];
        const success: string[] = [];
        for (const p of parsed) {
          const id = p.entity.id;
          if (existing.has(id) || seen.has(id)) {
            errs.push({
              entityId: id,
              error: new AppError('CONTEXT_ENTITY_EXISTS', `entity ${id} already exists`),
            });
            continue;
          }
          seen.add(id);
          const rec = this.#newRecord(caller, p.entity, p.marking ?? caller.defaultMarking);
          writes.push(rec);
          changes.push(created(rec, caller));
          success.push(id);
        }
        return { writes, deletes: [], changes, result: { success, errors: errs } };
      },
    );
  }

  /** Batch upsert: creates the missing entities; `replace` (default) replaces existing ones, `update` merges. */
  async batchUpsert(
    caller: Caller,
    items: BatchItem[],
    mode: 'replace' | 'update' = 'replace',
  ): Promise<BatchResult> {
    this.#checkBatchSize(items.length);
    const { parsed, errors } = parseBatch(items);
    return this.#write(caller, [...new Set(parsed.map((p) => p.entity.id))], (existing) =>
      this.#planUpsert(caller, parsed, [...errors], existing, mode),
    );
  }

  /** Batch update: appends attributes to existing entities (noOverwrite keeps existing attributes). */
  async batchUpdate(
    caller: Caller,
    items: BatchItem[],
    opts: { noOverwrite?: boolean } = {},
  ): Promise<BatchResult> {
    this.#checkBatchSize(items.length);
    const { parsed, errors } = parseBatch(items, false);
    return this.#write(caller, [...new Set(parsed.map((p) => p.entity.id))], (existing) =>
      this.#planEach(
        caller,
        existing,
        errors,
        parsed.map((p) => ({ ...p, id: p.entity.id })),
        (p, base, original, prior) => {
          const r = applyAttributes(base, p.entity, this.#now(), 'append', opts);
          const change = mergeChange(prior, updated(base, caller, r.updated), r);
          this.#applyMarking(base, original, p.marking, change);
          return change;
        },
      ),
    );
  }

  /**
   * The plan of a batch that changes existing entities item by item (update, merge): each item applies to
   * the entity as the batch's earlier items left it; an item that fails is reported and the others go on.
   */
  #planEach<T extends { id: string }>(
    caller: Caller,
    existing: Map<string, EntityRecord>,
    errors: BatchError[],
    items: T[],
    apply: (item: T, base: EntityRecord, original: EntityRecord, prior: Change | undefined) => Change,
  ): WritePlan<BatchResult> {
    const errs = [...errors];
    const latest = new Map<string, EntityRecord>();
    const changes = new Map<string, Change>();
    const success: string[] = [];
    for (const item of items) {
      const id = item.id;
      try {
        const base = latest.get(id) ?? clone(this.#modifiable(caller, existing.get(id), id));
        const change = apply(item, base, existing.get(id)!, changes.get(id));
        latest.set(id, base);
        changes.set(id, change);
        if (!success.includes(id)) success.push(id);
      } catch (e) {
        errs.push({ entityId: id, error: asAppError(e) });
      }
    }
    return {
      writes: [...latest.values()],
      deletes: [],
      changes: [...changes.values()],
      result: { success, errors: errs },
    };
  }

  async batchDelete(caller: Caller, ids: unknown[]): Promise<BatchResult> {
    this.#checkBatchSize(ids.length);
    const errors: BatchError[] = [];
    const valid: string[] = [];
    for (const id of ids) {
      try {
        valid.push(checkEntityId(id));
      } catch (e) {
        errors.push({ entityId: String(id), error: asAppError(e) });
      }
    }
    return this.#write(caller, [...new Set(valid)], (existing) => {
      const errs = [...errors];
      const changes: Change[] = [];
      const success: string[] = [];
      const deletes: string[] = [];
      for (const id of new Set(valid)) {
        try {
          const rec = this.#modifiable(caller, existing.get(id), id);
          const names = attributeNamesOf(rec.entity);
          changes.push({
            kind: 'deleted',
            record: rec,
            changed: names,
            created: [],
            deleted: names,
            by: caller.principal.userId,
          });
          deletes.push(id);
          success.push(id);
        } catch (e) {
          errs.push({ entityId: id, error: asAppError(e) });
        }
      }
      return { writes: [], deletes, changes, result: { success, errors: errs } };
    });
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
    const index = await this.#geoIndexFor(caller.tenant);
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

  /**
   * The tenant's in-memory geo index: loaded from the store on first use, kept in step with writes and
   * events, and rebuilt in the background once it is older than `geoIndexRefreshMs`.
   */
  async #geoIndexFor(tenant: string): Promise<TenantGeoIndex> {
    let p = this.#geo.get(tenant);
    if (!p) {
      p = (async () => {
        this.#geoSync ??= this.#o.bus.subscribe({ types: ['context.entity.>'], mode: 'broadcast' }, (e) =>
          this.#applyToGeoIndex(e),
        );
        await this.#geoSync;
        const holder = new GeoIndexHolder();
        await holder.rebuild(() => loadGeoRows(this.#o.store.db, tenant));
        return holder;
      })();
      this.#geo.set(tenant, p);
      p.catch(() => this.#geo.delete(tenant));
    }
    const holder = await p;
    const refresh = this.#o.geoIndexRefreshMs ?? 600_000;
    if (refresh > 0 && Date.now() - holder.loadedAt > refresh && !holder.rebuilding) {
      holder.rebuild(() => loadGeoRows(this.#o.store.db, tenant)).catch(() => undefined);
    }
    return holder.current;
  }

  /** Applies an entity change (ours after commit, or another instance's event) to a loaded geo index. */
  async #applyToGeoIndex(event: PlatformEvent): Promise<void> {
    if (event.type !== ENTITY_CREATED && event.type !== ENTITY_UPDATED && event.type !== ENTITY_DELETED)
      return;
    const data = event.data as EntityChangeEvent;
    const p = this.#geo.get(data.tenant);
    if (!p) return;
    const index = await p;
    if (data.entity) index.upsert(data.entity, data.readKeys, data.entity.modifiedAt ?? event.time);
    else index.delete(data.entityId, event.time);
  }

  /** Stops following other instances' writes (the geo index then serves this instance's writes only). */
  async close(): Promise<void> {
    const sub = this.#geoSync;
    this.#geoSync = undefined;
    if (sub) await (await sub).unsubscribe();
    this.#geo.clear();
  }

  // ------------------------------------------------------------------------- hosted @contexts

  /** POST /jsonldContexts: hosts a context document `{"@context": …}`; returns its id. */
  async addHostedContext(caller: Caller, body: unknown): Promise<string> {
    if (!isPlainObject(body) || !('@context' in body)) {
      throw new AppError(
        'CONTEXT_INVALID_JSONLD',
        'a hosted context is a JSON object with an @context member',
      );
    }
    // It must be a context the broker can use: processed now, failing like any client context would.
    await this.resolveContext(body['@context'] as LdContext);
    const id = newTimeOrderedId(this.#clock.now().getTime());
    await insertHostedContext(this.#o.store.db, {
      id,
      body: { '@context': body['@context'] },
      ownerOrg: caller.principal.orgId,
      createdBy: caller.principal.userId,
    });
    return id;
  }

  async getHostedContext(id: string): Promise<HostedContextRow> {
    const row = await getHostedContext(this.#o.store.db, id);
    if (!row) throw new AppError('CONTEXT_LDCONTEXT_NOT_FOUND', `no hosted @context ${id}`);
    return row;
  }

  /** Hosted contexts, and the remote ones this instance holds in its cache. */
  async listContexts(): Promise<{ hosted: Omit<HostedContextRow, 'body'>[]; cached: string[] }> {
    return { hosted: await listHostedContexts(this.#o.store.db), cached: this.resolver.cachedUrls() };
  }

  /** DELETE /jsonldContexts/{id}: only users of the organisation that added it. */
  async deleteHostedContext(caller: Caller, id: string): Promise<void> {
    const row = await this.getHostedContext(id);
    if (row.ownerOrg !== caller.principal.orgId) {
      throw new AppError(
        'CONTEXT_NOT_OWNER',
        `only users of the organisation that added @context ${id} may delete it`,
      );
    }
    await deleteHostedContext(this.#o.store.db, id);
    this.resolver.forgetHosted(id);
  }

  // ------------------------------------------------------------------ helpers for the live module

  /** Expands an entity type or attribute name with a client's @context. */
  async expandTerm(term: string, context: LdContext | undefined): Promise<string> {
    return (await this.resolveContext(context)).expandTerm(term);
  }

  async compactTerm(iri: string, context: LdContext | undefined): Promise<string> {
    return (await this.resolveContext(context)).compactIri(iri);
  }

  /** Renders an expanded entity in a client's terms and representation. */
  async compactEntity(
    entity: { id: string; type: string | string[]; [k: string]: unknown },
    context: LdContext | undefined,
    format: EntityFormat,
  ): Promise<Record<string, unknown>> {
    const ctx = await this.resolveContext(context);
    return renderEntity(asExpanded(entity), ctx, { format, sysAttrs: false });
  }

  /** Compiles `q` in a client's @context into a predicate over expanded entities. */
  async compileQ(
    q: string,
    context: LdContext | undefined,
  ): Promise<(e: { id: string; type: string | string[] }) => boolean> {
    const ctx = await this.resolveContext(context);
    const ast = parseQuery(q, ctx.expandTerm);
    return (e) => matchesQuery(asExpanded(e), ast);
  }

  async compileGeoQ(
    geoQ: { geometry: string; coordinates: unknown; georel: string; geoproperty?: string },
    context: LdContext | undefined,
  ): Promise<(e: { id: string; type: string | string[] }) => boolean> {
    const ctx = await this.resolveContext(context);
    const gq = parseGeoQuery(geoQ, ctx.expandTerm);
    return (e) => matchesGeoQuery(asExpanded(e), gq);
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

  /**
   * IoT ingestion: creates missing entities and merges attributes into existing ones, as `principal`.
   * Returns per fragment undefined when written, or why it was refused.
   */
  async upsertFragments(
    tenant: string,
    principal: { userId: string; orgId: string; roles?: readonly string[]; defaultMarking?: Marking },
    fragments: { id: string; type: string; [attribute: string]: unknown }[],
    context: LdContext | undefined,
  ): Promise<Array<string | undefined>> {
    const ctx = await this.resolveContext(context);
    const marking = principal.defaultMarking ??
      this.#o.defaultMarking ?? { tlp: 'AMBER', audience: emptyAudience() };
    const caller: Caller = {
      tenant,
      principal,
      readKeys: objectReadKeys({ ownerOrg: principal.orgId, createdBy: principal.userId, marking }).concat(
        `org:${principal.orgId}`,
        `amber:${principal.orgId}`,
        `user:${principal.userId}`,
      ),
      defaultMarking: marking,
    };
    const result = await this.batchUpsert(
      caller,
      fragments.map((body) => ({ body, ctx })),
      'update',
    );
    const failed = new Map(result.errors.map((e) => [e.entityId, e.error.message]));
    return fragments.map((f) => failed.get(f.id));
  }

  // -------------------------------------------------------------------------------------- internals

  #now(): string {
    return this.#clock.now().toISOString();
  }

  #checkBatchSize(n: number): void {
    if (n > this.maxBatch) {
      throw new AppError(
        'CONTEXT_BATCH_TOO_LARGE',
        `a batch carries at most ${this.maxBatch} entities (got ${n})`,
      );
    }
  }

  async #requireTenant(tenant: string): Promise<void> {
    if (!(await tenantExists(this.#o.store.db, tenant))) {
      throw new AppError('CONTEXT_TENANT_NOT_FOUND', `tenant "${tenant}" does not exist`);
    }
  }

  #newRecord(caller: Caller, entity: ExpandedEntity, marking: Marking): EntityRecord {
    const now = this.#now();
    const e: ExpandedEntity = { ...entity, createdAt: now, modifiedAt: now };
    for (const name of attributeNamesOf(entity)) e[name] = stampValue(entity[name], now);
    const ownerOrg = caller.principal.orgId;
    const createdBy = caller.principal.userId;
    return {
      tenant: caller.tenant,
      id: entity.id,
      entity: e,
      ownerOrg,
      createdBy,
      marking,
      readKeys: objectReadKeys({ ownerOrg, createdBy, marking }),
    };
  }

  /** The record if the caller may change it; not found when invisible, CONTEXT_NOT_OWNER otherwise. */
  #modifiable(caller: Caller, rec: EntityRecord | undefined, id: string): EntityRecord {
    if (!rec || !visible(caller, rec)) throw notFound(id);
    const may =
      rec.marking.tlp === 'RED'
        ? rec.createdBy === caller.principal.userId
        : rec.ownerOrg === caller.principal.orgId;
    if (!may) {
      throw new AppError(
        'CONTEXT_NOT_OWNER',
        rec.marking.tlp === 'RED'
          ? `only the creator may change the TLP:RED entity ${id}`
          : `only users of the owner organisation may change entity ${id}`,
      );
    }
    return rec;
  }

  #applyMarking(next: EntityRecord, old: EntityRecord, raw: unknown, change: Change): void {
    if (raw === undefined) return;
    const marking = parseMarking(raw);
    if (JSON.stringify(marking) === JSON.stringify(old.marking)) return;
    next.marking = marking;
    next.readKeys = objectReadKeys({ ownerOrg: next.ownerOrg, createdBy: next.createdBy, marking });
    change.previousMarking = { marking: old.marking, readKeys: old.readKeys };
  }

  #planUpsert(
    caller: Caller,
    parsed: ParsedItem[],
    errors: BatchError[],
    existing: Map<string, EntityRecord>,
    mode: 'replace' | 'update',
  ): WritePlan<BatchResult> {
    const latest = new Map<string, EntityRecord>();
    const changes = new Map<string, Change>();
    const success: string[] = [];
    const createdIds: string[] = [];
    for (const p of parsed) {
      const id = p.entity.id;
      try {
        const prev = latest.get(id) ?? existing.get(id);
        if (!prev) {
          const rec = this.#newRecord(caller, p.entity, p.marking ?? caller.defaultMarking);
          latest.set(id, rec);
          changes.set(id, created(rec, caller));
          createdIds.push(id);
        } else {
          const base = clone(latest.has(id) ? prev : this.#modifiable(caller, prev, id));
          const now = this.#now();
          let change: Change;
          if (mode === 'replace') {
            const next: EntityRecord = {
              ...base,
              entity: { ...p.entity, createdAt: base.entity.createdAt ?? now, modifiedAt: now },
            };
            for (const name of attributeNamesOf(p.entity))
              next.entity[name] = stampValue(p.entity[name], now);
            change = updated(next, caller, [
              ...new Set([...attributeNamesOf(base.entity), ...attributeNamesOf(next.entity)]),
            ]);
            change.created = attributeNamesOf(next.entity).filter((n) => !(n in base.entity));
            change.deleted = attributeNamesOf(base.entity).filter((n) => !(n in next.entity));
            latest.set(id, next);
          } else {
            const r = applyAttributes(base, p.entity, now, 'append', {});
            base.entity.type = [...new Set([...base.entity.type, ...p.entity.type])];
            change = updated(base, caller, r.updated);
            change.created = r.createdNames;
            latest.set(id, base);
          }
          const prior = changes.get(id);
          if (prior) {
            prior.record = latest.get(id)!;
            prior.changed = [...new Set([...prior.changed, ...change.changed])];
            change = prior;
          }
          if (p.marking !== undefined) this.#applyMarking(latest.get(id)!, prev, p.marking, change);
          changes.set(id, change);
        }
        if (!success.includes(id)) success.push(id);
      } catch (e) {
        errors.push({ entityId: id, error: asAppError(e) });
      }
    }
    return {
      writes: [...latest.values()],
      deletes: [],
      changes: [...changes.values()],
      result: { success, errors, created: createdIds },
    };
  }

  async #updateOne(
    caller: Caller,
    id: string,
    apply: (rec: EntityRecord) => AppliedAttributes,
    fragment: { marking?: unknown },
  ): Promise<UpdateResult> {
    return this.#write(caller, [id], (existing) => {
      const old = this.#modifiable(caller, existing.get(id), id);
      const rec = clone(old);
      const r = apply(rec);
      const change = updated(rec, caller, r.updated);
      change.created = r.createdNames;
      change.deleted = r.deletedNames;
      this.#applyMarking(rec, old, fragment.marking, change);
      const result: UpdateResult = { updated: r.updated, notUpdated: r.notUpdated };
      if (r.updated.length === 0 && !r.entityChanged && !change.previousMarking) {
        return { writes: [], deletes: [], changes: [], result };
      }
      if (fragment.marking !== undefined && change.previousMarking) result.updated.push(MARKING_TERM);
      return { writes: [rec], deletes: [], changes: [change], result };
    });
  }

  /** Runs a plan in one transaction over the rows of `ids` (locked), then publishes its events. */
  async #write<T>(
    caller: Caller,
    ids: string[],
    plan: (existing: Map<string, EntityRecord>) => WritePlan<T>,
  ): Promise<T> {
    const attempt = () =>
      this.#o.store.transaction(async (trx: AnyDb) => {
        await ensureTenant(trx, caller.tenant);
        const rows = await getEntities(trx, caller.tenant, ids, true);
        const existing = new Map(rows.map((r) => [r.id, r]));
        const planned = plan(existing);
        const created = new Set(planned.writes.filter((w) => !existing.has(w.id)).map((w) => w.id));
        const geoChanged = new Set(
          planned.writes
            .filter((w) => {
              const before = existing.get(w.id);
              return !before || geoChangedBetween(before.entity, w.entity);
            })
            .map((w) => w.id),
        );
        await writeEntities(trx, planned.writes, created, geoChanged);
        await deleteEntities(trx, caller.tenant, planned.deletes);
        return planned;
      });
    let p: WritePlan<T>;
    for (let tries = 1; ; tries++) {
      try {
        p = await attempt();
        break;
      } catch (e) {
        // Another writer created one of these ids between our read and our insert: plan again with it.
        if (tries >= 3 || (e as { code?: unknown })?.code !== '23505') throw e;
      }
    }
    await this.#indexChanges(caller.tenant, p.changes);
    await this.#publish(p.changes);
    await this.#keepStatistics(p.writes.length + p.deletes.length);
    return p.result;
  }

  /**
   * PGlite has no autovacuum, so bulk writes leave the planner's statistics stale and it picks the
   * wrong index. Refreshed after every 20,000 rows written, at most once a minute.
   */
  async #keepStatistics(rows: number): Promise<void> {
    // PostgreSQL's autovacuum does this on a server; PGlite has none.
    if (this.#o.store.kind !== 'pglite') return;
    this.#unanalyzed += rows;
    const now = Date.now();
    if (this.#unanalyzed < 20_000 || now - this.#analyzedAt < 60_000) return;
    this.#unanalyzed = 0;
    this.#analyzedAt = now;
    try {
      await analyzeTables(this.#o.store.db);
    } catch {
      // Statistics are an optimisation; a failure here must not fail the write that was committed.
    }
  }

  async #indexChanges(tenant: string, changes: Change[]): Promise<void> {
    const p = this.#geo.get(tenant);
    if (!p || changes.length === 0) return;
    const index = await p;
    const now = this.#now();
    for (const c of changes) {
      if (c.kind === 'deleted') index.delete(c.record.id, now);
      else index.upsert(c.record.entity, c.record.readKeys, c.record.entity.modifiedAt ?? now);
    }
  }

  /** Publishes the changes' events: different entities in parallel (32 at a time), each entity's in order. */
  async #publish(changes: Change[]): Promise<void> {
    for (let i = 0; i < changes.length; i += 32) {
      await Promise.all(changes.slice(i, i + 32).map((c) => this.#publishChange(c)));
    }
  }

  async #publishChange(c: Change): Promise<void> {
    const type =
      c.kind === 'created' ? ENTITY_CREATED : c.kind === 'updated' ? ENTITY_UPDATED : ENTITY_DELETED;
    const r = c.record;
    const data: EntityChangeEvent = {
      tenant: r.tenant,
      entityId: r.id,
      entityType: r.entity.type,
      entity: c.kind === 'deleted' ? null : r.entity,
      changedAttributes: c.changed,
      createdAttributes: c.created,
      deletedAttributes: c.deleted,
      ownerOrg: r.ownerOrg,
      createdBy: r.createdBy,
      marking: r.marking,
      readKeys: r.readKeys,
    };
    const observed = latestObservedAt(r.entity, c.changed);
    if (observed && c.kind !== 'deleted') data.observedAt = observed;
    await this.#emit(type, data);
    if (c.previousMarking) {
      const m: EntityMarkingChangedEvent = {
        tenant: r.tenant,
        entityId: r.id,
        entityType: r.entity.type,
        ownerOrg: r.ownerOrg,
        changedBy: c.by,
        previous: c.previousMarking.marking,
        marking: r.marking,
        previousReadKeys: c.previousMarking.readKeys,
        readKeys: r.readKeys,
      };
      await this.#emit(ENTITY_MARKING_CHANGED, m);
    }
  }

  async #emit(type: string, data: unknown): Promise<void> {
    const now = this.#clock.now();
    const event: PlatformEvent = {
      id: newTimeOrderedId(now.getTime()),
      type,
      time: now.toISOString(),
      source: 'context',
      data,
    };
    try {
      await this.#o.bus.publish(event);
    } catch (e) {
      (this.#o.onPublishError ?? ((err) => console.error('context: event not published', type, err)))(
        e,
        event,
      );
    }
  }
}

// -------------------------------------------------------------------------------------------------

interface ParsedItem {
  entity: ExpandedEntity;
  marking?: Marking;
}

/** Parses every entity of a batch; the ones that fail go to the error list (their id as given). */
function parseBatch(items: BatchItem[], requireType = true): { parsed: ParsedItem[]; errors: BatchError[] } {
  const parsed: ParsedItem[] = [];
  const errors: BatchError[] = [];
  for (const item of items) {
    const body = item.body;
    const rawId =
      body && typeof body === 'object' && !Array.isArray(body)
        ? (body as Record<string, unknown>).id
        : undefined;
    try {
      const p = parseEntity(body, item.ctx.expandTerm, { requireIdAndType: requireType });
      if (!p.entity.id) throw new AppError('CONTEXT_INVALID_ENTITY', 'the entity id is missing');
      const out: ParsedItem = { entity: p.entity };
      if (p.marking !== undefined) out.marking = parseMarking(p.marking);
      parsed.push(out);
    } catch (e) {
      errors.push({ entityId: typeof rawId === 'string' ? rawId : '', error: asAppError(e) });
    }
  }
  return { parsed, errors };
}

interface AppliedAttributes extends UpdateResult {
  createdNames: string[];
  deletedNames: string[];
  /** The entity's types or scope changed. */
  entityChanged?: boolean;
}

const VALUE_MEMBERS = ['value', 'object', 'languageMap', 'json', 'vocab', 'valueList', 'objectList'];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * What a fragment merged over an attribute leaves as it is: the type, and the value when the fragment
 * gives neither (a fragment with only `observedAt` keeps the value).
 */
function shellOf(old: ExpandedAttribute, fragment: Record<string, unknown>): Record<string, unknown> {
  const gives = fragment.type !== undefined || VALUE_MEMBERS.some((k) => k in fragment);
  if (gives) return fragment.type === undefined && old.type !== 'Property' ? { type: old.type } : {};
  const shell: Record<string, unknown> = { type: old.type };
  for (const k of VALUE_MEMBERS) if (k in old) shell[k] = old[k];
  return shell;
}

/** Applies a fragment's attributes to a record (in place). */
function applyAttributes(
  rec: EntityRecord,
  fragment: ExpandedEntity,
  now: string,
  mode: 'append' | 'update' | 'merge',
  opts: { noOverwrite?: boolean },
): AppliedAttributes {
  const out: AppliedAttributes = { updated: [], notUpdated: [], createdNames: [], deletedNames: [] };
  for (const name of attributeNamesOf(fragment)) {
    const incoming = instancesOf(fragment[name]);
    const current = instancesOf(rec.entity[name]);
    const next = [...current];
    let touched = false;
    for (const inst of incoming) {
      const idx = next.findIndex((c) => (c.datasetId ?? '') === (inst.datasetId ?? ''));
      if (idx >= 0) {
        if (opts.noOverwrite) {
          out.notUpdated.push({ attributeName: name, reason: 'the attribute exists and noOverwrite is set' });
          continue;
        }
        const old = next[idx]!;
        next[idx] =
          mode === 'merge'
            ? { ...old, ...stampMembers(inst, now), createdAt: old.createdAt ?? now, modifiedAt: now }
            : stampAttribute(inst, now, old.createdAt);
        touched = true;
      } else if (mode === 'update') {
        out.notUpdated.push({
          attributeName: name,
          reason: inst.datasetId
            ? `no instance with datasetId ${inst.datasetId}`
            : 'the entity has no such attribute',
        });
      } else {
        next.push(stampAttribute(inst, now, undefined));
        touched = true;
      }
    }
    if (touched) {
      if (current.length === 0) out.createdNames.push(name);
      rec.entity[name] = next.length === 1 ? next[0] : next;
      out.updated.push(name);
    }
  }
  if (out.updated.length > 0) rec.entity.modifiedAt = now;
  return out;
}

function stampValue(v: unknown, now: string): unknown {
  return Array.isArray(v)
    ? v.map((a) => stampAttribute(a as ExpandedAttribute, now, undefined))
    : stampAttribute(v as ExpandedAttribute, now, undefined);
}

function stampMembers(members: Record<string, unknown>, now: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(members)) {
    out[k] =
      v !== null && typeof v === 'object' && !Array.isArray(v) && 'type' in v && k.includes(':')
        ? stampValue(v, now)
        : v;
  }
  return out;
}

function parseFragment(
  body: unknown,
  ctx: ActiveContext,
  id: string,
): { entity: ExpandedEntity; marking?: unknown } {
  checkEntityId(id);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('CONTEXT_INVALID_ENTITY', 'the request body must be a JSON object of attributes');
  }
  const raw = body as Record<string, unknown>;
  const bodyId = raw.id ?? raw['@id'];
  if (bodyId !== undefined && bodyId !== id) {
    throw new AppError(
      'CONTEXT_INVALID_REQUEST',
      `the id in the body (${String(bodyId)}) differs from the id in the path`,
    );
  }
  const p = parseEntity(raw, ctx.expandTerm, { requireIdAndType: false });
  return p.marking === undefined ? { entity: p.entity } : { entity: p.entity, marking: p.marking };
}

/**
 * Validates a merge payload once and returns the function that merges it into a record (in place):
 * attributes merged member by member (members a fragment leaves out keep their values),
 * `urn:ngsi-ld:null` deletes an attribute, types are added, scope replaced.
 */
function prepareMerge(body: unknown, ctx: ActiveContext, id: string) {
  const nulls = extractNulls(body, ctx);
  const fragment = parseFragment(nulls.body, ctx, id);
  const apply = (rec: EntityRecord, now: string): AppliedAttributes => {
    const raw = { ...(nulls.body as Record<string, unknown>) };
    for (const [k, v] of Object.entries(raw)) {
      const current = rec.entity[ctx.expandTerm(k)];
      if (!current || Array.isArray(current) || !isPlainObject(v)) continue;
      raw[k] = { ...shellOf(current as ExpandedAttribute, v), ...v };
    }
    const merged = parseFragment(raw, ctx, id);
    const r = applyAttributes(rec, merged.entity, now, 'merge', {});
    for (const name of nulls.deleted) {
      if (name in rec.entity) {
        delete rec.entity[name];
        r.updated.push(name);
        r.deletedNames.push(name);
      }
    }
    const types = [...new Set([...rec.entity.type, ...fragment.entity.type])];
    if (types.length !== rec.entity.type.length || fragment.entity.scope) {
      rec.entity.type = types;
      if (fragment.entity.scope) rec.entity.scope = fragment.entity.scope;
      rec.entity.modifiedAt = now;
      r.entityChanged = true;
    }
    return r;
  };
  return Object.assign(apply, { fragment });
}

/** Members equal to urn:ngsi-ld:null in a merge mean "delete this attribute". */
function extractNulls(body: unknown, ctx: ActiveContext): { body: unknown; deleted: string[] } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { body, deleted: [] };
  const out: Record<string, unknown> = {};
  const deleted: string[] = [];
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    const isNull =
      v === NULL_URI ||
      (v !== null &&
        typeof v === 'object' &&
        ((v as Record<string, unknown>).value === NULL_URI ||
          (v as Record<string, unknown>).object === NULL_URI));
    if (isNull && k !== 'id' && k !== 'type') deleted.push(ctx.expandTerm(k));
    else out[k] = v;
  }
  return { body: out, deleted };
}

function withId(body: unknown, id: string): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const raw = body as Record<string, unknown>;
  if (raw.id !== undefined && raw.id !== id) {
    throw new AppError(
      'CONTEXT_INVALID_REQUEST',
      `the id in the body (${String(raw.id)}) differs from the id in the path`,
    );
  }
  return { ...raw, id };
}

function visible(caller: Caller, rec: EntityRecord): boolean {
  return rec.readKeys.some((k) => caller.readKeys.includes(k));
}

function view(rec: EntityRecord): EntityView {
  return { entity: rec.entity, marking: rec.marking, ownerOrg: rec.ownerOrg, createdBy: rec.createdBy };
}

/**
 * A copy to plan changes on. Shallow: changes replace attribute members (never mutate attribute objects
 * or instance arrays in place), so untouched attributes stay shared — which also tells cheaply whether
 * GeoProperties changed.
 */
function clone(rec: EntityRecord): EntityRecord {
  return { ...rec, entity: { ...rec.entity, type: [...rec.entity.type] } };
}

function created(rec: EntityRecord, caller: Caller): Change {
  const names = attributeNamesOf(rec.entity);
  return {
    kind: 'created',
    record: rec,
    changed: names,
    created: names,
    deleted: [],
    by: caller.principal.userId,
  };
}

function updated(rec: EntityRecord, caller: Caller, changed: string[]): Change {
  return {
    kind: 'updated',
    record: rec,
    changed: [...new Set(changed)],
    created: [],
    deleted: [],
    by: caller.principal.userId,
  };
}

function mergeChange(prior: Change | undefined, next: Change, r: AppliedAttributes): Change {
  next.created = r.createdNames;
  if (!prior) return next;
  prior.record = next.record;
  prior.changed = [...new Set([...prior.changed, ...next.changed])];
  prior.created = [...new Set([...prior.created, ...next.created])];
  return prior;
}

function latestObservedAt(e: ExpandedEntity, names: string[]): string | undefined {
  let best: string | undefined;
  for (const n of names) {
    for (const a of instancesOf(e[n])) {
      if (typeof a?.observedAt === 'string' && (!best || a.observedAt > best)) best = a.observedAt;
    }
  }
  return best;
}

function notFound(id: string): AppError {
  return new AppError('CONTEXT_ENTITY_NOT_FOUND', `entity ${id} was not found`);
}

function badRequest(detail: string): AppError {
  return new AppError('CONTEXT_INVALID_REQUEST', detail);
}

function asAppError(e: unknown): AppError {
  if (isAppError(e)) return e;
  return new AppError('PLATFORM_INTERNAL', e instanceof Error ? e.message : String(e));
}

function asExpanded(e: { id: string; type: string | string[]; [k: string]: unknown }): ExpandedEntity {
  return Array.isArray(e.type) ? (e as ExpandedEntity) : ({ ...e, type: [e.type] } as ExpandedEntity);
}

/** The attributes an entity must have one of (`attrs`); the reserved `marking` is not an attribute. */
function attrFilter(attrs: string[] | undefined, ctx: ActiveContext): string[] | undefined {
  const names = attrs?.filter((a) => a !== MARKING_TERM).map((a) => ctx.expandTerm(a));
  return names && names.length > 0 ? names : undefined;
}

/** Whether GeoProperty values differ (shared attribute objects are unchanged by construction). */
function geoChangedBetween(before: ExpandedEntity, after: ExpandedEntity): boolean {
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = before[k];
    const b = after[k];
    if (a === b) continue;
    const isGeo = (v: unknown) =>
      instancesOf(v).some((i) => i !== null && typeof i === 'object' && i.type === 'GeoProperty');
    if (isGeo(a) || isGeo(b)) return geoFingerprint(before) !== geoFingerprint(after);
  }
  return false;
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
