/**
 * The in-process event bus: the embedded default, for one instance. Same semantics as the NATS adapter
 * (see docs/event-bus.md) within one process; nothing survives a restart.
 *
 * - Group mode: the group keeps one queue; each event goes to the next idle member (round robin). A
 *   failed event is redelivered after a backoff (ahead of newer events) until `maxDeliver`, then
 *   dead-lettered. Events are kept while the group has no member. The queue is bounded (`maxPending`):
 *   when a matching group is full, `publish` fails with BUS_BACKLOG_FULL and the event goes nowhere —
 *   back-pressure on the publisher instead of silent loss.
 * - Broadcast mode: each subscriber has its own queue of the events published after it subscribed. A
 *   slow subscriber must not stop the city's publishers, so when its queue is full the oldest event is
 *   dropped with a warning. A failing broadcast handler is logged; the event is not redelivered.
 * - Each member and each broadcast subscriber handles one event at a time, in publish order (a retried
 *   event comes back after the events that overtook it during its backoff).
 * - Every subscriber receives the event as JSON text parsed anew, exactly as over NATS.
 */
import { AppError } from '../../kernel/errors.ts';
import type { EventHandler, PlatformEvent, SubscribeOptions, Subscription } from '../../ports/event-bus.ts';
import { type BusLogger, consoleBusLogger } from './bus-logger.ts';
import { type DeadLetter, DeadLetterLog, errorMessage } from './dead-letter.ts';
import { DuplicateWindow } from './duplicate-window.ts';
import type { EventBusAdapter } from './event-bus-adapter.ts';
import { matchesPattern } from './event-pattern.ts';
import { Fifo } from './fifo.ts';
import { resolveSubscription, serializeEvent } from './resolve-subscription.ts';
import { type RetryBackoff, retryDelayMs } from './retry-backoff.ts';

export interface MemoryBusOptions {
  /** On close, how long events already published may take to be handled before the rest is dropped. Default 5000. */
  drainMs?: number;
  /** This instance's name, recorded in log lines. */
  source?: string;
  /** Events a group may keep waiting (queued or in backoff) before publish fails. Default 10 000. */
  maxPending?: number;
  /** Events a broadcast subscriber may have waiting before the oldest is dropped. Default 10 000. */
  maxBroadcastPending?: number;
  /** Deliveries of a failing event before it is dead-lettered, unless the subscription says. Default 5. */
  defaultMaxDeliver?: number;
  retry?: RetryBackoff;
  /** A publish of an id already published within this window is dropped. Default 120 000 (2 min). */
  duplicateWindowMs?: number;
  /** Dead letters remembered for `deadLetters()`. Default 1000. */
  maxDeadLetters?: number;
  logger?: BusLogger;
}

export interface MemoryBus extends EventBusAdapter {
  readonly kind: 'memory';
}

interface Pending {
  json: string;
  id: string;
  type: string;
  /** Deliveries so far. */
  attempts: number;
}

interface Member {
  handler: EventHandler;
  active: boolean;
  inFlight: Promise<void> | undefined;
}

interface Group {
  name: string;
  patterns: string[];
  maxDeliver: number;
  queue: Fifo<Pending>;
  /** Failed events whose backoff is over: delivered before the queue. */
  due: Pending[];
  members: Member[];
  next: number;
  retryTimers: Set<NodeJS.Timeout>;
}

interface Listener {
  patterns: string[];
  handler: EventHandler;
  queue: Fifo<string>;
  active: boolean;
  running: Promise<void> | undefined;
}

export function createMemoryBus(options: MemoryBusOptions = {}): MemoryBus {
  const source = options.source ?? 'memory-bus';
  const maxPending = options.maxPending ?? 10_000;
  const maxBroadcastPending = options.maxBroadcastPending ?? 10_000;
  const defaultMaxDeliver = options.defaultMaxDeliver ?? 5;
  const logger = options.logger ?? consoleBusLogger;
  const drainMs = options.drainMs ?? 5000;
  const duplicates = new DuplicateWindow(options.duplicateWindowMs ?? 120_000);
  const deadLetters = new DeadLetterLog(options.maxDeadLetters);
  const groups = new Map<string, Group>();
  const listeners = new Set<Listener>();
  const inFlight = new Set<Promise<void>>();
  let closed = false;

  function track(p: Promise<void>): Promise<void> {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    return p;
  }

  function pendingCount(g: Group): number {
    return g.queue.length + g.due.length + g.retryTimers.size;
  }

  function idleMember(g: Group): Member | undefined {
    const n = g.members.length;
    for (let i = 0; i < n; i++) {
      const k = (g.next + i) % n;
      const m = g.members[k];
      if (m?.active && m.inFlight === undefined) {
        g.next = (k + 1) % n;
        return m;
      }
    }
    return undefined;
  }

  function pump(g: Group): void {
    while (!closed && g.queue.length + g.due.length > 0) {
      const member = idleMember(g);
      if (!member) return;
      const pending = g.due.shift() ?? g.queue.shift()!;
      member.inFlight = track(deliver(g, member, pending)).finally(() => {
        member.inFlight = undefined;
        pump(g);
      });
    }
  }

  async function deliver(g: Group, member: Member, pending: Pending): Promise<void> {
    pending.attempts += 1;
    try {
      await member.handler(JSON.parse(pending.json) as PlatformEvent, { attempt: pending.attempts });
    } catch (err) {
      failed(g, pending, err);
    }
  }

  function failed(g: Group, pending: Pending, err: unknown): void {
    if (pending.attempts >= g.maxDeliver) {
      const record: DeadLetter = {
        group: g.name,
        // Parsed only here: a dead letter is rare, every delivery parses the text anyway.
        event: JSON.parse(pending.json) as PlatformEvent,
        attempts: pending.attempts,
        error: errorMessage(err),
        time: new Date().toISOString(),
      };
      deadLetters.add(record);
      logger.error(
        {
          source,
          group: g.name,
          eventId: pending.id,
          type: pending.type,
          attempts: pending.attempts,
          error: record.error,
        },
        'event dead-lettered after its last delivery failed',
      );
      return;
    }
    if (closed) {
      logger.warn(
        {
          source,
          group: g.name,
          eventId: pending.id,
          attempts: pending.attempts,
          error: errorMessage(err),
        },
        'handler failed while the in-process bus closed; the event is dropped',
      );
      return;
    }
    const timer = setTimeout(
      () => {
        g.retryTimers.delete(timer);
        g.due.push(pending);
        pump(g);
      },
      retryDelayMs(pending.attempts, options.retry),
    );
    g.retryTimers.add(timer);
  }

  function drainListener(l: Listener): void {
    if (l.running || closed) return;
    l.running = track(
      (async () => {
        while (l.active && !closed && l.queue.length > 0) {
          const json = l.queue.shift()!;
          const event = JSON.parse(json) as PlatformEvent;
          try {
            await l.handler(event, { attempt: 1 });
          } catch (err) {
            logger.warn(
              { source, eventId: event.id, type: event.type, error: errorMessage(err) },
              'broadcast handler failed; the event is not redelivered',
            );
          }
        }
      })(),
    ).finally(() => {
      l.running = undefined;
      if (l.active && l.queue.length > 0) drainListener(l);
    });
  }

  function sameSubscription(g: Group, patterns: string[], maxDeliver: number): boolean {
    return g.maxDeliver === maxDeliver && g.patterns.join('\n') === patterns.join('\n');
  }

  return {
    kind: 'memory',

    async publish(event) {
      if (closed) throw new AppError('BUS_UNAVAILABLE', 'The event bus is closed');
      const json = serializeEvent(event);
      const targets = [...groups.values()].filter((g) =>
        g.patterns.some((p) => matchesPattern(p, event.type)),
      );
      const full = targets.find((g) => pendingCount(g) >= maxPending);
      if (full) {
        throw new AppError(
          'BUS_BACKLOG_FULL',
          `Group ${full.name} already keeps ${maxPending} waiting events`,
          {
            group: full.name,
            eventId: event.id,
          },
        );
      }
      if (duplicates.seen(event.id)) return;
      for (const g of targets) {
        g.queue.push({ json, id: event.id, type: event.type, attempts: 0 });
        queueMicrotask(() => pump(g));
      }
      for (const l of listeners) {
        if (!l.patterns.some((p) => matchesPattern(p, event.type))) continue;
        l.queue.push(json);
        if (l.queue.length > maxBroadcastPending) {
          l.queue.shift();
          logger.warn(
            { source, type: event.type },
            'slow broadcast subscriber: oldest waiting event dropped',
          );
        }
        queueMicrotask(() => drainListener(l));
      }
    },

    async subscribe(subscribeOptions: SubscribeOptions, handler: EventHandler): Promise<Subscription> {
      if (closed) throw new AppError('BUS_UNAVAILABLE', 'The event bus is closed');
      const spec = resolveSubscription(subscribeOptions, defaultMaxDeliver);
      if (spec.mode === 'broadcast') {
        const l: Listener = {
          patterns: spec.patterns,
          handler,
          queue: new Fifo(),
          active: true,
          running: undefined,
        };
        listeners.add(l);
        return {
          async unsubscribe() {
            l.active = false;
            listeners.delete(l);
            await l.running;
          },
        };
      }
      let g = groups.get(spec.group);
      if (!g) {
        g = {
          name: spec.group,
          patterns: spec.patterns,
          maxDeliver: spec.maxDeliver,
          queue: new Fifo(),
          due: [],
          members: [],
          next: 0,
          retryTimers: new Set(),
        };
        groups.set(spec.group, g);
      } else if (!sameSubscription(g, spec.patterns, spec.maxDeliver)) {
        if (g.members.some((m) => m.active)) {
          throw new AppError(
            'BUS_INVALID_SUBSCRIPTION',
            `Group ${spec.group} runs with other types or maxDeliver; all members must subscribe alike`,
            { group: spec.group, types: g.patterns, maxDeliver: g.maxDeliver },
          );
        }
        // No member runs: the group takes the new definition, like a NATS consumer update. Kept events
        // that no longer match stay and are delivered: they were published for this group.
        g.patterns = spec.patterns;
        g.maxDeliver = spec.maxDeliver;
      }
      const group = g;
      const member: Member = { handler, active: true, inFlight: undefined };
      group.members.push(member);
      queueMicrotask(() => pump(group));
      return {
        async unsubscribe() {
          if (!member.active) return;
          member.active = false;
          group.members = group.members.filter((m) => m !== member);
          await member.inFlight;
        },
      };
    },

    async ping() {
      if (closed) throw new AppError('BUS_UNAVAILABLE', 'The event bus is closed');
    },

    async close() {
      if (closed) return;
      // Graceful: the events already published are handled first (handlers may still publish the events
      // their work leads to), for at most drainMs; whatever still waits after that is dropped and logged.
      const deadline = Date.now() + drainMs;
      const waiting = () =>
        inFlight.size > 0 ||
        // Events in backoff after a failure are not waited for: their retry may be far off.
        [...groups.values()].some(
          (g) => g.members.some((m) => m.active) && g.queue.length + g.due.length > 0,
        ) ||
        [...listeners].some((l) => l.active && l.queue.length > 0);
      while (waiting() && Date.now() < deadline) {
        await Promise.race([Promise.allSettled([...inFlight]), new Promise((r) => setTimeout(r, 10))]);
      }
      closed = true;
      let dropped = 0;
      for (const g of groups.values()) {
        for (const t of g.retryTimers) clearTimeout(t);
        dropped += pendingCount(g);
        g.retryTimers.clear();
        g.queue.clear();
        g.due = [];
      }
      for (const l of listeners) {
        l.active = false;
        dropped += l.queue.length;
      }
      if (dropped > 0) {
        logger.warn({ source, dropped }, 'in-process bus closed with events still waiting; they are dropped');
      }
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },

    deadLetters() {
      return deadLetters.list();
    },
  };
}
