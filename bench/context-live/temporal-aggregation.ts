/**
 * Temporal aggregation benchmark: one attribute observed every second for a day (86,400 instances),
 * then the aggregated temporal representation with every method per hour (24 periods) and over the
 * whole day (PT0S), through the temporal service (SQL aggregation). Target: under 100 ms.
 *
 * Run: node bin/run-ts.js bench/context-live/temporal-aggregation.ts   Env: DATABASE_URL for PostgreSQL.
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { createContextLive } from '../../src/modules/context-live/index.ts';
import { entityChange, openLiveWorld, testLdContext } from '../../src/modules/context-live/testing.ts';
import { writeBenchSection } from '../write-section.ts';
import { machine, openBenchStore, type Percentiles, percentiles, rowsOfOtherStores } from './bench-util.ts';

export interface TemporalAggregationResult {
  store: 'pglite' | 'postgres';
  machine: string;
  instances: number;
  loadSeconds: number;
  /** totalCount, sum, avg, min, max, stddev, sumsq per hour (from the per-minute rollups). */
  hourly: Percentiles;
  /** The same over the whole day (PT0S). */
  wholeDay: Percentiles;
  /** Every method including distinctCount per hour (reads all instances). */
  hourlyWithDistinct: Percentiles;
}

const V = 'https://uri.etsi.org/ngsi-ld/default-context/';

export async function runTemporalAggregationBench(
  opts: { seconds?: number; repeats?: number; log?: (s: string) => void } = {},
): Promise<TemporalAggregationResult> {
  const n = opts.seconds ?? 86_400;
  const repeats = opts.repeats ?? 30;
  const log = opts.log ?? ((s: string) => console.log(s));
  const store = await openBenchStore();
  const world = await openLiveWorld(store);
  const live = createContextLive({ store, gate: world.gate, ld: testLdContext() });
  try {
    const t0 = Date.parse('2026-11-26T00:00:00Z');
    const start = performance.now();
    const id = 'urn:ngsi-ld:WeatherObserved:bench';
    // A second entity with the same attribute, so the query has to pick its series out of others.
    for (const entityId of [id, 'urn:ngsi-ld:WeatherObserved:other']) {
      const batch = [];
      for (let s = 0; s < n; s++) {
        const at = new Date(t0 + s * 1000).toISOString();
        const e = {
          id: entityId,
          type: [`${V}WeatherObserved`],
          [`${V}temperature`]: { type: 'Property', value: 15 + 5 * Math.sin(s / 3600), observedAt: at },
        };
        batch.push({
          kind: 'updated' as const,
          change: entityChange(e, { changed: [`${V}temperature`] }),
          at,
        });
        if (batch.length === 5000) await live.recordChanges(batch.splice(0));
      }
      await live.recordChanges(batch);
    }
    const loadSeconds = (performance.now() - start) / 1000;
    log(`temporal: loaded ${2 * n} instances in ${loadSeconds.toFixed(1)} s`);
    const reader = await world.as('org-a-operator');
    const params = {
      timerel: 'between',
      timeAt: new Date(t0).toISOString(),
      endTimeAt: new Date(t0 + n * 1000).toISOString(),
    };
    const fast = 'totalCount,sum,avg,min,max,stddev,sumsq';
    const time = async (period: string, aggrMethods = fast, times = repeats) => {
      const ms: number[] = [];
      for (let i = 0; i < times + 3; i++) {
        const s = performance.now();
        const { value: e } = await live.temporal.getEntity(
          '',
          reader,
          id,
          { params: { ...params, aggrMethods, aggrPeriodDuration: period } },
          undefined,
        );
        const took = performance.now() - s;
        const count = (e.temperature as { totalCount: Array<[number]> }).totalCount.reduce(
          (a, x) => a + x[0],
          0,
        );
        if (count !== n) throw new Error(`aggregation counted ${count} of ${n}`);
        if (i >= 3) ms.push(took);
      }
      return percentiles(ms);
    };
    const hourly = await time('PT1H');
    const wholeDay = await time('PT0S');
    const hourlyWithDistinct = await time(
      'PT1H',
      `${fast},distinctCount`,
      Math.max(3, Math.floor(repeats / 5)),
    );
    log(
      `temporal: per hour p50 ${hourly.p50} ms p99 ${hourly.p99} ms; whole day p50 ${wholeDay.p50} ms; ` +
        `with distinctCount p50 ${hourlyWithDistinct.p50} ms`,
    );
    return {
      store: store.kind,
      machine: machine(),
      instances: n,
      loadSeconds,
      hourly,
      wholeDay,
      hourlyWithDistinct,
    };
  } finally {
    await live.stop();
    await store.close();
  }
}

/** The docs/benchmarks.md section of one run. */
export function temporalSection(r: TemporalAggregationResult, loadAverage: number): string {
  const ms = (p: Percentiles) => `${p.p50} / ${p.p99} ms`;
  return `## Context live: temporal aggregation

Measured ${new Date().toISOString().slice(0, 10)} on ${r.machine}; load average ${loadAverage.toFixed(1)} during the run.
Reproduce: \`npm run bench -- temporal\` (PostgreSQL with \`DATABASE_URL\`). ${r.instances.toLocaleString('en-US')} instances of one
attribute observed every second for a day (and as many of a second entity), then the aggregated temporal representation
over the day. Target: under 100 ms. Ranges and periods in whole minutes are answered from per-minute rollups (1,440 rows
per day); \`distinctCount\` (and \`timeproperty=modifiedAt\`, unaligned ranges) reads the instances.

| store | totalCount, sum, avg, min, max, stddev, sumsq per hour: p50 / p99 | the same over the whole day (PT0S) | every method with distinctCount per hour | loading ${(2 * r.instances).toLocaleString('en-US')} instances |
| --- | ---: | ---: | ---: | ---: |
| ${r.store} (load ${loadAverage.toFixed(1)}) | ${ms(r.hourly)} | ${ms(r.wholeDay)} | ${ms(r.hourlyWithDistinct)} | ${r.loadSeconds.toFixed(1)} s |
${rowsOfOtherStores('Context live: temporal aggregation', r.store).join('\n')}
`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await runTemporalAggregationBench();
  console.log(JSON.stringify(r, null, 2));
  writeBenchSection('Context live: temporal aggregation', temporalSection(r, loadavg()[0] ?? 0));
}
