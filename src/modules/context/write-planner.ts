/**
 * The write planner: decides, entity by entity, what a write does to the entities it locked — new records,
 * changes of existing ones, marking changes — and reports per item what it could not do, so a batch writes
 * the items that may be written and lists the others with their error. Every decision is the sharing gate's
 * (`checkCreate`, `checkChange`): the planner never looks at roles, owners or read keys itself.
 */
import type { Clock } from '../../kernel/clock.ts';
import { AppError, isAppError } from '../../kernel/errors.ts';
import type { AnyDb } from '../../ports/store.ts';
import type { CurrentObject, Marking, SharingGate } from '../sharing/index.ts';
import { attributeNamesOf, type ExpandedEntity } from './entity-model.ts';
import { applyAttributes, clone, type ParsedItem, stampValue } from './entity-patch.ts';
import type { EntityRecord } from './entity-repository.ts';
import { asAppError, type Caller, gatePrincipal, notFound } from './entity-view.ts';
import {
  type BatchError,
  type BatchResult,
  type Change,
  created,
  updated,
  type WritePlan,
} from './write-plan.ts';

/** The sharing gate's kind of NGSI-LD entities (scope: the tenant). */
export const ENTITY_KIND = 'entity';

/**
 * The markings a write names, validated by the gate before the write is planned (the planner is
 * synchronous): each raw marking resolved once (audience exists, usernames resolved to ids), or the error
 * that refuses the items naming it. `undefined` stands for the caller's default marking.
 */
export class MarkingBook {
  readonly #resolved = new Map<string, Marking | AppError>();

  static async resolve(
    gate: SharingGate,
    db: AnyDb,
    caller: Caller,
    raws: readonly unknown[],
  ): Promise<MarkingBook> {
    const book = new MarkingBook();
    const p = gatePrincipal(caller);
    for (const raw of raws) {
      const key = keyOf(raw);
      if (book.#resolved.has(key)) continue;
      try {
        book.#resolved.set(key, await gate.resolveMarking(db, p, raw));
      } catch (e) {
        if (!isAppError(e)) throw e;
        book.#resolved.set(key, e);
      }
    }
    return book;
  }

  /** The validated marking, or throws why it is refused. */
  of(raw: unknown): Marking {
    const m = this.#resolved.get(keyOf(raw));
    if (m === undefined)
      throw new AppError('PLATFORM_INTERNAL', 'a marking was not validated before the plan');
    if (m instanceof AppError) throw m;
    return m;
  }
}

function keyOf(raw: unknown): string {
  return raw === undefined ? '' : `=${JSON.stringify(raw)}`;
}

export class WritePlanner {
  readonly #clock: Clock;
  readonly #gate: SharingGate;

  constructor(clock: Clock, gate: SharingGate) {
    this.#clock = clock;
    this.#gate = gate;
  }

  now(): string {
    return this.#clock.now().toISOString();
  }

  /** May the caller create entities? (AUTH_ROLE_REQUIRED otherwise.) */
  checkCreate(caller: Caller): void {
    this.#gate.checkCreate(gatePrincipal(caller), ENTITY_KIND);
  }

  /** A new entity's record (its incarnation is the registry's, given when the write records it). */
  newRecord(caller: Caller, entity: ExpandedEntity, marking: Marking): EntityRecord {
    this.checkCreate(caller);
    const now = this.now();
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
      readKeys: this.#gate.keysOf({ ownerOrg, createdBy, marking }),
      incarnation: '',
    };
  }

  /**
   * The record if the caller may change it (and set `next` as its marking). An entity the caller cannot see
   * answers exactly like a missing one (CONTEXT_ENTITY_NOT_FOUND); then the gate's AUTH_ROLE_REQUIRED or
   * ACCESS_DENIED.
   */
  modifiable(caller: Caller, rec: EntityRecord | undefined, id: string, next?: Marking): EntityRecord {
    if (!rec) throw notFound(id);
    try {
      this.#gate.checkChange(gatePrincipal(caller), ENTITY_KIND, currentOf(rec), next);
    } catch (e) {
      if (isAppError(e) && e.code === 'ACCESS_OBJECT_NOT_FOUND') throw notFound(id);
      throw e;
    }
    return rec;
  }

  /** Applies a marking the payload names (the reserved `marking` property), when the gate allows it. */
  applyMarking(
    caller: Caller,
    next: EntityRecord,
    old: EntityRecord,
    raw: unknown,
    change: Change,
    markings: MarkingBook,
  ): void {
    if (raw === undefined) return;
    const marking = markings.of(raw);
    if (JSON.stringify(marking) === JSON.stringify(old.marking)) return;
    if (change.kind !== 'created') this.modifiable(caller, old, old.id, marking);
    next.marking = marking;
    next.readKeys = this.#gate.keysOf({ ownerOrg: next.ownerOrg, createdBy: next.createdBy, marking });
    // An entity created by this very write is simply created with its last marking.
    if (change.kind !== 'created') change.previousMarking = { marking: old.marking, readKeys: old.readKeys };
  }

  /**
   * The plan of a batch that changes existing entities item by item (update, merge): each item applies to
   * the entity as the batch's earlier items left it; an item that fails is reported and the others go on.
   */
  planEach<T extends { id: string }>(
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
    const succeeded = new Set<string>();
    for (const item of items) {
      const id = item.id;
      try {
        const base = latest.get(id) ?? clone(this.modifiable(caller, existing.get(id), id));
        const change = apply(item, base, existing.get(id)!, changes.get(id));
        latest.set(id, base);
        changes.set(id, change);
        if (!succeeded.has(id)) {
          succeeded.add(id);
          success.push(id);
        }
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

  planUpsert(
    caller: Caller,
    parsed: ParsedItem[],
    errors: BatchError[],
    existing: Map<string, EntityRecord>,
    mode: 'replace' | 'update',
    markings: MarkingBook,
  ): WritePlan<BatchResult> {
    const latest = new Map<string, EntityRecord>();
    const changes = new Map<string, Change>();
    const success: string[] = [];
    const succeeded = new Set<string>();
    const createdIds: string[] = [];
    for (const p of parsed) {
      const id = p.entity.id;
      try {
        const prev = latest.get(id) ?? existing.get(id);
        if (prev && !latest.has(id) && !this.#gate.canSee(gatePrincipal(caller), prev)) {
          // As for a create: the id is taken, and nothing else is said (docs/ngsi-ld.md).
          throw new AppError('CONTEXT_ENTITY_EXISTS', `entity ${id} already exists`);
        }
        if (!prev) {
          const rec = this.newRecord(caller, p.entity, markings.of(p.marking));
          latest.set(id, rec);
          changes.set(id, created(rec, caller));
          createdIds.push(id);
        } else {
          const base = clone(latest.has(id) ? prev : this.modifiable(caller, prev, id));
          const now = this.now();
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
          if (p.marking !== undefined) {
            this.applyMarking(caller, latest.get(id)!, prev, p.marking, change, markings);
          }
          changes.set(id, change);
        }
        if (!succeeded.has(id)) {
          succeeded.add(id);
          success.push(id);
        }
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
}

/** What the gate decides a change of an entity on. */
export function currentOf(rec: EntityRecord): CurrentObject {
  return {
    id: rec.id,
    scope: rec.tenant,
    ownerOrg: rec.ownerOrg,
    createdBy: rec.createdBy,
    marking: rec.marking,
  };
}
