/** Domain events: the platform's one event map and the transactional outbox that relays them to the bus. */
export type { EventMap, EventType } from './event-map.ts';
export { type EventsTables, eventsMigrations } from './migrations.ts';
export { TransactionalOutbox, type TransactionalOutboxOptions } from './transactional-outbox.ts';
