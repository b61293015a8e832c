/** The events this module emits (its part of the platform's event map, src/modules/events/event-map.ts). */

/** A subscription was created, changed or deleted: every instance reloads it from the store. */
export const SUBSCRIPTION_CHANGED = 'context.subscription.changed';

export type ContextLiveEvents = {
  [SUBSCRIPTION_CHANGED]: { tenant: string; id: string };
};
