/**
 * `q` benchmark (decision record 0007): N entities (`Q_BENCH_N`, default 100,000) of type Sensor with a
 * numeric `level` (0–99), a string `status` (one of 100) and a Point `location` over 12 km × 15 km of Porto,
 * a quarter TLP:AMBER of four organisations, created through the context service in batches of 1,000. Then,
 * as a user of one organisation, with count=true and limit 20:
 *
 * - selective q: `type=Sensor&q=level>=99` and `q=status=="s7"` (1 % each);
 * - type + q + geo: `type=Sensor&q=level>=99&georel=near;maxDistance==1000` at random places;
 * - each beside the same query as raw SQL on the same rows: over the entities' jsonb (what the query is
 *   without an index: the plain SQL a developer writes), and over the value table (the statements the
 *   service sends, without the service);
 * - before: the same queries on a second tenant holding the same entities written without the index
 *   (`attributeIndex: 'off'`), answered as before it existed. Loading alternates batches between the two
 *   tenants, and queries alternate between before and after, so both see the same load.
 *
 * Run: npm run bench -- q (PGlite, and PostgreSQL when DATABASE_URL is set). Env: Q_BENCH_N, Q_BENCH_QUERIES
 * (per kind, default 200), Q_BENCH_BEFORE=0 (no second tenant: for 1,000,000 entities on PostgreSQL),
 * Q_BENCH_STORES=pglite,postgres.
 */
import { cpus, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { sql } from 'kysely';
import { createMemoryBus } from '../../src/adapters/bus/index.ts';
import { openTestPgliteStore, openTestPostgresStore } from '../../src/adapters/storage/testing.ts';
import { backfillAttributeValues } from '../../src/modules/context/attribute-values.ts';
import type { ContextEvents } from '../../src/modules/context/entity-change-event.ts';
import { type Caller, ContextResolver, ContextService } from '../../src/modules/context/index.ts';
import { CONTEXT_TEST_MIGRATIONS, openTestDirectory } from '../../src/modules/context/testing.ts';
import { TransactionalOutbox } from '../../src/modules/events/index.ts';
import { emptyAudience, objectReadKeys, principalReadKeys } from '../../src/modules/sharing/marking.ts';
import type { AnyDb } from '../../src/ports/store.ts';
import { writeBenchSection } from '../write-section.ts';

interface Figures {
  p50: number;
  p95: number;
  /** CPU time of this process per query (p50, ms); PostgreSQL's own work is not in it. */
  cpuP50: number;
  avgResults: number;
}

export interface QBenchResult {
  store: 'pglite' | 'postgres';
  entities: number;
  /** Entities/s loading with the index, and without (when measured; not when loaded by SQL). */
  loadWith?: number;
  loadWithout?: number;
  rows: { name: string; figures: Figures }[];
  loadAverage: string;
}

function summarize(ms: number[], cpu: number[], results: number): Figures {
  const at = (a: number[], q: number) => {
    const s = [...a].sort((x, y) => x - y);
    return Number(s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toFixed(2));
  };
  return {
    p50: at(ms, 0.5),
    p95: at(ms, 0.95),
    cpuP50: at(cpu, 0.5),
    avgResults: Math.round(results / ms.length),
  };
}

function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x7fffffff;
  };
}

const WEST = -8.69;
const SOUTH = 41.1;
const SPAN = 0.14;
/** The expanded names of the terms (with the core @context: `status` is a core term). */
const IRI = { level: '', status: '', location: '', Sensor: '' };

export async function runQBench(opts: {
  store: 'pglite' | 'postgres';
  entities?: number;
  queries?: number;
  before?: boolean;
}): Promise<QBenchResult> {
  const n = opts.entities ?? Number(process.env.Q_BENCH_N ?? 100_000);
  const queries = opts.queries ?? Number(process.env.Q_BENCH_QUERIES ?? 200);
  const withBefore = opts.before ?? process.env.Q_BENCH_BEFORE !== '0';
  const store =
    opts.store === 'postgres'
      ? // Loading a million rows by SQL takes longer than the default statement timeout.
        await openTestPostgresStore(CONTEXT_TEST_MIGRATIONS, undefined, { statementTimeoutMs: 900_000 })
      : await openTestPgliteStore(CONTEXT_TEST_MIGRATIONS);
  const bus = createMemoryBus();
  const { gate } = openTestDirectory(store);
  const outbox = new TransactionalOutbox({ store, bus });
  const common = {
    store,
    bus,
    events: outbox.emitter<ContextEvents>('context'),
    gate,
    resolver: new ContextResolver(),
  };
  const after = new ContextService(common);
  const before = new ContextService({ ...common, attributeIndex: 'off' });
  const ctx = await after.resolveContext(null);
  for (const t of Object.keys(IRI) as (keyof typeof IRI)[]) IRI[t] = ctx.expandTerm(t);
  const orgs = ['metro', 'police', 'energy', 'city'];
  const callerOf = (org: string, tenant: string): Caller => ({
    tenant,
    principal: { userId: `u-${org}`, orgId: org, roles: ['operator'] },
    readKeys: principalReadKeys({ userId: `u-${org}`, orgId: org, communities: [], patronOrgs: [] }),
    defaultMarking: { tlp: 'GREEN', audience: emptyAudience() },
  });
  const tenants = withBefore
    ? [
        { tenant: 'after', svc: after, ms: 0 },
        { tenant: 'before', svc: before, ms: 0 },
      ]
    : [{ tenant: 'after', svc: after, ms: 0 }];
  try {
    const rand = rng(42);
    const bySql = process.env.Q_BENCH_LOAD === 'sql';
    if (bySql) await loadBySql(store.db, n, orgs);
    for (let i = 0; i < (bySql ? 0 : n); i += 1000) {
      const org = orgs[(i / 1000) % orgs.length]!;
      const bodies = [];
      for (let j = i; j < Math.min(n, i + 1000); j++) {
        bodies.push({
          id: `urn:ngsi-ld:Sensor:${j}`,
          type: 'Sensor',
          level: { type: 'Property', value: Math.floor(rand() * 100) },
          status: { type: 'Property', value: `s${Math.floor(rand() * 100)}` },
          location: {
            type: 'GeoProperty',
            value: { type: 'Point', coordinates: [WEST + rand() * SPAN, SOUTH + rand() * SPAN] },
          },
          ...(j % 4 === 0 ? { marking: { tlp: 'AMBER' } } : {}),
        });
      }
      // The same batch into each tenant, one after the other: both see the same load.
      for (const t of i % 2000 === 0 ? tenants : [...tenants].reverse()) {
        const s = performance.now();
        const r = await t.svc.batchCreate(
          callerOf(org, t.tenant),
          bodies.map((body) => ({ body, ctx })),
        );
        t.ms += performance.now() - s;
        if (r.errors.length > 0) throw new Error(`load failed: ${r.errors[0]!.error.message}`);
      }
      if (i % 100_000 === 0 && i > 0) console.log(`  ${i} entities loaded`);
    }
    // As a server's autovacuum would after a bulk load (PGlite has none; the writer analyzes now and then).
    await sql`analyze`.execute(store.db);
    const loadWith = bySql ? undefined : Math.round(n / (tenants[0]!.ms / 1000));
    const loadWithout = withBefore && !bySql ? Math.round(n / (tenants[1]!.ms / 1000)) : undefined;
    console.log(
      `loaded ${n} entities on ${store.kind}${loadWith ? `: ${loadWith}/s with the index` : ' by SQL'}${loadWithout ? `, ${loadWithout}/s without` : ''}`,
    );

    const police = (tenant: string) => callerOf('police', tenant);
    const keys = gate.readKeysOf(police('after'));
    const qr = rng(7);
    type Run = () => Promise<number>;
    const nearArgs = () => {
      const x = WEST + 0.01 + qr() * (SPAN - 0.02);
      const y = SOUTH + 0.01 + qr() * (SPAN - 0.02);
      return { x, y };
    };
    // Degrees of the ~1,000 m box around a point at 41.17° N (what the service's box prefilter uses too).
    const DLAT = 1000 / 111_320;
    const DLON = 1000 / (111_320 * Math.cos((41.17 * Math.PI) / 180));
    const service =
      (svc: ContextService, tenant: string, q: string, geo: boolean): Run =>
      async () => {
        const p = geo ? nearArgs() : undefined;
        const r = await svc.queryEntities(
          police(tenant),
          {
            type: 'Sensor',
            q,
            count: true,
            limit: 20,
            ...(p
              ? {
                  geo: {
                    georel: 'near;maxDistance==1000',
                    geometry: 'Point',
                    coordinates: `[${p.x},${p.y}]`,
                  },
                }
              : {}),
          },
          ctx,
        );
        return r.count ?? 0;
      };
    const jsonbCond = (q: 'level' | 'status') =>
      q === 'level'
        ? sql`jsonb_typeof(e.entity->${IRI.level}->'value') = 'number' and (e.entity->${IRI.level}->>'value')::numeric >= 99`
        : sql`e.entity->${IRI.status}->>'value' = 's7'`;
    const valueCond = (q: 'level' | 'status') =>
      q === 'level'
        ? sql`e.id in (select v.entity_id from context_entity_value v where v.tenant = 'after' and v.attr = ${IRI.level} and v.kind = 'n' and v.num >= 99)`
        : sql`e.id in (select v.entity_id from context_entity_value v where v.tenant = 'after' and v.attr = ${IRI.status} and v.kind = 's' and v.str = 's7')`;
    const raw =
      (cond: ReturnType<typeof sql>, geo: boolean): Run =>
      async () => {
        const p = geo ? nearArgs() : undefined;
        const box = p
          ? sql` and e.id in (select g.entity_id from context_entity_geo g where g.tenant = 'after' and g.attr = ${IRI.location}
              and g.bb && box(point(${p.x - DLON}, ${p.y - DLAT}), point(${p.x + DLON}, ${p.y + DLAT})))`
          : sql``;
        const where = sql`e.tenant = 'after' and e.read_keys && ${sql.val(keys)}::text[] and e.types @> array[${IRI.Sensor}]::text[] and ${cond}${box}`;
        const db: AnyDb = store.db;
        const c = await sql<{
          n: string | number;
        }>`select count(*) as n from context_entity e where ${where}`.execute(db);
        await sql`select e.id, e.entity, e.marking, e.read_keys from context_entity e where ${where} order by e.id limit 20`.execute(
          db,
        );
        return Number(c.rows[0]?.n ?? 0);
      };
    const kinds: { name: string; run: Run }[] = [
      { name: 'type=Sensor&q=level>=99 — service', run: service(after, 'after', 'level>=99', false) },
      { name: 'type=Sensor&q=level>=99 — raw SQL on the value table', run: raw(valueCond('level'), false) },
      { name: 'type=Sensor&q=level>=99 — raw SQL on the jsonb', run: raw(jsonbCond('level'), false) },
      { name: 'type=Sensor&q=status=="s7" — service', run: service(after, 'after', 'status=="s7"', false) },
      {
        name: 'type=Sensor&q=status=="s7" — raw SQL on the value table',
        run: raw(valueCond('status'), false),
      },
      { name: 'type=Sensor&q=status=="s7" — raw SQL on the jsonb', run: raw(jsonbCond('status'), false) },
      {
        name: 'type + q=level>=99 + near;maxDistance==1000 — service',
        run: service(after, 'after', 'level>=99', true),
      },
      {
        name: 'type + q=level>=99 + near 1,000 m box — raw SQL on the value table (box only)',
        run: raw(valueCond('level'), true),
      },
      {
        name: 'type + q=level>=99 + near 1,000 m box — raw SQL on the jsonb (box only)',
        run: raw(jsonbCond('level'), true),
      },
    ];
    if (withBefore) {
      kinds.push(
        {
          name: 'type=Sensor&q=level>=99 — before (no index)',
          run: service(before, 'before', 'level>=99', false),
        },
        {
          name: 'type=Sensor&q=status=="s7" — before (no index)',
          run: service(before, 'before', 'status=="s7"', false),
        },
        {
          name: 'type + q=level>=99 + near;maxDistance==1000 — before (no index)',
          run: service(before, 'before', 'level>=99', true),
        },
      );
    }
    const samples = kinds.map(() => ({ ms: [] as number[], cpu: [] as number[], results: 0 }));
    // Round robin: each round runs every kind once, so before, after and raw SQL share the same moments.
    for (let i = 0; i < queries + 5; i++) {
      for (const [k, kind] of kinds.entries()) {
        const c0 = process.cpuUsage();
        const s = performance.now();
        const results = await kind.run();
        const ms = performance.now() - s;
        const c = process.cpuUsage(c0);
        if (i < 5) continue;
        samples[k]!.ms.push(ms);
        samples[k]!.cpu.push((c.user + c.system) / 1000);
        samples[k]!.results += results;
      }
    }
    const rows = kinds.map((k, i) => ({
      name: k.name,
      figures: summarize(samples[i]!.ms, samples[i]!.cpu, samples[i]!.results),
    }));
    for (const r of rows) {
      console.log(
        `${r.name}: p50 ${r.figures.p50} ms (cpu ${r.figures.cpuP50} ms), p95 ${r.figures.p95} ms, ${r.figures.avgResults} matches`,
      );
    }
    return {
      store: store.kind,
      entities: n,
      ...(loadWith !== undefined ? { loadWith } : {}),
      ...(loadWithout !== undefined ? { loadWithout } : {}),
      rows,
      loadAverage: loadavg()
        .map((x) => x.toFixed(1))
        .join(' '),
    };
  } finally {
    await after.close();
    await before.close();
    await outbox.stop();
    await bus.close();
    await store.close();
  }
}

/** Entities as the service stores them (expanded, normalized), generated in SQL; then geo and value rows. */
async function loadBySql(db: AnyDb, n: number, orgs: string[]): Promise<void> {
  const keysOf = (tlp: 'GREEN' | 'AMBER') =>
    JSON.stringify(
      orgs.map((org) =>
        objectReadKeys({ ownerOrg: org, createdBy: `u-${org}`, marking: { tlp, audience: emptyAudience() } }),
      ),
    );
  const t0 = performance.now();
  await sql`insert into context_tenant (name) values ('after') on conflict do nothing`.execute(db);
  for (let i = 0; i < n; i += 100_000) {
    const to = Math.min(n, i + 100_000) - 1;
    await sql`insert into context_entity (tenant, id, types, entity, created_at, modified_at, owner_org, created_by, marking, read_keys, incarnation)
      select 'after', 'urn:ngsi-ld:Sensor:' || j, array[${IRI.Sensor}::text],
        jsonb_build_object('id', 'urn:ngsi-ld:Sensor:' || j, 'type', jsonb_build_array(${IRI.Sensor}::text),
          ${IRI.level}::text, jsonb_build_object('type', 'Property', 'value', floor(random() * 100)::int, 'createdAt', now(), 'modifiedAt', now()),
          ${IRI.status}::text, jsonb_build_object('type', 'Property', 'value', 's' || floor(random() * 100)::int, 'createdAt', now(), 'modifiedAt', now()),
          ${IRI.location}::text, jsonb_build_object('type', 'GeoProperty', 'createdAt', now(), 'modifiedAt', now(), 'value',
            jsonb_build_object('type', 'Point', 'coordinates', jsonb_build_array(${WEST}::float8 + random() * ${SPAN}::float8, ${SOUTH}::float8 + random() * ${SPAN}::float8))),
          'createdAt', now(), 'modifiedAt', now()),
        now(), now(), o.org, 'u-' || o.org,
        jsonb_build_object('tlp', case when j % 4 = 0 then 'AMBER' else 'GREEN' end, 'audience', '{"orgs":[],"communities":[],"users":[]}'::jsonb),
        array(select jsonb_array_elements_text((case when j % 4 = 0 then ${keysOf('AMBER')} else ${keysOf('GREEN')} end)::jsonb -> o.k)),
        gen_random_uuid()::text
      from generate_series(${i}::bigint, ${to}::bigint) j,
        lateral (select ((j / 1000) % 4)::int as k, (${sql.val(orgs)}::text[])[((j / 1000) % 4)::int + 1] as org) o`.execute(
      db,
    );
  }
  await sql`insert into context_entity_geo (tenant, entity_id, attr, dataset_id, bb, geometry)
    select e.tenant, e.id, ${IRI.location}, '', box(point(x, y), point(x, y)), e.entity -> ${IRI.location} -> 'value'
    from context_entity e, lateral (select (e.entity -> ${IRI.location} -> 'value' -> 'coordinates' ->> 0)::float8 as x,
      (e.entity -> ${IRI.location} -> 'value' -> 'coordinates' ->> 1)::float8 as y) c
    where e.tenant = 'after'`.execute(db);
  console.log(`  entities and geo rows generated in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const t1 = performance.now();
  await backfillAttributeValues(db);
  console.log(`  value rows written in ${((performance.now() - t1) / 1000).toFixed(0)} s`);
}

function section(results: QBenchResult[]): string {
  const n = results[0]?.entities ?? 0;
  const lines = [
    `## NGSI-LD q on the attribute value index, ${n.toLocaleString('en')} entities`,
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}; load average (1, 5, 15 min) at the end: ${results.map((r) => `${r.store} ${r.loadAverage}`).join('; ')}. The machine is shared: the CPU column (this process's CPU time per query; PGlite's work is in it, PostgreSQL's is not) is the steadier figure.`,
    `${n.toLocaleString('en')} entities (Sensor: level 0–99, status one of 100 strings, a Point in 12 km × 15 km of Porto; a quarter TLP:AMBER of four organisations) created through the context service in batches of 1,000; queries as a user of one organisation (visibility applies), count=true, limit 20, ${process.env.Q_BENCH_QUERIES ?? 200} of each kind in round robin. "before" is a second tenant with the same entities written without the index and answered as before it (the two tenants were loaded batch by batch alternately). Raw SQL runs the count and the page as two statements, like the service; "box only" has no exact distance test. Decision record: [0007](decisions/0007-attribute-index.md).`,
    'Reproduce: `npm run bench -- q` (DATABASE_URL for PostgreSQL); `Q_BENCH_N=1000000 Q_BENCH_BEFORE=0 Q_BENCH_STORES=postgres` for a million.',
    '',
    '| store | query | matches (avg) | p50 ms | CPU p50 ms | p95 ms |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const r of results) {
    for (const row of r.rows) {
      const f = row.figures;
      lines.push(`| ${r.store} | ${row.name} | ${f.avgResults} | ${f.p50} | ${f.cpuP50} | ${f.p95} |`);
    }
  }
  lines.push(
    '',
    results.some((r) => r.loadWith === undefined)
      ? "Loaded by SQL (`Q_BENCH_LOAD=sql`): the entities as the service stores them, random values of the same distributions, generated in PostgreSQL, geo rows likewise, value rows by the migration's backfill (the extraction writes use); loading a million entities through the service takes longer than the machine was free. The write cost is measured at 100,000."
      : `Loading through the service (entities/s): ${results
          .map(
            (r) =>
              `${r.store} ${(r.loadWith ?? 0).toLocaleString('en')} with the index${r.loadWithout ? `, ${r.loadWithout.toLocaleString('en')} without` : ''}`,
          )
          .join('; ')}.`,
  );
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  (async () => {
    const stores = (process.env.Q_BENCH_STORES ?? (process.env.DATABASE_URL ? 'pglite,postgres' : 'pglite'))
      .split(',')
      .map((s) => s.trim()) as ('pglite' | 'postgres')[];
    const results: QBenchResult[] = [];
    for (const store of stores) results.push(await runQBench({ store }));
    console.log(JSON.stringify(results, null, 2));
    const n = results[0]?.entities ?? 0;
    writeBenchSection(
      `NGSI-LD q on the attribute value index, ${n.toLocaleString('en')} entities`,
      section(results),
    );
  })().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
