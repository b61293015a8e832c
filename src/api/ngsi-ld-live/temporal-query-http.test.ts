/**
 * Query Temporal Evolution of Entities over HTTP on the whole platform (clause 5.7.4): by GET and by POST
 * (`/temporal/entityOperations/query`, clause 6.24) with the same answers, pagination links on the GET
 * (clause 5.5.9), instance pagination (206 + Content-Range, clause 6.3.10) on both, scopeQ; and the gate:
 * the owner organisation's roles, a client named in the marking and an unrelated organisation each see
 * exactly what they may, by either route. PGlite, and PostgreSQL + NATS when DATABASE_URL and NATS_URL are set.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.ts';
import { createPlatform, type Platform } from '../../app/platform.ts';
import { embeddedTestEnv, SERVER_SKIP, seedWorld, serverPresetTestEnv } from '../../app/testing.ts';

const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';
const T = '/ngsi-ld/v1/temporal/entities';
const POST_QUERY = '/ngsi-ld/v1/temporal/entityOperations/query';
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
  describe(`temporal queries by GET and POST (${label})`, () => {
    let platform: Platform;
    let auth: Record<string, string> = {};
    let cleanup: () => Promise<void> = async () => {};

    const send = (method: 'GET' | 'POST' | 'PATCH', url: string, who: string, body?: unknown, headers = {}) =>
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
      // count=true (clause 6.3.13): the entities selected, whatever the page; limit=0 for the count alone.
      const counted = await page('limit=1&count=true');
      expect(counted.headers['ngsild-results-count']).toBe('4');
      expect(ids(counted.json())).toEqual(['urn:ngsi-ld:Vehicle:tq-1']);
      const countOnly = await page('limit=0&count=true');
      expect([countOnly.headers['ngsild-results-count'], countOnly.json()]).toEqual(['4', []]);
      const filtered = await send('GET', `${T}?type=Vehicle&q=speed>=115&count=true&limit=1`, 'police-op');
      expect(filtered.headers['ngsild-results-count']).toBe('3'); // tq-1, tq-2, tq-3
      // Counted within visibility: the client named in tq-1's marking counts tq-1 only.
      const fire = await send('GET', `${T}?type=Vehicle&count=true`, 'fire-op');
      expect(fire.headers['ngsild-results-count']).toBe('1');
      const byPost = await send('POST', `${POST_QUERY}?count=true&limit=1`, 'water-op', {
        type: 'Query',
        entities: [{ type: 'Vehicle' }],
      });
      expect(byPost.headers['ngsild-results-count']).toBe('1');
      expect(all.headers['ngsild-results-count']).toBeUndefined();
    });

    it('answers a POST query exactly as the GET with the same selection (ETSI 021_13)', async () => {
      const pairs: [string, unknown, string][] = [
        [
          `type=Vehicle&timerel=after&timeAt=${iso(10)}`,
          {
            type: 'Query',
            entities: [{ type: 'Vehicle' }],
            temporalQ: { timerel: 'after', timeAt: iso(10) },
          },
          '',
        ],
        [
          `id=urn:ngsi-ld:Vehicle:tq-1,urn:ngsi-ld:Vehicle:tq-2&attrs=speed&timerel=between&timeAt=${iso(0)}&endTimeAt=${iso(16)}&lastN=1`,
          {
            type: 'Query',
            entities: [{ id: 'urn:ngsi-ld:Vehicle:tq-1' }, { id: 'urn:ngsi-ld:Vehicle:tq-2' }],
            attrs: ['speed'],
            temporalQ: { timerel: 'between', timeAt: iso(0), endTimeAt: iso(16), lastN: 1 },
          },
          '',
        ],
        [
          `type=Vehicle&q=speed>=115&timerel=before&timeAt=${iso(59)}&options=temporalValues`,
          {
            type: 'Query',
            entities: [{ type: 'Vehicle' }],
            q: 'speed>=115',
            temporalQ: { timerel: 'before', timeAt: iso(59) },
          },
          'options=temporalValues',
        ],
        [
          `idPattern=tq-[12]$&format=aggregatedValues&aggrMethods=max,totalCount`,
          {
            type: 'Query',
            entities: [{ idPattern: 'tq-[12]$' }],
            temporalQ: { aggrMethods: ['max', 'totalCount'] },
          },
          'format=aggregatedValues',
        ],
        [
          `type=Vehicle&pick=id,speed&timerel=after&timeAt=${iso(20)}`,
          {
            type: 'Query',
            entities: [{ type: 'Vehicle' }],
            pick: ['id', 'speed'],
            temporalQ: { timerel: 'after', timeAt: iso(20) },
          },
          '',
        ],
        [
          `type=Vehicle&omit=type&timerel=after&timeAt=${iso(20)}`,
          {
            type: 'Query',
            entities: [{ type: 'Vehicle' }],
            omit: 'type',
            temporalQ: { timerel: 'after', timeAt: iso(20) },
          },
          '',
        ],
      ];
      for (const who of ['police-op', 'police-analyst', 'police-viewer', 'fire-op', 'water-op']) {
        for (const [get, body, post] of pairs) {
          const byGet = await send('GET', `${T}?${get}`, who);
          const byPost = await send('POST', `${POST_QUERY}${post ? `?${post}` : ''}`, who, body);
          expect(byGet.statusCode, `${who} GET ${get}: ${byGet.body}`).toBe(200);
          expect(byPost.statusCode, `${who} POST ${JSON.stringify(body)}: ${byPost.body}`).toBe(200);
          expect(byPost.json(), `${who} ${get}`).toEqual(byGet.json());
          expect(byPost.headers['safecity-marking']).toEqual(byGet.headers['safecity-marking']);
          expect(byPost.headers['content-type']).toEqual(byGet.headers['content-type']);
        }
      }
    });

    it('shows each organisation only what the gate lets it see, by POST as by GET', async () => {
      const everything = {
        type: 'Query',
        entities: [{ type: 'Vehicle' }],
        temporalQ: { timerel: 'before', timeAt: iso(59) },
      };
      const seen = async (who: string) =>
        ids((await send('POST', `${POST_QUERY}?limit=100`, who, everything)).json());
      const police = [
        'urn:ngsi-ld:Vehicle:tq-1',
        'urn:ngsi-ld:Vehicle:tq-2',
        'urn:ngsi-ld:Vehicle:tq-3',
        'urn:ngsi-ld:Vehicle:tq-4',
      ];
      for (const who of ['police-op', 'police-analyst', 'police-viewer'])
        expect(await seen(who), who).toEqual(police);
      // The client named in tq-1's marking sees tq-1 only; the unrelated organisation sees its own only.
      expect(await seen('fire-op')).toEqual(['urn:ngsi-ld:Vehicle:tq-1']);
      expect(await seen('water-op')).toEqual(['urn:ngsi-ld:Vehicle:tq-9']);
      // Naming another organisation's ids, or matching them by pattern or value, shows nothing of them.
      for (const body of [
        { type: 'Query', entities: [{ id: 'urn:ngsi-ld:Vehicle:tq-2' }, { id: 'urn:ngsi-ld:Vehicle:tq-3' }] },
        { type: 'Query', entities: [{ idPattern: 'tq-[1-4]' }] },
        { type: 'Query', entities: [{ type: 'Vehicle' }], q: 'speed>=100' },
        { type: 'Query', attrs: ['speed'], temporalQ: { timerel: 'after', timeAt: iso(0) } },
      ]) {
        const res = await send('POST', POST_QUERY, 'water-op', body);
        expect(res.statusCode, res.body).toBe(200);
        expect(ids(res.json()), JSON.stringify(body)).not.toContain('urn:ngsi-ld:Vehicle:tq-2');
        expect(ids(res.json()).filter((id) => id !== 'urn:ngsi-ld:Vehicle:tq-9')).toEqual([]);
        expect(String(res.headers['safecity-marking'] ?? '')).not.toContain('police');
      }
    });

    it('pages by entities with limit and offset, and by time past the most instances an answer holds (206)', async () => {
      const body = {
        type: 'Query',
        entities: [{ type: 'Vehicle' }],
        temporalQ: { timerel: 'before', timeAt: iso(59) },
      };
      const second = await send('POST', `${POST_QUERY}?limit=1&offset=1`, 'police-op', body);
      expect(second.statusCode, second.body).toBe(200);
      expect(ids(second.json())).toEqual(['urn:ngsi-ld:Vehicle:tq-2']);
      // A POST has no URL to link to: no pagination links.
      expect(
        ([] as string[]).concat((second.headers.link as string) ?? []).some((l) => /rel="next"/.test(l)),
      ).toBe(false);
      const byPost = await send('POST', POST_QUERY, 'police-op', {
        type: 'Query',
        entities: [{ id: 'urn:ngsi-ld:Vehicle:tq-4' }],
        temporalQ: { timerel: 'after', timeAt: iso(0) },
      });
      const byGet = await send(
        'GET',
        `${T}?id=urn:ngsi-ld:Vehicle:tq-4&timerel=after&timeAt=${iso(0)}`,
        'police-op',
      );
      for (const res of [byPost, byGet]) {
        expect(res.statusCode, res.body).toBe(206);
        expect(res.headers['content-range']).toBe(`date-time ${iso(0)}-${iso(4)}/*`);
        expect(
          ((res.json() as { speed: { value: number }[] }[])[0]?.speed ?? []).map((i) => i.value),
        ).toEqual([101, 102, 103, 104]);
      }
    });

    it('takes the @context from the body of application/ld+json and answers with it', async () => {
      const context = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld';
      const res = await platform.server.inject({
        method: 'POST',
        url: POST_QUERY,
        headers: {
          authorization: auth['police-op'] as string,
          'content-type': 'application/ld+json',
          accept: 'application/ld+json',
        },
        payload: JSON.stringify({
          type: 'Query',
          entities: [{ id: 'urn:ngsi-ld:Vehicle:tq-3' }],
          '@context': context,
        }),
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/ld\+json/);
      expect(res.json()).toMatchObject([
        { id: 'urn:ngsi-ld:Vehicle:tq-3', type: 'Vehicle', '@context': context },
      ]);
    });

    it('refuses what is not a temporal Query with 400 BadRequestData, never a 5xx (ETSI 021_27)', async () => {
      const bad = [
        { type: 'Subscription', entities: [{ type: 'Vehicle' }] },
        { type: 'Query' },
        { type: 'Query', entities: 'Vehicle' },
        { type: 'Query', entities: [{ type: 'Vehicle' }], attrs: 'speed' },
        { type: 'Query', entities: [{ type: 'Vehicle' }], temporalQ: { timerel: 'during', timeAt: iso(0) } },
        { type: 'Query', entities: [{ type: 'Vehicle' }], temporalQ: { timerel: 'between', timeAt: iso(0) } },
        {
          type: 'Query',
          entities: [{ type: 'Vehicle' }],
          temporalQ: { timerel: 'after', timeAt: '2024-05-01' },
        },
        { type: 'Query', entities: [{ type: 'Vehicle' }], temporalQ: { lastN: 0 } },
        { type: 'Query', entities: [{ type: 'Vehicle' }], temporalQ: { lastN: 1.5 } },
        { type: 'Query', entities: [{ type: 'Vehicle' }], temporalQ: { lastN: '2' } },
        { type: 'Query', entities: [{ type: 'Vehicle' }], temporalQ: { timeproperty: 'seenAt' } },
        {
          type: 'Query',
          entities: [{ type: 'Vehicle' }],
          temporalQ: { aggrMethods: ['avg'], aggrPeriodDuration: 'P1X' },
        },
        { type: 'Query', entities: [{ type: 'Vehicle' }], temporalQ: { aggrMethods: [1] } },
        { type: 'Query', entities: [{ type: 'Vehicle' }], temporalQ: { speed: 1 } },
        {
          type: 'Query',
          entities: [{ type: 'Vehicle' }],
          geoQ: { georel: 'near', geometry: 'Point', coordinates: 'x' },
        },
        { type: 'Query', entities: [{ type: 'Vehicle' }], q: 'speed>>>' },
        { type: 'Query', entities: [{ type: 'Vehicle' }], unknownMember: true },
        { type: 'Query', entities: [{ type: 'Vehicle' }], attrs: ['speed'], pick: ['speed'] },
        { type: 'Query', entities: [{ type: 'Vehicle' }], pick: ['speed'], omit: ['speed'] },
        { type: 'Query', entities: [{ type: 'Vehicle' }], pick: [1] },
      ];
      for (const body of bad) {
        const res = await send('POST', POST_QUERY, 'police-op', body);
        expect([res.statusCode, (res.json() as { type: string }).type], JSON.stringify(body)).toEqual([
          400,
          'https://uri.etsi.org/ngsi-ld/errors/BadRequestData',
        ]);
      }
      // What temporal reads do not implement is refused, as on GET, never ignored.
      for (const body of [
        { type: 'Query', entities: [{ type: 'Vehicle' }], datasetId: ['urn:ngsi-ld:Dataset:a'] },
        { type: 'Query', entities: [{ type: 'Vehicle' }], lang: 'fr' },
        { type: 'Query', entities: [{ type: 'Vehicle' }], csf: 'x' },
      ]) {
        const res = await send('POST', POST_QUERY, 'police-op', body);
        expect([res.statusCode, (res.json() as { type: string }).type], JSON.stringify(body)).toEqual([
          422,
          'https://uri.etsi.org/ngsi-ld/errors/OperationNotSupported',
        ]);
      }
      const unknownParameter = await send('POST', `${POST_QUERY}?speed=1`, 'police-op', {
        type: 'Query',
        entities: [{ type: 'Vehicle' }],
      });
      expect(unknownParameter.statusCode).toBe(400);
      const array = await send('POST', POST_QUERY, 'police-op', [{ type: 'Query' }]);
      expect(array.statusCode).toBe(400);
      const aggregated = await send('POST', `${POST_QUERY}?format=aggregatedValues`, 'police-op', {
        type: 'Query',
        entities: [{ id: 'urn:ngsi-ld:Vehicle:tq-1' }],
        temporalQ: { aggrMethods: 'avg' },
      });
      expect(aggregated.statusCode, aggregated.body).toBe(200);
      expect(aggregated.json()).toMatchObject([
        { speed: { type: 'Property', avg: [[110, expect.any(String), expect.any(String)]] } },
      ]);
    });

    it('selects by scopeQ (clause 4.19) the scopes of the entity or temporal entity now, within visibility', async () => {
      const bus = (n: number, scope: unknown, minutes = [0, 10]) => ({
        id: `urn:ngsi-ld:Bus:sq-${n}`,
        type: 'Bus',
        scope,
        speed: minutes.map((m) => ({ type: 'Property', value: 50 + m, observedAt: iso(m) })),
      });
      // Temporal entities with scopes (the ETSI payload vehicle-temporal-representation-scope), police's
      // and water's, and an entity whose history is recorded from its changes.
      for (const [who, payload] of [
        ['police-op', bus(1, ['/Madrid/Gardens/ParqueNorte', '/CompanyA/OrganizationB/UnitC'])],
        ['police-op', bus(2, '/Porto/Ribeira')],
        ['police-op', { ...bus(3, []), scope: undefined }],
        ['water-op', bus(9, '/Madrid/Gardens/ParqueSur')],
      ] as const) {
        const res = await send('POST', T, who, payload);
        expect(res.statusCode, res.body).toBe(201);
      }
      const entity = await send('POST', '/ngsi-ld/v1/entities', 'police-op', {
        id: 'urn:ngsi-ld:Bus:sq-4',
        type: 'Bus',
        scope: '/Madrid/Centro',
        speed: { type: 'Property', value: 70, observedAt: iso(20) },
      });
      expect(entity.statusCode, entity.body).toBe(201);
      const select = async (scopeQ: string, who = 'police-op') => {
        const res = await send('GET', `${T}?type=Bus&scopeQ=${encodeURIComponent(scopeQ)}`, who);
        expect(res.statusCode, `${scopeQ}: ${res.body}`).toBe(200);
        return ids(res.json());
      };
      // History recorded from an entity's change arrives through the bus: wait for it.
      for (let i = 0; i < 100 && !(await select('/Madrid/Centro')).length; i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(await select('/Madrid/#')).toEqual(['urn:ngsi-ld:Bus:sq-1', 'urn:ngsi-ld:Bus:sq-4']);
      expect(await select('/Madrid/Gardens/#')).toEqual(['urn:ngsi-ld:Bus:sq-1']);
      expect(await select('/CompanyA/+/UnitC')).toEqual(['urn:ngsi-ld:Bus:sq-1']);
      expect(await select('/Madrid/#;/CompanyA/#')).toEqual(['urn:ngsi-ld:Bus:sq-1']);
      expect(await select('/Porto/#|/Madrid/Centro')).toEqual([
        'urn:ngsi-ld:Bus:sq-2',
        'urn:ngsi-ld:Bus:sq-4',
      ]);
      expect(await select('/#')).toEqual([
        'urn:ngsi-ld:Bus:sq-1',
        'urn:ngsi-ld:Bus:sq-2',
        'urn:ngsi-ld:Bus:sq-4',
      ]);
      expect(await select('/Nowhere')).toEqual([]);
      // The unrelated organisation's scopes select its own only, and police's never show to it.
      expect(await select('/Madrid/#', 'water-op')).toEqual(['urn:ngsi-ld:Bus:sq-9']);
      expect(await select('/Madrid/Gardens/ParqueNorte', 'water-op')).toEqual([]);
      expect(await select('/Madrid/Gardens/ParqueNorte', 'fire-op')).toEqual([]);
      // The entity's scope now is the one tested: replaced, it no longer selects by the old one.
      const moved = await send('PATCH', '/ngsi-ld/v1/entities/urn:ngsi-ld:Bus:sq-4/attrs', 'police-op', {
        scope: '/Porto/Foz',
      });
      expect(moved.statusCode, moved.body).toBe(204);
      for (let i = 0; i < 100 && (await select('/Madrid/Centro')).length; i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(await select('/Madrid/#')).toEqual(['urn:ngsi-ld:Bus:sq-1']);
      expect(await select('/Porto/Foz')).toEqual(['urn:ngsi-ld:Bus:sq-4']);
      // A temporal entity's scopes join the ones it had when instances are added with others.
      const added = await send('POST', T, 'police-op', bus(2, '/Lisboa', [30]));
      expect(added.statusCode, added.body).toBe(204);
      expect(await select('/Lisboa')).toEqual(['urn:ngsi-ld:Bus:sq-2']);
      expect(await select('/Porto/Ribeira')).toEqual(['urn:ngsi-ld:Bus:sq-2']);
      // scopeQ alone selects; by POST as by GET; paged; a malformed one is 400 BadRequestData.
      const alone = await send('GET', `${T}?scopeQ=/Madrid/Gardens/ParqueNorte`, 'police-op');
      expect(ids(alone.json())).toEqual(['urn:ngsi-ld:Bus:sq-1']);
      const byPost = await send('POST', `${POST_QUERY}?limit=1&offset=1`, 'police-op', {
        type: 'Query',
        entities: [{ type: 'Bus' }],
        scopeQ: '/#',
      });
      const byGet = await send('GET', `${T}?type=Bus&scopeQ=/%23&limit=1&offset=1`, 'police-op');
      expect(byPost.json()).toEqual(byGet.json());
      expect(ids(byGet.json())).toEqual(['urn:ngsi-ld:Bus:sq-2']);
      for (const bad of ['Madrid', '/Madrid/#/x', '(/Madrid']) {
        const res = await send('GET', `${T}?type=Bus&scopeQ=${encodeURIComponent(bad)}`, 'police-op');
        expect([res.statusCode, (res.json() as { type: string }).type], bad).toEqual([
          400,
          'https://uri.etsi.org/ngsi-ld/errors/BadRequestData',
        ]);
      }
    });
  });
}

describePlatform('PGlite', () => embeddedTestEnv('temporal-query'));

describe.skipIf(SERVER_SKIP)(`server preset${SERVER_SKIP ? ` (skipped: ${SERVER_SKIP})` : ''}`, () => {
  describePlatform('PostgreSQL + NATS', () => serverPresetTestEnv('temporal_query'));
});
