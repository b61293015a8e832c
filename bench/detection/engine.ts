/**
 * Detection engine benchmark (issue 9), in process, one core:
 * - throughput: 1,000 rules of mixed kinds over 100,000 entities (100 types × 10 attributes, each rule on
 *   one type and attribute, so each observation meets one rule), events/s through the indexed engine
 *   against the same events through a naive loop over all rules (the engine with `indexed: false`);
 * - memory per 1,000 rules (registered, before any state; and with the state of the run);
 * - dry-run speed: a day of one-second data from 100 sensors (8.64 M observations, made in memory as
 *   they go) through one rule. Target: under 10 s.
 *
 * Run: npm run bench -- detection   (DETECTION_BENCH_RUNS=3 runs of each, the median is recorded)
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import {
  DetectionEngine,
  type DetectionEngineOptions,
  type Observation,
  type Rule,
  validateRule,
} from '../../src/modules/detection/index.ts';
import { machine } from '../context-live/bench-util.ts';
import { writeBenchSection } from '../write-section.ts';

const TYPES = 100;
const ATTRIBUTES = 10;
const ENTITIES = 100_000;
const RULES = 1_000;
const T0 = Date.parse('2026-11-30T00:00:00Z');
const MARKING = { tlp: 'GREEN' as const, audience: { orgs: [], communities: [], users: [] } };
const canSee: DetectionEngineOptions['canSee'] = (org, v) => v.marking.tlp === 'GREEN' || v.ownerOrg === org;

/** A deterministic pseudo-random sequence (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function valid(doc: unknown): Rule {
  const r = validateRule(doc);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.rule;
}

/** Rule i reads type T(i % 100), attribute a(i / 100); kinds in a fixed mix. */
export function mixedRule(i: number): Rule {
  const match = { types: [`T${i % TYPES}`], attribute: `a${Math.floor(i / TYPES) % ATTRIBUTES}` };
  const base = { name: `rule ${i}`, severity: 'medium', category: 'infrastructure' };
  const square = {
    type: 'Polygon',
    coordinates: [
      [
        [2.3, 48.8],
        [2.31, 48.8],
        [2.31, 48.81],
        [2.3, 48.81],
        [2.3, 48.8],
      ],
    ],
  };
  switch (i % 20) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 7:
      return valid({ ...base, kind: 'threshold', match, above: 25, hysteresis: 1, forSeconds: 5 });
    case 8:
    case 9:
    case 10:
      return valid({ ...base, kind: 'rate', match, window: { seconds: 60 }, riseBy: 8 });
    case 11:
    case 12:
      return valid({
        ...base,
        kind: 'anomaly',
        match,
        method: i % 2 ? 'ewma' : 'robustZ',
        window: { samples: 30 },
        threshold: 5,
      });
    case 13:
    case 14:
      return valid({ ...base, kind: 'silence', match, expectedIntervalSeconds: 3_600 });
    case 15:
      return valid({
        ...base,
        kind: 'count',
        match,
        where: { above: 24 },
        count: 20,
        window: { seconds: 60 },
        by: 'entity',
      });
    case 16:
      return valid({
        ...base,
        kind: 'sequence',
        steps: [
          { match, where: { above: 24 }, count: 2 },
          { match, where: { below: 16 } },
        ],
        window: { seconds: 60 },
      });
    case 17:
      return valid({ ...base, kind: 'crowdDensity', match, measure: 'density', raiseAt: { level: 'F' } });
    case 18:
      return valid({
        ...base,
        kind: 'geofence',
        match: { ...match },
        area: { polygon: square },
        trigger: 'enter',
      });
    default:
      return valid({ ...base, kind: 'threshold', match, below: 12 });
  }
}

function engineWithRules(indexed: boolean): DetectionEngine {
  const e = new DetectionEngine({ canSee, indexed });
  for (let i = 0; i < RULES; i++)
    e.upsertRule({ id: `r${i}`, version: 1, ownerOrg: 'org-a', rule: mixedRule(i) });
  return e;
}

/** The events: a random entity (its type fixed by its number), a random attribute, a value near 20. */
function makeEvents(n: number, seed: number): Observation[] {
  const rnd = random(seed);
  const out: Observation[] = [];
  for (let k = 0; k < n; k++) {
    const entity = Math.floor(rnd() * ENTITIES);
    const attribute = Math.floor(rnd() * ATTRIBUTES);
    const spike = rnd() < 0.001;
    const ruleIndex = attribute * TYPES + (entity % TYPES);
    // Geofence rules (i % 20 === 18) read points; the others numbers.
    const value =
      ruleIndex % 20 === 18
        ? { type: 'Point', coordinates: [2.295 + rnd() * 0.02, 48.805] }
        : spike
          ? 40
          : 20 + (rnd() - 0.5) * 4;
    out.push({
      tenant: '',
      entityId: `urn:ngsi-ld:T${entity % TYPES}:${entity}`,
      entityTypes: [`T${entity % TYPES}`],
      attribute: `a${attribute}`,
      value,
      observedAt: 0,
      ownerOrg: 'org-b',
      readKeys: ['community:all', 'org:org-b'],
      marking: MARKING,
    });
  }
  return out;
}

/** Events/s of `engine` over `events` (repeated `passes` times, 10 µs of event time apart, a tick per second). */
function throughput(
  engine: DetectionEngine,
  events: Observation[],
  passes: number,
): { eventsPerSecond: number; eventsPerCpuSecond: number; signals: number } {
  let t = T0;
  let signals = 0;
  let nextTick = T0 + 1000;
  const start = performance.now();
  const cpu = process.cpuUsage();
  for (let p = 0; p < passes; p++) {
    for (const o of events) {
      t += 0.01;
      o.observedAt = t;
      signals += engine.observe(o).length;
      if (t >= nextTick) {
        signals += engine.tick(t).length;
        nextTick += 1000;
      }
    }
  }
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  return {
    eventsPerSecond: (events.length * passes) / seconds,
    eventsPerCpuSecond: (events.length * passes) / cpuSeconds,
    signals,
  };
}

function heapMiB(): number {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A day of 1 s data from 100 sensors through one rule; answers seconds and signals. */
function dryRun(rule: Rule): { seconds: number; cpuSeconds: number; observations: number; signals: number } {
  const e = new DetectionEngine({ canSee });
  e.upsertRule({ id: 'dry', version: 1, ownerOrg: 'org-a', rule });
  const o: Observation = {
    tenant: '',
    entityId: '',
    entityTypes: ['Sensor'],
    attribute: 'temperature',
    value: 0,
    observedAt: 0,
    ownerOrg: 'org-a',
    readKeys: ['org:org-a'],
    marking: MARKING,
  };
  const ids = Array.from({ length: 100 }, (_, i) => `urn:ngsi-ld:Sensor:${i}`);
  const rnd = random(7);
  let signals = 0;
  const start = performance.now();
  const cpu = process.cpuUsage();
  for (let s = 0; s < 86_400; s++) {
    const at = T0 + s * 1000;
    for (let i = 0; i < 100; i++) {
      o.entityId = ids[i]!;
      o.observedAt = at;
      // A daily cycle, noise, and now and then a sensor running hot for a few minutes.
      o.value =
        20 +
        5 * Math.sin((s / 86_400) * 2 * Math.PI) +
        (rnd() - 0.5) +
        ((s + i * 613) % 20_000 < 300 ? 15 : 0);
      signals += e.observe(o).length;
    }
    if (s % 60 === 0) signals += e.tick(at).length;
  }
  const used = process.cpuUsage(cpu);
  return {
    seconds: (performance.now() - start) / 1000,
    cpuSeconds: (used.user + used.system) / 1e6,
    observations: 8_640_000,
    signals,
  };
}

/**
 * One indexed run, its engine local to this function: once it returns the engine is garbage, so the next
 * run's heap figures do not count it (an engine held by the caller's loop variable would still be alive).
 */
function indexedRun(events: Observation[], passes: number) {
  const before = heapMiB();
  const e = engineWithRules(true);
  const registered = heapMiB();
  const x = throughput(e, events, passes);
  const after = heapMiB();
  return {
    ...x,
    rulesMiB: registered - before,
    withStateMiB: after - before,
    suspended: e.stats().suspended,
  };
}

/** Wall-clock and CPU figures of one measurement. */
interface Figure {
  wall: number;
  cpu: number;
}

export interface DetectionBenchResult {
  machine: string;
  runs: number;
  /** Events per second of wall time and per CPU second of this process. */
  indexed: Figure[];
  naive: Figure[];
  indexedEvents: number;
  naiveEvents: number;
  signals: number;
  rulesMiB: number;
  rulesWithStateMiB: number;
  /** Seconds of wall time and CPU seconds. */
  dryThreshold: Figure[];
  dryAnomaly: Figure[];
  drySignals: number;
  loads: number[];
}

export function runDetectionBench(
  runs = Number(process.env.DETECTION_BENCH_RUNS ?? 3),
): DetectionBenchResult {
  const events = makeEvents(250_000, 1);
  const indexed: Figure[] = [];
  const naive: Figure[] = [];
  const loads: number[] = [];
  let signals = 0;
  let rulesMiB = 0;
  let rulesWithStateMiB = 0;
  const passes = 4;
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  // Warm the JIT on a throwaway engine: the runs measure the engine, not the compiler.
  throughput(engineWithRules(true), events.slice(0, 50_000), 1);
  const naiveEvents = events.slice(0, 20_000);
  // Indexed and naive alternate, so that both see the machine as it is at that moment (it is shared).
  for (let r = 0; r < runs; r++) {
    const x = indexedRun(events, passes);
    indexed.push({ wall: x.eventsPerSecond, cpu: x.eventsPerCpuSecond });
    signals = x.signals;
    rulesMiB = x.rulesMiB;
    rulesWithStateMiB = x.withStateMiB;
    const y = throughput(engineWithRules(false), naiveEvents, 1);
    naive.push({ wall: y.eventsPerSecond, cpu: y.eventsPerCpuSecond });
    loads.push(loadavg()[0] ?? 0);
    console.log(
      `detection: indexed ${n(x.eventsPerSecond)} events/s (${n(x.eventsPerCpuSecond)} per CPU second; ` +
        `${x.signals} signals; rules ${rulesMiB.toFixed(1)} MiB, with state ${rulesWithStateMiB.toFixed(1)} MiB; ` +
        `${x.suspended} suspended), naive loop ${n(y.eventsPerSecond)} events/s (${n(y.eventsPerCpuSecond)} per CPU ` +
        `second) (load ${(loadavg()[0] ?? 0).toFixed(1)})`,
    );
  }
  const dryThreshold: Figure[] = [];
  const dryAnomaly: Figure[] = [];
  let drySignals = 0;
  const threshold = valid({
    name: 'hot',
    severity: 'high',
    category: 'environment',
    kind: 'threshold',
    match: { types: ['Sensor'], attribute: 'temperature' },
    above: 30,
    hysteresis: 2,
    forSeconds: 30,
  });
  const anomaly = valid({
    name: 'odd',
    severity: 'medium',
    category: 'environment',
    kind: 'anomaly',
    match: { types: ['Sensor'], attribute: 'temperature' },
    method: 'robustZ',
    window: { samples: 60 },
    threshold: 6,
    minDeviation: 5,
  });
  for (let r = 0; r < runs; r++) {
    const t = dryRun(threshold);
    dryThreshold.push({ wall: t.seconds, cpu: t.cpuSeconds });
    drySignals = t.signals;
    const a = dryRun(anomaly);
    dryAnomaly.push({ wall: a.seconds, cpu: a.cpuSeconds });
    loads.push(loadavg()[0] ?? 0);
    console.log(
      `detection: dry run of 8.64 M observations: threshold ${t.seconds.toFixed(2)} s (${t.cpuSeconds.toFixed(2)} CPU s, ` +
        `${t.signals} signals), robust z-score anomaly ${a.seconds.toFixed(2)} s (${a.cpuSeconds.toFixed(2)} CPU s, ` +
        `${a.signals} signals) (load ${(loadavg()[0] ?? 0).toFixed(1)})`,
    );
  }
  return {
    machine: machine(),
    runs,
    indexed,
    naive,
    indexedEvents: events.length * passes,
    naiveEvents: naiveEvents.length,
    signals,
    rulesMiB,
    rulesWithStateMiB,
    dryThreshold,
    dryAnomaly,
    drySignals,
    loads,
  };
}

export function detectionSection(r: DetectionBenchResult): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const wall = (xs: Figure[]) => median(xs.map((x) => x.wall));
  const cpu = (xs: Figure[]) => median(xs.map((x) => x.cpu));
  const list = (xs: Figure[], f: (x: number) => string) =>
    xs.map((x) => `${f(x.wall)} (${f(x.cpu)})`).join(', ');
  const s2 = (x: number) => x.toFixed(2);
  const ratioWall = median(r.indexed.map((x, i) => x.wall / r.naive[i]!.wall));
  const ratioCpu = median(r.indexed.map((x, i) => x.cpu / r.naive[i]!.cpu));
  return `## Detection engine

Measured ${new Date().toISOString().slice(0, 10)} on ${r.machine}, 2 cores shared with other work: load average
${Math.min(...r.loads).toFixed(1)}–${Math.max(...r.loads).toFixed(1)} during the runs, so each figure is given in wall time and per CPU
second of the benchmark's own process (\`process.cpuUsage\`: what one core does when it runs the engine; GC threads
count too, so it errs low). Reproduce: \`npm run bench -- detection\` (bench/detection/engine.ts;
\`DETECTION_BENCH_RUNS\` runs of each, medians recorded, indexed and naive runs alternating). In process, one thread,
no storage: the engine alone.

**Throughput.** ${RULES.toLocaleString('en-US')} rules of mixed kinds (40 % threshold with hysteresis and a minimum
duration, 15 % rate, 10 % anomaly — robust z-score and EWMA, 10 % silence, 5 % each count per entity, sequence,
crowd density, geofence and a lower threshold) over ${ENTITIES.toLocaleString('en-US')} entities of ${TYPES} types with
${ATTRIBUTES} attributes, each rule on one (type, attribute); random events, 10 µs of event time apart, a tick each
second of event time. Target: ≥ 100,000 events/s on one core.

| engine | events/s, wall (median of ${r.runs}) | events per CPU second (median) | runs: wall (CPU) | events per run |
| --- | ---: | ---: | --- | ---: |
| indexed by (attribute, type) | ${n(wall(r.indexed))} | **${n(cpu(r.indexed))}** | ${list(r.indexed, n)} | ${n(r.indexedEvents)} |
| baseline: naive loop over all rules | ${n(wall(r.naive))} | ${n(cpu(r.naive))} | ${list(r.naive, n)} | ${n(r.naiveEvents)} |
| ratio (each run's indexed over the naive run after it) | ${ratioWall.toFixed(0)} × | **${ratioCpu.toFixed(0)} ×** | | |

Signals raised, updated or cleared in one indexed run: ${n(r.signals)}.

**Memory per 1,000 rules**: ${r.rulesMiB.toFixed(1)} MiB of heap registered (before any state); ${r.rulesWithStateMiB.toFixed(1)} MiB
with the state of one run (entities past a threshold, rate windows, anomaly histories of 30 samples, silence's last
reports of every entity seen, geofence positions, open alerts).

**Dry run**: a day of one-second data from 100 sensors (8,640,000 observations, made in memory as they go) through one
rule, a tick each minute. Target: under 10 s (the stored-history replay of \`POST /api/rules/{id}/dry-run\` adds the
reading; see Dry-run in [detection.md](detection.md#dry-run)).

| rule | seconds, wall (median of ${r.runs}) | CPU seconds (median) | runs: wall (CPU) |
| --- | ---: | ---: | --- |
| threshold, hysteresis 2, 30 s minimum duration | ${s2(wall(r.dryThreshold))} | **${s2(cpu(r.dryThreshold))}** | ${list(r.dryThreshold, s2)} |
| robust z-score anomaly, 60 samples per sensor | ${s2(wall(r.dryAnomaly))} | **${s2(cpu(r.dryAnomaly))}** | ${list(r.dryAnomaly, s2)} |
`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = runDetectionBench();
  console.log(JSON.stringify(r, null, 2));
  writeBenchSection('Detection engine', detectionSection(r));
}
