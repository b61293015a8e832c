/**
 * Ingestion benchmark: sustained attribute updates
 *  A. through MQTT: publishers → embedded aedes broker → ingestion (batched) → NGSI-LD core upsert
 *     (PUBACK after the write), then the bus → history (time until every instance is recorded);
 *  B. through the core's batch upsert directly (upsertFragments, 1,000 fragments per call);
 *  C. the ceiling: raw multi-row INSERT of the same rows (1,000 per statement) into a plain table.
 * Each message or fragment updates 10 numeric attributes of one of 1,000 devices.
 *
 * Run: node bin/run-ts.js bench/context-live/ingestion.ts   Env: DATABASE_URL (PostgreSQL), INGEST_BENCH_N
 * (messages per phase, default 5000).
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { sql } from 'kysely';
import mqtt from 'mqtt';
import { startEmbeddedMqttBroker } from '../../src/adapters/mqtt/index.ts';
import { createContextLive, type IngestPrincipal } from '../../src/modules/context-live/index.ts';
import { openLiveWorld } from '../../src/modules/context-live/testing.ts';
import { writeBenchSection } from '../write-section.ts';
import { machine, openBenchStore, openCore, rowsOfOtherStores, sleep } from './bench-util.ts';

export interface IngestionBenchResult {
  store: 'pglite' | 'postgres';
  machine: string;
  attributesPerMessage: number;
  mqtt: { attributeUpdates: number; ackedPerSecond: number; historyPerSecond: number };
  batchUpsert: { attributeUpdates: number; perSecond: number; cpuMsPer10k: number };
  rawInsert: { attributeUpdates: number; perSecond: number };
  ratios: { mqttToRaw: number; batchUpsertToRaw: number };
}

const ATTRS = 10;
const DEVICES = 1000;
const principal: IngestPrincipal = {
  userId: 'svc-bench',
  orgId: 'org-bench',
  roles: ['operator'],
  defaultMarking: { tlp: 'GREEN', audience: { orgs: [], communities: [], users: [] } },
};

function measurement(i: number, t0: number): Record<string, unknown> {
  const m: Record<string, unknown> = { observedAt: new Date(t0 + i * 10).toISOString() };
  for (let a = 0; a < ATTRS; a++) m[`m${a}`] = (i * 7 + a) % 1000;
  return m;
}

export async function runIngestionBench(
  opts: { messages?: number; publishers?: number; log?: (s: string) => void } = {},
): Promise<IngestionBenchResult> {
  const n = opts.messages ?? Number(process.env.INGEST_BENCH_N ?? 5000);
  const log = opts.log ?? ((s: string) => console.log(s));
  const store = await openBenchStore();
  const { bus, ld, core } = openCore(store);
  const world = await openLiveWorld(store);
  const live = createContextLive({ store, gate: world.gate, ld, writer: core, busMembers: 256 });
  await live.start(bus);
  const broker = await startEmbeddedMqttBroker({
    port: 0,
    host: '127.0.0.1',
    authenticate: async (_u, p) => (p === 'bench-token' ? { principal } : null),
    ingest: (m) => live.ingestion!.ingest({ source: 'mqtt', ...m }),
  });
  const countInstances = async () =>
    Number(
      (await sql<{ n: number }>`select count(*)::int as n from context_live_attr_instance`.execute(store.db))
        .rows[0]?.n ?? 0,
    );
  try {
    // Warm up: create the devices, so every phase measures updates.
    const t0 = Date.parse('2026-11-27T00:00:00Z');
    const warm = [];
    for (let d = 0; d < DEVICES; d++)
      warm.push({ id: `urn:ngsi-ld:Sensor:d${d}`, type: 'Sensor', ...toFragment(measurement(d, t0)) });
    for (let i = 0; i < warm.length; i += 1000)
      await core.upsertFragments('', principal, warm.slice(i, i + 1000), undefined);
    for (let i = 0; i < 200 && (await countInstances()) < DEVICES * ATTRS; i++) await sleep(50);
    const base = await countInstances();

    // A. MQTT
    const publishers = opts.publishers ?? Number(process.env.INGEST_BENCH_PUBLISHERS ?? 8);
    const clients = await Promise.all(
      Array.from({ length: publishers }, () =>
        mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
          password: 'bench-token',
          username: 'bench',
          reconnectPeriod: 0,
        }),
      ),
    );
    const startA = performance.now();
    await Promise.all(
      clients.map(async (c, k) => {
        const window = 100;
        const inFlight = new Set<Promise<unknown>>();
        for (let i = k; i < n; i += publishers) {
          const topic = `safecity/v1/default/measurements/Sensor/d${i % DEVICES}`;
          const p = c.publishAsync(topic, JSON.stringify(measurement(DEVICES + i, t0)), { qos: 1 });
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
          if (inFlight.size >= window) await Promise.race(inFlight);
        }
        await Promise.all(inFlight);
      }),
    );
    const ackedSeconds = (performance.now() - startA) / 1000;
    const expected = base + n * ATTRS;
    for (let i = 0; i < 2400 && (await countInstances()) < expected; i++) await sleep(50);
    const historySeconds = (performance.now() - startA) / 1000;
    const recorded = (await countInstances()) - base;
    await Promise.all(clients.map((c) => c.endAsync()));
    const mqttResult = {
      attributeUpdates: n * ATTRS,
      ackedPerSecond: Math.round((n * ATTRS) / ackedSeconds),
      historyPerSecond: Math.round(recorded / historySeconds),
    };
    const c = live.ingestion!.counters;
    log(
      `ingestion A: ${c.writes} writer calls, ${(c.fragments / Math.max(1, c.writes)).toFixed(0)} fragments each`,
    );
    const letters = await live.deadLetters.list({ limit: 5 });
    if (letters.length > 0) log(`ingestion: ${letters.length}+ dead letters, first: ${letters[0]?.reason}`);
    if (recorded !== n * ATTRS) log(`ingestion: history has ${recorded} of ${n * ATTRS} instances`);
    log(
      `ingestion A (MQTT): ${mqttResult.ackedPerSecond} attribute updates/s acknowledged, ${mqttResult.historyPerSecond}/s into history`,
    );

    // B. batch upsert
    const fragments = [];
    for (let i = 0; i < n; i++) {
      fragments.push({
        id: `urn:ngsi-ld:Sensor:d${i % DEVICES}`,
        type: 'Sensor',
        ...toFragment(measurement(2 * DEVICES + n + i, t0)),
      });
    }
    const startB = performance.now();
    const cpuB = process.cpuUsage();
    for (let i = 0; i < fragments.length; i += 1000) {
      // One fragment per device in each call, as the ingestion batches them.
      const res = await core.upsertFragments('', principal, fragments.slice(i, i + 1000), undefined);
      if (res.some((r) => r !== undefined)) throw new Error(`upsert refused: ${res.find((r) => r)}`);
    }
    const batchSeconds = (performance.now() - startB) / 1000;
    const cpu = process.cpuUsage(cpuB);
    // On a shared machine the rate follows the load; the CPU this process spent per update hardly does
    // (on PGlite the database runs in this process too).
    const cpuMsPer10k = Number((((cpu.user + cpu.system) / 1000) * (10_000 / (n * ATTRS))).toFixed(1));
    const batchUpsert = {
      attributeUpdates: n * ATTRS,
      perSecond: Math.round((n * ATTRS) / batchSeconds),
      cpuMsPer10k,
    };
    log(
      `ingestion B (batch upsert): ${batchUpsert.perSecond} attribute updates/s, ${cpuMsPer10k} ms CPU per 10,000 in this process`,
    );

    // C. raw multi-row INSERT of the same rows
    await sql`create table bench_raw_entity (id text not null, seq int not null, type text not null, attrs jsonb not null, primary key (id, seq))`.execute(
      store.db,
    );
    const startC = performance.now();
    for (let i = 0; i < fragments.length; i += 1000) {
      const rows = fragments
        .slice(i, i + 1000)
        .map((f, j) => sql`(${f.id}, ${i + j}, ${f.type}, ${JSON.stringify(f)}::jsonb)`);
      await sql`insert into bench_raw_entity (id, seq, type, attrs) values ${sql.join(rows)}`.execute(
        store.db,
      );
    }
    const rawSeconds = (performance.now() - startC) / 1000;
    const rawInsert = { attributeUpdates: n * ATTRS, perSecond: Math.round((n * ATTRS) / rawSeconds) };
    log(`ingestion C (raw multi-row INSERT): ${rawInsert.perSecond} attribute updates/s`);
    return {
      store: store.kind,
      machine: machine(),
      attributesPerMessage: ATTRS,
      mqtt: mqttResult,
      batchUpsert,
      rawInsert,
      ratios: {
        mqttToRaw: Number((mqttResult.ackedPerSecond / rawInsert.perSecond).toFixed(2)),
        batchUpsertToRaw: Number((batchUpsert.perSecond / rawInsert.perSecond).toFixed(2)),
      },
    };
  } finally {
    await broker.close();
    await live.stop();
    await bus.close();
    await store.close();
  }
}

function toFragment(m: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (k === 'observedAt') continue;
    out[k] = { type: 'Property', value: v, observedAt: m.observedAt };
  }
  return out;
}

const n0 = (x: number) => x.toLocaleString('en-US');

/** The docs/benchmarks.md section of one run. */
export function ingestionSection(r: IngestionBenchResult, loadAverage: number): string {
  return `## Context live: ingestion

Measured ${new Date().toISOString().slice(0, 10)} on ${r.machine}; load average ${loadAverage.toFixed(1)} during the run (a
shared machine: figures are lower bounds). Reproduce: \`npm run bench -- ingestion\` (PostgreSQL with
\`DATABASE_URL\`). ${n0(r.mqtt.attributeUpdates / r.attributesPerMessage)} messages per phase, each updating ${r.attributesPerMessage} numeric
attributes of one of 1,000 existing devices. A: MQTT publishers (QoS 1, 100 in flight each) → embedded aedes broker →
ingestion batches → NGSI-LD core upsert (the PUBACK leaves after the write), history recorded from the bus in parallel.
B: the core's \`upsertFragments\` directly, 1,000 fragments per call. C: the ceiling, a raw multi-row \`INSERT\` of the
same rows (id, type, attributes as jsonb; 1,000 per statement). Target: 20,000 attribute updates/s on PostgreSQL.
B's CPU is this process's per 10,000 updates (on PGlite the database's too): it follows the work, not the machine's load.

| store | A: MQTT, acknowledged | A: into history | B: batch upsert | B: CPU per 10,000 | C: raw INSERT | A / C | B / C |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| ${r.store} (load ${loadAverage.toFixed(1)}) | ${n0(r.mqtt.ackedPerSecond)} /s | ${n0(r.mqtt.historyPerSecond)} /s | ${n0(r.batchUpsert.perSecond)} /s | ${r.batchUpsert.cpuMsPer10k} ms | ${n0(r.rawInsert.perSecond)} /s | ${r.ratios.mqttToRaw} | ${r.ratios.batchUpsertToRaw} |
${rowsOfOtherStores('Context live: ingestion', r.store).join('\n')}
`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await runIngestionBench();
  console.log(JSON.stringify(r, null, 2));
  writeBenchSection('Context live: ingestion', ingestionSection(r, loadavg()[0] ?? 0));
}
