/**
 * Authenticated read throughput of the platform API, on PGlite and (with DATABASE_URL) PostgreSQL.
 * The server runs in its own process; autocannon drives it from this one over loopback.
 * Run: node bin/run-ts.js bench/platform/read-throughput.ts
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import pg from 'pg';

const ROOT = resolve(import.meta.dirname, '../..');

export interface ReadThroughputRow {
  store: string;
  scenario: string;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

async function startServer(databaseUrl?: string) {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin/run-ts.js'), join(ROOT, 'bench/platform/api-server.ts')],
    {
      env: { ...process.env, ...(databaseUrl ? { BENCH_DATABASE_URL: databaseUrl } : {}) },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const rl = createInterface({ input: child.stdout });
  const [line] = (await once(rl, 'line')) as [string];
  return {
    child,
    info: JSON.parse(line) as {
      address: string;
      token: string;
      reportId: string;
      entities: number;
      store: string;
    },
  };
}

/** A write scenario: each request gets its method, path and body from `next(i)`. */
interface Writes {
  method: 'POST' | 'PATCH';
  next: (i: number) => { path: string; body: string };
}

async function measure(
  url: string,
  token: string,
  seconds: number,
  writes?: Writes,
): Promise<Omit<ReadThroughputRow, 'store' | 'scenario'>> {
  let n = 0;
  const result = await autocannon({
    url,
    connections: 16,
    duration: seconds,
    headers: { authorization: token, ...(writes ? { 'content-type': 'application/json' } : {}) },
    ...(writes
      ? {
          method: writes.method,
          requests: [
            {
              setupRequest: (req: autocannon.Request) => {
                const w = writes.next(n++);
                return { ...req, method: writes.method, path: w.path, body: w.body };
              },
            },
          ],
        }
      : {}),
  });
  return {
    requestsPerSec: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

export async function runReadThroughputBench(seconds = 10): Promise<ReadThroughputRow[]> {
  const rows: ReadThroughputRow[] = [];
  const targets: (string | undefined)[] = [undefined];
  let schema: string | undefined;
  if (process.env.DATABASE_URL) {
    schema = `bench_api_${Date.now().toString(36)}`;
    const c = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await c.connect();
    await c.query(`create schema ${schema}`);
    await c.end();
    const u = new URL(process.env.DATABASE_URL);
    u.searchParams.set('options', `-c search_path=${schema}`);
    targets.push(u.toString());
  } else {
    console.log('read throughput: PostgreSQL skipped (DATABASE_URL is not set)');
  }
  try {
    for (const databaseUrl of targets) {
      const { child, info } = await startServer(databaseUrl);
      try {
        const scenarios: [string, string, Writes?][] = [
          ['GET /api/auth/me (authentication only)', '/api/auth/me'],
          ['GET /api/reports/:id (one object, policy in SQL)', `/api/reports/${info.reportId}`],
          ['GET /api/reports?limit=20 (list of 1,000 mixed markings)', '/api/reports?limit=20'],
          [
            'PATCH /ngsi-ld/v1/entities/:id/attrs (one entity per request, 200 entities: an audited write)',
            '/',
            {
              method: 'PATCH',
              next: (i) => ({
                path: `/ngsi-ld/v1/entities/urn:ngsi-ld:Counter:bench-${i % info.entities}/attrs`,
                body: JSON.stringify({ count: { type: 'Property', value: i } }),
              }),
            },
          ],
          [
            'POST /api/reports (an audited create)',
            '/',
            {
              method: 'POST',
              next: (i) => ({
                path: '/api/reports',
                body: JSON.stringify({ title: `Bench ${i}`, category: 'other', marking: { tlp: 'AMBER' } }),
              }),
            },
          ],
        ];
        for (const [scenario, path, writes] of scenarios) {
          await measure(info.address + path, info.token, 2, writes); // warm-up
          const r = await measure(info.address + path, info.token, seconds, writes);
          rows.push({ store: info.store, scenario, ...r });
          console.log(
            `${info.store.padEnd(8)} ${scenario.padEnd(58)} ${String(r.requestsPerSec).padStart(6)} req/s  p50 ${r.p50Ms} ms  p99 ${r.p99Ms} ms`,
          );
        }
      } finally {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    }
  } finally {
    if (schema && process.env.DATABASE_URL) {
      const c = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await c.connect();
      await c.query(`drop schema if exists ${schema} cascade`);
      await c.end();
    }
  }
  return rows;
}

export function readThroughputMarkdown(rows: ReadThroughputRow[], seconds: number): string {
  const lines = [
    '## Platform API: authenticated read and write throughput',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average ${loadavg()[0]?.toFixed(1)} at the end (a shared machine: figures are indicative). The load generator takes one of the two cores.`,
    'Each request: session JWT verified (HS256), the account read by primary key (a disabled account is cut off at once), the organisation facts from a 5 s cache dropped on access events, then the query with the read-key filter; PGlite is one connection in the server process, PostgreSQL a pool of 10.',
    `One platform instance in its own process, 16 connections for ${seconds} s (autocannon) after a 2 s warm-up; 5 organisations, 1,000 reports with all five TLP labels; the caller is an operator of \`metro\` (a client of \`police\`), so every read runs the full policy (session JWT verified, read keys, \`read_keys && $keys\` in SQL).`,
    'Reproduce: `npm run bench -- platform` (PostgreSQL when `DATABASE_URL` is set).',
    '',
    '| store | request | req/s | p50 ms | p99 ms | errors |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.store} | ${r.scenario} | ${r.requestsPerSec} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors + r.non2xx} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const seconds = Number(process.env.BENCH_SECONDS ?? 10);
  const rows = await runReadThroughputBench(seconds);
  const { writeBenchSection } = await import('../write-section.ts');
  writeBenchSection(
    'Platform API: authenticated read and write throughput',
    readThroughputMarkdown(rows, seconds),
  );
}
