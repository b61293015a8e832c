/**
 * Routing benchmark on every extract (Monaco → Oslo east → Heidelberg → Porto): import and
 * preprocessing, cache reload, full and partial customization, point-to-point queries, dispatch,
 * table, isochrone, memory; the same 1,000 random pairs through the plain Dijkstra oracle and through
 * pgRouting (skipped with a message when it is not set up), as ratios.
 *
 *   node bin/run-ts.js bench/routing/run.ts [--write-docs] [extract ...]
 *   env ROUTING_BENCH_PAIRS (1000), ROUTING_BENCH_PG_PAIRS (= pairs), ROUTING_BENCH_PG_URL,
 *       SAFECITY_ROADS_DIR, ROUTING_BENCH_DATA (graph cache folder; default a temp dir)
 *
 * `runRoutingBench()` returns the results and the markdown section for docs/benchmarks.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  buildLowerTriangles,
  copyMetric,
  createMetric,
  customizeFull,
} from '../../src/modules/routing/cch-metric.ts';
import {
  type ImportProgress,
  importOsmPbf,
  type LonLat,
  loadOrBuildRoadNetwork,
  type RoutingEngine,
  resolveRoadSource,
} from '../../src/modules/routing/index.ts';
import { INF_WEIGHT } from '../../src/modules/routing/osm-import.ts';
import { DijkstraOracle } from '../../src/modules/routing/testing/dijkstra-oracle.ts';
import { randomRoadPoint, seededRandom } from '../../src/modules/routing/testing/random-points.ts';
import { type PgRoutingTiming, pgRoutingUnavailable, timePgRouting } from './pgrouting-baseline.ts';
import { benchDataDir } from './verify.ts';

const EXTRACTS = ['monaco', 'oslo-east', 'heidelberg', 'porto'];

export interface ExtractResult {
  extract: string;
  nodes: number;
  junctions: number;
  roadSegments: number;
  cchArcs: number;
  triangles: number;
  treeHeight: number;
  importMs: { parse: number; order: number; contract: number; total: number };
  cacheLoadMs: number;
  networkMB: number;
  metricMB: number;
  heapMB: number;
  fullCustomizationMs: number;
  closure: {
    segmentsP50: number;
    customizeP50Ms: number;
    applyP50Ms: number;
    visibleP50Ms: number;
    visibleP99Ms: number;
  };
  speedChanges1000Ms: number;
  p2pQueryP50Ms: number;
  p2pQueryP99Ms: number;
  routeP50Ms: number;
  routeP99Ms: number;
  dispatch50P50Ms: number;
  dispatch50WithRoutesP50Ms: number;
  dispatch20P50Ms: number;
  table100Ms: number;
  isochrone10MinMs: number;
  dijkstraP50Ms: number;
  pgRouting: PgRoutingTiming | { skipped: string };
}

function pct(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
}

function median(values: number[]): number {
  return pct(values, 0.5);
}

function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

async function benchExtract(extract: string, pairs: number, pgPairs: number, log: (s: string) => void) {
  const path = resolveRoadSource(extract);
  // import and preprocessing (no cache), phase times from the progress callback
  const marks: { phase: ImportProgress['phase']; at: number }[] = [];
  const t0 = performance.now();
  const built = await importOsmPbf(path, {
    onProgress: (p) => {
      if (marks.at(-1)?.phase !== p.phase) marks.push({ phase: p.phase, at: performance.now() });
    },
  });
  const total = performance.now() - t0;
  const at = (phase: ImportProgress['phase']) => marks.find((m) => m.phase === phase)?.at ?? t0;
  const importMs = {
    parse: at('graph') - t0,
    order: at('contract') - at('order'),
    contract: at('index') - at('contract'),
    total,
  };
  void built;
  const dataDir = benchDataDir();
  await loadOrBuildRoadNetwork({ source: path, dataDir, rebuild: true });
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  const loaded = await loadOrBuildRoadNetwork({ source: path, dataDir });
  const engine: RoutingEngine = loaded.engine;
  global.gc?.();
  const heapAfter = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  const net = engine.network;
  const stats = engine.stats();
  log(
    `${extract}: ${stats.nodes} nodes, import ${total.toFixed(0)} ms, cache load ${loaded.loadMs.toFixed(0)} ms`,
  );

  // full customization (from scratch, into a spare metric)
  const spare = createMetric(net);
  const full: number[] = [];
  const lower = buildLowerTriangles(net.topo);
  for (let i = 0; i < 7; i++) full.push(time(() => customizeFull(net, spare, lower)));

  const rnd = seededRandom(4242);
  const pairPoints: [LonLat, LonLat][] = Array.from({ length: pairs }, () => [
    randomRoadPoint(net, rnd, 0.0002),
    randomRoadPoint(net, rnd, 0.0002),
  ]);
  const snapped = pairPoints.map(([a, b]) => [engine.snap(a), engine.snap(b)] as const);

  // point-to-point: warm up, then time
  for (const [a, b] of snapped.slice(0, 200)) engine.routeSnapped(a, b);
  const q = (engine as unknown as { query: import('../../src/modules/routing/cch-query.ts').CchQuery }).query;
  const p2p: number[] = [];
  for (const [a, b] of snapped) {
    const s = engine.sourceStates(a);
    const t = engine.targetStates(b);
    p2p.push(time(() => q.shortestPath(engine.metric, s, t)));
  }
  const routeTimes: number[] = [];
  for (const [a, b] of snapped) routeTimes.push(time(() => engine.routeSnapped(a, b)));

  // the same pairs through the Dijkstra oracle
  const oracle = new DijkstraOracle(net);
  const dijkstra: number[] = [];
  for (const [a, b] of snapped) dijkstra.push(time(() => oracle.cost(engine.metric.roadW, a, b)));

  // closures: a point closure sized to cover at most 100 segments; applied, then the next query
  const closureApply: number[] = [];
  const closureVisible: number[] = [];
  const closureSegments: number[] = [];
  const closureCustomize: number[] = [];
  for (let i = 0; i < 40; i++) {
    const c = randomRoadPoint(net, rnd);
    const [a, b] = snapped[i]!;
    let id = '';
    const tApply = time(() => {
      id = engine.addClosure({ type: 'Point', coordinates: c }, { radiusMeters: 40 + rnd() * 200 });
    });
    const customizeMs = engine.stats().lastCustomization?.ms ?? Number.NaN;
    const tQuery = time(() => engine.routeSnapped(a, b));
    const segs = engine.liveChanges().find((x) => x.id === id)?.edges ?? 0;
    engine.liftClosure(id);
    if (segs > 100) continue;
    closureSegments.push(segs);
    closureCustomize.push(customizeMs);
    closureApply.push(tApply);
    closureVisible.push(tApply + tQuery);
  }

  // 1,000 segment speed changes through partial customization (direct, no geometry matching)
  const partial = (
    engine as unknown as { partial: import('../../src/modules/routing/cch-metric.ts').PartialCustomizer }
  ).partial;
  const speedTimes: number[] = [];
  for (let r = 0; r < 5; r++) {
    copyMetric(engine.metric, spare);
    const changed: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const e = Math.floor(rnd() * net.edgeU.length);
      for (const arc of [2 * e, 2 * e + 1]) {
        const w = spare.roadW[arc]!;
        if (w === INF_WEIGHT) continue;
        spare.roadW[arc] = Math.round(w * (1.2 + rnd()));
        changed.push(arc);
      }
    }
    speedTimes.push(time(() => partial.run(spare, changed)));
  }

  // dispatch: 1 incident, 50 units (and 20, as the pgRouting comparison)
  const d50: number[] = [];
  const d50k: number[] = [];
  const d20: number[] = [];
  const manyToOne: { units: LonLat[]; incident: LonLat }[] = [];
  for (let i = 0; i < 60; i++) {
    const incident = randomRoadPoint(net, rnd);
    const units = Array.from({ length: 50 }, (_, k) => ({
      id: `u${k}`,
      position: randomRoadPoint(net, rnd),
    }));
    d50.push(time(() => engine.dispatch(incident, units, { k: 0 })));
    d50k.push(time(() => engine.dispatch(incident, units, { k: 3 })));
    d20.push(time(() => engine.dispatch(incident, units.slice(0, 20), { k: 0 })));
    if (i < 10) manyToOne.push({ incident, units: units.slice(0, 20).map((u) => u.position) });
  }

  // table 100 × 100 and a 10-minute isochrone
  const sources = Array.from({ length: 100 }, () => randomRoadPoint(net, rnd));
  const targets = Array.from({ length: 100 }, () => randomRoadPoint(net, rnd));
  const table: number[] = [];
  for (let i = 0; i < 5; i++) table.push(time(() => engine.table(sources, targets)));
  const iso: number[] = [];
  for (let i = 0; i < 5; i++) {
    const o = randomRoadPoint(net, rnd);
    iso.push(time(() => engine.isochrone(o, 600)));
  }

  const schema = extract.replace(/-/g, '_');
  const why = await pgRoutingUnavailable(schema);
  let pgRouting: ExtractResult['pgRouting'];
  if (why) {
    log(`  pgRouting skipped: ${why}`);
    pgRouting = { skipped: why };
  } else {
    log(`  pgRouting: ${pgPairs} pairs through pgr_dijkstra …`);
    pgRouting = await timePgRouting(schema, pairPoints.slice(0, pgPairs), manyToOne);
  }

  const result: ExtractResult = {
    extract,
    nodes: stats.nodes,
    junctions: stats.junctions,
    roadSegments: stats.roadSegments,
    cchArcs: stats.cchArcs,
    triangles: stats.triangles,
    treeHeight: stats.eliminationTreeHeight,
    importMs,
    cacheLoadMs: loaded.loadMs,
    networkMB: stats.networkBytes / 2 ** 20,
    metricMB: stats.metricBytes / 2 ** 20,
    heapMB: (heapAfter - heapBefore) / 2 ** 20,
    fullCustomizationMs: median(full),
    closure: {
      segmentsP50: median(closureSegments),
      customizeP50Ms: median(closureCustomize),
      applyP50Ms: median(closureApply),
      visibleP50Ms: median(closureVisible),
      visibleP99Ms: pct(closureVisible, 0.99),
    },
    speedChanges1000Ms: median(speedTimes),
    p2pQueryP50Ms: median(p2p),
    p2pQueryP99Ms: pct(p2p, 0.99),
    routeP50Ms: median(routeTimes),
    routeP99Ms: pct(routeTimes, 0.99),
    dispatch50P50Ms: median(d50),
    dispatch50WithRoutesP50Ms: median(d50k),
    dispatch20P50Ms: median(d20),
    table100Ms: median(table),
    isochrone10MinMs: median(iso),
    dijkstraP50Ms: median(dijkstra),
    pgRouting,
  };
  return result;
}

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

/** Log-log slope of y against n between the smallest and the largest extract. */
function growth(results: ExtractResult[], y: (r: ExtractResult) => number): number {
  const a = results[0]!;
  const b = results[results.length - 1]!;
  return Math.log(y(b) / y(a)) / Math.log(b.nodes / a.nodes);
}

export function markdownSection(results: ExtractResult[], pairs: number): string {
  const cpu = cpus();
  const lines: string[] = [];
  lines.push('## Routing', '');
  lines.push(
    `Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpu.length} × ${cpu[0]?.model ?? 'CPU'}, ` +
      `${Math.round(totalmem() / 2 ** 30)} GB RAM, Node ${process.version}; load average at start ${loadavg()[0]!.toFixed(1)} ` +
      '(the machine is shared with other engineers: absolute times are noisy, medians over many runs). ' +
      `Command: \`node bin/run-ts.js bench/routing/run.ts\`. Pairs: ${pairs} random road points per extract. ` +
      'Road data © OpenStreetMap contributors, ODbL.',
    '',
  );
  lines.push('| | ' + results.map((r) => r.extract).join(' | ') + ' |');
  lines.push('| --- | ' + results.map(() => '---:').join(' | ') + ' |');
  const row = (label: string, fn: (r: ExtractResult) => string) =>
    lines.push(`| ${label} | ${results.map(fn).join(' | ')} |`);
  row('routing nodes (largest SCC, turn-expanded)', (r) => String(r.nodes));
  row('road segments', (r) => String(r.roadSegments));
  row('CCH arcs (edges + shortcuts)', (r) => String(r.cchArcs));
  row('lower triangles', (r) => String(r.triangles));
  row('elimination-tree height', (r) => String(r.treeHeight));
  row(
    'import + preprocessing, ms (parse / order / contract)',
    (r) =>
      `${f(r.importMs.total, 0)} (${f(r.importMs.parse, 0)} / ${f(r.importMs.order, 0)} / ${f(r.importMs.contract, 0)})`,
  );
  row('reload from cache file, ms', (r) => f(r.cacheLoadMs, 0));
  row('memory: network + triangle index, MB', (r) => f(r.networkMB, 1));
  row('memory: metric (double-buffered), MB', (r) => f(r.metricMB, 1));
  row('full customization, ms (median)', (r) => f(r.fullCustomizationMs, 1));
  row(
    'closure ≤100 segments: partial customization / add incl. geometry matching, ms p50 (segments)',
    (r) => `${f(r.closure.customizeP50Ms)} / ${f(r.closure.applyP50Ms)} (${r.closure.segmentsP50})`,
  );
  row(
    'closure visible to next query, ms p50 / p99',
    (r) => `${f(r.closure.visibleP50Ms)} / ${f(r.closure.visibleP99Ms)}`,
  );
  row(
    '1,000 segment speed changes: partial customization, ms (the engine runs a full one above 600 changed arcs)',
    (r) => `${f(r.speedChanges1000Ms, 1)} (full: ${f(r.fullCustomizationMs, 1)})`,
  );
  row(
    'point-to-point with path (CCH query + unpack), ms p50 / p99',
    (r) => `${f(r.p2pQueryP50Ms, 3)} / ${f(r.p2pQueryP99Ms, 3)}`,
  );
  row(
    'full route answer (+ geometry, steps), ms p50 / p99',
    (r) => `${f(r.routeP50Ms, 3)} / ${f(r.routeP99Ms, 3)}`,
  );
  row(
    'dispatch 1 incident × 50 units, ms (ranking only / with 3 routes)',
    (r) => `${f(r.dispatch50P50Ms)} / ${f(r.dispatch50WithRoutesP50Ms)}`,
  );
  row('dispatch 20 units, ms', (r) => f(r.dispatch20P50Ms));
  row('table 100 × 100, ms', (r) => f(r.table100Ms, 1));
  row('isochrone 10 min (polygon), ms', (r) => f(r.isochrone10MinMs, 1));
  row(
    'plain Dijkstra (oracle, JS), ms p50 — ratio to CCH',
    (r) => `${f(r.dijkstraP50Ms)} — ${f(r.dijkstraP50Ms / r.p2pQueryP50Ms, 0)}×`,
  );
  row('pgr_dijkstra, ms p50 — ratio to CCH', (r) =>
    'skipped' in r.pgRouting
      ? 'skipped'
      : `${f(r.pgRouting.p50Ms, 1)} — ${f(r.pgRouting.p50Ms / r.p2pQueryP50Ms, 0)}×`,
  );
  row('pgr_dijkstra 20 units → 1 incident, ms — ratio to dispatch 20', (r) =>
    'skipped' in r.pgRouting
      ? 'skipped'
      : `${f(r.pgRouting.manyToOne20Ms, 1)} — ${f(r.pgRouting.manyToOne20Ms / r.dispatch20P50Ms, 0)}×`,
  );
  lines.push('');
  const skipped = results.filter((r) => 'skipped' in r.pgRouting);
  if (skipped.length > 0) {
    lines.push(
      `pgRouting was skipped for ${skipped.map((r) => r.extract).join(', ')}: ${(skipped[0]!.pgRouting as { skipped: string }).skipped}.`,
      '',
    );
  }
  if (results.length >= 2) {
    const nodesRatio = results.at(-1)!.nodes / results[0]!.nodes;
    const gCust = growth(results, (r) => r.fullCustomizationMs);
    const gMem = growth(results, (r) => r.networkMB + r.metricMB);
    const gTri = growth(results, (r) => r.triangles);
    const gQuery = growth(results, (r) => r.p2pQueryP50Ms);
    const gHeight = growth(results, (r) => r.treeHeight);
    const last = results.at(-1)!;
    const scale = 1_000_000 / last.nodes;
    lines.push(
      `Growth ${results[0]!.extract} → ${last.extract} (${f(nodesRatio, 0)}× the nodes), as exponents of n: ` +
        `triangles n^${f(gTri)}, full customization n^${f(gCust)}, memory n^${f(gMem)}, ` +
        `elimination-tree height n^${f(gHeight)}, point-to-point query n^${f(gQuery)}. ` +
        `Extrapolated to 1,000,000 nodes (${f(scale, 0)}× ${last.extract}): full customization ≈ ${f(last.fullCustomizationMs * scale ** gCust, 0)} ms, ` +
        `memory ≈ ${f((last.networkMB + last.metricMB) * scale ** gMem, 0)} MB, point-to-point ≈ ${f(last.p2pQueryP50Ms * scale ** gQuery, 2)} ms. ` +
        'Road networks have separators of about √n, so CCH theory predicts triangles and customization a little above linear and query work around √n·log n; ' +
        'partial customization after a local closure stays proportional to the affected shortcuts, not to n.',
      '',
    );
  }
  const verify = readVerifyResults();
  if (verify) {
    const rows = verify.results
      .map(
        (r) =>
          `${r.extract}: ${r.pairs.toLocaleString('en')} pairs + ${r.pairsUnderChanges.toLocaleString('en')} under changes, ${r.mismatches.length} mismatches`,
      )
      .join('; ');
    lines.push(
      `Correctness (\`node bin/run-ts.js bench/routing/verify.ts\`, ${verify.at.slice(0, 16).replace('T', ' ')} UTC): ` +
        `${verify.pairs.toLocaleString('en')} random pairs per extract against the plain Dijkstra oracle (durations equal to the millisecond, ` +
        `paths consecutive, turns allowed, no closed segment), then ${verify.rounds} rounds of 25 random closures and slow-downs applied, ` +
        `half lifted, all lifted — ${rows}.`,
      '',
    );
  }
  return lines.join('\n');
}

function readVerifyResults():
  | { at: string; pairs: number; rounds: number; results: import('./verify.ts').VerifyResult[] }
  | undefined {
  try {
    return JSON.parse(readFileSync(join(benchDataDir(), 'verify-results.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

export async function runRoutingBench(
  options: { extracts?: string[]; pairs?: number; pgPairs?: number; log?: (s: string) => void } = {},
): Promise<{ results: ExtractResult[]; markdown: string }> {
  const extracts = options.extracts ?? EXTRACTS;
  const pairs = options.pairs ?? Number(process.env.ROUTING_BENCH_PAIRS ?? 1000);
  const pgPairs = options.pgPairs ?? Number(process.env.ROUTING_BENCH_PG_PAIRS ?? pairs);
  const log = options.log ?? ((s: string) => console.log(s));
  const results: ExtractResult[] = [];
  for (const x of extracts) results.push(await benchExtract(x, pairs, pgPairs, log));
  return { results, markdown: markdownSection(results, pairs) };
}

/** Replaces (or appends) the "## Routing" section of docs/benchmarks.md, leaving other sections alone. */
export function writeRoutingSection(markdown: string): void {
  const path = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));
  let doc: string;
  try {
    doc = readFileSync(path, 'utf8');
  } catch {
    doc = '# Benchmarks\n';
  }
  const start = doc.indexOf('\n## Routing\n');
  if (start < 0) doc = `${doc.trimEnd()}\n\n${markdown.trimEnd()}\n`;
  else {
    const next = doc.indexOf('\n## ', start + 1);
    doc = `${doc.slice(0, start)}\n${markdown.trimEnd()}\n${next < 0 ? '' : doc.slice(next)}`;
  }
  writeFileSync(path, doc);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const write = args.includes('--write-docs');
  const extracts = args.filter((a) => !a.startsWith('--'));
  const { results, markdown } = await runRoutingBench(extracts.length > 0 ? { extracts } : {});
  console.log(JSON.stringify(results, null, 2));
  console.log(markdown);
  if (write) writeRoutingSection(markdown);
}
