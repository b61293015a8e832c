export type {
  EventBus,
  EventDelivery,
  EventHandler,
  PlatformEvent,
  SerializedEvent,
  SubscribeOptions,
  Subscription,
} from './event-bus.ts';
export type { EventOf, EventOutbox } from './event-outbox.ts';
export type { AnyDb, MigrationResult, Store } from './store.ts';
