/**
 * The pgRouting baseline: the same pairs through pgr_dijkstra on the graph osm2pgrouting built from the
 * same extract (bench/routing/setup-pgrouting.sh). Points are mapped to the nearest pgRouting vertex
 * (untimed); each query is timed from the client, as an application would call it.
 * The bench talks to PostgreSQL with the `pg` driver directly: it is a measuring tool, not platform code.
 */
import pg from 'pg';
import type { LonLat } from '../../src/modules/routing/index.ts';

export interface PgRoutingTiming {
  pairs: number;
  found: number;
  p50Ms: number;
  p99Ms: number;
  manyToOne20Ms: number;
}

export function pgConnectionString(): string {
  return process.env.ROUTING_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/routing_bench';
}

/** Why pgRouting cannot be measured, or undefined when it can. */
export async function pgRoutingUnavailable(schema: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: pgConnectionString(), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
  } catch (e) {
    return `cannot connect to ${pgConnectionString()} (${(e as Error).message}); run bench/routing/setup-pgrouting.sh`;
  }
  try {
    const ext = await client.query("SELECT 1 FROM pg_extension WHERE extname = 'pgrouting'");
    if (ext.rowCount === 0)
      return 'the pgrouting extension is not installed; run bench/routing/setup-pgrouting.sh';
    const t = await client.query('SELECT to_regclass($1) AS t', [`${schema}.ways`]);
    if (!t.rows[0]?.t) return `${schema}.ways is not loaded; run bench/routing/setup-pgrouting.sh`;
    return undefined;
  } finally {
    await client.end();
  }
}

function pct(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
}

export async function timePgRouting(
  schema: string,
  pairs: readonly [LonLat, LonLat][],
  manyToOne: { units: LonLat[]; incident: LonLat }[],
): Promise<PgRoutingTiming> {
  const client = new pg.Client({ connectionString: pgConnectionString() });
  await client.connect();
  try {
    const nearest = async (p: LonLat): Promise<string> => {
      const r = await client.query(
        `SELECT id FROM ${schema}.ways_vertices_pgr ORDER BY the_geom <-> ST_SetSRID(ST_MakePoint($1, $2), 4326) LIMIT 1`,
        [p[0], p[1]],
      );
      return String(r.rows[0].id);
    };
    const edges = `SELECT gid AS id, source, target, cost_s AS cost, reverse_cost_s AS reverse_cost FROM ${schema}.ways`;
    const times: number[] = [];
    let found = 0;
    for (const [a, b] of pairs) {
      const s = await nearest(a);
      const t = await nearest(b);
      const t0 = performance.now();
      const r = await client.query(
        'SELECT agg_cost FROM pgr_dijkstra($1, $2::bigint, $3::bigint) WHERE edge = -1',
        [edges, s, t],
      );
      times.push(performance.now() - t0);
      if (r.rowCount) found++;
    }
    const m2o: number[] = [];
    for (const { units, incident } of manyToOne) {
      const ids: string[] = [];
      for (const u of units) ids.push(await nearest(u));
      const target = await nearest(incident);
      const t0 = performance.now();
      await client.query(
        'SELECT start_vid, agg_cost FROM pgr_dijkstra($1, $2::bigint[], $3::bigint) WHERE edge = -1',
        [edges, ids, target],
      );
      m2o.push(performance.now() - t0);
    }
    return {
      pairs: pairs.length,
      found,
      p50Ms: pct(times, 0.5),
      p99Ms: pct(times, 0.99),
      manyToOne20Ms: pct(m2o, 0.5),
    };
  } finally {
    await client.end();
  }
}
