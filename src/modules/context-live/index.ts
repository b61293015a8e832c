/**
 * context-live: NGSI-LD subscriptions and notifications, temporal history, IoT ingestion.
 * Other modules and the API use only what is exported here.
 */
export type { ContextLive, ContextLiveDeps } from './context-live.ts';
export { createContextLive } from './context-live.ts';
export { type ContextLiveEvents, SUBSCRIPTION_CHANGED } from './context-live-events.ts';
export { createCoreQueryPort } from './core-query-port.ts';
export type { DeadLetter } from './dead-letter-store.ts';
export type { PendingItem, RetryPolicy } from './delivery-engine.ts';
export type { ChangeKind, LiveEntityChange } from './entity-change-event.ts';
export { ENTITY_CREATED, ENTITY_DELETED, ENTITY_EVENT_TYPES, ENTITY_UPDATED } from './entity-change-event.ts';
export type { IngestTarget } from './ingest-mapping.ts';
export { entityIdFor, MAX_PAYLOAD_BYTES, parseTopic, TOPIC_ROOT } from './ingest-mapping.ts';
export type { IngestMessage, IngestOutcome } from './ingestion-service.ts';
export { contextLiveMigrations } from './migrations.ts';
export type { NotificationSender, OutgoingNotification } from './notification.ts';
export type {
  ActiveLdContext,
  EntityFormat,
  EntityFragment,
  EntityPredicate,
  EntityReaderPort,
  EntitySelection,
  EntityWriterPort,
  ExpandedEntity,
  GeoQuery,
  IngestPrincipal,
  JsonLdContext,
  LdContextPort,
  QueryPort,
  SubscriberKeysPort,
} from './ports.ts';
export type { SubscriptionRecord, SubscriptionSpec } from './subscription.ts';
export { subscriptionStatus } from './subscription.ts';
export type { LivePrincipal } from './subscription-service.ts';
export { AGGR_METHODS, parseDuration } from './temporal-query.ts';
export type { TemporalRequest } from './temporal-service.ts';
