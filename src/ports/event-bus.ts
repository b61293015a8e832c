/**
 * The event bus port. Two adapters: in-process (embedded default) and NATS JetStream (`NATS_URL`).
 *
 * Delivery is at least once; handlers must be idempotent by `event.id`.
 * - `mode: 'group'` (default): a durable, named consumer group. Each event is handled by one member of
 *   the group across all instances (work sharing), and events published while no member runs are kept
 *   and delivered later.
 * - `mode: 'broadcast'`: every subscriber on every instance gets every event published from now on
 *   (live streams, cache invalidation).
 */
export interface PlatformEvent<T = unknown> {
  /** Unique id (time-ordered UUID); the idempotency key for handlers. */
  id: string;
  /** Dotted past tense, module first: `entity.updated`, `incident.opened`, `access.org.created`. */
  type: string;
  /** ISO 8601 time of the fact. */
  time: string;
  /** The instance or component that published it. */
  source: string;
  data: T;
}

export type EventHandler = (event: PlatformEvent) => Promise<void>;

export interface SubscribeOptions {
  /** Event type patterns: exact (`entity.updated`), `prefix.*` (one level) or `prefix.>` (any depth). */
  types: string[];
  mode?: 'group' | 'broadcast';
  /** Durable consumer group name; required in group mode. */
  group?: string;
  /** How many times a failing handler is retried before the event is given up (dead-lettered). */
  maxDeliver?: number;
}

export interface Subscription {
  unsubscribe(): Promise<void>;
}

export interface EventBus {
  readonly kind: 'memory' | 'nats';
  publish(event: PlatformEvent): Promise<void>;
  subscribe(options: SubscribeOptions, handler: EventHandler): Promise<Subscription>;
  ping(): Promise<void>;
  /** Stops taking new events, lets handlers in flight finish, then closes. */
  close(): Promise<void>;
}
