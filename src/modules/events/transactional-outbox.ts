/**
 * The transactional outbox (docs/event-bus.md, "Publishing through the outbox").
 *
 * - `emit` writes one `event_outbox` row in the caller's transaction: the events, their ids fixed, and
 *   the time until which the writer alone relays them (`claimMs`). A rollback takes the row with it.
 * - After the commit (a Store after-commit hook, so before the caller's `transaction` resolves) this
 *   instance publishes the row's events in order and deletes the row; deletes are batched.
 * - A sweeper on every instance takes rows nobody relayed in time (the writer died between commit and
 *   relay, or a publish failed) with `FOR UPDATE SKIP LOCKED` and a lease, and publishes them again.
 *   The bus drops an id it already stored (duplicate window), and handlers are idempotent by id, so a
 *   row relayed twice is harmless; a row relayed never is what this prevents.
 */
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { sql } from 'kysely';
import { type Clock, systemClock } from '../../kernel/clock.ts';
import { isAppError } from '../../kernel/errors.ts';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { EventBus, PlatformEvent, SerializedEvent } from '../../ports/event-bus.ts';
import type { EventOutbox } from '../../ports/event-outbox.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import type { EventMap } from './event-map.ts';

export interface TransactionalOutboxOptions {
  store: Store;
  bus: EventBus;
  clock?: Clock;
  /** The writer's grace: how long after writing a row only its own instance relays it (default 2 s). */
  claimMs?: number;
  /** How long a sweeper holds the rows it took before another may take them (default 10 s). */
  leaseMs?: number;
  /** How often the sweeper looks for rows left behind (default 500 ms, with jitter). */
  sweepEveryMs?: number;
  /** Rows a sweeper takes at once (default 100). */
  sweepBatch?: number;
  /** Most events on their way to the bus at once (default 256). */
  window?: number;
  /** Wait before relaying a row again after a failed publish (default 1 s), doubling up to the most (30 s). */
  firstRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** A relay failed, or an event was given up. Default: console.error. */
  onError?: (message: string, error: unknown, details: Record<string, unknown>) => void;
}

interface Row {
  id: number;
  /** Serialised once, when written: the row holds the same text, and the bus publishes it as it is. */
  events: SerializedEvent[];
  attempts: number;
}

interface Waiting {
  row: Row;
  settled: () => void;
}

const MAX_DELETE_BATCH = 1000;

export class TransactionalOutbox<M = EventMap> {
  readonly #store: Store;
  readonly #bus: EventBus;
  readonly #clock: Clock;
  readonly #claimMs: number;
  readonly #leaseMs: number;
  readonly #sweepEveryMs: number;
  readonly #sweepBatch: number;
  readonly #window: number;
  readonly #firstRetryDelayMs: number;
  readonly #maxRetryDelayMs: number;
  readonly #onError: NonNullable<TransactionalOutboxOptions['onError']>;
  /** Rows to publish, in the order their transactions committed here (or the sweeper took them). */
  readonly #queue: Waiting[] = [];
  #pumping = false;
  /** Rows handed to the relay and not settled yet (published and deleted, or rescheduled). */
  #unsettled = 0;
  #inFlight = 0;
  #slot: (() => void) | undefined;
  readonly #relayed: number[] = [];
  #deleting: Promise<void> | undefined;
  #deleteTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;
  #stopped = false;
  /** Rows deleted since the last VACUUM (PGlite has no autovacuum: see #vacuum). */
  #deletedSinceVacuum = 0;
  #vacuumedAt = Date.now();
  readonly #stats = { relayed: 0, swept: 0, failed: 0, givenUp: 0 };

  constructor(opts: TransactionalOutboxOptions) {
    this.#store = opts.store;
    this.#bus = opts.bus;
    this.#clock = opts.clock ?? systemClock;
    this.#claimMs = opts.claimMs ?? 2000;
    this.#leaseMs = opts.leaseMs ?? 10_000;
    this.#sweepEveryMs = opts.sweepEveryMs ?? 500;
    this.#sweepBatch = opts.sweepBatch ?? 100;
    this.#window = opts.window ?? 256;
    this.#firstRetryDelayMs = opts.firstRetryDelayMs ?? 1000;
    this.#maxRetryDelayMs = opts.maxRetryDelayMs ?? 30_000;
    this.#onError =
      opts.onError ?? ((message, error, details) => console.error(`events: ${message}`, details, error));
  }

  /**
   * The outbox as one module sees it: its own part `N` of the map (every type of N must be in the map,
   * with the same data), under its name as the events' `source`.
   */
  emitter<N extends { [K in keyof N]: K extends keyof M ? M[K] : never }>(source: string): EventOutbox<N> {
    return {
      emit: (trx, type, data) => this.#write(trx, source, [{ type, data }]),
      emitAll: (trx, events) => this.#write(trx, source, events),
    };
  }

  /** Counters since start: events relayed, rows taken by the sweeper, failed relays, events given up. */
  get stats(): Readonly<{ relayed: number; swept: number; failed: number; givenUp: number }> {
    return { ...this.#stats };
  }

  async #write(
    trx: AnyDb,
    source: string,
    list: ReadonlyArray<{ type: string; data: unknown }>,
  ): Promise<void> {
    if (list.length === 0) return;
    const now = this.#clock.now();
    const time = now.toISOString();
    const events: SerializedEvent[] = list.map((e) => {
      const event: PlatformEvent = {
        id: newTimeOrderedId(now.getTime()),
        type: e.type,
        time,
        source,
        data: e.data,
      };
      // Serialised here, in the transaction: data that is not JSON fails the write, not the relay.
      return { id: event.id, type: event.type, json: JSON.stringify(event) };
    });
    const inserted = await sql<{ id: number }>`insert into event_outbox (events, available_at)
      values (decode(${pack(events)}, 'base64'), clock_timestamp() + ${`${this.#claimMs} milliseconds`}::interval)
      returning id`.execute(trx);
    const id = Number(inserted.rows[0]?.id);
    this.#store.afterCommit(trx, () => this.#relay({ id, events, attempts: 0 }));
  }

  /** Publishes a row's events (in order, behind the rows before it); resolves when it is settled. */
  #relay(row: Row): Promise<void> {
    this.#unsettled++;
    return new Promise<void>((resolve) => {
      const settled = () => {
        this.#unsettled--;
        resolve();
      };
      this.#queue.push({ row, settled });
      if (!this.#pumping) void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      for (let next = this.#queue.shift(); next; next = this.#queue.shift()) {
        const { row, settled } = next;
        const publishes: Promise<unknown>[] = [];
        for (const event of row.events) {
          // Started in order, several at a time: the bus stores them in the order they were started.
          while (this.#inFlight >= this.#window) await new Promise<void>((r) => (this.#slot = r));
          this.#inFlight++;
          const p = this.#bus.publish(event).finally(() => {
            this.#inFlight--;
            const slot = this.#slot;
            this.#slot = undefined;
            slot?.();
          });
          publishes.push(p);
        }
        void Promise.allSettled(publishes).then(async (outcomes) => {
          try {
            await this.#settle(row, outcomes);
          } catch (e) {
            this.#onError('outbox row not settled; the sweeper relays it again', e, { row: row.id });
          } finally {
            settled();
          }
        });
      }
    } finally {
      this.#pumping = false;
    }
  }

  async #settle(row: Row, outcomes: PromiseSettledResult<unknown>[]): Promise<void> {
    const failed: SerializedEvent[] = [];
    let error: unknown;
    outcomes.forEach((o, i) => {
      if (o.status === 'fulfilled') return;
      const event = row.events[i] as SerializedEvent;
      if (isAppError(o.reason) && o.reason.code === 'BUS_INVALID_EVENT') {
        // No bus will ever take it: relaying it again would only hold the events behind it.
        this.#stats.givenUp++;
        this.#onError('event given up: the bus refuses it', o.reason, {
          eventId: event.id,
          type: event.type,
        });
        return;
      }
      failed.push(event);
      error ??= o.reason;
    });
    this.#stats.relayed += row.events.length - failed.length;
    if (failed.length === 0) {
      this.#relayed.push(row.id);
      this.#scheduleDelete();
      return;
    }
    this.#stats.failed++;
    const attempts = row.attempts + 1;
    const delay = Math.min(this.#maxRetryDelayMs, this.#firstRetryDelayMs * 2 ** (attempts - 1));
    this.#onError('events not published; relayed again later', error, {
      row: row.id,
      events: failed.length,
      attempts,
      retryInMs: delay,
    });
    await sql`update event_outbox set events = decode(${pack(failed)}, 'base64'), attempts = ${attempts},
        last_error = ${errorText(error)},
        available_at = clock_timestamp() + ${`${delay} milliseconds`}::interval
      where id = ${row.id}`.execute(this.#store.db);
  }

  #scheduleDelete(): void {
    if (this.#relayed.length >= MAX_DELETE_BATCH) {
      void this.#flushDeletes();
      return;
    }
    // A few milliseconds gather the rows of a burst into one statement; well within the writer's grace.
    this.#deleteTimer ??= setTimeout(() => {
      this.#deleteTimer = undefined;
      void this.#flushDeletes();
    }, 5);
  }

  async #flushDeletes(): Promise<void> {
    while (this.#deleting) await this.#deleting;
    if (this.#relayed.length === 0) return;
    const ids = this.#relayed.splice(0, MAX_DELETE_BATCH);
    this.#deleting = (async () => {
      try {
        await sql`delete from event_outbox where id = any(${ids}::bigint[])`.execute(this.#store.db);
        this.#deletedSinceVacuum += ids.length;
        await this.#vacuum();
      } catch (e) {
        // The rows come back through the sweeper: relayed twice, dropped by the bus as duplicates.
        this.#onError('relayed outbox rows not deleted', e, { rows: ids.length });
      } finally {
        this.#deleting = undefined;
      }
    })();
    await this.#deleting;
    if (this.#relayed.length > 0) await this.#flushDeletes();
  }

  /**
   * Every relayed row is deleted, so the table and its TOAST chunks would grow without end where nothing
   * vacuums them: PGlite has no autovacuum (PostgreSQL's does this by itself). Once a minute at most, and
   * cheap: the live table holds a handful of rows.
   */
  async #vacuum(): Promise<void> {
    if (this.#store.kind !== 'pglite' || this.#deletedSinceVacuum === 0) return;
    if (Date.now() - this.#vacuumedAt < 60_000) return;
    this.#vacuumedAt = Date.now();
    this.#deletedSinceVacuum = 0;
    await sql`vacuum event_outbox`.execute(this.#store.db);
  }

  /** Starts the sweeper (every instance runs one). */
  start(): void {
    if (this.#sweepTimer || this.#stopped) return;
    const tick = () => {
      const jitter = this.#sweepEveryMs * (0.75 + Math.random() / 2);
      this.#sweepTimer = setTimeout(() => {
        this.#sweeping = this.sweep()
          .then(() => undefined)
          .catch((e) => this.#onError('outbox sweep failed', e, {}))
          .finally(() => {
            this.#sweeping = undefined;
            if (!this.#stopped) tick();
          });
      }, jitter);
      this.#sweepTimer.unref();
    };
    tick();
  }

  /**
   * One pass of the sweeper: takes the rows whose writer's grace, lease or retry time is over, oldest
   * first, and relays them. Resolves with the number of rows taken, once they are settled.
   */
  async sweep(): Promise<number> {
    let total = 0;
    for (;;) {
      const taken = await sql<{ id: number; events: Uint8Array; attempts: number }>`update event_outbox o
          set available_at = clock_timestamp() + ${`${this.#leaseMs} milliseconds`}::interval
          where o.id in (select id from event_outbox where available_at <= clock_timestamp()
                         order by id limit ${this.#sweepBatch} for update skip locked)
          returning o.id, o.events, o.attempts`.execute(this.#store.db);
      const rows = taken.rows
        .map((r) => ({
          id: Number(r.id),
          events: unpack(r.events),
          attempts: r.attempts,
        }))
        .sort((a, b) => a.id - b.id);
      total += rows.length;
      this.#stats.swept += rows.length;
      await Promise.all(rows.map((r) => this.#relay(r)));
      if (rows.length < this.#sweepBatch || this.#stopped) return total;
    }
  }

  /** Rows waiting in the outbox (not yet relayed, failed, or given up): for health and tests. */
  async backlog(): Promise<number> {
    const r = await sql<{ n: number }>`select count(*)::int as n from event_outbox`.execute(this.#store.db);
    return Number(r.rows[0]?.n ?? 0);
  }

  /** Stops the sweeper and waits for the relays in flight and their deletes. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#sweepTimer);
    await this.#sweeping;
    while (this.#unsettled > 0) await new Promise((r) => setTimeout(r, 5));
    clearTimeout(this.#deleteTimer);
    this.#deleteTimer = undefined;
    await this.#flushDeletes();
  }
}

/**
 * A row's events: the JSON array of the events' own JSON texts, compressed (fast brotli: a few ms per MB),
 * in base64 for `decode(…, 'base64')`: PGlite takes a base64 text parameter several times faster than a
 * binary one.
 */
function pack(events: SerializedEvent[]): string {
  // Encoded event by event: one joined string of several MB costs V8 more to flatten and encode than the
  // compression itself.
  const parts: Buffer[] = [OPEN];
  events.forEach((e, i) => {
    if (i > 0) parts.push(COMMA);
    parts.push(Buffer.from(e.json));
  });
  parts.push(CLOSE);
  return brotliCompressSync(Buffer.concat(parts), {
    params: { [constants.BROTLI_PARAM_QUALITY]: 0 },
  }).toString('base64');
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

function unpack(bytes: Uint8Array): SerializedEvent[] {
  const events = JSON.parse(brotliDecompressSync(bytes).toString('utf8')) as PlatformEvent[];
  return events.map((e) => ({ id: e.id, type: e.type, json: JSON.stringify(e) }));
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
