/**
 * What the transactional outbox costs IoT ingestion: the same 1,000-entity batch upserts (10 attributes each)
 * through the outbox (one compressed row per batch in the write's transaction, relayed after the commit) and
 * through an emitter that only publishes each event after the commit, the way modules published before the
 * outbox (2026-11). Batches alternate between the two in one process, with the history recorder running, so
 * a shared machine's load weighs on both alike; medians of wall and CPU time per batch.
 *
 * Run: `npm run bench -- outbox` (PostgreSQL with DATABASE_URL). Env: OUTBOX_BENCH_ROUNDS (default 16).
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { sql } from 'kysely';
import { createMemoryBus } from '../../src/adapters/bus/index.ts';
import { newTimeOrderedId } from '../../src/kernel/ids.ts';
import { type ContextEvents, ContextService } from '../../src/modules/context/index.ts';
import { openTestDirectory } from '../../src/modules/context/testing.ts';
import { createContextLive, type IngestPrincipal } from '../../src/modules/context-live/index.ts';
import { testLdContext } from '../../src/modules/context-live/testing.ts';
import { TransactionalOutbox } from '../../src/modules/events/index.ts';
import type { EventOutbox } from '../../src/ports/event-outbox.ts';
import { writeBenchSection } from '../write-section.ts';
import { machine, openBenchStore, rowsOfOtherStores, sleep } from './bench-util.ts';

const TITLE = 'Transactional outbox: cost per batch upsert';
const principal: IngestPrincipal = {
  userId: 'svc-bench',
  orgId: 'org-bench',
  roles: ['operator'],
  defaultMarking: { tlp: 'GREEN', audience: { orgs: [], communities: [], users: [] } },
};

export interface OutboxCostResult {
  store: 'pglite' | 'postgres';
  machine: string;
  rounds: number;
  outbox: { wallMs: number; cpuMs: number };
  publishAfterCommit: { wallMs: number; cpuMs: number };
}

export async function runOutboxCostBench(rounds = Number(process.env.OUTBOX_BENCH_ROUNDS ?? 16)) {
  const store = await openBenchStore();
  const bus = createMemoryBus({ maxPending: 10_000_000, maxBroadcastPending: 10_000_000 });
  const ld = testLdContext();
  const outbox = new TransactionalOutbox({ store, bus });
  const { gate } = openTestDirectory(store);
  const afterCommit: EventOutbox<ContextEvents> = {
    emit: (trx, type, data) => afterCommit.emitAll(trx, [{ type, data } as never]),
    async emitAll(trx, events) {
      const time = new Date().toISOString();
      store.afterCommit(trx, async () => {
        // As the context service published: 32 events at a time, each serialised by the bus.
        for (let i = 0; i < events.length; i += 32) {
          await Promise.all(
            events
              .slice(i, i + 32)
              .map((e) =>
                bus.publish({ id: newTimeOrderedId(), type: e.type, time, source: 'context', data: e.data }),
              ),
          );
        }
      });
    },
  };
  const sides = {
    outbox: new ContextService({ store, bus, gate, events: outbox.emitter('context'), resolver: ld }),
    publishAfterCommit: new ContextService({ store, bus, gate, events: afterCommit, resolver: ld }),
  };
  const live = createContextLive({ store, gate, ld, writer: sides.outbox, busMembers: 256 });
  await live.start(bus);
  let seq = 0;
  const batch = () =>
    Array.from({ length: 1000 }, (_, d) => {
      seq++;
      const f: { id: string; type: string; [attr: string]: unknown } = {
        id: `urn:ngsi-ld:Sensor:d${d}`,
        type: 'Sensor',
      };
      const observedAt = new Date(Date.parse('2026-11-27T00:00:00Z') + seq * 10).toISOString();
      for (let a = 0; a < 10; a++) f[`m${a}`] = { type: 'Property', value: (seq * 7 + a) % 1000, observedAt };
      return f;
    });
  const instances = async () =>
    Number(
      (await sql<{ n: number }>`select count(*)::int as n from context_live_attr_instance`.execute(store.db))
        .rows[0]?.n ?? 0,
    );
  // The history of the previous batch is recorded before the next one starts: each batch runs alone.
  const quiet = async () => {
    let last = -1;
    for (let n = await instances(); n !== last; n = await instances()) {
      last = n;
      await sleep(150);
    }
  };
  const wall: Record<keyof typeof sides, number[]> = { outbox: [], publishAfterCommit: [] };
  const cpu: Record<keyof typeof sides, number[]> = { outbox: [], publishAfterCommit: [] };
  try {
    await sides.outbox.upsertFragments('', principal, batch(), undefined);
    for (let r = 0; r < rounds; r++) {
      const order =
        r % 2 ? (['outbox', 'publishAfterCommit'] as const) : (['publishAfterCommit', 'outbox'] as const);
      for (const side of order) {
        await quiet();
        const fragments = batch();
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await sides[side].upsertFragments('', principal, fragments, undefined);
        const c = process.cpuUsage(c0);
        wall[side].push(performance.now() - t0);
        cpu[side].push((c.user + c.system) / 1000);
      }
    }
  } finally {
    await live.stop();
    await outbox.stop();
    await bus.close();
    await store.close();
  }
  const median = (x: number[]) =>
    Number(([...x].sort((a, b) => a - b)[Math.floor(x.length / 2)] ?? 0).toFixed(1));
  return {
    store: store.kind,
    machine: machine(),
    rounds,
    outbox: { wallMs: median(wall.outbox), cpuMs: median(cpu.outbox) },
    publishAfterCommit: { wallMs: median(wall.publishAfterCommit), cpuMs: median(cpu.publishAfterCommit) },
  } satisfies OutboxCostResult;
}

const pct = (a: number, b: number) => `${a >= b ? '+' : '−'}${Math.abs(((a - b) / b) * 100).toFixed(0)} %`;

export function outboxCostSection(r: OutboxCostResult, loadAverage: number): string {
  return `## ${TITLE}

Measured ${new Date().toISOString().slice(0, 10)} on ${r.machine}; load average ${loadAverage.toFixed(1)} at the end of the run.
Reproduce: \`npm run bench -- outbox\` (PostgreSQL with \`DATABASE_URL\`). The same 1,000-entity batch upserts (10,000
attribute updates each) through the transactional outbox and through an emitter that publishes each event after the
commit as modules did before the outbox, alternating batch by batch in one process (${r.rounds} each) while the history
recorder runs, so that the machine's load weighs on both alike: medians per batch. CPU is this process's (on PGlite
the database runs in it too). Budget: the outbox may cost at most 10 % of the ingestion rate.

| store | outbox: wall / CPU | publish after commit: wall / CPU | outbox costs (wall / CPU) |
| --- | ---: | ---: | ---: |
| ${r.store} (load ${loadAverage.toFixed(1)}) | ${r.outbox.wallMs} / ${r.outbox.cpuMs} ms | ${r.publishAfterCommit.wallMs} / ${r.publishAfterCommit.cpuMs} ms | ${pct(r.outbox.wallMs, r.publishAfterCommit.wallMs)} / ${pct(r.outbox.cpuMs, r.publishAfterCommit.cpuMs)} |
${rowsOfOtherStores(TITLE, r.store).join('\n')}
`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await runOutboxCostBench();
  console.log(JSON.stringify(r, null, 2));
  writeBenchSection(TITLE, outboxCostSection(r, loadavg()[0] ?? 0));
}
