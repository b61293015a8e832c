/**
 * Full correctness check on every extract: 10,000 random pairs against the plain Dijkstra oracle
 * (durations equal to the millisecond, paths consecutive, turns allowed, no closed segment), then rounds
 * of random closures and slow-downs applied, partly lifted and fully lifted, checked again each time.
 *
 *   node bin/run-ts.js bench/routing/verify.ts [extract ...]
 *   env ROUTING_VERIFY_PAIRS (10000), ROUTING_VERIFY_ROUNDS (5), SAFECITY_ROADS_DIR, ROUTING_BENCH_DATA
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadOrBuildRoadNetwork } from '../../src/modules/routing/index.ts';
import { DijkstraOracle } from '../../src/modules/routing/testing/dijkstra-oracle.ts';
import { applyRandomChanges, checkRandomPairs } from '../../src/modules/routing/testing/oracle-check.ts';
import { seededRandom } from '../../src/modules/routing/testing/random-points.ts';

export function benchDataDir(): string {
  return process.env.ROUTING_BENCH_DATA ?? join(tmpdir(), 'safecity-routing-bench');
}

export const EXTRACTS = ['monaco', 'oslo-east', 'heidelberg', 'porto'];

export interface VerifyResult {
  extract: string;
  nodes: number;
  pairs: number;
  unreachable: number;
  changeRounds: number;
  pairsUnderChanges: number;
  snapFailuresUnderChanges: number;
  mismatches: string[];
  seconds: number;
}

export async function verifyExtract(extract: string, pairs: number, rounds: number): Promise<VerifyResult> {
  const t0 = performance.now();
  const dataDir = benchDataDir();
  const { engine } = await loadOrBuildRoadNetwork({ source: extract, dataDir });
  const oracle = new DijkstraOracle(engine.network);
  const rnd = seededRandom(20_261_127);
  const base = checkRandomPairs(engine, oracle, rnd, pairs);
  const mismatches = [...base.mismatches];
  let underChanges = 0;
  let snapFailures = base.snapFailures;
  for (let r = 0; r < rounds; r++) {
    const { closures, slowdowns } = applyRandomChanges(engine, rnd, 25);
    const p = Math.max(50, Math.round(pairs / 10));
    const a = checkRandomPairs(engine, oracle, rnd, p);
    for (const id of closures.slice(0, closures.length >> 1)) engine.liftClosure(id);
    for (const id of slowdowns.slice(0, slowdowns.length >> 1)) engine.liftSlowdown(id);
    const b = checkRandomPairs(engine, oracle, rnd, p >> 1);
    for (const c of engine.liveChanges()) {
      if (c.kind === 'closure') engine.liftClosure(c.id);
      else engine.liftSlowdown(c.id);
    }
    const c = checkRandomPairs(engine, oracle, rnd, p >> 1);
    underChanges += a.checked + b.checked + c.checked;
    snapFailures += a.snapFailures + b.snapFailures + c.snapFailures;
    mismatches.push(...a.mismatches, ...b.mismatches, ...c.mismatches);
    const restored = engine.metric.roadW.every((w, i) => w === engine.network.arcWeight[i]);
    if (!restored) mismatches.push(`round ${r}: lifting every change did not restore the base weights`);
  }
  return {
    extract,
    nodes: engine.stats().nodes,
    pairs: base.checked,
    unreachable: base.unreachable,
    changeRounds: rounds,
    pairsUnderChanges: underChanges,
    snapFailuresUnderChanges: snapFailures,
    mismatches,
    seconds: Math.round((performance.now() - t0) / 1000),
  };
}

async function main(): Promise<void> {
  const extracts = process.argv.slice(2).length > 0 ? process.argv.slice(2) : EXTRACTS;
  const pairs = Number(process.env.ROUTING_VERIFY_PAIRS ?? 10_000);
  const rounds = Number(process.env.ROUTING_VERIFY_ROUNDS ?? 5);
  let failed = false;
  const all: VerifyResult[] = [];
  for (const x of extracts) {
    const r = await verifyExtract(x, pairs, rounds);
    all.push(r);
    failed ||= r.mismatches.length > 0;
    console.log(
      `${r.extract}: ${r.nodes} nodes, ${r.pairs} pairs (${r.unreachable} unreachable) + ${r.pairsUnderChanges} pairs under ${r.changeRounds} rounds of closures/slow-downs (${r.snapFailuresUnderChanges} points without an open road within 1 km skipped): ${r.mismatches.length} mismatches (${r.seconds} s)`,
    );
    for (const m of r.mismatches.slice(0, 10)) console.log(`  ${m}`);
  }
  const out = join(benchDataDir(), 'verify-results.json');
  mkdirSync(benchDataDir(), { recursive: true });
  writeFileSync(out, JSON.stringify({ at: new Date().toISOString(), pairs, rounds, results: all }, null, 2));
  console.log(
    `results written to ${out} (bench/routing/run.ts --write-docs puts them into docs/benchmarks.md)`,
  );
  process.exitCode = failed ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
