/** Shared helpers of the context-live benchmarks. */
import { cpus, totalmem } from 'node:os';
import { createMemoryBus } from '../../src/adapters/bus/index.ts';
import { openTestPgliteStore, openTestPostgresStore } from '../../src/adapters/storage/testing.ts';
import { ContextService, contextMigrations } from '../../src/modules/context/index.ts';
import { contextLiveMigrations } from '../../src/modules/context-live/index.ts';
import { testLdContext } from '../../src/modules/context-live/testing.ts';
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

/** A store for benchmarks: PostgreSQL at DATABASE_URL (fresh schema) or PGlite. */
export async function openBenchStore(): Promise<Store> {
  const migrations = { ...contextMigrations, ...contextLiveMigrations };
  return process.env.DATABASE_URL ? openTestPostgresStore(migrations) : openTestPgliteStore(migrations);
}

export function openCore(store: Store, maxPending = 1_000_000) {
  const bus = createMemoryBus({ maxPending, maxBroadcastPending: maxPending });
  const ld = testLdContext();
  const core = new ContextService({ store, bus, resolver: ld });
  return { bus, ld, core };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
