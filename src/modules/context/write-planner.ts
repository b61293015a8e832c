/**
 * The write planner: decides, entity by entity, what a write does to the entities it locked — new records,
 * changes of existing ones (only by who may change them), marking changes — and reports per item what it
 * could not do, so a batch writes the items that may be written and lists the others with their error.
 */
import type { Clock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import { type Marking, objectReadKeys, parseMarking } from '../sharing/marking.ts';
import { attributeNamesOf, type ExpandedEntity } from './entity-model.ts';
import { applyAttributes, clone, type ParsedItem, stampValue } from './entity-patch.ts';
import type { EntityRecord } from './entity-repository.ts';
import { asAppError, type Caller, notFound } from './entity-view.ts';
import {
  type BatchError,
  type BatchResult,
  type Change,
  created,
  updated,
  type WritePlan,
} from './write-plan.ts';

export class WritePlanner {
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  now(): string {
    return this.#clock.now().toISOString();
  }

  newRecord(caller: Caller, entity: ExpandedEntity, marking: Marking): EntityRecord {
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
      readKeys: objectReadKeys({ ownerOrg, createdBy, marking }),
    };
  }

  /** The record if the caller may change it; not found when invisible, CONTEXT_NOT_OWNER otherwise. */
  modifiable(caller: Caller, rec: EntityRecord | undefined, id: string): EntityRecord {
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

  applyMarking(next: EntityRecord, old: EntityRecord, raw: unknown, change: Change): void {
    if (raw === undefined) return;
    const marking = parseMarking(raw);
    if (JSON.stringify(marking) === JSON.stringify(old.marking)) return;
    next.marking = marking;
    next.readKeys = objectReadKeys({ ownerOrg: next.ownerOrg, createdBy: next.createdBy, marking });
    change.previousMarking = { marking: old.marking, readKeys: old.readKeys };
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
    for (const item of items) {
      const id = item.id;
      try {
        const base = latest.get(id) ?? clone(this.modifiable(caller, existing.get(id), id));
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

  planUpsert(
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
          const rec = this.newRecord(caller, p.entity, p.marking ?? caller.defaultMarking);
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
          if (p.marking !== undefined) this.applyMarking(latest.get(id)!, prev, p.marking, change);
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
}

function visible(caller: Caller, rec: EntityRecord): boolean {
  return rec.readKeys.some((k) => caller.readKeys.includes(k));
}
