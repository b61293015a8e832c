/**
 * Pagination links on Query Entities (clause 5.5.9, 6.3.10): `Link` `rel="prev"` / `rel="next"` in the form
 * the ETSI tests check on subscriptions (031_02), beside the JSON-LD context link, on every path a query
 * takes (store paging, attribute value index, idPattern, q in memory, the geo index). An entity the caller
 * may not see never makes a next page appear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestApp, type TestApp } from './test-app.ts';

const E = '/ngsi-ld/v1/entities';
const CORE = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld';
const CONTEXT_LINK = `<${CORE}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`;
const alice = { 'x-test-user': 'alice@metro' };
const bob = { 'x-test-user': 'bob@fire' };

const STORES = [
  { name: 'pglite' as const, skip: undefined },
  {
    name: 'postgres' as const,
    skip: process.env.DATABASE_URL
      ? undefined
      : 'DATABASE_URL is not set (no PostgreSQL server to test against)',
  },
];

const building = (n: number) => ({
  id: `urn:ngsi-ld:Building:pg-${n}`,
  type: 'Building',
  height: { type: 'Property', value: 10 * n },
  location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [13.4, 52.5 + n / 1000] } },
});

/** The pagination links of an answer (the context link left out), in order. */
function pageLinks(link: string | string[] | undefined): string[] {
  const all = link === undefined ? [] : Array.isArray(link) ? link : [link];
  return all.filter((l) => /rel="(prev|next)"/.test(l));
}

const next = (query: string) => `<${E}?${query}>;rel="next";type="application/ld+json"`;
const prev = (query: string) => `<${E}?${query}>;rel="prev";type="application/ld+json"`;

for (const store of STORES)
  describe.skipIf(store.skip)(
    `pagination links of Query Entities on ${store.name}${store.skip ? ` (skipped: ${store.skip})` : ''}`,
    () => {
      let t: TestApp;
      const get = (url: string, headers: Record<string, string> = alice) =>
        t.app.inject({ method: 'GET', url, headers });

      beforeAll(async () => {
        t = await openTestApp({ store: store.name });
        for (const n of [1, 2, 3]) {
          const res = await t.app.inject({
            method: 'POST',
            url: E,
            headers: { ...alice, 'content-type': 'application/json' },
            payload: building(n),
          });
          expect(res.statusCode, res.body).toBe(201);
        }
        // Another organisation's entity, invisible to alice (AMBER by default): it must not add a page.
        const other = await t.app.inject({
          method: 'POST',
          url: E,
          headers: { ...bob, 'content-type': 'application/json' },
          payload: building(4),
        });
        expect(other.statusCode, other.body).toBe(201);
      });
      afterAll(async () => {
        await t?.close();
      });

      it('links the next page only on the first page, both in the middle, the previous only on the last', async () => {
        const first = await get(`${E}?type=Building&limit=1&offset=0`);
        expect(first.statusCode, first.body).toBe(200);
        expect(first.json()).toHaveLength(1);
        expect(pageLinks(first.headers.link)).toEqual([next('type=Building&limit=1&offset=1')]);
        // The context link stays beside them.
        expect(first.headers.link).toContain(CONTEXT_LINK);

        const middle = await get(`${E}?type=Building&limit=1&offset=1`);
        expect(pageLinks(middle.headers.link)).toEqual([
          prev('type=Building&limit=1&offset=0'),
          next('type=Building&limit=1&offset=2'),
        ]);

        const last = await get(`${E}?type=Building&limit=1&offset=2`);
        expect(last.json()).toHaveLength(1);
        expect(pageLinks(last.headers.link)).toEqual([prev('type=Building&limit=1&offset=1')]);

        const all = await get(`${E}?type=Building`);
        expect(all.json()).toHaveLength(3);
        expect(pageLinks(all.headers.link)).toEqual([]);
        expect(all.headers.link).toBe(CONTEXT_LINK);
      });

      it('keeps the other parameters as they came, and the default page size', async () => {
        const res = await get(`${E}?type=Building&options=keyValues&count=true&offset=1`);
        expect(res.headers['ngsild-results-count']).toBe('3');
        expect(pageLinks(res.headers.link)).toEqual([
          prev('type=Building&options=keyValues&count=true&limit=20&offset=0'),
        ]);
      });

      it('sends no link with limit=0 (the count alone)', async () => {
        const res = await get(`${E}?type=Building&limit=0&count=true`);
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json()).toEqual([]);
        expect(res.headers['ngsild-results-count']).toBe('3');
        expect(pageLinks(res.headers.link)).toEqual([]);
      });

      it('links pages on every query path: q by the index, q in memory, idPattern, geo-query', async () => {
        const queries = [
          'q=height>=10',
          'q=height!=0',
          'idPattern=pg-',
          'georel=near;maxDistance==10000&geometry=Point&coordinates=[13.4,52.5]',
          'type=Building&q=height>=10&georel=within&geometry=Polygon&coordinates=[[[13.3,52.4],[13.5,52.4],[13.5,52.6],[13.3,52.6],[13.3,52.4]]]',
        ];
        for (const q of queries) {
          const first = await get(`${E}?${q}&limit=2`);
          expect(first.statusCode, `${q}: ${first.body}`).toBe(200);
          expect(first.json(), q).toHaveLength(2);
          expect(
            pageLinks(first.headers.link).map((l) => /rel="(\w+)"/.exec(l)?.[1]),
            q,
          ).toEqual(['next']);
          const second = await get(`${E}?${q}&limit=2&offset=2`);
          expect(second.json(), q).toHaveLength(1);
          expect(
            pageLinks(second.headers.link).map((l) => /rel="(\w+)"/.exec(l)?.[1]),
            q,
          ).toEqual(['prev']);
        }
      });

      it('never announces a next page made of entities the caller may not see', async () => {
        // bob sees his own entity only.
        const res = await get(`${E}?type=Building&limit=1`, bob);
        expect((res.json() as { id: string }[]).map((e) => e.id)).toEqual(['urn:ngsi-ld:Building:pg-4']);
        expect(pageLinks(res.headers.link)).toEqual([]);
        const alicePage = await get(`${E}?type=Building&limit=1&offset=2`);
        expect(pageLinks(alicePage.headers.link)).toEqual([prev('type=Building&limit=1&offset=1')]);
      });
    },
  );
