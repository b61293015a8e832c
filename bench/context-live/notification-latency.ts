/**
 * Notification latency benchmark: 100 subscriptions (one per watched sensor), 1,000 updates/s through the
 * NGSI-LD core for `seconds` seconds, each notification POSTed to a real HTTP receiver on 127.0.0.1.
 * The updates of each tick (10 ms) are written in one batch call (as ingestion does). Latency is from that
 * call to the receiver reading the notification. Every
 * update must arrive exactly once (zero lost).
 *
 * Run: node bin/run-ts.js bench/context-live/notification-latency.ts   Env: DATABASE_URL (PostgreSQL),
 * NOTIFY_BENCH_SECONDS (default 10), NOTIFY_BENCH_RATE (updates/s, default 1000), NOTIFY_BENCH_TICK_MS
 * (default 10: the updates of 10 ms go in one write).
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { createContextLive, type IngestPrincipal } from '../../src/modules/context-live/index.ts';
import { loopbackEgress, openLiveWorld, startReceiver } from '../../src/modules/context-live/testing.ts';
import { writeBenchSection } from '../write-section.ts';
import {
  machine,
  openBenchStore,
  openCore,
  type Percentiles,
  percentiles,
  rowsOfOtherStores,
  sleep,
} from './bench-util.ts';

export interface NotificationLatencyResult {
  store: 'pglite' | 'postgres';
  machine: string;
  subscriptions: number;
  targetRate: number;
  /** Updates are written in one batch call per tick. */
  tickMs: number;
  achievedRate: number;
  updates: number;
  delivered: number;
  lost: number;
  duplicates: number;
  notifications: number;
  /** From the batch write call to the receiver (includes waiting for the entity store). */
  latencyMs: Percentiles;
  /** From the committed write (event published) to the receiver: the notification path alone. */
  deliveryMs: Percentiles;
  loadAverage: number;
}

const SUBS = 100;
const writer: IngestPrincipal = {
  userId: 'svc-bench',
  orgId: 'org-a',
  roles: ['operator'],
  defaultMarking: { tlp: 'GREEN', audience: { orgs: [], communities: [], users: [] } },
};

export async function runNotificationLatencyBench(
  opts: { seconds?: number; rate?: number; tickMs?: number; log?: (s: string) => void } = {},
): Promise<NotificationLatencyResult> {
  const seconds = opts.seconds ?? Number(process.env.NOTIFY_BENCH_SECONDS ?? 10);
  const rate = opts.rate ?? Number(process.env.NOTIFY_BENCH_RATE ?? 1000);
  const log = opts.log ?? ((s: string) => console.log(s));
  const store = await openBenchStore();
  const { bus, ld, core } = openCore(store);
  const world = await openLiveWorld(store);
  const live = createContextLive({
    store,
    gate: world.gate,
    ld,
    writer: core,
    busMembers: 64,
    recordHistory: false,
    egress: loopbackEgress(),
  });
  await live.start(bus);
  const rx = await startReceiver();
  try {
    const subscriber = await world.as('org-b-operator');
    for (let k = 0; k < SUBS; k++) {
      await core.upsertFragments(
        '',
        writer,
        [{ id: `urn:ngsi-ld:Sensor:s${k}`, type: 'Sensor', seq: { type: 'Property', value: -1 } }],
        undefined,
      );
    }
    await sleep(200);
    for (let k = 0; k < SUBS; k++) {
      await live.subscriptions.create(
        '',
        subscriber,
        {
          type: 'Subscription',
          entities: [{ type: 'Sensor', id: `urn:ngsi-ld:Sensor:s${k}` }],
          watchedAttributes: ['seq'],
          notification: { endpoint: { uri: rx.url }, format: 'keyValues' },
        },
        undefined,
      );
    }
    const sentAt = new Map<number, number>();
    const committedAt = new Map<number, number>();
    const total = Math.round(seconds * rate);
    const tickMs = opts.tickMs ?? Number(process.env.NOTIFY_BENCH_TICK_MS ?? 10);
    const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
    const start = performance.now();
    let seq = 0;
    while (seq < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + perTick);
      // The updates of one tick go in one batch call (as ingestion batches them): distinct sensors.
      const fragments = [];
      const now = performance.now();
      while (seq < due) {
        const s = seq++;
        sentAt.set(s, now);
        fragments.push({
          id: `urn:ngsi-ld:Sensor:s${s % SUBS}`,
          type: 'Sensor',
          seq: { type: 'Property', value: s },
        });
      }
      // One writer at a time: concurrent batches over the same entities deadlock in the core (they lock
      // rows in batch order); a slow write makes the next tick's batch larger instead.
      // At most one update per sensor in a call: the core folds several updates of one entity in one batch
      // into one change (the ingestion service splits batches the same way).
      for (let i = 0; i < fragments.length; i += SUBS) {
        const part = fragments.slice(i, i + SUBS);
        await core.upsertFragments('', writer, part, undefined);
        const done = performance.now();
        for (const f of part) committedAt.set(f.seq.value, done);
      }
      await sleep(tickMs);
    }
    const achievedRate = Math.round(total / ((performance.now() - start) / 1000));
    // Wait until everything was delivered, or nothing moved for 5 s with the engine holding nothing (events
    // may still wait in the bus): what is missing then is lost.
    const deadline = Date.now() + 300_000;
    const seen = () => rx.received.reduce((n, r) => n + (r.body.data as unknown[]).length, 0);
    let last = seen();
    let lastMove = Date.now();
    while (seen() < total && Date.now() < deadline) {
      await sleep(100);
      if (seen() !== last) {
        last = seen();
        lastMove = Date.now();
        continue;
      }
      const b = await live.engine.backlog();
      if (b.queued + b.inFlight + b.outbox === 0 && Date.now() - lastMove > 5000) break;
    }
    const got = new Map<number, number>();
    let duplicates = 0;
    const latencies: number[] = [];
    const deliveries: number[] = [];
    // The receiver timestamps with Date.now(); map to the performance clock of the sender.
    const offset = performance.timeOrigin;
    for (const r of rx.received) {
      for (const d of r.body.data as Array<{ seq: number }>) {
        if (got.has(d.seq)) {
          duplicates++;
          continue;
        }
        got.set(d.seq, r.at);
        const t0 = sentAt.get(d.seq);
        if (t0 !== undefined) latencies.push(r.at - offset - t0);
        const t1 = committedAt.get(d.seq);
        if (t1 !== undefined) deliveries.push(Math.max(0, r.at - offset - t1));
      }
    }
    const delivered = [...sentAt.keys()].filter((s) => got.has(s)).length;
    const result: NotificationLatencyResult = {
      store: store.kind,
      machine: machine(),
      subscriptions: SUBS,
      targetRate: rate,
      tickMs,
      achievedRate,
      updates: total,
      delivered,
      lost: total - delivered,
      duplicates,
      notifications: rx.received.length,
      latencyMs: percentiles(latencies),
      deliveryMs: percentiles(deliveries),
      loadAverage: Number(loadavg()[0]?.toFixed(1)),
    };
    log(
      `notifications: ${delivered}/${total} delivered (${result.lost} lost) at ${achievedRate} updates/s; ` +
        `latency p50 ${result.latencyMs.p50} ms p99 ${result.latencyMs.p99} ms; from commit p50 ` +
        `${result.deliveryMs.p50} ms p99 ${result.deliveryMs.p99} ms (load ${result.loadAverage})`,
    );
    return result;
  } finally {
    await live.stop();
    await rx.close();
    await bus.close();
    await store.close();
  }
}

/** The docs/benchmarks.md section of one run. */
export function notificationSection(r: NotificationLatencyResult): string {
  const ms = (p: Percentiles) => `${p.p50} / ${p.p99} ms`;
  return `## Context live: notification latency

Measured ${new Date().toISOString().slice(0, 10)} on ${r.machine}; load average ${r.loadAverage} at the end of the run (a shared
machine: tails follow the load). Reproduce: \`npm run bench -- notifications\` (PostgreSQL with \`DATABASE_URL\`).
${r.subscriptions} subscriptions (each on its own sensor, watchedAttributes, keyValues), ${r.targetRate} updates/s for ${r.updates / r.targetRate} s
(${r.updates.toLocaleString('en-US')} updates, written in one core batch call per ${r.tickMs} ms), each notification POSTed to a node:http receiver
on 127.0.0.1. "From the write" includes the entity store's write; "from commit" starts when the write (and the event
publication) returned. Every update is counted at the receiver by its sequence number; the run waits until the
delivery engine holds nothing, so what is missing is lost. Target: p99 < 50 ms, zero lost.

| store | updates/s reached | delivered | lost | duplicates | notifications | from the write p50 / p99 | from commit p50 / p99 |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| ${r.store} (load ${r.loadAverage}) | ${r.achievedRate} | ${r.delivered} | ${r.lost} | ${r.duplicates} | ${r.notifications} | ${ms(r.latencyMs)} | ${ms(r.deliveryMs)} |
${rowsOfOtherStores('Context live: notification latency', r.store).join('\n')}
`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await runNotificationLatencyBench();
  console.log(JSON.stringify(r, null, 2));
  writeBenchSection('Context live: notification latency', notificationSection(r));
}
