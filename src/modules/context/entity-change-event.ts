/**
 * The events the context module publishes on the bus after each committed write. The live part of the
 * broker (subscriptions, notifications, temporal history) and the audit module consume them.
 */
import type { Marking } from '../sharing/index.ts';
import type { ExpandedEntity } from './entity-model.ts';

export const ENTITY_CREATED = 'context.entity.created';
export const ENTITY_UPDATED = 'context.entity.updated';
export const ENTITY_DELETED = 'context.entity.deleted';
export const ENTITY_MARKING_CHANGED = 'context.entity.marking_changed';

/** Data of `context.entity.created|updated|deleted`. */
export interface EntityChangeEvent {
  /** The NGSI-LD tenant ('' is the default tenant). */
  tenant: string;
  entityId: string;
  /**
   * The entity's incarnation (sharing registry): deleting an id and creating it again starts a new one, so
   * what is derived from the old entity (history, notification retries) is never tied to the new one.
   */
  incarnation: string;
  /** Expanded type IRIs. */
  entityType: string[];
  /** The whole entity after the change, expanded normalized (with createdAt/modifiedAt); null on delete. */
  entity: ExpandedEntity | null;
  /** Expanded names of the attributes the change touched (all of them on create and delete). */
  changedAttributes: string[];
  /**
   * Attributes the change added, and those it deleted an instance of (subsets of changedAttributes): an
   * attribute with other instances left is both deleted and still in `entity`.
   */
  createdAttributes: string[];
  deletedAttributes: string[];
  /**
   * What the change replaced: each changed attribute that existed before, as it was (every instance); on
   * delete every attribute and the entity's createdAt/modifiedAt. Notifications show previous values
   * (`showChanges`) and deleted attributes from it.
   */
  previous?: Record<string, unknown>;
  ownerOrg: string;
  createdBy: string;
  /** The marking after the change (before it, on delete). */
  marking: Marking;
  readKeys: string[];
  /** The latest observedAt among the changed attributes, when they carry one. */
  observedAt?: string;
}

/** Data of `context.entity.marking_changed` (audited). */
export interface EntityMarkingChangedEvent {
  tenant: string;
  entityId: string;
  incarnation: string;
  entityType: string[];
  ownerOrg: string;
  changedBy: string;
  previous: Marking;
  marking: Marking;
  previousReadKeys: string[];
  readKeys: string[];
}

/** The events this module emits (its part of the platform's event map, src/modules/events/event-map.ts). */
export type ContextEvents = {
  [ENTITY_CREATED]: EntityChangeEvent;
  [ENTITY_UPDATED]: EntityChangeEvent;
  [ENTITY_DELETED]: EntityChangeEvent;
  [ENTITY_MARKING_CHANGED]: EntityMarkingChangedEvent;
};
