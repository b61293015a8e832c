/**
 * context-live: NGSI-LD subscriptions and notifications, temporal history, IoT ingestion.
 * Other modules and the API use only what is exported here.
 */
export type { ContextLive, ContextLiveDeps } from './context-live.ts';
export { ACCOUNT_EVENTS, createContextLive } from './context-live.ts';
export {
  type ContextLiveEvents,
  SUBSCRIPTION_CHANGED,
  TEMPORAL_ENTITY_CHANGED,
  TEMPORAL_ENTITY_DELETED,
  type TemporalEntityChangeEvent,
} from './context-live-events.ts';
export { createCoreQueryPort } from './core-query-port.ts';
export type { DeadLetter } from './dead-letter-store.ts';
export type { CurrentEntity, PendingItem, RetryPolicy } from './delivery-engine.ts';
export type { ChangeKind, LiveEntityChange } from './entity-change-event.ts';
export {
  ENTITY_CREATED,
  ENTITY_DELETED,
  ENTITY_EVENT_TYPES,
  ENTITY_UPDATED,
  incarnationOf,
} from './entity-change-event.ts';
export type { IngestTarget } from './ingest-mapping.ts';
export { entityIdFor, MAX_PAYLOAD_BYTES, parseTopic, TOPIC_ROOT } from './ingest-mapping.ts';
export type { IngestMessage, IngestOutcome } from './ingestion-service.ts';
export { contextLiveMigrations } from './migrations.ts';
export type { NotificationSender, OutgoingNotification } from './notification.ts';
export type {
  AccountStatusPort,
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
  LiveGate,
  QueryPort,
} from './ports.ts';
export type { SubscriptionRecord, SubscriptionSpec } from './subscription.ts';
export { OWNER_DISABLED, subscriptionStatus } from './subscription.ts';
export { type LivePrincipal, SUBSCRIPTION_MARKING } from './subscription-service.ts';
export { SUBSCRIPTION_KIND } from './subscription-store.ts';
export type { TemporalProvision } from './temporal-provision.ts';
export { AGGR_METHODS, parseDuration } from './temporal-query.ts';
export type { TemporalAnswer, TemporalRequest } from './temporal-service.ts';
export { RETENTION_KIND, type ReplayObservation, TEMPORAL_ENTITY_KIND } from './temporal-store.ts';
