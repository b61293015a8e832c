/**
 * The notification delivery engine.
 *
 * - Matching runs in memory against every live subscription of the tenant (compiled q and geoQ).
 * - Each subscription has its own ordered queue; while a notification is in flight, later changes gather
 *   and leave together in the next notification (its `data` holds several entities).
 * - A change is handed back to the bus (the handler resolves) only once it was delivered or written to the
 *   outbox table: nothing is lost if the receiver or this instance fails.
 * - A failed notification goes to the outbox and is retried with exponential backoff (1 s doubling up to
 *   15 s by default), oldest first per subscription, so order is kept and a receiver that was down for a
 *   minute gets everything within seconds of coming back: the retry takes the subscription's next waiting
 *   notifications with it, in one notification.
 * - Outbox rows in work (a retry, or a slow first attempt made durable) are held with a short lease that
 *   the instance holding them renews while it lives (`leaseMs`, 3 s): another instance takes the work of
 *   a dead one over within seconds. Each subscription's retries run on their own, so one that waits for
 *   its receiver never holds back another's.
 * - The sharing gate decides at delivery time, every time: the subscriber organisation's keys now
 *   (`gate.orgReadKeys`) against the entity's keys at the change (`gate.canSee`) and, for retries, against
 *   the entity as it is now: a retry of an entity that was deleted, re-created (another incarnation) or
 *   re-marked away from the subscriber is dropped. Markings only tighten.
 * - Every notification carries the marking of what it holds (the `SafeCity-Marking` header, or the MQTT
 *   message's metadata): the tightest label of its entities, at the change and (for retries) now.
 */
import { type Kysely, sql } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { systemClock } from '../../kernel/clock.ts';
import { AppError, isAppError } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { Store } from '../../ports/store.ts';
import { type Marking, markingLabel } from '../sharing/index.ts';
import { type ChangeKind, incarnationOf, type LiveEntityChange, typesOf } from './entity-change-event.ts';
import { buildNotification, type NotificationSender, type NotifiedEntity } from './notification.ts';
import type { EntityReaderPort, LdContextPort, LiveGate, QueryPort } from './ports.ts';
import type { SubscriptionRecord, SubscriptionSpec } from './subscription.ts';
import {
  type CompiledSubscription,
  compileIdPatterns,
  firedTriggers,
  matchChange,
} from './subscription-matcher.ts';
import type { ContextLiveTables } from './tables.ts';

/** One pending entity of a notification, as queued in memory and kept in the outbox. */
export interface PendingItem extends NotifiedEntity {
  /** The entity's read keys when it changed. */
  readKeys: string[];
  /** The entity's marking and owner when it changed (what the notification's label is made of). */
  marking: Marking;
  ownerOrg: string;
  /** The incarnation it belongs to; undefined only for a deletion the core did not name one for. */
  incarnation?: string | undefined;
  trigger: string;
}

/** An entity as it is now, for delivery-time checks (the history store keeps it from entity events). */
export interface CurrentEntity {
  incarnation: string;
  readKeys: string[];
  marking: Marking;
  ownerOrg: string;
  /** The incarnation is gone (deleted, or superseded by a newer one). */
  deleted: boolean;
}

export interface RetryPolicy {
  firstDelayMs: number;
  maxDelayMs: number;
  /** A notification still undelivered after this long is given up (outbox state `dead`). */
  giveUpAfterMs: number;
}

export interface DeliveryEngineOptions {
  store: Store;
  ld: LdContextPort;
  query?: QueryPort | undefined;
  senders: NotificationSender[];
  /** Decides what each subscriber organisation may receive. */
  gate: Pick<LiveGate, 'orgReadKeys' | 'canSee'>;
  entityReader?: EntityReaderPort | undefined;
  /** Entities as they are now (incarnation, marking): retries and periodic notifications need them. */
  currentEntities?: ((tenant: string, ids: string[]) => Promise<Map<string, CurrentEntity>>) | undefined;
  clock?: Clock;
  retry?: Partial<RetryPolicy>;
  retryPollMs?: number;
  /** How long a notification in work is held before another instance may take it; renewed while held (3 s). */
  leaseMs?: number;
  statusFlushMs?: number;
  maxBatch?: number;
  /** How long a bus handler waits for a notification before it is made durable in the outbox (1 s). */
  spillMs?: number;
  onError?: (message: string, error: unknown) => void;
}

interface Waiting {
  item: PendingItem;
  done: () => void;
}

interface SubState {
  key: string;
  rec: SubscriptionRecord;
  cs: CompiledSubscription;
  queue: Waiting[];
  inFlight: boolean;
  /** The outbox holds undelivered notifications for it: new ones go behind them. */
  blocked: boolean;
  /** A retry of its outbox runs on this instance. */
  retrying: boolean;
  /** Changes are being written to its outbox (it is blocked). */
  spilling: boolean;
  lastSentAt: number;
  /** Outbox writes of this subscription, in order. */
  outboxChain: Promise<void>;
  throttleTimer?: NodeJS.Timeout | undefined;
  intervalTimer?: NodeJS.Timeout | undefined;
}

interface StatusDelta {
  tenant: string;
  id: string;
  sent: number;
  failed: number;
  lastNotification?: Date;
  lastSuccess?: Date;
  lastFailure?: Date;
  status?: 'ok' | 'failed';
  error?: string | null;
}

const keyOf = (tenant: string, id: string) => `${tenant}\u0000${id}`;

/**
 * The part of what a change replaced that a subscription's notifications show: everything with
 * `showChanges`, else the attributes of which the change deleted an instance (shown as NGSI-LD Nulls), and
 * on deletion the entity's system attributes. Kept small: it travels with the item through the outbox.
 */
function previousFor(
  spec: SubscriptionSpec,
  change: LiveEntityChange,
  trigger: string,
): Record<string, unknown> | undefined {
  const previous = change.previous;
  if (!previous) return undefined;
  if (spec.notification.showChanges === true) return previous;
  const out: Record<string, unknown> = {};
  const deleted = change.entity === null && trigger !== 'attributeDeleted' ? [] : change.deletedAttributes;
  for (const k of deleted ?? []) if (previous[k] !== undefined) out[k] = previous[k];
  if (change.entity === null) {
    for (const k of ['createdAt', 'modifiedAt']) if (previous[k] !== undefined) out[k] = previous[k];
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Notifications a retry takes along behind the one it retries, and the most items it sends at once. */
const MAX_FOLLOWERS = 100;
const MAX_RETRY_ITEMS = 1000;

interface OutboxRow {
  id: string;
  tenant: string;
  subscription_id: string;
  attempts: number;
  created_at: Date;
  payload: unknown;
}

function payloadOf(row: OutboxRow): PendingItem[] {
  return (typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload) as PendingItem[];
}

export class DeliveryEngine {
  readonly #o: DeliveryEngineOptions;
  readonly #clock: Clock;
  readonly #retry: RetryPolicy;
  readonly #subs = new Map<string, SubState>();
  readonly #byTenant = new Map<string, Set<SubState>>();
  readonly #deltas = new Map<string, StatusDelta>();
  #retryTimer?: NodeJS.Timeout | undefined;
  #statusTimer?: NodeJS.Timeout | undefined;
  #leaseTimer?: NodeJS.Timeout | undefined;
  /** Outbox rows this instance works on: their leases are renewed until they are settled. */
  readonly #held = new Set<string>();
  #renewing: Promise<void> = Promise.resolve();
  #retrying = false;
  #retryAgain = false;
  #stopped = false;
  #stopping = false;
  readonly #inflight = new Set<Promise<unknown>>();

  constructor(opts: DeliveryEngineOptions) {
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#retry = { firstDelayMs: 1000, maxDelayMs: 15_000, giveUpAfterMs: 24 * 3600_000, ...opts.retry };
  }

  get #db(): Kysely<ContextLiveTables> {
    return this.#o.store.db.withTables<ContextLiveTables>() as unknown as Kysely<ContextLiveTables>;
  }

  /** Loads live subscriptions and starts the retry and status timers. */
  async start(records: SubscriptionRecord[]): Promise<void> {
    for (const r of records) {
      try {
        await this.put(r);
      } catch (e) {
        // One subscription that no longer compiles (its @context unreachable...) must not stop the rest.
        this.#o.onError?.(`context-live: subscription ${r.spec.id} not loaded`, e);
      }
    }
    const blocked = await this.#db
      .selectFrom('context_live_outbox')
      .select(['tenant', 'subscription_id'])
      .where('state', '=', 'pending')
      .distinct()
      .execute();
    for (const b of blocked) {
      const s = this.#subs.get(keyOf(b.tenant, b.subscription_id));
      if (s) s.blocked = true;
    }
    const poll = this.#o.retryPollMs ?? 250;
    this.#retryTimer = setInterval(() => this.#track(this.runRetries()), poll);
    this.#retryTimer.unref();
    this.#statusTimer = setInterval(() => this.#track(this.flushStatus()), this.#o.statusFlushMs ?? 250);
    this.#statusTimer.unref();
    this.#leaseTimer = setInterval(() => {
      this.#renewing = this.#renewLeases().catch((e) => this.#o.onError?.('context-live leases', e));
    }, this.#leaseMs / 3);
    this.#leaseTimer.unref();
  }

  get #leaseMs(): number {
    return this.#o.leaseMs ?? 3000;
  }

  /** Extends the leases of the rows this instance still works on (it is alive: nobody takes them). */
  async #renewLeases(): Promise<void> {
    if (this.#held.size === 0) return;
    await this.#db
      .updateTable('context_live_outbox')
      .set({ next_attempt_at: new Date(this.#clock.now().getTime() + this.#leaseMs) })
      .where('id', 'in', [...this.#held])
      .where('state', '=', 'pending')
      .execute();
  }

  /** Stops renewing rows' leases before they are deleted or rescheduled (a renewal must not undo that). */
  async #release(ids: string[]): Promise<void> {
    for (const id of ids) this.#held.delete(id);
    await this.#renewing;
  }

  #track(p: Promise<unknown>): void {
    const q = p.catch((e) => this.#o.onError?.('context-live delivery', e));
    this.#inflight.add(q);
    void q.finally(() => this.#inflight.delete(q));
  }

  /** Adds or replaces a subscription (after create, update, or a change seen on another instance). */
  async put(rec: SubscriptionRecord): Promise<void> {
    const spec = rec.spec;
    const ctx = spec.jsonldContext;
    const cs: CompiledSubscription = {
      spec,
      idPatterns: compileIdPatterns(spec),
      q: spec.q && this.#o.query ? await this.#o.query.compileQ(spec.q, ctx) : undefined,
      geoQ: spec.geoQ && this.#o.query ? await this.#o.query.compileGeoQ(spec.geoQ, ctx) : undefined,
    };
    const key = keyOf(rec.tenant, spec.id);
    const old = this.#subs.get(key);
    if (old?.intervalTimer) clearInterval(old.intervalTimer);
    const state: SubState = old ?? {
      key,
      rec,
      cs,
      queue: [],
      inFlight: false,
      blocked: false,
      retrying: false,
      spilling: false,
      lastSentAt: 0,
      outboxChain: Promise.resolve(),
    };
    state.rec = rec;
    state.cs = cs;
    state.intervalTimer = undefined;
    this.#subs.set(key, state);
    let set = this.#byTenant.get(rec.tenant);
    if (!set) {
      set = new Set();
      this.#byTenant.set(rec.tenant, set);
    }
    set.add(state);
    if (spec.timeInterval !== undefined && this.#o.entityReader) {
      state.intervalTimer = setInterval(() => this.#track(this.#periodic(state)), spec.timeInterval * 1000);
      state.intervalTimer.unref();
    }
  }

  /**
   * Rejects (AppError) an endpoint that no sender takes, or that its sender refuses for `ownerOrg`'s
   * subscriptions: the check of create and update; delivery checks again.
   */
  async checkEndpoint(uri: string, ownerOrg: string): Promise<void> {
    const scheme = uri.slice(0, uri.indexOf(':')).toLowerCase();
    const sender = this.#o.senders.find((x) => x.schemes.includes(scheme));
    if (!sender) {
      throw new AppError(
        'CONTEXT_LIVE_SUBSCRIPTION_INVALID',
        `notification.endpoint.uri: this broker sends no ${scheme} notifications`,
      );
    }
    await sender.checkEndpoint(uri, ownerOrg);
  }

  remove(tenant: string, id: string): void {
    const key = keyOf(tenant, id);
    const s = this.#subs.get(key);
    if (!s) return;
    if (s.intervalTimer) clearInterval(s.intervalTimer);
    if (s.throttleTimer) clearTimeout(s.throttleTimer);
    for (const w of s.queue) w.done();
    s.queue = [];
    this.#subs.delete(key);
    this.#byTenant.get(tenant)?.delete(s);
  }

  /**
   * Pauses (reason) or resumes (undefined) the subscriptions created by one account, on this instance. A
   * paused subscription keeps its undelivered notifications until it resumes (delivery checks them again).
   */
  pauseCreatedBy(userId: string, reason: string | undefined): void {
    for (const s of this.#subs.values()) {
      if (s.rec.createdBy === userId) this.#setPaused(s, reason);
    }
  }

  /** Applies the store's pauses (by tenant and id) to every subscription held here. */
  applyPausedReasons(reasons: Map<string, string>): void {
    for (const s of this.#subs.values()) this.#setPaused(s, reasons.get(s.key));
  }

  #setPaused(s: SubState, reason: string | undefined): void {
    if (s.rec.pausedReason === reason) return;
    s.rec = { ...s.rec, pausedReason: reason };
    if (!reason) this.#track(this.runRetries());
  }

  #live(s: SubState, now: number): boolean {
    const spec = s.rec.spec;
    if (!spec.isActive || s.rec.pausedReason) return false;
    if (spec.expiresAt && Date.parse(spec.expiresAt) <= now) return false;
    return true;
  }

  /**
   * Handles one entity change: resolves once every matching subscription has delivered it or holds it in
   * the outbox. Safe to call for the same change twice (at-least-once bus): the receiver may see it twice.
   */
  async handleChange(kind: ChangeKind, change: LiveEntityChange, at?: string): Promise<void> {
    const subs = this.#byTenant.get(change.tenant);
    if (!subs || subs.size === 0) return;
    const now = this.#clock.now().getTime();
    const fired = firedTriggers(kind, change);
    const waits: Promise<void>[] = [];
    for (const s of subs) {
      if (s.rec.spec.timeInterval !== undefined || !this.#live(s, now)) continue;
      const trigger = matchChange(s.cs, kind, change, fired);
      if (!trigger) continue;
      const item: PendingItem = {
        entityId: change.entityId,
        types: change.entityType,
        entity: change.entity,
        readKeys: change.readKeys,
        marking: change.marking,
        ownerOrg: change.ownerOrg,
        incarnation: incarnationOf(change),
        trigger,
      };
      const previous = previousFor(s.rec.spec, change, trigger);
      if (previous) item.previous = previous;
      if (kind === 'deleted') item.deletedAt = at ?? new Date(now).toISOString();
      waits.push(this.#enqueue(s, item));
    }
    if (waits.length > 0) await Promise.all(waits);
  }

  #enqueue(s: SubState, item: PendingItem): Promise<void> {
    if (s.rec.spec.throttling !== undefined && !s.blocked) {
      // A throttled subscriber asked for at most one notification per period and so for the latest state,
      // not every change: the change is handed back at once instead of holding the bus for the period.
      // Changes still queued when the engine stops go to the outbox.
      s.queue.push({ item, done: () => {} });
      this.#pump(s);
      return Promise.resolve();
    }
    return new Promise<void>((done) => {
      s.queue.push({ item, done });
      this.#pump(s);
    });
  }

  #pump(s: SubState): void {
    if (s.queue.length === 0 || this.#stopped) return;
    if (s.blocked) {
      // Behind undelivered notifications (or a slow one in flight): keep the order by going to the outbox.
      // While one write is under way, what arrives waits and goes in the next one: one row per write, not
      // per change, so a busy subscription keeps up while it is blocked.
      if (s.spilling) return;
      s.spilling = true;
      const batch = s.queue.splice(0, s.queue.length);
      this.#track(
        this.#chain(s, () =>
          this.#toOutbox(
            s,
            batch.map((w) => w.item),
            0,
            undefined,
          ),
        ).finally(() => {
          s.spilling = false;
          for (const w of batch) w.done();
          if (s.queue.length > 0) this.#pump(s);
          if (!s.inFlight) this.#track(this.runRetries());
        }),
      );
      return;
    }
    if (s.inFlight) return;
    const throttleMs = (s.rec.spec.throttling ?? 0) * 1000;
    if (throttleMs > 0) {
      const wait = s.lastSentAt + throttleMs - this.#clock.now().getTime();
      if (wait > 0) {
        s.throttleTimer ??= setTimeout(() => {
          s.throttleTimer = undefined;
          this.#pump(s);
        }, wait);
        return;
      }
    }
    let batch = s.queue.splice(0, this.#o.maxBatch ?? 200);
    if (throttleMs > 0) batch = this.#coalesce(batch);
    s.inFlight = true;
    s.lastSentAt = this.#clock.now().getTime();
    const items = batch.map((w) => w.item);
    // A slow receiver must not hold the bus: past `spillMs` the notification is made durable in the outbox
    // (leased, so no retry races the request in flight) and the changes are handed back; the answer then
    // deletes the row (delivered) or schedules its retry.
    let settled = false;
    let released = false;
    let spill: Promise<string> | undefined;
    const release = () => {
      if (released) return;
      released = true;
      for (const w of batch) w.done();
    };
    const timer = setTimeout(() => {
      if (settled) return;
      s.blocked = true;
      spill = this.#chain(s, () => this.#toOutbox(s, items, 0, undefined, this.#leaseMs));
      spill.then(
        (id) => {
          if (!settled) this.#held.add(id);
          release();
        },
        () => {},
      );
    }, this.#o.spillMs ?? 1000);
    this.#track(
      this.#deliver(s, items, false)
        .then(
          async () => {
            settled = true;
            clearTimeout(timer);
            if (spill) {
              const id = await spill;
              await this.#release([id]);
              await this.#db.deleteFrom('context_live_outbox').where('id', '=', id).execute();
            }
          },
          async (e) => {
            settled = true;
            clearTimeout(timer);
            s.blocked = true;
            if (spill) {
              const id = await spill;
              await this.#release([id]);
              const now = this.#clock.now();
              await this.#db
                .updateTable('context_live_outbox')
                .set({
                  attempts: 1,
                  next_attempt_at: new Date(now.getTime() + this.#backoff(1)),
                  last_error: errorText(e),
                })
                .where('id', '=', id)
                .execute();
            } else {
              await this.#chain(s, () => this.#toOutbox(s, items, 1, errorText(e)));
            }
          },
        )
        .finally(() => {
          release();
          s.inFlight = false;
          this.#pump(s);
        }),
    );
  }

  /** Runs outbox writes of one subscription one after the other, so their ids keep the changes' order. */
  #chain<T>(s: SubState, f: () => Promise<T>): Promise<T> {
    const next = s.outboxChain.then(f, f);
    s.outboxChain = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  /** Under throttling only the latest state of each entity is sent (the waiters of older ones resolve). */
  #coalesce(batch: Waiting[]): Waiting[] {
    const latest = new Map<string, number>();
    for (const [i, w] of batch.entries()) latest.set(w.item.entityId, i);
    const keep: Waiting[] = [];
    const drop: Waiting[] = [];
    for (const [i, w] of batch.entries()) (latest.get(w.item.entityId) === i ? keep : drop).push(w);
    for (const w of drop) w.done();
    return keep;
  }

  /**
   * What the subscriber organisation's systems read with now: organisation keys only — a notification goes
   * to a system of the organisation, not to a named user of TLP:RED.
   */
  #subscriberKeys(s: SubState): Promise<string[]> {
    return this.#o.gate.orgReadKeys(s.rec.ownerOrg);
  }

  /** Sends one notification with what the subscriber may see; throws when the receiver did not take it. */
  async #deliver(s: SubState, items: PendingItem[], retry: boolean): Promise<void> {
    const gate = this.#o.gate;
    const keys = await this.#subscriberKeys(s);
    // Items written by an older version carry no marking: nothing can label them, so they do not leave.
    let visible = items.filter((it) => it.marking !== undefined && gate.canSee(keys, it));
    const labels: Array<{ marking: Marking; ownerOrg: string }> = [];
    if (retry && visible.length > 0 && this.#o.currentEntities) {
      const current = await this.#o.currentEntities(s.rec.tenant, [
        ...new Set(visible.map((i) => i.entityId)),
      ]);
      visible = visible.filter((it) => {
        const now = current.get(it.entityId);
        // Not recorded yet (history lags by a moment): the item's own marking decided above.
        if (now === undefined) return true;
        const same =
          it.incarnation === undefined
            ? now.deleted && it.entity === null
            : now.incarnation === it.incarnation;
        if (!same || (it.entity !== null && now.deleted) || !gate.canSee(keys, now)) return false;
        labels.push(now);
        return true;
      });
    }
    if (visible.length === 0) return;
    const spec = s.rec.spec;
    const at = this.#clock.now();
    const n = await buildNotification(spec, s.rec.tenant, s.rec.ownerOrg, visible, this.#o.ld, newId(), at, {
      marking: markingLabel([...visible, ...labels]),
    });
    const scheme = n.uri.slice(0, n.uri.indexOf(':')).toLowerCase();
    const sender = this.#o.senders.find((x) => x.schemes.includes(scheme));
    try {
      if (!sender) throw new Error(`no notification sender for ${scheme}`);
      await sender.send(n);
    } catch (e) {
      this.#status(s, at, false, subscriberReason(e));
      throw e;
    }
    this.#status(s, at, true);
  }

  #status(s: SubState, at: Date, ok: boolean, error?: string): void {
    const d = this.#deltas.get(s.key) ?? { tenant: s.rec.tenant, id: s.rec.spec.id, sent: 0, failed: 0 };
    d.sent++;
    d.lastNotification = at;
    if (ok) {
      d.lastSuccess = at;
      d.status = 'ok';
      d.error = null;
    } else {
      d.failed++;
      d.lastFailure = at;
      d.status = 'failed';
      d.error = error ?? 'failed';
    }
    this.#deltas.set(s.key, d);
    const del = s.rec.delivery;
    del.timesSent++;
    del.lastNotification = at.toISOString();
    if (ok) {
      del.lastSuccess = at.toISOString();
      del.status = 'ok';
    } else {
      del.timesFailed++;
      del.lastFailure = at.toISOString();
      del.status = 'failed';
    }
  }

  /** Writes the delivery counters gathered since the last flush (one statement for all). */
  async flushStatus(): Promise<void> {
    if (this.#deltas.size === 0) return;
    const ds = [...this.#deltas.values()];
    this.#deltas.clear();
    const col = <T>(f: (d: StatusDelta) => T) => ds.map(f);
    await sql`update context_live_subscription s set
        times_sent = s.times_sent + d.sent,
        times_failed = s.times_failed + d.failed,
        last_notification = coalesce(d.ln, s.last_notification),
        last_success = coalesce(d.ls, s.last_success),
        last_failure = coalesce(d.lf, s.last_failure),
        last_status = coalesce(d.st, s.last_status),
        last_error = case when d.st = 'ok' then null else coalesce(d.err, s.last_error) end
      from unnest(${col((d) => d.tenant)}::text[], ${col((d) => d.id)}::text[], ${col((d) => d.sent)}::int[],
        ${col((d) => d.failed)}::int[], ${col((d) => d.lastNotification ?? null)}::timestamptz[],
        ${col((d) => d.lastSuccess ?? null)}::timestamptz[], ${col((d) => d.lastFailure ?? null)}::timestamptz[],
        ${col((d) => d.status ?? null)}::text[], ${col((d) => d.error ?? null)}::text[])
        as d(tenant, id, sent, failed, ln, ls, lf, st, err)
      where s.tenant = d.tenant and s.id = d.id`.execute(this.#o.store.db);
  }

  #backoff(attempts: number): number {
    return Math.min(this.#retry.maxDelayMs, this.#retry.firstDelayMs * 2 ** Math.max(0, attempts - 1));
  }

  #lastMs = 0;
  #seq = 0;

  /** Outbox ids sort in the order this instance wrote them, even within one millisecond. */
  #outboxId(ms: number): string {
    if (ms <= this.#lastMs) this.#seq++;
    else {
      this.#lastMs = ms;
      this.#seq = 0;
    }
    return `${String(this.#lastMs).padStart(15, '0')}-${String(this.#seq).padStart(6, '0')}-${newId().slice(0, 8)}`;
  }

  /** Writes pending items to the outbox; `leaseMs` keeps the retry worker off it (a request in flight). */
  async #toOutbox(
    s: SubState,
    items: PendingItem[],
    attempts: number,
    error: string | undefined,
    leaseMs?: number,
  ): Promise<string> {
    const now = this.#clock.now();
    const id = this.#outboxId(now.getTime());
    const delay = leaseMs ?? (attempts > 0 ? this.#backoff(attempts) : 0);
    await this.#db
      .insertInto('context_live_outbox')
      .values({
        id,
        tenant: s.rec.tenant,
        subscription_id: s.rec.spec.id,
        created_at: now,
        attempts,
        next_attempt_at: new Date(now.getTime() + delay),
        last_error: error ?? null,
        state: 'pending',
        payload: JSON.stringify(items),
      })
      .execute();
    return id;
  }

  /** One pass of the retry worker: the oldest due notification of each blocked subscription. */
  async runRetries(): Promise<void> {
    if (this.#stopped || this.#stopping) return;
    if (this.#retrying) {
      // A pass is running: it makes one more when it ends, so what was just written is not left waiting.
      this.#retryAgain = true;
      return;
    }
    this.#retrying = true;
    try {
      await this.#retryPass();
      while (this.#retryAgain && !this.#stopped && !this.#stopping) {
        this.#retryAgain = false;
        await this.#retryPass();
      }
    } finally {
      this.#retrying = false;
    }
  }

  /**
   * Takes the oldest due notification of each subscription with undelivered ones (none of whose retries
   * runs here already), leased, and starts its retry; then marks which subscriptions are blocked.
   */
  async #retryPass(): Promise<void> {
    const now = this.#clock.now();
    const lease = new Date(now.getTime() + this.#leaseMs);
    const claimed = await sql<OutboxRow>`update context_live_outbox o set next_attempt_at = ${lease}
        where o.id in (
          select id from context_live_outbox
          where state = 'pending' and next_attempt_at <= ${now}
            and id in (select min(id) from context_live_outbox where state = 'pending'
                       group by tenant, subscription_id)
          for update skip locked)
        returning o.id, o.tenant, o.subscription_id, o.attempts, o.created_at, o.payload`.execute(
      this.#o.store.db,
    );
    for (const row of claimed.rows) {
      const s = this.#subs.get(keyOf(row.tenant, row.subscription_id));
      if (s?.retrying) {
        // Its previous retry here has not finished settling: hand the row back for the next pass.
        await this.#db
          .updateTable('context_live_outbox')
          .set({ next_attempt_at: now })
          .where('id', '=', row.id)
          .execute();
        continue;
      }
      if (s) s.retrying = true;
      this.#held.add(row.id);
      this.#track(
        this.#retryOne(row).finally(() => {
          if (s) s.retrying = false;
          // The subscription's next notifications are due now: do not wait for the poll.
          if (!this.#stopped) this.#track(this.runRetries());
        }),
      );
    }
    // Unblock subscriptions whose outbox is empty now; block those with undelivered notifications
    // (perhaps another instance's): new changes go behind them.
    const still = new Set(
      (
        await this.#db
          .selectFrom('context_live_outbox')
          .select(['tenant', 'subscription_id'])
          .where('state', '=', 'pending')
          .distinct()
          .execute()
      ).map((r) => keyOf(r.tenant, r.subscription_id)),
    );
    for (const s of this.#subs.values()) {
      if (s.blocked && !still.has(s.key) && !s.inFlight && !s.retrying && !s.spilling) {
        s.blocked = false;
        this.#pump(s);
      } else if (!s.blocked && still.has(s.key)) {
        s.blocked = true;
      }
    }
  }

  /**
   * The notifications waiting behind a claimed one, oldest first, as long as they are due and nobody
   * else holds them (order is kept: the run stops at the first one that is not), leased like it.
   */
  async #claimFollowers(first: OutboxRow, items: number): Promise<OutboxRow[]> {
    const now = this.#clock.now();
    const next = await this.#db
      .selectFrom('context_live_outbox')
      .select(['id', 'next_attempt_at'])
      .where('tenant', '=', first.tenant)
      .where('subscription_id', '=', first.subscription_id)
      .where('state', '=', 'pending')
      .where('id', '>', first.id)
      .orderBy('id')
      .limit(MAX_FOLLOWERS)
      .execute();
    const due: string[] = [];
    for (const r of next) {
      if (new Date(r.next_attempt_at).getTime() > now.getTime()) break;
      due.push(r.id);
    }
    if (due.length === 0) return [];
    const claimed = await sql<OutboxRow>`update context_live_outbox o
        set next_attempt_at = ${new Date(now.getTime() + this.#leaseMs)}
        where o.id in (select id from context_live_outbox where id = any(${due}::text[])
                         and state = 'pending' and next_attempt_at <= ${now}
                       for update skip locked)
        returning o.id, o.tenant, o.subscription_id, o.attempts, o.created_at, o.payload`.execute(
      this.#o.store.db,
    );
    const got = new Map(claimed.rows.map((r) => [r.id, r]));
    const out: OutboxRow[] = [];
    let total = items;
    for (const id of due) {
      const r = got.get(id);
      if (!r || total >= MAX_RETRY_ITEMS) break;
      out.push(r);
      total += payloadOf(r).length;
    }
    const unused = claimed.rows.filter((r) => !out.includes(r)).map((r) => r.id);
    if (unused.length > 0) {
      await this.#db
        .updateTable('context_live_outbox')
        .set({ next_attempt_at: now })
        .where('id', 'in', unused)
        .execute();
    }
    for (const r of out) this.#held.add(r.id);
    return out;
  }

  /** Retries one claimed notification, together with those waiting behind it (one notification). */
  async #retryOne(row: OutboxRow): Promise<void> {
    const s = this.#subs.get(keyOf(row.tenant, row.subscription_id));
    let rows = [row];
    try {
      if (!s || !this.#live(s, this.#clock.now().getTime())) {
        await this.#release([row.id]);
        // Deleted, paused or expired meanwhile: a paused one keeps its backlog until it is active again.
        if (!s) await this.#db.deleteFrom('context_live_outbox').where('id', '=', row.id).execute();
        else
          await this.#db
            .updateTable('context_live_outbox')
            .set({ next_attempt_at: new Date(this.#clock.now().getTime() + this.#retry.maxDelayMs) })
            .where('id', '=', row.id)
            .execute();
        return;
      }
      const first = payloadOf(row);
      rows = [row, ...(await this.#claimFollowers(row, first.length))];
      const items = rows.flatMap(payloadOf);
      try {
        await this.#deliver(s, items, true);
      } catch (e) {
        const ids = rows.map((r) => r.id);
        await this.#release(ids);
        const now = this.#clock.now();
        const attempts = row.attempts + 1;
        const dead = now.getTime() - new Date(row.created_at).getTime() > this.#retry.giveUpAfterMs;
        const retryAt = new Date(now.getTime() + this.#backoff(attempts));
        await this.#db
          .updateTable('context_live_outbox')
          .set({
            attempts,
            next_attempt_at: retryAt,
            last_error: errorText(e),
            state: dead ? 'dead' : 'pending',
          })
          .where('id', '=', row.id)
          .execute();
        // The ones behind it go again with it (a retry only ever starts from the oldest).
        if (ids.length > 1) {
          await this.#db
            .updateTable('context_live_outbox')
            .set({ next_attempt_at: retryAt })
            .where('id', 'in', ids.slice(1))
            .execute();
        }
        return;
      }
      const ids = rows.map((r) => r.id);
      await this.#release(ids);
      await this.#db.deleteFrom('context_live_outbox').where('id', 'in', ids).execute();
    } finally {
      for (const r of rows) this.#held.delete(r.id);
    }
  }

  async #periodic(s: SubState): Promise<void> {
    const reader = this.#o.entityReader;
    if (!reader || !this.#live(s, this.#clock.now().getTime())) return;
    const spec = s.rec.spec;
    const sel = { types: [] as string[], ids: [] as string[], idPatterns: [] as string[] };
    for (const e of spec.entities ?? []) {
      sel.types.push(e.type);
      if (e.id) sel.ids.push(e.id);
      if (e.idPattern) sel.idPatterns.push(e.idPattern);
    }
    const keys = await this.#subscriberKeys(s);
    const found = (await reader.findEntities(s.rec.tenant, sel, keys)).filter(
      (e) => (!s.cs.q || s.cs.q(e)) && (!s.cs.geoQ || s.cs.geoQ(e)),
    );
    const current = this.#o.currentEntities
      ? await this.#o.currentEntities(s.rec.tenant, [...new Set(found.map((e) => e.id))])
      : new Map<string, CurrentEntity>();
    const items: PendingItem[] = [];
    for (const e of found) {
      // The marking the notification carries comes from the entity's current state; without it (not yet
      // recorded) the entity waits for the next period rather than leave unlabelled.
      const now = current.get(e.id);
      if (!now || now.deleted) continue;
      items.push({
        entityId: e.id,
        types: typesOf(e),
        entity: e,
        readKeys: now.readKeys,
        marking: now.marking,
        ownerOrg: now.ownerOrg,
        incarnation: now.incarnation,
        trigger: 'timeInterval',
      });
    }
    if (items.length > 0) await Promise.all(items.map((i) => this.#enqueue(s, i)));
  }

  /** Stops timers and waits for deliveries in flight; queued changes are written to the outbox. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopping = true;
    clearInterval(this.#retryTimer);
    clearInterval(this.#statusTimer);
    for (const s of this.#subs.values()) {
      if (s.intervalTimer) clearInterval(s.intervalTimer);
      if (s.throttleTimer) clearTimeout(s.throttleTimer);
    }
    while (this.#retrying) await new Promise((r) => setTimeout(r, 10));
    while (this.#inflight.size > 0) await Promise.all([...this.#inflight]);
    clearInterval(this.#leaseTimer);
    await this.#renewing;
    this.#stopped = true;
    for (const s of this.#subs.values()) {
      if (s.queue.length === 0) continue;
      const batch = s.queue.splice(0, s.queue.length);
      await this.#toOutbox(
        s,
        batch.map((w) => w.item),
        0,
        undefined,
      );
      for (const w of batch) w.done();
    }
    await this.flushStatus();
  }

  /** Changes waiting in memory, notifications in flight, and notifications pending in the outbox. */
  async backlog(): Promise<{ queued: number; inFlight: number; outbox: number }> {
    let queued = 0;
    let inFlight = 0;
    for (const s of this.#subs.values()) {
      queued += s.queue.length;
      if (s.inFlight) inFlight++;
    }
    const r = await this.#db
      .selectFrom('context_live_outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('state', '=', 'pending')
      .executeTakeFirst();
    return { queued, inFlight, outbox: Number(r?.n ?? 0) };
  }

  /** Undelivered notifications in the outbox (pending and given up), for a delivery status view. */
  async outbox(tenant: string, subscriptionId: string): Promise<Array<{ state: string; attempts: number }>> {
    return this.#db
      .selectFrom('context_live_outbox')
      .select(['state', 'attempts'])
      .where('tenant', '=', tenant)
      .where('subscription_id', '=', subscriptionId)
      .orderBy('id')
      .execute();
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Why a notification failed, as its subscriber may read it (`lastFailureReason`): refusals with their
 * rule, the receiver's HTTP status, a timeout — but not socket errors, whose differences (refused, reset,
 * unreachable) would let a subscriber map the ports of the networks the policy opens. The outbox keeps the
 * full error for operators.
 */
function subscriberReason(e: unknown): string {
  if (isAppError(e)) return e.message;
  const text = errorText(e);
  if (/^(receiver answered HTTP \d+|no answer within \d+ ms|MQTT broker not reachable)$/.test(text))
    return text;
  return 'the receiver could not be reached';
}
