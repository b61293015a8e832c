/** Shared helpers of the context-live benchmarks. */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { createMemoryBus } from '../../src/adapters/bus/index.ts';
import { openTestPgliteStore, openTestPostgresStore } from '../../src/adapters/storage/testing.ts';
import { ContextService } from '../../src/modules/context/index.ts';
import { CONTEXT_TEST_MIGRATIONS, openTestDirectory } from '../../src/modules/context/testing.ts';
import { LIVE_TEST_MIGRATIONS, testLdContext } from '../../src/modules/context-live/testing.ts';
import { TransactionalOutbox } from '../../src/modules/events/index.ts';
import type { Store } from '../../src/ports/store.ts';

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function percentiles(ms: number[]): Percentiles {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => Number((s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN).toFixed(2));
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: Number((s[s.length - 1] ?? NaN).toFixed(2)) };
}

export function machine(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

/** Organisations the benchmarks write and read as. */
const BENCH_ORGS = ['org-bench', 'org-a', 'org-b'];

/** A store for benchmarks: PostgreSQL at DATABASE_URL (fresh schema) or PGlite, with their organisations. */
export async function openBenchStore(): Promise<Store> {
  const migrations = { ...CONTEXT_TEST_MIGRATIONS, ...LIVE_TEST_MIGRATIONS };
  const store = await (process.env.DATABASE_URL
    ? openTestPostgresStore(migrations)
    : openTestPgliteStore(migrations));
  await openTestDirectory(store).addOrgs(...BENCH_ORGS);
  return store;
}

/** The NGSI-LD core on the sharing gate (organisations from openBenchStore). */
export function openCore(store: Store, maxPending = 1_000_000) {
  const bus = createMemoryBus({ maxPending, maxBroadcastPending: maxPending });
  const ld = testLdContext();
  const { gate } = openTestDirectory(store);
  const core = new ContextService({
    store,
    bus,
    events: new TransactionalOutbox({ store, bus }).emitter('context'),
    gate,
    resolver: ld,
    // INGEST_BENCH_ATTRIBUTE_INDEX=off: without the attribute value index of q, to measure what it costs writes.
    ...(process.env.INGEST_BENCH_ATTRIBUTE_INDEX === 'off' ? { attributeIndex: 'off' as const } : {}),
  });
  return { bus, ld, core };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Rows of the table in the `## title` section of docs/benchmarks.md measured on another store than
 * `store`, so that a PostgreSQL run and a PGlite run both stay in the section.
 */
export function rowsOfOtherStores(title: string, store: string): string[] {
  const file = resolve(import.meta.dirname, '../../docs/benchmarks.md');
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(`## ${title}\n`);
  if (start < 0) return [];
  const next = text.indexOf('\n## ', start + 4);
  let section = text.slice(start, next < 0 ? text.length : next);
  // The generated table only: hand-written subsections have tables of their own.
  const sub = section.indexOf('\n### ');
  if (sub >= 0) section = section.slice(0, sub);
  return section
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| store') && !l.startsWith('| ---'))
    .filter((l) => !(l.split('|')[1] ?? '').trim().startsWith(store));
}
