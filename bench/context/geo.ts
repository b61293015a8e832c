/**
 * Geo-query benchmark: 100,000 entities with Point locations spread over a 12 km × 12 km city (Porto),
 * then `near;maxDistance==500` and `within` a ~1 km polygon at random places, through the context
 * service (parse, SQL prefilter on the GiST box index, exact geometry test, visibility, ordering).
 *
 * Run: node bin/run-ts.js bench/context/geo.ts  (or npx tsx bench/context/geo.ts)
 * Env: GEO_BENCH_N (entities, default 100000), GEO_BENCH_QUERIES (per kind, default 200), DATABASE_URL
 * (PostgreSQL instead of PGlite).
 */
import { cpus, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { createMemoryBus } from '../../src/adapters/bus/index.ts';
import { openTestPgliteStore, openTestPostgresStore } from '../../src/adapters/storage/testing.ts';
import { type Caller, ContextResolver, ContextService } from '../../src/modules/context/index.ts';
import { CONTEXT_TEST_MIGRATIONS, openTestDirectory } from '../../src/modules/context/testing.ts';
import { TransactionalOutbox } from '../../src/modules/events/index.ts';
import { emptyAudience, principalReadKeys } from '../../src/modules/sharing/marking.ts';
import { writeBenchSection } from '../write-section.ts';

export interface GeoBenchResult {
  store: 'pglite' | 'postgres';
  entities: number;
  loadSeconds: number;
  loadPerSecond: number;
  /** Default page (limit 20) with count=true. */
  near500: QueryFigures;
  within1km: QueryFigures;
  /** limit=100 with count=true. */
  near500Page100: QueryFigures;
  /** The same near query answered in SQL only (GiST box prefilter, no in-memory index). */
  near500Sql: QueryFigures;
  /** Not geo: `type=Sensor&q=level>=99` (about 1 % of the entities) with count=true, limit 20. */
  qOnePercent: QueryFigures;
  /** `idPattern=^urn:ngsi-ld:Sensor:NNN[0-9]{2}$`: RE2 over the ids its literal prefix selects in SQL. */
  idPatternPrefix: QueryFigures;
  /** `type=Sensor&idPattern=:NNNN$`: no literal prefix, RE2 over every visible id of the type. */
  idPatternScan: QueryFigures;
  loadAverage: number;
}

interface QueryFigures extends Percentiles {
  /** CPU time of this process per query (p50, ms): the engine's own work, less sensitive to other load. */
  cpuP50: number;
  avgResults: number;
}

interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

function percentiles(ms: number[]): Percentiles {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => Number(s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toFixed(2));
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

/** A deterministic pseudo-random sequence, so runs are comparable. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x7fffffff;
  };
}

const WEST = -8.69;
const SOUTH = 41.1;
const SPAN = 0.14; // about 12 km east-west and 15 km north-south

export async function runGeoBench(
  opts: {
    entities?: number;
    queries?: number;
    store?: 'pglite' | 'postgres';
    log?: (s: string) => void;
  } = {},
): Promise<GeoBenchResult> {
  const n = opts.entities ?? Number(process.env.GEO_BENCH_N ?? 100_000);
  const queries = opts.queries ?? Number(process.env.GEO_BENCH_QUERIES ?? 200);
  const log = opts.log ?? ((s: string) => console.log(s));
  const store =
    opts.store === 'postgres'
      ? await openTestPostgresStore(CONTEXT_TEST_MIGRATIONS)
      : await openTestPgliteStore(CONTEXT_TEST_MIGRATIONS);
  const bus = createMemoryBus();
  const { gate } = openTestDirectory(store);
  const outbox = new TransactionalOutbox({ store, bus });
  const svc = new ContextService({
    store,
    bus,
    events: outbox.emitter('context'),
    gate,
    resolver: new ContextResolver(),
  });
  const ctx = await svc.resolveContext(null);
  const orgs = ['metro', 'police', 'energy', 'city'];
  const callerOf = (org: string): Caller => ({
    tenant: '',
    principal: { userId: `u-${org}`, orgId: org, roles: ['operator'] },
    readKeys: principalReadKeys({ userId: `u-${org}`, orgId: org, communities: [], patronOrgs: [] }),
    defaultMarking: { tlp: 'GREEN', audience: emptyAudience() },
  });
  try {
    const rand = rng(42);
    const t0 = performance.now();
    for (let i = 0; i < n; i += 1000) {
      const org = orgs[(i / 1000) % orgs.length]!;
      const bodies = [];
      for (let j = i; j < Math.min(n, i + 1000); j++) {
        bodies.push({
          id: `urn:ngsi-ld:Sensor:${j}`,
          type: 'Sensor',
          level: { type: 'Property', value: Math.floor(rand() * 100) },
          location: {
            type: 'GeoProperty',
            value: { type: 'Point', coordinates: [WEST + rand() * SPAN, SOUTH + rand() * SPAN] },
          },
          // A quarter of the entities are AMBER: visible to their organisation only.
          ...(j % 4 === 0 ? { marking: { tlp: 'AMBER' } } : {}),
        });
      }
      const r = await svc.batchCreate(
        callerOf(org),
        bodies.map((body) => ({ body, ctx })),
      );
      if (r.errors.length > 0) throw new Error(`load failed: ${r.errors[0]!.error.message}`);
    }
    const loadSeconds = (performance.now() - t0) / 1000;
    log(
      `loaded ${n} entities in ${loadSeconds.toFixed(1)} s (${Math.round(n / loadSeconds)}/s) on ${store.kind}`,
    );
    const caller = callerOf('police');
    const qr = rng(7);
    const run = async (
      make: () => Parameters<ContextService['queryEntities']>[1],
      service: ContextService = svc,
    ): Promise<QueryFigures> => {
      const times: number[] = [];
      const cpu: number[] = [];
      let results = 0;
      for (let i = 0; i < queries + 10; i++) {
        const q = make();
        const c0 = process.cpuUsage();
        const s = performance.now();
        const r = await service.queryEntities(caller, q, ctx);
        const ms = performance.now() - s;
        const c = process.cpuUsage(c0);
        if (i >= 10) {
          times.push(ms);
          cpu.push((c.user + c.system) / 1000);
          results += r.count ?? r.items.length;
        }
      }
      return {
        ...percentiles(times),
        cpuP50: percentiles(cpu).p50,
        avgResults: Math.round(results / queries),
      };
    };
    const nearQuery = (limit: number) => () => ({
      type: 'Sensor',
      geo: {
        georel: 'near;maxDistance==500',
        geometry: 'Point',
        coordinates: `[${WEST + 0.01 + qr() * (SPAN - 0.02)},${SOUTH + 0.01 + qr() * (SPAN - 0.02)}]`,
      },
      count: true,
      limit,
    });
    const near500 = await run(nearQuery(20));
    const show = (name: string, f: QueryFigures) =>
      log(
        `${name}: p50 ${f.p50} ms (cpu ${f.cpuP50} ms), p95 ${f.p95} ms, ${f.avgResults} matches on average`,
      );
    show('near 500 m, limit 20', near500);
    const within1km = await run(() => {
      const x = WEST + 0.01 + qr() * (SPAN - 0.03);
      const y = SOUTH + 0.01 + qr() * (SPAN - 0.03);
      const d = 0.012;
      return {
        type: 'Sensor',
        geo: {
          georel: 'within',
          geometry: 'Polygon',
          coordinates: JSON.stringify([
            [
              [x, y],
              [x + d, y],
              [x + d * 1.2, y + d],
              [x, y + d * 0.8],
              [x, y],
            ],
          ]),
        },
        count: true,
        limit: 20,
      };
    });
    show('within ~1 km polygon, limit 20', within1km);
    const near500Page100 = await run(nearQuery(100));
    show('near 500 m, limit 100', near500Page100);
    const sqlOnly = new ContextService({
      store,
      bus,
      events: outbox.emitter('context'),
      gate,
      resolver: new ContextResolver(),
      memoryGeoIndex: false,
    });
    const near500Sql = await run(nearQuery(20), sqlOnly);
    show('near 500 m, limit 20, SQL only', near500Sql);
    const qOnePercent = await run(() => ({ type: 'Sensor', q: 'level>=99', count: true, limit: 20 }));
    show('q level>=99 (1 %), limit 20', qOnePercent);
    const digits = (n: number) => String(Math.floor(qr() * 10 ** n)).padStart(n, '0');
    const idPatternPrefix = await run(() => ({
      idPattern: `^urn:ngsi-ld:Sensor:${digits(3)}[0-9]{2}$`,
      count: true,
      limit: 20,
    }));
    show('idPattern with a literal prefix, limit 20', idPatternPrefix);
    const idPatternScan = await run(() => ({
      type: 'Sensor',
      idPattern: `:${digits(4)}$`,
      count: true,
      limit: 20,
    }));
    show('idPattern without a prefix (every visible id), limit 20', idPatternScan);
    await svc.close();
    return {
      store: store.kind,
      entities: n,
      loadSeconds: Number(loadSeconds.toFixed(1)),
      loadPerSecond: Math.round(n / loadSeconds),
      near500,
      within1km,
      near500Page100,
      near500Sql,
      qOnePercent,
      idPatternPrefix,
      idPatternScan,
      loadAverage: Number(loadavg()[0]!.toFixed(1)),
    };
  } finally {
    await bus.close();
    await store.close();
  }
}

function section(results: GeoBenchResult[]): string {
  const row = (r: GeoBenchResult, name: string, f: QueryFigures) =>
    `| ${r.store} | ${name} | ${f.avgResults} | ${f.p50} | ${f.cpuP50} | ${f.p95} | ${f.p99} |`;
  const lines = [
    '## NGSI-LD queries',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}; the machine is shared (load average ${results.map((r) => r.loadAverage).join(' / ')} during the runs), so wall times are inflated — the CPU column (this process's CPU time per query, the store included for PGlite) is the steadier figure.`,
    `${results[0]?.entities.toLocaleString('en')} entities (Points spread over 12 km × 15 km of Porto, a quarter TLP:AMBER of four organisations, the rest GREEN) created through the context service in batches of 1,000; then ${process.env.GEO_BENCH_QUERIES ?? 200} queries of each kind at random places, as a user of one organisation (so visibility filters apply), with count=true.`,
    'Geo-queries run on the in-memory spatial index and read only the page from the store; "SQL only" is the same query with the index off (GiST box prefilter in SQL).',
    'Reproduce: `npm run bench -- geo` (add DATABASE_URL for PostgreSQL); `GEO_BENCH_N`, `GEO_BENCH_QUERIES` change the sizes.',
    '',
    '| store | query | matches (avg) | p50 ms | CPU p50 ms | p95 ms | p99 ms |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of results) {
    lines.push(
      row(r, 'near;maxDistance==500, limit 20', r.near500),
      row(r, 'within ~1 km² polygon, limit 20', r.within1km),
      row(r, 'near;maxDistance==500, limit 100', r.near500Page100),
      row(r, 'near;maxDistance==500, limit 20, SQL only', r.near500Sql),
      row(r, 'q=level>=99 (1 %, no geo), limit 20', r.qOnePercent),
      row(
        r,
        'idPattern=^urn:ngsi-ld:Sensor:NNN[0-9]{2}$ (literal prefix in SQL, RE2), limit 20',
        r.idPatternPrefix,
      ),
      row(r, 'type=Sensor&idPattern=:NNNN$ (RE2 over every visible id), limit 20', r.idPatternScan),
    );
  }
  lines.push(
    '',
    `Loading: ${results.map((r) => `${r.store} ${r.loadPerSecond.toLocaleString('en')} entities/s`).join(', ')} (batch create through the service: validation, markings, JSON, geo rows, events).`,
  );
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  (async () => {
    const results = [await runGeoBench({ store: 'pglite' })];
    if (process.env.DATABASE_URL) results.push(await runGeoBench({ store: 'postgres' }));
    console.log(JSON.stringify(results, null, 2));
    writeBenchSection('NGSI-LD queries', section(results));
  })().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
