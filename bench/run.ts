/**
 * `npm run bench [-- name ...]`: runs the benchmarks (all, or the named ones), each in its own process so
 * one's memory and JIT state do not colour another's, and each records its section of docs/benchmarks.md.
 * Set DATABASE_URL (and NATS_URL, MQTT_URL) to include the PostgreSQL / server figures.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');

const BENCHES: Record<string, { script: string; what: string }> = {
  platform: {
    script: 'bench/platform/read-throughput.ts',
    what: 'authenticated API read throughput (PGlite, PostgreSQL)',
  },
  routing: {
    script: 'bench/routing/run.ts',
    what: 'routing engine on every extract, with pgRouting and Dijkstra baselines',
  },
  'routing-verify': {
    script: 'bench/routing/verify.ts',
    what: 'routing correctness: 10,000 random pairs per extract vs Dijkstra',
  },
  geo: { script: 'bench/context/geo.ts', what: 'NGSI-LD near / within queries over 100,000 entities' },
  q: {
    script: 'bench/context/q.ts',
    what: 'NGSI-LD q on the attribute value index (Q_BENCH_N entities), before/after and raw SQL, write cost',
  },
  ingestion: {
    script: 'bench/context-live/ingestion.ts',
    what: 'attribute updates/s through batch upsert and MQTT, vs raw INSERT',
  },
  outbox: {
    script: 'bench/context-live/outbox-cost.ts',
    what: 'cost of the transactional outbox per 1,000-entity batch upsert, against publishing after commit',
  },
  notifications: {
    script: 'bench/context-live/notification-latency.ts',
    what: 'notification latency, 100 subscriptions at 1,000 updates/s',
  },
  detection: {
    script: 'bench/detection/engine.ts',
    what: 'detection engine: 1,000 mixed rules over 100,000 entities vs a naive loop, memory, dry-run speed',
  },
  temporal: {
    script: 'bench/context-live/temporal-aggregation.ts',
    what: 'temporal aggregation over a day of 1 s observations',
  },
};

const args = process.argv.slice(2).filter((a) => a !== '--');
if (args.includes('--help') || args.includes('-h')) {
  console.log('usage: npm run bench [-- name ...]\n');
  for (const [name, b] of Object.entries(BENCHES)) console.log(`  ${name.padEnd(16)} ${b.what}`);
  process.exit(0);
}
const unknown = args.filter((a) => !(a in BENCHES));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
  process.exit(2);
}
const selected = args.length > 0 ? args : Object.keys(BENCHES);
let failed = 0;
for (const name of selected) {
  const bench = BENCHES[name] as { script: string; what: string };
  if (!existsSync(join(ROOT, bench.script))) {
    console.log(`\n== ${name}: ${bench.script} is missing, skipped`);
    continue;
  }
  console.log(`\n== ${name}: ${bench.what}`);
  const t0 = Date.now();
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', join(ROOT, 'bin/run-ts.js'), join(ROOT, bench.script)],
    {
      stdio: 'inherit',
      env: process.env,
    },
  );
  console.log(
    `== ${name}: ${r.status === 0 ? 'done' : `FAILED (exit ${r.status})`} in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  if (r.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
