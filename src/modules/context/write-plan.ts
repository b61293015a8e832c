/**
 * What a write plans and what it reports: the records to write and delete, the change of each entity (the
 * attributes it touched, its marking before and after), and the events those changes publish.
 */
import type { AppError } from '../../kernel/errors.ts';
import type { Marking } from '../sharing/index.ts';
import {
  ENTITY_CREATED,
  ENTITY_DELETED,
  ENTITY_MARKING_CHANGED,
  ENTITY_UPDATED,
  type EntityChangeEvent,
  type EntityMarkingChangedEvent,
} from './entity-change-event.ts';
import { attributeNamesOf, type ExpandedEntity, instancesOf } from './entity-model.ts';
import type { AppliedAttributes } from './entity-patch.ts';
import type { EntityRecord } from './entity-repository.ts';
import type { Caller } from './entity-view.ts';
import type { ActiveContext } from './json-ld-context.ts';

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

/** One entity's change in a write. */
export interface Change {
  kind: 'created' | 'updated' | 'deleted';
  record: EntityRecord;
  changed: string[];
  created: string[];
  deleted: string[];
  previousMarking?: { marking: Marking; readKeys: string[] };
  /** The changed attributes as they were (see EntityChangeEvent.previous). */
  previous?: Record<string, unknown>;
  by: string;
}

export interface WritePlan<T> {
  writes: EntityRecord[];
  deletes: string[];
  changes: Change[];
  result: T;
}

export function created(rec: EntityRecord, caller: Caller): Change {
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

export function updated(rec: EntityRecord, caller: Caller, changed: string[]): Change {
  return {
    kind: 'updated',
    record: rec,
    changed: [...new Set(changed)],
    created: [],
    deleted: [],
    by: caller.principal.userId,
  };
}

export function deleted(rec: EntityRecord, caller: Caller): Change {
  const names = attributeNamesOf(rec.entity);
  return {
    kind: 'deleted',
    record: rec,
    changed: names,
    created: [],
    deleted: names,
    by: caller.principal.userId,
  };
}

/** Folds an item's change into the change an earlier item of the same batch made to the same entity. */
export function mergeChange(prior: Change | undefined, next: Change, r: AppliedAttributes): Change {
  next.created = r.createdNames;
  if (!prior) return next;
  prior.record = next.record;
  prior.changed = [...new Set([...prior.changed, ...next.changed])];
  prior.created = [...new Set([...prior.created, ...next.created])];
  return prior;
}

/** An event to publish: its type and data. */
export type ChangeEvent =
  | { type: typeof ENTITY_CREATED | typeof ENTITY_UPDATED | typeof ENTITY_DELETED; data: EntityChangeEvent }
  | { type: typeof ENTITY_MARKING_CHANGED; data: EntityMarkingChangedEvent };

/** The events of one change, in order: the change, then its marking change. */
export function changeEvents(c: Change): ChangeEvent[] {
  const type = c.kind === 'created' ? ENTITY_CREATED : c.kind === 'updated' ? ENTITY_UPDATED : ENTITY_DELETED;
  const r = c.record;
  const data: EntityChangeEvent = {
    tenant: r.tenant,
    entityId: r.id,
    incarnation: r.incarnation,
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
  // What a change replaced is shown under the entity's marking after the change; when the change also
  // re-marked the entity, the values from before were under another marking and are not passed on.
  if (c.previous && !c.previousMarking && Object.keys(c.previous).length > 0) data.previous = c.previous;
  const observed = latestObservedAt(r.entity, c.changed);
  if (observed && c.kind !== 'deleted') data.observedAt = observed;
  const out: ChangeEvent[] = [{ type, data }];
  if (c.previousMarking) {
    out.push({
      type: ENTITY_MARKING_CHANGED,
      data: {
        tenant: r.tenant,
        entityId: r.id,
        incarnation: r.incarnation,
        entityType: r.entity.type,
        ownerOrg: r.ownerOrg,
        changedBy: c.by,
        previous: c.previousMarking.marking,
        marking: r.marking,
        previousReadKeys: c.previousMarking.readKeys,
        readKeys: r.readKeys,
      },
    });
  }
  return out;
}

/**
 * What a change replaced, from the entity before the write: the changed attributes that existed (shared, not
 * copied: records are never changed in place), or for a deletion the whole entity but its id and types.
 */
export function previousOf(before: ExpandedEntity, c: Change): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (c.kind === 'deleted') {
    for (const [k, v] of Object.entries(before)) if (k !== 'id' && k !== 'type') out[k] = v;
    return out;
  }
  for (const n of c.changed) if (before[n] !== undefined) out[n] = before[n];
  return out;
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
