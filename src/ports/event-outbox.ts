/**
 * The event outbox port: how a module announces a change. The events are written in the caller's
 * transaction, so they exist exactly when the change does, and reach the event bus after the commit, at
 * least once (src/modules/events, docs/event-bus.md).
 *
 * `M` maps each event type a module may emit to the type of its data; every module declares its own
 * map beside its payload types, and src/modules/events/event-map.ts joins them into the platform's one map.
 */
import type { AnyDb } from './store.ts';

/** One event of a map: its type and the data that type carries. */
export type EventOf<M> = { [K in keyof M & string]: { type: K; data: M[K] } }[keyof M & string];

export interface EventOutbox<M> {
  /**
   * Writes one event in the transaction `trx` (from `Store.transaction`). It reaches the bus once the
   * transaction committed (before `transaction` resolves, normally), or later from any instance's
   * sweeper; never when the transaction rolls back. Its id is fixed now, so a second relay is a duplicate
   * the bus drops and handlers recognise.
   */
  emit<K extends keyof M & string>(trx: AnyDb, type: K, data: M[K]): Promise<void>;
  /** Writes several events in one row, published in this order (a batch write's changes). */
  emitAll(trx: AnyDb, events: ReadonlyArray<EventOf<M>>): Promise<void>;
}
