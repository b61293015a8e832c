/**
 * Query Temporal Evolution of Entities over HTTP on the whole platform (clause 5.7.4): pagination links
 * (clause 5.5.9) and instance pagination (206 + Content-Range, clause 6.3.10). PGlite, and PostgreSQL +
 * NATS when DATABASE_URL and NATS_URL are set.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.ts';
import { createPlatform, type Platform } from '../../app/platform.ts';
import { embeddedTestEnv, SERVER_SKIP, seedWorld, serverPresetTestEnv } from '../../app/testing.ts';

const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';
const T = '/ngsi-ld/v1/temporal/entities';
const MAX_INSTANCES = 4;

const iso = (minute: number) => new Date(Date.UTC(2024, 4, 1, 10, minute)).toISOString();

/** A temporal Vehicle with speed instances at these minutes (values 100 + minute). */
function vehicle(n: number, minutes: number[], extra: Record<string, unknown> = {}) {
  return {
    id: `urn:ngsi-ld:Vehicle:tq-${n}`,
    type: 'Vehicle',
    speed: minutes.map((m) => ({ type: 'Property', value: 100 + m, observedAt: iso(m) })),
    ...extra,
  };
}

const ids = (body: unknown) => (body as { id: string }[]).map((e) => e.id);

function describePlatform(
  label: string,
  envOf: () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>,
) {
  describe(`temporal queries over HTTP (${label})`, () => {
    let platform: Platform;
    let auth: Record<string, string> = {};
    let cleanup: () => Promise<void> = async () => {};

    const send = (method: 'GET' | 'POST', url: string, who: string, body?: unknown, headers = {}) =>
      platform.server.inject({
        method,
        url,
        headers: {
          authorization: auth[who] as string,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });

    beforeAll(async () => {
      const { env, cleanup: c } = await envOf();
      cleanup = c;
      platform = await createPlatform(
        loadConfig({
          SAFECITY_MQTT_PORT: '0',
          PORT: '0',
          SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
          SAFECITY_TEMPORAL_MAX_INSTANCES: String(MAX_INSTANCES),
          ...env,
        }),
        { log: pino({ level: 'silent' }) },
      );
      auth = await seedWorld(platform, ADMIN_PASSWORD, PW, {
        orgs: [
          ['police', 'police'],
          ['fire', 'fire'],
          ['water', 'water'],
        ],
        users: [
          ['police-op', 'police', 'operator'],
          ['police-analyst', 'police', 'analyst'],
          ['police-viewer', 'police', 'viewer'],
          ['fire-op', 'fire', 'operator'],
          ['water-op', 'water', 'operator'],
        ],
      });
      // tq-1 is shared with fire (its marking names it); tq-2 and tq-3 are police's own (AMBER); tq-4 has
      // more instances than one answer holds; tq-9 is water's.
      const shared = { type: 'Property', value: { tlp: 'AMBER', audience: { orgs: ['fire'] } } };
      const payloads: [string, unknown][] = [
        ['police-op', vehicle(1, [0, 10, 20], { marking: shared })],
        ['police-op', vehicle(2, [5, 15])],
        ['police-op', vehicle(3, [30])],
        ['police-op', vehicle(4, [1, 2, 3, 4, 5, 6])],
        ['water-op', vehicle(9, [0, 10])],
      ];
      for (const [who, payload] of payloads) {
        const res = await send('POST', T, who, payload);
        expect(res.statusCode, res.body).toBe(201);
      }
    });
    afterAll(async () => {
      await platform?.shutdown();
      await cleanup();
    });

    it('links the previous and next pages of a GET query (clause 5.5.9), as on subscriptions', async () => {
      const page = (q: string) =>
        send('GET', `${T}?type=Vehicle&timerel=before&timeAt=${iso(59)}&${q}`, 'police-op');
      const first = await page('limit=2');
      expect(first.statusCode, first.body).toBe(200);
      expect(ids(first.json())).toEqual(['urn:ngsi-ld:Vehicle:tq-1', 'urn:ngsi-ld:Vehicle:tq-2']);
      const links = (res: { headers: Record<string, unknown> }) =>
        ([] as string[])
          .concat((res.headers.link as string | string[]) ?? [])
          .filter((l) => /rel="(prev|next)"/.test(l));
      const base = `${T}?type=Vehicle&timerel=before&timeAt=${iso(59)}`;
      expect(links(first)).toEqual([`<${base}&limit=2&offset=2>;rel="next";type="application/ld+json"`]);
      const last = await page('limit=2&offset=2');
      expect(last.statusCode).toBe(206); // tq-4 holds more instances than an answer does
      expect(ids(last.json())).toEqual(['urn:ngsi-ld:Vehicle:tq-3', 'urn:ngsi-ld:Vehicle:tq-4']);
      expect(links(last)).toEqual([`<${base}&limit=2&offset=0>;rel="prev";type="application/ld+json"`]);
      const all = await page('limit=10');
      expect(links(all)).toEqual([]);
    });
  });
}

describePlatform('PGlite', () => embeddedTestEnv('temporal-query'));

describe.skipIf(SERVER_SKIP)(`server preset${SERVER_SKIP ? ` (skipped: ${SERVER_SKIP})` : ''}`, () => {
  describePlatform('PostgreSQL + NATS', () => serverPresetTestEnv('temporal_query'));
});
