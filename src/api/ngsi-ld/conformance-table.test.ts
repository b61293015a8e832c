/**
 * docs/ngsi-ld-conformance.md agrees with the code, in both directions. The test reads the clause table
 * (between its `conformance-table:start` / `:end` markers) and, on the whole platform, sends every row's
 * `METHOD /path` (under /ngsi-ld/v1, path variables filled from a small seeded world):
 * - a ✅ or ⚠️ row must reach an operation: any answer but the router's own miss (404
 *   PLATFORM_ROUTE_NOT_FOUND, 405 PLATFORM_METHOD_NOT_ALLOWED) and never a 5xx. The operation's own 404 (an
 *   absent entity, say) is an answer of the operation and counts.
 * - a ❌ row must be exactly that router miss: an operation the table calls absent does not exist.
 * And every NGSI-LD operation of /openapi.json has a ✅ or ⚠️ row, so a new route cannot go undocumented.
 *
 * Embedded preset (PGlite) always; the server preset (PostgreSQL + NATS) when DATABASE_URL and NATS_URL
 * are set.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.ts';
import { createPlatform, type Platform } from '../../app/platform.ts';
import { embeddedTestEnv, SERVER_SKIP, seedWorld, serverPresetTestEnv } from '../../app/testing.ts';

const DOC = resolve(dirname(fileURLToPath(import.meta.url)), '../../../docs/ngsi-ld-conformance.md');
const PREFIX = '/ngsi-ld/v1';
const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';
const OPERATOR = 'police-operator';

/** The router's answers for a request no operation takes (src/api/http/route-table.ts). */
const ROUTER_MISS = ['PLATFORM_ROUTE_NOT_FOUND', 'PLATFORM_METHOD_NOT_ALLOWED'];

type Status = '✅' | '⚠️' | '❌';
const STATUSES: readonly string[] = ['✅', '⚠️', '❌'];

interface TableRow {
  clause: string;
  operation: string;
  /** Absent for rows that describe a behaviour, a parameter or a representation. */
  method?: string;
  /** Under /ngsi-ld/v1, with `{variables}` and possibly a query string. */
  path?: string;
  status: Status;
  difference: string;
  line: number;
}

/** Splits a Markdown table line into its cells (a `\|` is a pipe inside a cell). */
function cellsOf(line: string): string[] {
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  return inner.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
}

/** The rows of the clause table; throws on a row that does not have the table's shape. */
function parseConformanceTable(markdown: string): TableRow[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.includes('<!-- conformance-table:start -->'));
  const end = lines.findIndex((l) => l.includes('<!-- conformance-table:end -->'));
  if (start < 0 || end < start) throw new Error('the conformance table markers are missing');
  const rows: TableRow[] = [];
  for (let i = start + 1; i < end; i++) {
    const line = lines[i] as string;
    if (!line.trimStart().startsWith('|')) continue;
    const cells = cellsOf(line);
    if (cells[0] === 'clause' || /^-+$/.test(cells[0] ?? '')) continue;
    if (cells.length !== 5) throw new Error(`line ${i + 1}: ${cells.length} cells, the table has 5`);
    const [clause, operation, route, status, difference] = cells as [string, string, string, string, string];
    if (!STATUSES.includes(status)) throw new Error(`line ${i + 1}: status "${status}" is not ✅, ⚠️ or ❌`);
    const row: TableRow = { clause, operation, status: status as Status, difference, line: i + 1 };
    if (route !== '') {
      const m = /^`(GET|POST|PUT|PATCH|DELETE) (\/[^`\s]*)`$/.exec(route);
      if (!m) throw new Error(`line ${i + 1}: "${route}" is not \`METHOD /path\``);
      row.method = m[1] as string;
      row.path = m[2] as string;
    }
    rows.push(row);
  }
  return rows;
}

const ROWS = parseConformanceTable(readFileSync(DOC, 'utf8'));
const ROUTED = ROWS.filter((r) => r.method !== undefined);
const label = (r: TableRow) => `${r.clause} ${r.method} ${r.path} (${r.status}, line ${r.line})`;

describe('the conformance table', () => {
  it('has a status for every clause row and one row per method and path', () => {
    expect(ROWS.length).toBeGreaterThanOrEqual(100);
    expect(ROUTED.length).toBeGreaterThanOrEqual(50);
    const seen = new Set<string>();
    for (const r of ROUTED) {
      const key = `${r.method} ${r.path}`;
      expect(seen.has(key), `${key} has two rows`).toBe(false);
      seen.add(key);
    }
    // What the reason column is for: every ⚠️ and ❌ says what differs or why.
    for (const r of ROWS.filter((x) => x.status !== '✅')) {
      expect(r.difference, `${r.clause} ${r.operation} (line ${r.line}) says why`).not.toBe('');
    }
  });

  it('reads rows as the table writes them', () => {
    const doc = [
      '<!-- conformance-table:start -->',
      '| clause | operation | method + path | status | difference or reason |',
      '| --- | --- | --- | --- | --- |',
      '| 5.6.1 · 6.4 | Create Entity | `POST /entities` | ✅ | 201 |',
      '| 4.5.23 | Linked entities (`join=inline\\|flat`) | | ❌ | ignored |',
      '<!-- conformance-table:end -->',
    ].join('\n');
    expect(parseConformanceTable(doc)).toEqual([
      {
        clause: '5.6.1 · 6.4',
        operation: 'Create Entity',
        method: 'POST',
        path: '/entities',
        status: '✅',
        difference: '201',
        line: 4,
      },
      {
        clause: '4.5.23',
        operation: 'Linked entities (`join=inline|flat`)',
        status: '❌',
        difference: 'ignored',
        line: 5,
      },
    ]);
    expect(() => parseConformanceTable(doc.replace('| ✅ |', '| yes |'))).toThrow(/not ✅/);
    expect(() => parseConformanceTable(doc.replace('`POST /entities`', 'POST /entities'))).toThrow(
      /METHOD \/path/,
    );
  });
});

interface Answer {
  status: number;
  code?: string;
  body: string;
}

function describePlatform(
  name: string,
  envOf: () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>,
) {
  describe(`the conformance table agrees with the platform (${name})`, () => {
    let platform: Platform;
    let cleanup: () => Promise<void> = async () => {};
    let auth = '';
    let serial = 0;

    const send = async (method: string, url: string, payload?: unknown): Promise<Answer> => {
      const res = await platform.server.inject({
        method: method as 'GET',
        url,
        headers: {
          authorization: auth,
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}),
      });
      let code: string | undefined;
      try {
        code = (JSON.parse(res.body) as { code?: string }).code;
      } catch {
        code = undefined;
      }
      return { status: res.statusCode, ...(code !== undefined ? { code } : {}), body: res.body };
    };
    const created = async (url: string, payload: unknown): Promise<string> => {
      const res = await platform.server.inject({
        method: 'POST',
        url: `${PREFIX}${url}`,
        headers: { authorization: auth, 'content-type': 'application/json' },
        payload: JSON.stringify(payload),
      });
      expect(res.statusCode, `POST ${url}: ${res.body}`).toBe(201);
      const location = String(res.headers.location);
      return decodeURIComponent(location.slice(location.lastIndexOf('/') + 1));
    };

    /** Fresh objects for the path variables of one request: nothing a row does reaches another row. */
    const variables = async (path: string): Promise<Record<string, string>> => {
      const n = ++serial;
      const out: Record<string, string> = {
        type: 'Vehicle',
        attrId: 'speed',
        instanceId: `urn:ngsi-ld:Instance:conformance-${n}`,
        registrationId: `urn:ngsi-ld:ContextSourceRegistration:conformance-${n}`,
        entityMapId: `urn:ngsi-ld:EntityMap:conformance-${n}`,
        snapshotId: `urn:ngsi-ld:Snapshot:conformance-${n}`,
      };
      if (path.includes('{entityId}')) {
        out.entityId = await created('/entities', {
          id: `urn:ngsi-ld:Vehicle:conformance-${n}`,
          type: 'Vehicle',
          speed: { type: 'Property', value: 50 + n },
          location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [7.42, 43.73] } },
        });
      }
      if (path.includes('{subscriptionId}')) {
        out.subscriptionId = path.startsWith('/csourceSubscriptions')
          ? `urn:ngsi-ld:Subscription:conformance-${n}`
          : await created('/subscriptions', {
              type: 'Subscription',
              entities: [{ type: 'Vehicle' }],
              notification: { endpoint: { uri: 'http://127.0.0.1:9/notify' } },
            });
      }
      if (path.includes('{contextId}')) {
        out.contextId = await created('/jsonldContexts', {
          '@context': { speed: `https://example.org/conformance/${n}/speed` },
        });
      }
      return out;
    };
    const urlOf = (path: string, vars: Record<string, string>) =>
      PREFIX +
      path.replace(/\{(\w+)\}/g, (_, v: string) => {
        const value = vars[v];
        if (value === undefined) throw new Error(`no value for {${v}} in ${path}`);
        return encodeURIComponent(value);
      });

    beforeAll(async () => {
      const { env, cleanup: c } = await envOf();
      cleanup = c;
      platform = await createPlatform(
        loadConfig({
          SAFECITY_MQTT_PORT: '0',
          PORT: '0',
          SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
          // Subscriptions here notify 127.0.0.1:9 (nothing listens there).
          SAFECITY_EGRESS_ALLOW: 'public,private,loopback',
          ...env,
        }),
        { log: pino({ level: 'silent' }) },
      );
      const accounts = await seedWorld(platform, ADMIN_PASSWORD, PW, {
        orgs: [['police', 'police']],
        users: [[OPERATOR, 'police', 'operator']],
      });
      auth = accounts[OPERATOR] as string;
    }, 120_000);
    afterAll(async () => {
      await platform?.shutdown();
      await cleanup();
    });

    it('reaches an operation for every ✅ and ⚠️ row, and the router miss for every ❌ row', async () => {
      const wrong: string[] = [];
      for (const row of ROUTED) {
        const method = row.method as string;
        const path = row.path as string;
        const url = urlOf(path, await variables(path));
        // A body for the methods that take one; an operation that wants another answers 400, still itself.
        const body = ['POST', 'PUT', 'PATCH'].includes(method) ? {} : undefined;
        const a = await send(method, url, body);
        const miss = a.code !== undefined && ROUTER_MISS.includes(a.code);
        if (row.status === '❌') {
          if (!miss) wrong.push(`${label(row)}: answered ${a.status} ${a.code ?? a.body.slice(0, 120)}`);
        } else if (miss || a.status >= 500) {
          wrong.push(`${label(row)}: answered ${a.status} ${a.code ?? a.body.slice(0, 120)}`);
        }
      }
      expect(
        wrong,
        'rows of docs/ngsi-ld-conformance.md the platform contradicts: change the row with the code',
      ).toEqual([]);
    }, 120_000);

    it('has a ✅ or ⚠️ row for every NGSI-LD operation of /openapi.json', async () => {
      const res = await platform.server.inject({ method: 'GET', url: '/openapi.json' });
      expect(res.statusCode).toBe(200);
      const doc = res.json() as { paths: Record<string, Record<string, unknown>> };
      const shape = (p: string) => p.split('?')[0]?.replace(/\{\w+\}/g, '{}');
      const documented = new Set(
        ROUTED.filter((r) => r.status !== '❌').map((r) => `${r.method} ${shape(r.path as string)}`),
      );
      const missing: string[] = [];
      let operations = 0;
      for (const [path, methods] of Object.entries(doc.paths)) {
        if (!path.startsWith(`${PREFIX}/`)) continue;
        for (const method of Object.keys(methods)) {
          if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
          operations++;
          const key = `${method.toUpperCase()} ${shape(path.slice(PREFIX.length))}`;
          if (!documented.has(key)) missing.push(key);
        }
      }
      expect(operations).toBeGreaterThanOrEqual(30);
      expect(missing, 'NGSI-LD operations without a row in docs/ngsi-ld-conformance.md').toEqual([]);
    });
  });
}

describePlatform('PGlite', () => embeddedTestEnv('conformance'));

describe.skipIf(SERVER_SKIP)(`server preset${SERVER_SKIP ? ` (skipped: ${SERVER_SKIP})` : ''}`, () => {
  describePlatform('PostgreSQL + NATS', () => serverPresetTestEnv('conformance'));
});
