/**
 * The write paths of the NGSI-LD broker: entity and attribute operations, batches and IoT ingestion. Each
 * write locks the rows of the entities it names, lets the write planner decide item by item, writes the
 * result and the changes' events (through the outbox) in the same transaction, then brings the geo index up
 * to date.
 */
import type { Clock } from '../../kernel/clock.ts';
import { AppError, isAppError } from '../../kernel/errors.ts';
import type { EventOutbox } from '../../ports/event-outbox.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import type { Marking, Registered, SharingGate } from '../sharing/index.ts';
import { writeAttributeValues } from './attribute-values.ts';
import type { ContextEvents } from './entity-change-event.ts';
import {
  attributeNamesOf,
  checkAttributeName,
  checkEntityId,
  type ExpandedAttribute,
  instancesOf,
  isNullAttribute,
  isUri,
  MARKING_TERM,
  NGSI_LD_NULL,
  parseAttribute,
  parseEntity,
} from './entity-model.ts';
import {
  type AppliedAttributes,
  applyAttributes,
  clone,
  deleteInstance,
  geoChangedBetween,
  mergeMembers,
  parseBatch,
  parseFragment,
  prepareMerge,
  shellOf,
  stampMembers,
  stampValue,
  withId,
} from './entity-patch.ts';
import {
  analyzeTables,
  deleteEntities,
  type EntityRecord,
  ensureTenant,
  getEntities,
  writeEntities,
} from './entity-repository.ts';
import {
  asAppError,
  type Caller,
  type EntityView,
  gatePrincipal,
  isPlainObject,
  view,
} from './entity-view.ts';
import type { ActiveContext, ContextResolver, LdContext } from './json-ld-context.ts';
import { CORE_ATTRIBUTE_MEMBERS } from './query-language.ts';
import type { TenantGeoIndexes } from './tenant-geo-indexes.ts';
import {
  type BatchError,
  type BatchItem,
  type BatchResult,
  type Change,
  changeEvents,
  created,
  deleted,
  mergeChange,
  previousOf,
  type UpdateResult,
  updated,
  type WritePlan,
} from './write-plan.ts';
import { currentOf, ENTITY_KIND, MarkingBook, WritePlanner } from './write-planner.ts';

/** Members of an entity that `PATCH /entities/{id}/attrs/{attrId}` does not update (clause 5.6.4.4). */
const NOT_UPDATABLE = new Set(['id', 'type', 'scope', 'createdAt', 'modifiedAt', 'deletedAt']);

export interface EntityWriterOptions {
  store: Store;
  /** Decides every write and records it (registry, audit) in the write's transaction. */
  gate: SharingGate;
  /** Where the changes' events are written, in the write's transaction, to reach the bus after the commit. */
  events: EventOutbox<ContextEvents>;
  resolver: ContextResolver;
  clock: Clock;
  geoIndexes: TenantGeoIndexes;
  /** Most entities in one batch call (default 1000). */
  maxBatch?: number | undefined;
  /** Marking for writes by principals without one (IoT ingestion) (default TLP:AMBER). */
  defaultMarking?: Marking | undefined;
  /** Keep the attribute value index (attribute-values.ts) in step (default true). */
  writeAttributeIndex?: boolean | undefined;
}

export class EntityWriter {
  readonly #o: EntityWriterOptions;
  readonly #plan: WritePlanner;
  /** Rows written since the planner statistics were last refreshed. */
  #unanalyzed = 0;
  #analyzedAt = 0;

  constructor(options: EntityWriterOptions) {
    this.#o = options;
    this.#plan = new WritePlanner(options.clock, options.gate);
  }

  get maxBatch(): number {
    return this.#o.maxBatch ?? 1000;
  }

  async createEntity(caller: Caller, body: unknown, ctx: ActiveContext): Promise<EntityView> {
    this.#plan.checkCreate(caller);
    const parsed = parseEntity(body, ctx.expandTerm, { requireIdAndType: true });
    return this.#write(caller, [parsed.entity.id], [parsed.marking], (existing, markings) => {
      if (existing.has(parsed.entity.id)) {
        throw new AppError('CONTEXT_ENTITY_EXISTS', `entity ${parsed.entity.id} already exists`);
      }
      const rec = this.#plan.newRecord(caller, parsed.entity, markings.of(parsed.marking));
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
      (rec) => applyAttributes(rec, fragment.entity, this.#plan.now(), 'append', opts),
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
    const fragment = parseFragment(body, ctx, id, 'delete');
    return this.#updateOne(
      caller,
      id,
      (rec) => applyAttributes(rec, fragment.entity, this.#plan.now(), 'update', {}, fragment.deletions),
      fragment,
    );
  }

  /** PATCH /entities/{id}: merges attributes (members of existing attributes are merged; urn:ngsi-ld:null deletes). */
  async mergeEntity(caller: Caller, id: string, body: unknown, ctx: ActiveContext): Promise<UpdateResult> {
    const merge = prepareMerge(body, ctx, id);
    return this.#updateOne(caller, id, (rec) => merge(rec, this.#plan.now()), merge.fragment);
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
    const ids = [...new Set(merges.map((m) => m.id))];
    const raws = merges.map((m) => m.merge.fragment.marking).filter((m) => m !== undefined);
    return this.#write(caller, ids, raws, (existing, markings) =>
      this.#plan.planEach(caller, existing, errors, merges, ({ merge }, base, original, prior) => {
        const r = merge(base, this.#plan.now());
        const change = mergeChange(prior, updated(base, caller, r.updated), r);
        change.deleted = [...new Set([...change.deleted, ...r.deletedNames])];
        this.#plan.applyMarking(caller, base, original, merge.fragment.marking, change, markings);
        return change;
      }),
    );
  }

  /** PUT /entities/{id}: replaces the whole entity (keeps its id, createdAt, owner and, unless given, marking). */
  async replaceEntity(caller: Caller, id: string, body: unknown, ctx: ActiveContext): Promise<void> {
    checkEntityId(id);
    const raw = withId(body, id);
    const parsed = parseEntity(raw, ctx.expandTerm, { requireIdAndType: true });
    const raws = parsed.marking === undefined ? [] : [parsed.marking];
    await this.#write(caller, [id], raws, (existing, markings) => {
      const old = this.#plan.modifiable(caller, existing.get(id), id);
      const now = this.#plan.now();
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
      this.#plan.applyMarking(caller, next, old, parsed.marking, change, markings);
      return { writes: [next], deletes: [], changes: [change], result: undefined };
    });
  }

  /**
   * PATCH /entities/{id}/attrs/{attr}: merges the given members into one attribute instance (clause 5.6.4);
   * the NGSI-LD Null deletes the instance, or the member it stands for (clause 5.5.8).
   */
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
    if (NOT_UPDATABLE.has(attrTerm)) {
      throw new AppError(
        'CONTEXT_INVALID_ENTITY',
        `${attrTerm} is not an attribute: it cannot be updated here`,
      );
    }
    const name = ctx.expandTerm(attrTerm);
    if (attrTerm === MARKING_TERM) {
      await this.appendAttributes(caller, id, { [MARKING_TERM]: body }, ctx);
      return;
    }
    const raw = body as Record<string, unknown>;
    if (raw.datasetId !== undefined && (!isUri(raw.datasetId) || raw.datasetId === NGSI_LD_NULL)) {
      throw new AppError('CONTEXT_INVALID_ENTITY', `datasetId of "${attrTerm}" must be a URI`);
    }
    const datasetId = typeof raw.datasetId === 'string' ? raw.datasetId : undefined;
    const notFound = () =>
      new AppError(
        'CONTEXT_ATTRIBUTE_NOT_FOUND',
        `entity ${id} has no attribute ${attrTerm}${datasetId ? ` with datasetId ${datasetId}` : ''}`,
      );
    await this.#write(caller, [id], [], (existing) => {
      const rec = clone(this.#plan.modifiable(caller, existing.get(id), id));
      const now = this.#plan.now();
      if (isNullAttribute(raw)) {
        if (!deleteInstance(rec, datasetId ? { name, datasetId } : { name })) throw notFound();
        rec.entity.modifiedAt = now;
        const change = updated(rec, caller, [name]);
        change.deleted = [name];
        return { writes: [rec], deletes: [], changes: [change], result: undefined };
      }
      const instances = [...instancesOf(rec.entity[name])];
      const idx = instances.findIndex((i) => (i.datasetId ?? '') === (datasetId ?? ''));
      if (idx < 0) throw notFound();
      const old = instances[idx]!;
      const m = mergeMembers(old, raw);
      // The fragment is merged over the attribute: members it does not give (the value, the type) stay.
      const shell = shellOf(old, m.fragment);
      const parsed = parseAttribute(attrTerm, { ...shell, ...m.fragment }, ctx.expandTerm, 0);
      if (Array.isArray(parsed))
        throw new AppError('CONTEXT_INVALID_ENTITY', 'one attribute instance at a time');
      const merged: ExpandedAttribute = {
        ...old,
        ...stampMembers(parsed, now),
        createdAt: old.createdAt ?? now,
        modifiedAt: now,
      };
      for (const r of m.removed) delete merged[CORE_ATTRIBUTE_MEMBERS.has(r) ? r : ctx.expandTerm(r)];
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
    await this.#write(caller, [id], [], (existing) => {
      const rec = clone(this.#plan.modifiable(caller, existing.get(id), id));
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
      rec.entity.modifiedAt = this.#plan.now();
      const change = updated(rec, caller, [name]);
      change.deleted = [name];
      return { writes: [rec], deletes: [], changes: [change], result: undefined };
    });
  }

  async deleteEntity(caller: Caller, id: string): Promise<void> {
    checkEntityId(id);
    await this.#write(caller, [id], [], (existing) => {
      const rec = this.#plan.modifiable(caller, existing.get(id), id);
      return { writes: [], deletes: [id], changes: [deleted(rec, caller)], result: undefined };
    });
  }

  // ---------------------------------------------------------------------------------------- batches

  async batchCreate(caller: Caller, items: BatchItem[]): Promise<BatchResult> {
    this.#checkBatchSize(items.length);
    const { parsed, errors } = parseBatch(items);
    return this.#write(
      caller,
      parsed.map((p) => p.entity.id),
      [undefined, ...parsed.map((p) => p.marking)],
      (existing, markings) => {
        const errs = [...errors];
        const seen = new Set<string>();
        const writes: EntityRecord[] = [];
        const changes: Change[] = [];
        const success: string[] = [];
        for (const p of parsed) {
          const id = p.entity.id;
          try {
            this.#plan.checkCreate(caller);
            if (existing.has(id) || seen.has(id)) {
              throw new AppError('CONTEXT_ENTITY_EXISTS', `entity ${id} already exists`);
            }
            const rec = this.#plan.newRecord(caller, p.entity, markings.of(p.marking));
            seen.add(id);
            writes.push(rec);
            changes.push(created(rec, caller));
            success.push(id);
          } catch (e) {
            errs.push({ entityId: id, error: asAppError(e) });
          }
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
    const ids = [...new Set(parsed.map((p) => p.entity.id))];
    return this.#write(caller, ids, [undefined, ...parsed.map((p) => p.marking)], (existing, markings) =>
      this.#plan.planUpsert(caller, parsed, [...errors], existing, mode, markings),
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
    const ids = [...new Set(parsed.map((p) => p.entity.id))];
    const raws = parsed.map((p) => p.marking).filter((m) => m !== undefined);
    return this.#write(caller, ids, raws, (existing, markings) =>
      this.#plan.planEach(
        caller,
        existing,
        errors,
        parsed.map((p) => ({ ...p, id: p.entity.id })),
        (p, base, original, prior) => {
          const r = applyAttributes(base, p.entity, this.#plan.now(), 'append', opts);
          const change = mergeChange(prior, updated(base, caller, r.updated), r);
          this.#plan.applyMarking(caller, base, original, p.marking, change, markings);
          return change;
        },
      ),
    );
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
    return this.#write(caller, [...new Set(valid)], [], (existing) => {
      const errs = [...errors];
      const changes: Change[] = [];
      const success: string[] = [];
      const deletes: string[] = [];
      // In array order (clause 5.5.11): an id named again is deleted already (404), or refused again.
      const refused = new Map<string, AppError>();
      const done = new Set<string>();
      for (const id of valid) {
        if (done.has(id)) {
          const gone = new AppError(
            'CONTEXT_ENTITY_NOT_FOUND',
            `entity ${id} was deleted earlier in this batch`,
          );
          errs.push({ entityId: id, error: gone });
          continue;
        }
        const before = refused.get(id);
        if (before) {
          errs.push({ entityId: id, error: before });
          continue;
        }
        try {
          changes.push(deleted(this.#plan.modifiable(caller, existing.get(id), id), caller));
          deletes.push(id);
          done.add(id);
          success.push(id);
        } catch (e) {
          const err = asAppError(e);
          refused.set(id, err);
          errs.push({ entityId: id, error: err });
        }
      }
      return { writes: [], deletes, changes, result: { success, errors: errs } };
    });
  }

  /**
   * IoT ingestion: creates missing entities and merges attributes into existing ones, as `principal`.
   * Returns per fragment undefined when written, or why it was refused.
   */
  async upsertFragments(
    tenant: string,
    principal: { userId: string; orgId: string; roles: readonly string[]; defaultMarking?: Marking },
    fragments: { id: string; type: string; [attribute: string]: unknown }[],
    context: LdContext | undefined,
  ): Promise<Array<string | undefined>> {
    const ctx = await this.#o.resolver.resolve(context);
    const marking = principal.defaultMarking ??
      this.#o.defaultMarking ?? { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } };
    // A service account reads what its organisation's systems read, and what names it (TLP:RED).
    const readKeys = [...(await this.#o.gate.orgReadKeys(principal.orgId)), `user:${principal.userId}`];
    const caller: Caller = {
      tenant,
      principal: { userId: principal.userId, orgId: principal.orgId, roles: principal.roles },
      readKeys,
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

  #checkBatchSize(n: number): void {
    if (n > this.maxBatch) {
      throw new AppError(
        'CONTEXT_BATCH_TOO_LARGE',
        `a batch carries at most ${this.maxBatch} entities (got ${n})`,
      );
    }
  }

  async #updateOne(
    caller: Caller,
    id: string,
    apply: (rec: EntityRecord) => AppliedAttributes,
    fragment: { marking?: unknown },
  ): Promise<UpdateResult> {
    const raws = fragment.marking === undefined ? [] : [fragment.marking];
    return this.#write(caller, [id], raws, (existing, markings) => {
      const old = this.#plan.modifiable(caller, existing.get(id), id);
      const rec = clone(old);
      const r = apply(rec);
      const change = updated(rec, caller, r.updated);
      change.created = r.createdNames;
      change.deleted = r.deletedNames;
      this.#plan.applyMarking(caller, rec, old, fragment.marking, change, markings);
      const result: UpdateResult = { updated: r.updated, notUpdated: r.notUpdated };
      if (r.updated.length === 0 && !r.entityChanged && !change.previousMarking) {
        return { writes: [], deletes: [], changes: [], result };
      }
      if (fragment.marking !== undefined && change.previousMarking) result.updated.push(MARKING_TERM);
      return { writes: [rec], deletes: [], changes: [change], result };
    });
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

  /**
   * Runs a plan in one transaction over the rows of `ids` (locked): the markings it names are validated by
   * the gate first, the plan decides item by item (the gate's checks), then the gate records the write —
   * registry rows of created and deleted entities, marking changes (`share`), audit records naming the
   * changed attributes — in the same transaction as the entities' rows, and so are the changes' events
   * (outbox). After the commit the geo index is brought up to date.
   */
  async #write<T>(
    caller: Caller,
    ids: string[],
    raws: readonly unknown[],
    plan: (existing: Map<string, EntityRecord>, markings: MarkingBook) => WritePlan<T>,
  ): Promise<T> {
    const attempt = () =>
      this.#o.store.transaction(async (trx: AnyDb) => {
        await ensureTenant(trx, caller.tenant);
        const markings = await MarkingBook.resolve(this.#o.gate, trx, caller, raws);
        const rows = await getEntities(trx, caller.tenant, ids, true);
        const existing = new Map(rows.map((r) => [r.id, r]));
        const planned = plan(existing, markings);
        for (const c of planned.changes) {
          const before = existing.get(c.record.id);
          if (before && c.kind !== 'created') c.previous = previousOf(before.entity, c);
        }
        await this.#record(trx, caller, planned, existing);
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
        if (this.#o.writeAttributeIndex !== false) {
          await writeAttributeValues(trx, caller.tenant, planned.writes, existing);
        }
        await deleteEntities(trx, caller.tenant, planned.deletes);
        await this.#o.events.emitAll(trx, planned.changes.flatMap(changeEvents));
        return planned;
      });
    let p: WritePlan<T>;
    for (let tries = 1; ; tries++) {
      try {
        p = await attempt();
        break;
      } catch (e) {
        // Another writer created one of these ids between our read and our insert (its row or its registry
        // row): plan again with it.
        const taken =
          (e as { code?: unknown })?.code === '23505' || (isAppError(e) && e.code === 'ACCESS_OBJECT_EXISTS');
        if (tries >= 3 || !taken) throw e;
      }
    }
    await this.#o.geoIndexes.apply(caller.tenant, p.changes, this.#plan.now());
    await this.#keepStatistics(p.writes.length + p.deletes.length);
    return p.result;
  }

  /** The gate records what the plan decided, in the write's transaction (decision record 0004). */
  async #record<T>(
    trx: AnyDb,
    caller: Caller,
    planned: WritePlan<T>,
    existing: Map<string, EntityRecord>,
  ): Promise<void> {
    const gate = this.#o.gate;
    const p = gatePrincipal(caller);
    // Registry rows are inserted in id order, like the entities' own rows: concurrent batches over the same
    // new ids take their index entries in one order and cannot deadlock.
    const fresh = planned.writes.filter((w) => !existing.has(w.id)).sort((a, b) => (a.id < b.id ? -1 : 1));
    if (fresh.length > 0) {
      const registered = await gate.recordCreated(
        trx,
        p,
        ENTITY_KIND,
        fresh.map((r) => ({ scope: r.tenant, id: r.id, marking: r.marking })),
      );
      fresh.forEach((r, i) => {
        const reg = registered[i] as Registered;
        r.incarnation = reg.incarnation;
        r.readKeys = reg.readKeys;
      });
    }
    const contentChanged = planned.changes.filter((c) => c.kind === 'updated' && c.changed.length > 0);
    if (contentChanged.length > 0) {
      await gate.recordUpdated(
        trx,
        p,
        ENTITY_KIND,
        contentChanged.map((c) => ({
          scope: c.record.tenant,
          id: c.record.id,
          ownerOrg: c.record.ownerOrg,
          fields: c.changed,
        })),
      );
    }
    for (const c of planned.changes) {
      if (c.kind !== 'updated' || !c.previousMarking) continue;
      const before = existing.get(c.record.id) as EntityRecord;
      c.record.readKeys = await gate.recordMarkingChange(
        trx,
        p,
        ENTITY_KIND,
        currentOf({ ...before, marking: c.previousMarking.marking }),
        c.record.marking,
      );
    }
    const removed = planned.changes.filter((c) => c.kind === 'deleted');
    if (removed.length > 0) {
      await gate.recordDeleted(
        trx,
        p,
        ENTITY_KIND,
        removed.map((c) => currentOf(c.record)),
      );
    }
  }
}
