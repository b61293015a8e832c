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

/**
 * An event already serialised: `json` is the JSON text of a PlatformEvent with this id and type. The outbox
 * publishes what it wrote with the change as it is, instead of serialising every event a second time.
 */
export interface SerializedEvent {
  readonly id: string;
  readonly type: string;
  readonly json: string;
}

/** What the bus tells a handler about this delivery of an event. */
export interface EventDelivery {
  /**
   * 1 on the first delivery, 2 on the first retry, … A handler that sees `attempt > 1` (or an `event.id`
   * it already processed) is looking at a redelivery and must not repeat side effects.
   */
  attempt: number;
}

/**
 * Handles one event. Resolving acknowledges the event; throwing (or rejecting) asks for a redelivery
 * later (group mode) until `maxDeliver` attempts, after which the event is dead-lettered. In broadcast
 * mode a failing handler is logged and the event is not redelivered.
 */
export type EventHandler = (event: PlatformEvent, delivery: EventDelivery) => Promise<void>;

export interface SubscribeOptions {
  /**
   * Event type patterns: exact (`entity.updated`), `prefix.*` (exactly one more level) or `prefix.>` (one
   * or more levels); `*` and `>` alone match every one-level / every type. A wildcard is only allowed as
   * the last token. An event matching several patterns of one subscription is delivered once.
   */
  types: string[];
  mode?: 'group' | 'broadcast';
  /**
   * Durable consumer group name (letters, digits, `-`, `_`); required in group mode. A group that is
   * new starts with the events published from its first subscription on; from then on its events are
   * kept while it has no member. All members of a group subscribe with the same types.
   */
  group?: string;
  /**
   * Group mode: how many deliveries (the first one included) a failing event gets before it is given up
   * and dead-lettered. Default set by the adapter (5).
   */
  maxDeliver?: number;
}

export interface Subscription {
  /** Stops deliveries to this handler and waits for its handler in flight. Group events stay kept. */
  unsubscribe(): Promise<void>;
}

export interface EventBus {
  readonly kind: 'memory' | 'nats';
  /**
   * Resolves once the event is accepted (stored, for NATS); does not wait for handlers. Publishing an
   * event id again within the adapter's duplicate window is a no-op.
   */
  publish(event: PlatformEvent | SerializedEvent): Promise<void>;
  subscribe(options: SubscribeOptions, handler: EventHandler): Promise<Subscription>;
  ping(): Promise<void>;
  /** Stops taking new events, lets handlers in flight finish, then closes. */
  close(): Promise<void>;
}
