/**
 * The NGSI-LD context service: the facade the API and the other modules use, composed of the broker's parts,
 * each in its own file:
 * - entity-queries.ts — reads, queries and discovery within the caller's visibility;
 * - entity-writer.ts with write-planner.ts, entity-patch.ts and write-plan.ts — entity and attribute
 *   operations, batches and ingestion: rows locked, planned item by item, written in one transaction, then
 *   published as `context.entity.created|updated|deleted` (and `context.entity.marking_changed`);
 * - tenant-geo-indexes.ts — the in-memory geo index of each tenant, kept in step with writes and events;
 * - hosted-contexts.ts — the @contexts the broker hosts (NGSI-LD @context API);
 * - client-terms.ts — a client's terms, representations and compiled queries for the live module.
 *
 * Every decision about who may see and change an entity or a hosted @context is the sharing gate's (decision
 * record 0004): it declares the kinds `entity` (scope: the tenant) and `jsonld-context`, decides each write
 * and records it (registry row, audit record) in the write's transaction. Invisible entities answer exactly
 * like absent ones (CONTEXT_ENTITY_NOT_FOUND).
 *
 * It works on the expanded normalized form; the API layer resolves @contexts and renders representations.
 */
import { type Clock, systemClock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import type { EventBus } from '../../ports/event-bus.ts';
import type { EventOutbox } from '../../ports/event-outbox.ts';
import type { Store } from '../../ports/store.ts';
import type { GatePrincipal, Marking, SharingGate } from '../sharing/index.ts';
import { ClientTerms } from './client-terms.ts';
import type { ContextEvents } from './entity-change-event.ts';
import type { ExpandedEntity } from './entity-model.ts';
import { EntityQueries, type EntityQuery, type QueryResult } from './entity-queries.ts';
import { getEntities, type HostedContextRow } from './entity-repository.ts';
import { type EntityFormat, renderEntity } from './entity-representation.ts';
import { type Caller, type EntityView, gatePrincipal } from './entity-view.ts';
import { EntityWriter } from './entity-writer.ts';
import { HostedContexts } from './hosted-contexts.ts';
import type { ActiveContext, ContextResolver, LdContext } from './json-ld-context.ts';
import type { JoinedAnswer, JoinRequest, Projection } from './linked-entities.ts';
import { TenantGeoIndexes } from './tenant-geo-indexes.ts';
import type { BatchItem, BatchResult, UpdateResult } from './write-plan.ts';
import { ENTITY_KIND } from './write-planner.ts';

export { type EntityQuery, parseTypeExpression, type QueryResult } from './entity-queries.ts';
export type { Caller, EntityView } from './entity-view.ts';
export type { BatchError, BatchItem, BatchResult, UpdateResult } from './write-plan.ts';

export interface ContextServiceOptions {
  store: Store;
  /** The sharing gate: decides and records every write of entities and hosted @contexts. */
  gate: SharingGate;
  /** Where entity changes are written in each write's transaction, to reach the bus after the commit. */
  events: EventOutbox<ContextEvents>;
  /** Other instances' changes keep this instance's geo index in step (broadcast). */
  bus: EventBus;
  resolver: ContextResolver;
  clock?: Clock;
  /** Most entities in one batch call (default 1000). */
  maxBatch?: number;
  /** Page size when `limit` is absent (default 20) and the largest allowed (default 1000). */
  defaultLimit?: number;
  maxLimit?: number;
  /**
   * Most candidate rows a query may evaluate in memory (idPattern, q, scopeQ, exact geometry) (default
   * 200,000); past it 403 TooManyResults.
   */
  maxScan?: number;
  /**
   * A query's time budget in memory (default 10,000 ms): the most time its evaluation may take (counted
   * while it runs; it gives the event loop back every few milliseconds). Past it 403 TooComplexQuery. Its
   * SQL statements are bounded by the store's statement timeout on PostgreSQL (past it, 403 too) and by
   * their row limits (maxScan) on PGlite, which has no statement timeout.
   */
  queryTimeoutMs?: number;
  /** Marking for writes by principals without one (IoT ingestion) (default TLP:AMBER). */
  defaultMarking?: Marking;
  /** Most relationship targets one answer may follow to join linked entities (default 5,000). */
  maxJoined?: number;
  /** Most entities one purge (`DELETE /entities?type=…`) may delete (default 10,000). */
  maxPurge?: number;
  /**
   * Answer geo-queries from an in-memory spatial index kept in step with the store (default true); false
   * answers them in SQL (GiST box prefilter) only.
   */
  memoryGeoIndex?: boolean;
  /** Rebuild a tenant's geo index from the store when older than this (default 10 min; 0: never). */
  geoIndexRefreshMs?: number;
  /**
   * The attribute value index of `q` (decision record 0007): `use` (default) keeps it in step with every
   * write and answers `q` from it; `maintain` keeps it but evaluates `q` without it (comparisons); `off`
   * neither writes nor reads it — only to measure what it costs writes: a store written with it off lacks
   * those rows, and must not be queried with it on.
   */
  attributeIndex?: 'use' | 'maintain' | 'off';
}

export class ContextService {
  readonly resolver: ContextResolver;
  readonly queries: EntityQueries;
  readonly writer: EntityWriter;
  readonly hosted: HostedContexts;
  readonly terms: ClientTerms;
  readonly #geoIndexes: TenantGeoIndexes;
  readonly #gate: SharingGate;
  readonly #defaultLimit: number;
  readonly #maxLimit: number;
  readonly #maxPurge: number;

  constructor(o: ContextServiceOptions) {
    this.#gate = o.gate;
    this.#defaultLimit = o.defaultLimit ?? 20;
    this.#maxLimit = o.maxLimit ?? 1000;
    this.#maxPurge = o.maxPurge ?? 10_000;
    const clock = o.clock ?? systemClock;
    this.resolver = o.resolver;
    this.#geoIndexes = new TenantGeoIndexes({ store: o.store, bus: o.bus, refreshMs: o.geoIndexRefreshMs });
    this.queries = new EntityQueries({
      store: o.store,
      geoIndexes: this.#geoIndexes,
      defaultLimit: o.defaultLimit,
      maxLimit: o.maxLimit,
      maxScan: o.maxScan,
      queryTimeoutMs: o.queryTimeoutMs,
      memoryGeoIndex: o.memoryGeoIndex,
      maxJoined: o.maxJoined,
      attributeIndex: (o.attributeIndex ?? 'use') === 'use',
    });
    this.writer = new EntityWriter({
      store: o.store,
      gate: o.gate,
      events: o.events,
      resolver: o.resolver,
      clock,
      geoIndexes: this.#geoIndexes,
      maxBatch: o.maxBatch,
      defaultMarking: o.defaultMarking,
      writeAttributeIndex: o.attributeIndex !== 'off',
    });
    this.hosted = new HostedContexts({ store: o.store, gate: o.gate, resolver: o.resolver, clock });
    this.terms = new ClientTerms(o.resolver);
    o.gate.defineKind(ENTITY_KIND, {
      label: 'NGSI-LD entity',
      // Break-glass reads the entity as the broker stores it: normalized, with its system attributes.
      load: async (ref) => {
        const [rec] = await getEntities(o.store.db, ref.scope, [ref.id]);
        if (!rec) return null;
        return renderEntity(rec.entity, await o.resolver.core(), { format: 'normalized', sysAttrs: true });
      },
    });
  }

  get maxBatch(): number {
    return this.writer.maxBatch;
  }

  /** The page size of a query that names no `limit`, and the largest page. */
  get defaultLimit(): number {
    return this.#defaultLimit;
  }

  get maxLimit(): number {
    return this.#maxLimit;
  }

  resolveContext(ctx: LdContext | null | undefined): Promise<ActiveContext> {
    return this.resolver.resolve(ctx);
  }

  /** Stops following other instances' writes (the geo index then serves this instance's writes only). */
  close(): Promise<void> {
    return this.#geoIndexes.close();
  }

  // ------------------------------------------------------------------------------------------ reads

  /** The caller with the keys the gate reads with: every read below is the gate's decision, not the module's. */
  #reading(caller: Caller): Caller {
    return { ...caller, readKeys: this.#gate.readKeysOf(caller) };
  }

  /**
   * One entity. Reads of TLP:AMBER, AMBER+STRICT and RED entities from outside their owner organisation are
   * recorded as disclosures by the gate (once per user, entity and label per window).
   */
  async getEntity(caller: Caller, id: string): Promise<EntityView> {
    const view = await this.queries.getEntity(this.#reading(caller), id);
    await this.#disclosed(caller, [view]);
    return view;
  }

  /** A query; its answer's disclosures are recorded like single reads (one audit record per owner for many). */
  async queryEntities(caller: Caller, query: EntityQuery, ctx: ActiveContext): Promise<QueryResult> {
    const result = await this.queries.queryEntities(this.#reading(caller), query, ctx);
    await this.#disclosed(caller, result.items);
    return result;
  }

  /**
   * The linked entities of an answer (`join`, clause 4.5.23), read within the caller's visibility like every
   * read; those joined are disclosures like the answer's own entities.
   */
  async joinLinked(
    caller: Caller,
    roots: readonly EntityView[],
    request: JoinRequest,
    projection: Projection,
  ): Promise<JoinedAnswer> {
    const answer = await this.queries.joinLinked(this.#reading(caller), roots, request, projection);
    await this.#disclosed(
      caller,
      answer.linked.map((n) => n.view),
    );
    return answer;
  }

  #disclosed(caller: Caller, views: readonly EntityView[]): Promise<void> {
    return this.#gate.recordDisclosures(
      gatePrincipal(caller),
      ENTITY_KIND,
      views.map((v) => ({ scope: caller.tenant, id: v.entity.id, ownerOrg: v.ownerOrg, marking: v.marking })),
    );
  }

  listTypes(caller: Caller): ReturnType<EntityQueries['listTypes']> {
    return this.queries.listTypes(this.#reading(caller));
  }

  listAttributes(caller: Caller): ReturnType<EntityQueries['listAttributes']> {
    return this.queries.listAttributes(this.#reading(caller));
  }

  /** Visible entities of a tenant matching expanded types, ids or id patterns (for periodic notifications). */
  findEntities(
    tenant: string,
    selection: { types: string[]; ids: string[]; idPatterns: string[] },
    readKeys: string[],
  ): Promise<ExpandedEntity[]> {
    return this.queries.findEntities(tenant, selection, this.#gate.readKeysOf({ readKeys }));
  }

  // ----------------------------------------------------------------------------------------- writes

  createEntity(caller: Caller, body: unknown, ctx: ActiveContext): Promise<EntityView> {
    return this.writer.createEntity(caller, body, ctx);
  }

  appendAttributes(
    caller: Caller,
    id: string,
    body: unknown,
    ctx: ActiveContext,
    opts: { noOverwrite?: boolean } = {},
  ): Promise<UpdateResult> {
    return this.writer.appendAttributes(caller, id, body, ctx, opts);
  }

  updateAttributes(caller: Caller, id: string, body: unknown, ctx: ActiveContext): Promise<UpdateResult> {
    return this.writer.updateAttributes(caller, id, body, ctx);
  }

  mergeEntity(caller: Caller, id: string, body: unknown, ctx: ActiveContext): Promise<UpdateResult> {
    return this.writer.mergeEntity(caller, id, body, ctx);
  }

  replaceEntity(caller: Caller, id: string, body: unknown, ctx: ActiveContext): Promise<void> {
    return this.writer.replaceEntity(caller, id, body, ctx);
  }

  partialUpdateAttribute(
    caller: Caller,
    id: string,
    attrTerm: string,
    body: unknown,
    ctx: ActiveContext,
  ): Promise<void> {
    return this.writer.partialUpdateAttribute(caller, id, attrTerm, body, ctx);
  }

  deleteAttribute(
    caller: Caller,
    id: string,
    attrTerm: string,
    ctx: ActiveContext,
    opts: { datasetId?: string | undefined; deleteAll?: boolean } = {},
  ): Promise<void> {
    return this.writer.deleteAttribute(caller, id, attrTerm, ctx, opts);
  }

  deleteEntity(caller: Caller, id: string): Promise<void> {
    return this.writer.deleteEntity(caller, id);
  }

  batchCreate(caller: Caller, items: BatchItem[]): Promise<BatchResult> {
    return this.writer.batchCreate(caller, items);
  }

  batchUpsert(
    caller: Caller,
    items: BatchItem[],
    mode: 'replace' | 'update' = 'replace',
  ): Promise<BatchResult> {
    return this.writer.batchUpsert(caller, items, mode);
  }

  batchUpdate(
    caller: Caller,
    items: BatchItem[],
    opts: { noOverwrite?: boolean } = {},
  ): Promise<BatchResult> {
    return this.writer.batchUpdate(caller, items, opts);
  }

  batchMerge(caller: Caller, items: BatchItem[]): Promise<BatchResult> {
    return this.writer.batchMerge(caller, items);
  }

  batchDelete(caller: Caller, ids: unknown[]): Promise<BatchResult> {
    return this.writer.batchDelete(caller, ids);
  }

  /**
   * Purge (`DELETE /entities?type=…`): deletes the entities a query selects, each as a batch delete does —
   * the caller sees it (the query reads within its visibility), and the gate allows the change (a writing
   * role, the owner organisation) and audits it; the others are reported one by one. At most `maxPurge`
   * entities (default 10,000) per call: past it nothing is deleted (403 TooManyResults). Each `maxBatch`
   * entities are deleted in one transaction.
   */
  async purgeEntities(caller: Caller, query: EntityQuery, ctx: ActiveContext): Promise<BatchResult> {
    this.checkWriter(caller.principal);
    const hasFilter =
      query.type ||
      (query.ids && query.ids.length > 0) ||
      query.idPattern ||
      query.q ||
      query.scopeQ ||
      query.geo;
    if (!hasFilter) {
      throw new AppError(
        'CONTEXT_INVALID_REQUEST',
        'a purge needs at least one of type, id, idPattern, q, scopeQ or a geo-query',
      );
    }
    const reader = this.#reading(caller);
    const page = this.#maxLimit;
    const select = { ...query, attrs: undefined, local: false };
    const first = await this.queries.queryEntities(
      reader,
      { ...select, limit: page, offset: 0, count: true },
      ctx,
    );
    const total = first.count ?? 0;
    if (total > this.#maxPurge) {
      throw new AppError(
        'CONTEXT_TOO_MANY_RESULTS',
        `the purge selects ${total} entities, more than the ${this.#maxPurge} one call may delete; narrow it by type, id, idPattern, q or scopeQ`,
      );
    }
    const ids = first.items.map((v) => v.entity.id);
    for (let offset = page; offset < total; offset += page) {
      const next = await this.queries.queryEntities(reader, { ...select, limit: page, offset }, ctx);
      ids.push(...next.items.map((v) => v.entity.id));
    }
    const result: BatchResult = { success: [], errors: [] };
    for (let i = 0; i < ids.length; i += this.maxBatch) {
      const r = await this.writer.batchDelete(caller, ids.slice(i, i + this.maxBatch));
      result.success.push(...r.success);
      result.errors.push(...r.errors);
    }
    return result;
  }

  /** IoT ingestion (the live module's EntityWriterPort). */
  /** Ingestion asks first whether the account may write entities at all (the gate's creating roles). */
  checkWriter(principal: { userId: string; orgId: string; roles: readonly string[] }): void {
    this.#gate.checkCreate({ ...principal, readKeys: [] }, ENTITY_KIND);
  }

  upsertFragments(
    ...args: Parameters<EntityWriter['upsertFragments']>
  ): ReturnType<EntityWriter['upsertFragments']> {
    return this.writer.upsertFragments(...args);
  }

  // ------------------------------------------------------------------------- hosted @contexts

  addHostedContext(caller: Caller, body: unknown): Promise<string> {
    return this.hosted.add(caller, body);
  }

  getHostedContext(id: string): Promise<HostedContextRow> {
    return this.hosted.get(id);
  }

  listContexts(): ReturnType<HostedContexts['list']> {
    return this.hosted.list();
  }

  deleteHostedContext(caller: Caller, id: string, opts: { reload?: boolean } = {}): Promise<void> {
    return this.hosted.remove(caller, id, opts);
  }

  /** Hosts a @context that is not one URL as ImplicitlyCreated (for subscriptions); returns its id. */
  implicitContext(principal: GatePrincipal, context: LdContext): Promise<string> {
    return this.hosted.implicit(principal, context);
  }

  hostedContextInfo(id: string): ReturnType<HostedContexts['info']> {
    return this.hosted.info(id);
  }

  cachedContext(url: string): ReturnType<HostedContexts['cachedInfo']> {
    return this.hosted.cachedInfo(url);
  }

  deleteCachedContext(caller: Caller, url: string, reload: boolean): Promise<void> {
    return this.hosted.removeCached(caller, url, reload);
  }

  // ------------------------------------------------------------------ helpers for the live module

  expandTerm(term: string, context: LdContext | undefined): Promise<string> {
    return this.terms.expandTerm(term, context);
  }

  compactTerm(iri: string, context: LdContext | undefined): Promise<string> {
    return this.terms.compactTerm(iri, context);
  }

  compactEntity(
    entity: { id: string; type: string | string[]; [k: string]: unknown },
    context: LdContext | undefined,
    format: EntityFormat,
  ): Promise<Record<string, unknown>> {
    return this.terms.compactEntity(entity, context, format);
  }

  compileQ(q: string, context: LdContext | undefined): ReturnType<ClientTerms['compileQ']> {
    return this.terms.compileQ(q, context);
  }

  compileGeoQ(
    geoQ: Parameters<ClientTerms['compileGeoQ']>[0],
    context: LdContext | undefined,
  ): ReturnType<ClientTerms['compileGeoQ']> {
    return this.terms.compileGeoQ(geoQ, context);
  }
}
