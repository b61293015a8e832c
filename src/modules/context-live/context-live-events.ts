/** The events this module emits (its part of the platform's event map, src/modules/events/event-map.ts). */
import type { Marking } from '../sharing/index.ts';

/** A subscription was created, changed or deleted: every instance reloads it from the store. */
export const SUBSCRIPTION_CHANGED = 'context.subscription.changed';

/** A temporal entity was created or changed (its instances, types or marking). */
export const TEMPORAL_ENTITY_CHANGED = 'context.temporal_entity.changed';
/** A temporal entity was deleted with its history. */
export const TEMPORAL_ENTITY_DELETED = 'context.temporal_entity.deleted';

/**
 * A change of a temporal entity as a marked object (live streams tell who may see it, never its content):
 * the generic object change of the platform, scope the tenant.
 */
export interface TemporalEntityChangeEvent {
  kind: string;
  scope: string;
  id: string;
  ownerOrg: string;
  /** Who may see it now ([] once deleted). */
  readKeys: string[];
  /** Who could see it before the change ([] when created). */
  previousReadKeys: string[];
  marking: Marking;
  previousMarking?: Marking;
}

export type ContextLiveEvents = {
  [SUBSCRIPTION_CHANGED]: { tenant: string; id: string };
  [TEMPORAL_ENTITY_CHANGED]: TemporalEntityChangeEvent;
  [TEMPORAL_ENTITY_DELETED]: TemporalEntityChangeEvent;
};
