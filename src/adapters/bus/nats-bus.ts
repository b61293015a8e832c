/**
 * The NATS JetStream event bus: for a city that runs several platform instances (docs/event-bus.md).
 *
 * - One stream (default SAFECITY_EVENTS) holds every event on subject `<prefix>.<type>`; it is created
 *   or updated at connect. Publish waits for the stream's ack, with the event id as `Nats-Msg-Id`, so a
 *   publish retried within the duplicate window is stored once.
 * - Group mode: a durable pull consumer named after the group, shared by the members of every instance
 *   (work sharing), explicit ack once the handler resolved, nak with a backoff when it failed, and after
 *   `maxDeliver` deliveries a term plus a dead letter (kept in this process and published to the dead
 *   letter stream `<stream>_DEAD`, subject `<prefix>-dead.<group>`).
 * - Broadcast mode: an ordered consumer per subscriber, starting after the last event stored when it
 *   subscribed; no acks, no redelivery.
 * - Each subscription is one consumer and handles one event at a time, in stream order. Servers before
 *   2.10 take one filter subject per consumer: several patterns then share their narrowest covering
 *   pattern, and the events that match none of them are skipped in the client.
 * - Reconnects are the client's job (unlimited attempts); close() stops consuming, waits for handlers
 *   in flight, then drains the connection (pending acks are flushed).
 */
import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { connect, type NatsConnection, nanos } from '@nats-io/transport-node';
import { AppError } from '../../kernel/errors.ts';
import type { EventHandler, PlatformEvent, SubscribeOptions, Subscription } from '../../ports/event-bus.ts';
import { type BusLogger, consoleBusLogger } from './bus-logger.ts';
import { type DeadLetter, DeadLetterLog, errorMessage } from './dead-letter.ts';
import type { EventBusAdapter } from './event-bus-adapter.ts';
import { coveringPattern, isValidEventType, matchesPattern } from './event-pattern.ts';
import { resolveSubscription, serializeEvent } from './resolve-subscription.ts';
import { type RetryBackoff, retryDelayMs } from './retry-backoff.ts';

export interface NatsBusOptions {
  /** One URL or several (a cluster), e.g. `nats://127.0.0.1:4222`. */
  url: string | string[];
  /** Stream name. Default SAFECITY_EVENTS. */
  stream?: string;
  /** First subject token(s) of every event. Default `safecity`. */
  subjectPrefix?: string;
  /** This instance's name: the NATS connection name and the `source` of log lines. */
  source?: string;
  /** Stream storage. Default file; tests use memory. */
  storage?: 'file' | 'memory';
  /** Stream replicas (1, 3 or 5 in a cluster). Default 1. */
  replicas?: number;
  /** How long the stream keeps events (ms). Default 7 days. */
  maxAgeMs?: number;
  /** Stream size limit in bytes, oldest events discarded first. Default -1 (only maxAge limits). */
  maxBytes?: number;
  /** Duplicate window of the stream (ms). Default 120 000. */
  duplicateWindowMs?: number;
  /**
   * A group member's lease on the events it pulled (ms): while it lives it renews the lease of each event
   * it holds (waiting or in its handler), so handlers may take longer; a dead member's events go to
   * another member once it lapses. Default 3000.
   */
  ackWaitMs?: number;
  /** Deliveries of a failing event before it is dead-lettered, unless the subscription says. Default 5. */
  defaultMaxDeliver?: number;
  retry?: RetryBackoff;
  /** Events a subscription pulls ahead of its handler (a group member holds at most this many). Default 16. */
  prefetch?: number;
  /** Unacknowledged events a group may have across all its members. Default 1000. */
  maxAckPending?: number;
  /** How long publish waits for the stream's ack (ms). Default 5000. */
  publishTimeoutMs?: number;
  /** How long the first connection may take (ms). Default 5000. */
  connectTimeoutMs?: number;
  /** Wait between reconnect attempts to a server (ms); attempts never stop. Default 1000. */
  reconnectWaitMs?: number;
  /** How long the dead letter stream keeps its records (ms). Default 30 days. */
  deadLetterMaxAgeMs?: number;
  /** Dead letters remembered for `deadLetters()`. Default 1000. */
  maxDeadLetters?: number;
  logger?: BusLogger;
}

export interface NatsBus extends EventBusAdapter {
  readonly kind: 'nats';
  readonly stream: string;
  readonly deadLetterStream: string;
  readonly subjectPrefix: string;
}

const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** How long a member's pull request waits on the server for its batch to fill (ms). */
const FETCH_EXPIRES_MS = 5000;
const DAY_MS = 86_400_000;

function apiErrorCode(err: unknown): number | undefined {
  return err instanceof JetStreamApiError ? err.code : undefined;
}

function serverAtLeast(version: string | undefined, major: number, minor: number): boolean {
  const [ma, mi] = (version ?? '0.0.0').split('.').map((n) => Number.parseInt(n, 10));
  return (ma ?? 0) > major || ((ma ?? 0) === major && (mi ?? 0) >= minor);
}

/** One running subscription: one consumer whose messages reach the handler one at a time. */
class RunningSubscription {
  stopping = false;
  feed: ConsumerMessages | undefined;
  loop: Promise<void> | undefined;
  cleanup: (() => Promise<unknown>) | undefined;

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.feed?.close().catch(() => undefined);
    await this.loop;
    await this.cleanup?.().catch(() => undefined);
  }
}

export async function createNatsBus(options: NatsBusOptions): Promise<NatsBus> {
  const stream = options.stream ?? 'SAFECITY_EVENTS';
  const prefix = options.subjectPrefix ?? 'safecity';
  const deadStream = `${stream}_DEAD`;
  const deadPrefix = `${prefix}-dead`;
  const source = options.source ?? 'nats-bus';
  const logger = options.logger ?? consoleBusLogger;
  const ackWaitMs = options.ackWaitMs ?? 3000;
  const defaultMaxDeliver = options.defaultMaxDeliver ?? 5;
  const prefetch = options.prefetch ?? 16;
  const maxAckPending = options.maxAckPending ?? 1000;
  const publishTimeoutMs = options.publishTimeoutMs ?? 5000;
  const deadLetters = new DeadLetterLog(options.maxDeadLetters);

  if (!STREAM_NAME.test(stream)) {
    throw new AppError('CONFIG_INVALID', `Invalid NATS stream name ${JSON.stringify(stream)}`);
  }
  if (!isValidEventType(prefix)) {
    throw new AppError('CONFIG_INVALID', `Invalid NATS subject prefix ${JSON.stringify(prefix)}`);
  }

  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.url,
      name: source,
      maxReconnectAttempts: -1,
      reconnectTimeWait: options.reconnectWaitMs ?? 1000,
      timeout: options.connectTimeoutMs ?? 5000,
    });
  } catch (err) {
    throw new AppError('BUS_UNAVAILABLE', `Cannot connect to NATS at ${String(options.url)}`, undefined, {
      cause: err,
    });
  }

  let jsm: JetStreamManager;
  let js: JetStreamClient;
  try {
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
    await ensureStream(jsm, {
      name: stream,
      subjects: [`${prefix}.>`],
      maxAgeMs: options.maxAgeMs ?? 7 * DAY_MS,
      maxBytes: options.maxBytes ?? -1,
      duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
      storage: options.storage ?? 'file',
      replicas: options.replicas ?? 1,
    });
    await ensureStream(jsm, {
      name: deadStream,
      subjects: [`${deadPrefix}.>`],
      maxAgeMs: options.deadLetterMaxAgeMs ?? 30 * DAY_MS,
      maxBytes: -1,
      duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
      storage: options.storage ?? 'file',
      replicas: options.replicas ?? 1,
    });
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw new AppError('BUS_UNAVAILABLE', `JetStream is not usable at ${String(options.url)}`, undefined, {
      cause: err,
    });
  }

  const multiFilter = serverAtLeast(nc.info?.version, 2, 10);
  const running = new Set<RunningSubscription>();
  let closed = false;

  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') {
        logger.warn(
          { source, status: s.type, server: 'server' in s ? s.server : undefined },
          `NATS ${s.type}`,
        );
      }
    }
  })().catch(() => undefined);

  const subjectOf = (pattern: string) => `${prefix}.${pattern}`;

  /**
   * The filter subjects of a subscription's consumer. Servers before 2.10 take one filter subject per
   * consumer: several patterns then become the narrowest pattern covering them all, and the events it
   * lets through that match none of them are skipped here (`exact: false`). One consumer either way, so
   * a subscription keeps publish order.
   */
  function consumerFilter(patterns: string[]): { subjects: string[]; exact: boolean } {
    if (multiFilter || patterns.length === 1) return { subjects: patterns.map(subjectOf), exact: true };
    return { subjects: [subjectOf(coveringPattern(patterns))], exact: false };
  }

  /** Whether a message of a covering filter is one the subscription asked for. */
  function wanted(m: JsMsg, patterns: string[]): boolean {
    const type = m.subject.slice(prefix.length + 1);
    return patterns.some((p) => matchesPattern(p, type));
  }

  async function ensureGroupConsumer(name: string, filters: string[], maxDeliver: number): Promise<void> {
    const filter: Partial<ConsumerConfig> =
      filters.length === 1 ? { filter_subject: filters[0] as string } : { filter_subjects: filters };
    const settings: Partial<ConsumerConfig> = {
      ack_wait: nanos(ackWaitMs),
      max_deliver: maxDeliver,
      max_ack_pending: maxAckPending,
      ...filter,
    };
    let current: ConsumerConfig | undefined;
    let ackFloor = 0;
    try {
      const info = await jsm.consumers.info(stream, name);
      current = info.config;
      // Where a recreated consumer resumes: after the last acknowledged event or, when nothing was
      // ever delivered, after where it stands (a consumer's ack floor starts at 0).
      ackFloor =
        info.ack_floor.consumer_seq > 0 || info.delivered.consumer_seq > 0
          ? info.ack_floor.stream_seq
          : info.delivered.stream_seq;
    } catch (err) {
      if (apiErrorCode(err) !== JetStreamApiCodes.ConsumerNotFound) throw err;
    }
    if (!current) {
      try {
        await jsm.consumers.add(stream, {
          ...settings,
          durable_name: name,
          ack_policy: AckPolicy.Explicit,
          // A new group starts now; from then on its events are kept while it has no member.
          deliver_policy: DeliverPolicy.New,
        });
        return;
      } catch (err) {
        // Another instance may have created it at the same moment with other settings: update below.
        current = (await jsm.consumers.info(stream, name).catch(() => Promise.reject(err))).config;
      }
    }
    const currentFilters =
      current.filter_subjects ?? (current.filter_subject ? [current.filter_subject] : []);
    const sameFilters = [...currentFilters].sort().join(' ') === [...filters].sort().join(' ');
    const same =
      sameFilters &&
      current.ack_wait === settings.ack_wait &&
      current.max_deliver === settings.max_deliver &&
      current.max_ack_pending === settings.max_ack_pending;
    if (same) return;
    // The newest subscriber's definition wins (a rolling upgrade changes a group's types this way).
    if (!sameFilters && !multiFilter) {
      // Servers before 2.10 accept a new filter but then stall the consumer: recreate it instead,
      // from the first event it has not acknowledged (those after it may be delivered again).
      await jsm.consumers.delete(stream, name);
      await jsm.consumers.add(stream, {
        ...settings,
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: ackFloor + 1,
      });
      return;
    }
    const update = { ...settings, filter_subject: undefined, filter_subjects: undefined, ...filter };
    await jsm.consumers.update(stream, name, update as Partial<ConsumerConfig>);
  }

  async function recordDeadLetter(record: DeadLetter): Promise<void> {
    deadLetters.add(record);
    logger.error(
      {
        source,
        group: record.group,
        eventId: record.event.id,
        type: record.event.type,
        attempts: record.attempts,
        error: record.error,
      },
      'event dead-lettered after its last delivery failed',
    );
    try {
      await js.publish(`${deadPrefix}.${record.group}`, JSON.stringify(record), {
        msgID: `${record.group}:${record.event.id}`,
        timeout: publishTimeoutMs,
      });
    } catch (err) {
      logger.error({ source, record, error: errorMessage(err) }, 'dead letter could not be stored in NATS');
    }
  }

  function parse(m: JsMsg): PlatformEvent | undefined {
    try {
      const event = m.json<PlatformEvent>();
      if (event && typeof event === 'object' && typeof event.id === 'string') return event;
    } catch {
      // handled below
    }
    return undefined;
  }

  async function handleGroupMessage(
    m: JsMsg,
    group: string,
    maxDeliver: number,
    handler: EventHandler,
  ): Promise<void> {
    const attempt = m.info.deliveryCount;
    const event = parse(m);
    if (!event) {
      m.term();
      await recordDeadLetter({
        group,
        event: {
          id: `seq-${m.seq}`,
          type: m.subject.slice(prefix.length + 1),
          time: m.time.toISOString(),
          source: 'unknown',
          data: m.string(),
        },
        attempts: attempt,
        error: 'message is not a platform event (JSON with an id)',
        time: new Date().toISOString(),
      });
      return;
    }
    try {
      await handler(event, { attempt });
      m.ack();
    } catch (err) {
      if (attempt >= maxDeliver) {
        m.term();
        await recordDeadLetter({
          group,
          event,
          attempts: attempt,
          error: errorMessage(err),
          time: new Date().toISOString(),
        });
      } else {
        m.nak(retryDelayMs(attempt, options.retry));
      }
    }
  }

  async function handleBroadcastMessage(m: JsMsg, handler: EventHandler): Promise<void> {
    const event = parse(m);
    if (!event) {
      logger.warn(
        { source, subject: m.subject, seq: m.seq },
        'skipped a message that is not a platform event',
      );
      return;
    }
    try {
      await handler(event, { attempt: 1 });
    } catch (err) {
      logger.warn(
        { source, eventId: event.id, type: event.type, error: errorMessage(err) },
        'broadcast handler failed; the event is not redelivered',
      );
    }
  }

  /** A broadcast subscriber: its ordered consumer's events reach the handler one at a time. */
  function runFeed(sub: RunningSubscription, feed: ConsumerMessages, onMessage: (m: JsMsg) => Promise<void>) {
    sub.feed = feed;
    void (async () => {
      for await (const s of feed.status()) {
        if (
          s.type === 'consumer_deleted' ||
          s.type === 'consumer_not_found' ||
          s.type === 'stream_not_found'
        ) {
          logger.warn({ source, status: s.type }, 'event bus consumer problem; the client keeps retrying');
        }
      }
    })().catch(() => undefined);
    const loop = (async () => {
      for await (const m of feed) {
        if (sub.stopping) continue;
        await onMessage(m);
      }
    })().catch((err) => {
      if (!sub.stopping) logger.error({ source, error: errorMessage(err) }, 'event bus subscription stopped');
    });
    sub.loop = loop;
  }

  /**
   * A group member: pulls at most `prefetch` events at a time (so a member never hoards what others could
   * handle), hands them to the handler one at a time in order, and renews the lease (`working`) of every
   * event it holds before `ackWaitMs` lapses, so that only a dead member's events are redelivered.
   */
  function runGroupMember(
    sub: RunningSubscription,
    consumer: Consumer,
    onMessage: (m: JsMsg) => Promise<void>,
  ): void {
    const held = new Map<JsMsg, number>();
    const renewEvery = Math.max(50, Math.floor(ackWaitMs / 3));
    const renew = setInterval(() => {
      const due = Date.now() - renewEvery;
      for (const [m, at] of held) {
        if (at > due) continue;
        try {
          m.working();
        } catch {
          // Connection closed: the events come back to the group after the lease anyway.
        }
        held.set(m, Date.now());
      }
    }, renewEvery);
    renew.unref();
    const settle = async (m: JsMsg) => {
      try {
        await onMessage(m);
      } catch (err) {
        // An ack or nak that cannot be sent (connection closed): JetStream redelivers after the lease.
        logger.warn(
          { source, subject: m.subject, seq: m.seq, error: errorMessage(err) },
          'event not settled',
        );
      } finally {
        held.delete(m);
      }
    };
    sub.loop = (async () => {
      while (!sub.stopping) {
        let batch: ConsumerMessages;
        try {
          batch = await consumer.fetch({ max_messages: prefetch, expires: FETCH_EXPIRES_MS });
        } catch (err) {
          if (sub.stopping) break;
          logger.warn({ source, error: errorMessage(err) }, 'event bus pull failed; retrying');
          await new Promise((r) => setTimeout(r, options.reconnectWaitMs ?? 1000));
          continue;
        }
        sub.feed = batch;
        // Not awaited: a batch closes once read, and the reader below reads it.
        if (sub.stopping) void batch.close().catch(() => undefined);
        // Taken from the batch as they arrive (held and renewed from then on), handled one at a time.
        const queue: JsMsg[] = [];
        let ended = false;
        let wake: (() => void) | undefined;
        const reader = (async () => {
          for await (const m of batch) {
            held.set(m, Date.now());
            queue.push(m);
            wake?.();
          }
        })()
          .catch((err) => {
            if (!sub.stopping) logger.warn({ source, error: errorMessage(err) }, 'event bus pull ended');
          })
          .finally(() => {
            ended = true;
            wake?.();
          });
        for (;;) {
          const m = queue.shift();
          if (!m) {
            if (ended) break;
            await new Promise<void>((r) => {
              wake = r;
            });
            wake = undefined;
            continue;
          }
          if (sub.stopping) {
            // Pulled but not started: hand it back at once rather than after the lease.
            try {
              m.nak();
            } catch {
              // Connection closed: it comes back after the lease.
            }
            held.delete(m);
            continue;
          }
          await settle(m);
        }
        await reader;
      }
    })()
      .catch((err) => {
        if (!sub.stopping)
          logger.error({ source, error: errorMessage(err) }, 'event bus subscription stopped');
      })
      .finally(() => clearInterval(renew));
  }

  function unavailable(): AppError {
    return new AppError('BUS_UNAVAILABLE', 'The event bus is closed');
  }

  return {
    kind: 'nats',
    stream,
    deadLetterStream: deadStream,
    subjectPrefix: prefix,

    async publish(event) {
      if (closed) throw unavailable();
      const json = serializeEvent(event);
      const maxPayload = nc.info?.max_payload;
      if (maxPayload !== undefined && Buffer.byteLength(json) > maxPayload) {
        // No retry can ever store it: refused like any other malformed event.
        throw new AppError(
          'BUS_INVALID_EVENT',
          `Event ${event.id} (${event.type}) is larger than the server's max_payload (${maxPayload} bytes)`,
          { eventId: event.id, type: event.type },
        );
      }
      try {
        await js.publish(subjectOf(event.type), json, {
          msgID: event.id,
          timeout: publishTimeoutMs,
          expect: { streamName: stream },
        });
      } catch (err) {
        throw new AppError(
          nc.isClosed() ? 'BUS_UNAVAILABLE' : 'BUS_PUBLISH_FAILED',
          `Event ${event.id} (${event.type}) could not be published: ${errorMessage(err)}`,
          { eventId: event.id, type: event.type },
          { cause: err },
        );
      }
    },

    async subscribe(subscribeOptions: SubscribeOptions, handler: EventHandler): Promise<Subscription> {
      if (closed) throw unavailable();
      const spec = resolveSubscription(subscribeOptions, defaultMaxDeliver);
      const sub = new RunningSubscription();
      try {
        const { subjects, exact } = consumerFilter(spec.patterns);
        if (spec.mode === 'group') {
          const { group, maxDeliver, patterns } = spec;
          await ensureGroupConsumer(group, subjects, maxDeliver);
          const consumer = await js.consumers.get(stream, group);
          runGroupMember(sub, consumer, async (m) => {
            if (exact || wanted(m, patterns)) await handleGroupMessage(m, group, maxDeliver, handler);
            else m.ack();
          });
        } else {
          const { patterns } = spec;
          // Start after the last stored event: everything published once subscribe resolved is delivered.
          const startSeq = (await jsm.streams.info(stream)).state.last_seq + 1;
          const consumer = await js.consumers.get(stream, {
            filter_subjects: subjects.length === 1 ? (subjects[0] as string) : subjects,
            opt_start_seq: startSeq,
          });
          sub.cleanup = () => consumer.delete();
          const feed = await consumer.consume({ max_messages: prefetch });
          runFeed(sub, feed, async (m) => {
            if (exact || wanted(m, patterns)) await handleBroadcastMessage(m, handler);
          });
        }
      } catch (err) {
        await sub.stop();
        if (err instanceof AppError) throw err;
        throw new AppError('BUS_UNAVAILABLE', `Cannot subscribe: ${errorMessage(err)}`, undefined, {
          cause: err,
        });
      }
      running.add(sub);
      return {
        async unsubscribe() {
          running.delete(sub);
          await sub.stop();
        },
      };
    },

    async ping() {
      if (closed || nc.isClosed()) throw unavailable();
      try {
        await nc.rtt();
      } catch (err) {
        throw new AppError('BUS_UNAVAILABLE', `NATS does not answer: ${errorMessage(err)}`, undefined, {
          cause: err,
        });
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...running].map((s) => s.stop()));
      running.clear();
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },

    deadLetters() {
      return deadLetters.list();
    },
  };
}

interface StreamSettings {
  name: string;
  subjects: string[];
  maxAgeMs: number;
  maxBytes: number;
  duplicateWindowMs: number;
  storage: 'file' | 'memory';
  replicas: number;
}

/** Creates the stream, or brings an existing one to these settings (storage cannot change). */
async function ensureStream(jsm: JetStreamManager, s: StreamSettings): Promise<void> {
  const settings = {
    subjects: s.subjects,
    max_age: nanos(s.maxAgeMs),
    max_bytes: s.maxBytes,
    duplicate_window: nanos(s.duplicateWindowMs),
    num_replicas: s.replicas,
    discard: DiscardPolicy.Old,
  };
  try {
    await jsm.streams.info(s.name);
  } catch (err) {
    if (apiErrorCode(err) !== JetStreamApiCodes.StreamNotFound) throw err;
    try {
      await jsm.streams.add({
        name: s.name,
        retention: RetentionPolicy.Limits,
        storage: s.storage === 'memory' ? StorageType.Memory : StorageType.File,
        ...settings,
      });
      return;
    } catch (addErr) {
      // Perhaps created by another instance at the same moment: then the update below works.
      await jsm.streams.update(s.name, settings).catch(() => Promise.reject(addErr));
      return;
    }
  }
  await jsm.streams.update(s.name, settings);
}
