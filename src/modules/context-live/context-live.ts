/**
 * Assembles the module: subscriptions and notifications, temporal history, IoT ingestion, wired to the
 * event bus and to the sharing gate. The composition root calls `createContextLive` with the ports it
 * satisfies, then `start()`.
 */
import type { Clock } from '../../kernel/clock.ts';
import { systemClock } from '../../kernel/clock.ts';
import { isAppError } from '../../kernel/errors.ts';
import type { EventBus, Subscription } from '../../ports/event-bus.ts';
import type { EventOutbox } from '../../ports/event-outbox.ts';
import type { Store } from '../../ports/store.ts';
import { ACCOUNT_CHANGED, TOKEN_REVOKED } from '../access/index.ts';
import { EgressPolicy } from '../egress/index.ts';
import { type ContextLiveEvents, SUBSCRIPTION_CHANGED } from './context-live-events.ts';
import { DeadLetterStore } from './dead-letter-store.ts';
import { DeliveryEngine, type RetryPolicy } from './delivery-engine.ts';
import { changeKindOf, ENTITY_EVENT_TYPES, type LiveEntityChange } from './entity-change-event.ts';
import { createHttpNotificationSender } from './http-notification-sender.ts';
import { IngestionService } from './ingestion-service.ts';
import { MicroBatcher } from './micro-batcher.ts';
import type { NotificationSender } from './notification.ts';
import type {
  AccountStatusPort,
  EntityReaderPort,
  EntityWriterPort,
  ImplicitContextPort,
  LdContextPort,
  LiveGate,
  QueryPort,
} from './ports.ts';
import { SubscriptionService } from './subscription-service.ts';
import { SubscriptionStore } from './subscription-store.ts';
import { TemporalProvision } from './temporal-provision.ts';
import { TemporalService } from './temporal-service.ts';
import { type RecordedChange, TemporalStore } from './temporal-store.ts';

/**
 * The access module's events about an account (`{id, orgId, sessionsEnded}`) and its API tokens
 * (`{id, userId, orgId}`): the subscriptions the account created pause while it is disabled. A revoked
 * token alone pauses nothing — the subscriptions belong to the account, not to the token.
 */
export const ACCOUNT_EVENTS = [ACCOUNT_CHANGED, TOKEN_REVOKED];

export interface ContextLiveDeps {
  store: Store;
  /** Where subscription changes are announced to every instance, in their transaction. */
  events?: EventOutbox<ContextLiveEvents>;
  /** The sharing gate: subscriptions are its objects, and it decides every notification and answer. */
  gate: LiveGate;
  ld: LdContextPort;
  query?: QueryPort;
  entityReader?: EntityReaderPort;
  /** Whether subscriptions' creators may still act; without it no subscription is paused for its creator. */
  accounts?: AccountStatusPort;
  /** Needed for ingestion; without it `ingestion` is undefined. */
  writer?: EntityWriterPort;
  /** Hosts subscriptions' inline or compound @contexts (ImplicitlyCreated); without it they get none. */
  contexts?: ImplicitContextPort;
  /** Senders besides HTTP(S), e.g. the MQTT sender from src/adapters/mqtt. */
  senders?: NotificationSender[];
  /** Where HTTP(S) notifications may go; default: the policy without lists (public and private networks). */
  egress?: EgressPolicy;
  clock?: Clock;
  retry?: Partial<RetryPolicy>;
  /** How long a bus handler waits for a notification before it is made durable instead (default 1 s). */
  spillMs?: number;
  /** How long a notification in work is held before another instance may take it over (default 3 s). */
  leaseMs?: number;
  /** How often the retry worker looks for due notifications (default 250 ms). */
  retryPollMs?: number;
  /** History kept for entity types without their own retention; undefined keeps it forever. */
  defaultRetentionSeconds?: number;
  /** Most instances of one attribute in one temporal answer (default 10,000; past it 206 by time). */
  temporalMaxInstances?: number;
  /** How often history past its retention is deleted (default hourly). */
  pruneEveryMs?: number;
  /** Concurrent bus handlers per consumer group (the bus runs one event per member at a time). */
  busMembers?: number;
  /** After a restart, rebuild the rollups of the last minutes from the instances (single instance only). */
  rebuildRollupsMinutes?: number;
  /** Record history from entity events (default true). Periodic notifications need it (entity markings). */
  recordHistory?: boolean;
  /** How often each instance re-reads which subscriptions are paused, in case it missed an event (5 s). */
  pauseSyncMs?: number;
  onError?: (message: string, error: unknown) => void;
}

export interface ContextLive {
  readonly subscriptions: SubscriptionService;
  readonly temporal: TemporalService;
  /** The temporal API's provision operations (temporal entities, their instances). */
  readonly temporalEntities: TemporalProvision;
  readonly ingestion: IngestionService | undefined;
  readonly deadLetters: DeadLetterStore;
  readonly engine: DeliveryEngine;
  /** Records changes into the history (what the bus handler does), for callers without a bus. */
  recordChanges(changes: RecordedChange[]): Promise<void>;
  /** Loads subscriptions, starts delivery and retries, and subscribes to the bus's entity events. */
  start(bus?: EventBus): Promise<void>;
  stop(): Promise<void>;
}

export function createContextLive(deps: ContextLiveDeps): ContextLive {
  const clock = deps.clock ?? systemClock;
  const subStore = new SubscriptionStore(deps.store);
  const temporalStore = new TemporalStore(deps.store);
  const deadLetters = new DeadLetterStore(deps.store);
  const http = createHttpNotificationSender(deps.egress ?? new EgressPolicy());
  const senders = [http, ...(deps.senders ?? [])];
  const engine = new DeliveryEngine({
    store: deps.store,
    ld: deps.ld,
    query: deps.query,
    senders,
    gate: deps.gate,
    entityReader: deps.entityReader,
    currentEntities: (tenant, ids) => temporalStore.currentEntities(tenant, ids),
    clock,
    ...(deps.retry ? { retry: deps.retry } : {}),
    ...(deps.spillMs !== undefined ? { spillMs: deps.spillMs } : {}),
    ...(deps.leaseMs !== undefined ? { leaseMs: deps.leaseMs } : {}),
    ...(deps.retryPollMs !== undefined ? { retryPollMs: deps.retryPollMs } : {}),
    ...(deps.onError ? { onError: deps.onError } : {}),
  });
  const subscriptions = new SubscriptionService({
    subscriptions: subStore,
    engine,
    gate: deps.gate,
    ld: deps.ld,
    query: deps.query,
    entityReader: deps.entityReader,
    accounts: deps.accounts,
    implicitContexts: deps.contexts,
    clock,
    announce: async (trx, tenant, id) => {
      await deps.events?.emit(trx, SUBSCRIPTION_CHANGED, { tenant, id });
    },
  });
  const temporal = new TemporalService({
    store: temporalStore,
    gate: deps.gate,
    ld: deps.ld,
    clock,
    ...(deps.defaultRetentionSeconds !== undefined
      ? { defaultRetentionSeconds: deps.defaultRetentionSeconds }
      : {}),
    ...(deps.temporalMaxInstances !== undefined ? { maxInstances: deps.temporalMaxInstances } : {}),
  });
  const temporalEntities = new TemporalProvision({
    gate: deps.gate,
    ld: deps.ld,
    clock,
    events: deps.events,
  });
  const ingestion = deps.writer
    ? new IngestionService({ writer: deps.writer, deadLetters, clock })
    : undefined;
  const history = new MicroBatcher<RecordedChange>(async (batch) => {
    await temporalStore.record(batch);
  }, 2000);
  const busSubs: Subscription[] = [];
  let pruneTimer: NodeJS.Timeout | undefined;
  let rollupTimer: NodeJS.Timeout | undefined;
  let pauseTimer: NodeJS.Timeout | undefined;

  return {
    subscriptions,
    temporal,
    temporalEntities,
    ingestion,
    deadLetters,
    engine,
    recordChanges: (changes) => history.addMany(changes),
    async start(eventBus?: EventBus) {
      for (const register of [
        () => subscriptions.registerUnregistered(),
        () => temporal.registerUnregistered(),
      ]) {
        await register().catch((e) => {
          // Another instance starting at the same time registered them.
          if (!isAppError(e) || e.code !== 'ACCESS_OBJECT_EXISTS') throw e;
        });
      }
      await subscriptions.recheckAccounts();
      await engine.start(await subStore.listLive(clock.now()));
      pauseTimer = setInterval(() => {
        subStore
          .pausedReasons()
          .then((reasons) => engine.applyPausedReasons(reasons))
          .catch((e) => deps.onError?.('context-live paused subscriptions', e));
      }, deps.pauseSyncMs ?? 5000);
      pauseTimer.unref();
      if (deps.rebuildRollupsMinutes) {
        await temporalStore.rebuildRollups(
          new Date(clock.now().getTime() - deps.rebuildRollupsMinutes * 60_000),
        );
      }
      rollupTimer = setInterval(() => {
        temporalStore.flushRollups().catch((e) => deps.onError?.('context-live rollups', e));
      }, 2000);
      rollupTimer.unref();
      pruneTimer = setInterval(() => {
        temporal.prune().catch((e) => deps.onError?.('context-live history pruning', e));
      }, deps.pruneEveryMs ?? 3600_000);
      pruneTimer.unref();
      if (!eventBus) return;
      const members = deps.busMembers ?? 64;
      for (let i = 0; i < members; i++) {
        busSubs.push(
          await eventBus.subscribe(
            { types: ENTITY_EVENT_TYPES, mode: 'group', group: 'context-live-notify' },
            async (event) => {
              const kind = changeKindOf(event.type);
              if (kind) await engine.handleChange(kind, event.data as LiveEntityChange, event.time);
            },
          ),
        );
        if (deps.recordHistory !== false) {
          busSubs.push(
            await eventBus.subscribe(
              { types: ENTITY_EVENT_TYPES, mode: 'group', group: 'context-live-history' },
              async (event) => {
                const kind = changeKindOf(event.type);
                if (kind) await history.add({ kind, change: event.data as LiveEntityChange, at: event.time });
              },
            ),
          );
        }
      }
      busSubs.push(
        await eventBus.subscribe({ types: [SUBSCRIPTION_CHANGED], mode: 'broadcast' }, async (event) => {
          const d = event.data as { tenant: string; id: string };
          await subscriptions.refresh(d.tenant, d.id);
        }),
      );
      // Every instance re-checks the account (it may have been enabled again meanwhile) and pauses or
      // resumes the subscriptions it holds.
      busSubs.push(
        await eventBus.subscribe({ types: ACCOUNT_EVENTS, mode: 'broadcast' }, async (event) => {
          const d = event.data as { id: string; userId?: string };
          await subscriptions.recheckAccount(event.type === TOKEN_REVOKED ? (d.userId ?? '') : d.id);
        }),
      );
    },
    async stop() {
      clearInterval(pruneTimer);
      clearInterval(rollupTimer);
      clearInterval(pauseTimer);
      for (const s of busSubs.splice(0)) await s.unsubscribe();
      await history.drain();
      await ingestion?.drain();
      await temporalStore.flushRollups();
      await engine.stop();
      for (const s of senders) await s.close();
    },
  };
}
