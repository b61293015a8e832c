/**
 * The GeoJSON representation (clause 4.5.16, 4.5.17, 6.3.15) as the ETSI tests check it: a Feature per
 * entity with its `@context` in the body (018_05), a FeatureCollection with its `@context` for queries
 * (019_05), `geometryProperty` choosing the geometry, and `Accept: application/geo+json` on
 * POST /entityOperations/query with the @context of its payload. Within the caller's visibility.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestApp, type TestApp } from './test-app.ts';

const E = '/ngsi-ld/v1/entities';
const QUERY = '/ngsi-ld/v1/entityOperations/query';
const CORE = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld';
const SUITE =
  'https://forge.etsi.org/rep/cim/ngsi-ld-test-suite/-/raw/develop/resources/jsonld-contexts/ngsi-ld-test-suite-compound.jsonld';
const LINK = `<${SUITE}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`;
const alice = { 'x-test-user': 'alice@metro' };
const bob = { 'x-test-user': 'bob@fire' };
const GEO = { accept: 'application/geo+json' };

const STORES = [
  { name: 'pglite' as const, skip: undefined },
  {
    name: 'postgres' as const,
    skip: process.env.DATABASE_URL
      ? undefined
      : 'DATABASE_URL is not set (no PostgreSQL server to test against)',
  },
];

const POINT = { type: 'Point', coordinates: [13.3986, 52.5547] };
const SPACE = { type: 'Point', coordinates: [11.1111, 11.1111] };

/** The ETSI test suite's Building with two GeoProperties (building-two-geometry-attributes.jsonld). */
const building = (n: number) => ({
  id: `urn:ngsi-ld:Building:geo-${n}`,
  type: 'Building',
  name: { type: 'Property', value: 'Eiffel Tower' },
  subCategory: { type: 'Property', value: 'tourism' },
  location: { type: 'GeoProperty', value: POINT },
  observationSpace: { type: 'GeoProperty', value: SPACE },
  '@context': SUITE,
});

const feature = (n: number, geometry = POINT) => ({
  id: `urn:ngsi-ld:Building:geo-${n}`,
  type: 'Feature',
  geometry,
  properties: {
    type: 'Building',
    name: { type: 'Property', value: 'Eiffel Tower' },
    subCategory: { type: 'Property', value: 'tourism' },
    location: { type: 'GeoProperty', value: POINT },
    observationSpace: { type: 'GeoProperty', value: SPACE },
  },
});

for (const store of STORES)
  describe.skipIf(store.skip)(
    `GeoJSON answers on ${store.name}${store.skip ? ` (skipped: ${store.skip})` : ''}`,
    () => {
      let t: TestApp;
      const get = (url: string, headers: Record<string, string> = {}) =>
        t.app.inject({ method: 'GET', url, headers: { ...alice, ...headers } });

      beforeAll(async () => {
        t = await openTestApp({ store: store.name });
        for (const n of [1, 2]) {
          const res = await t.app.inject({
            method: 'POST',
            url: E,
            headers: { ...alice, 'content-type': 'application/ld+json' },
            payload: building(n),
          });
          expect(res.statusCode, res.body).toBe(201);
        }
        // Another organisation's building at the same place: invisible to alice (AMBER by default).
        const other = await t.app.inject({
          method: 'POST',
          url: E,
          headers: { ...bob, 'content-type': 'application/ld+json' },
          payload: building(3),
        });
        expect(other.statusCode, other.body).toBe(201);
      });
      afterAll(async () => {
        await t?.close();
      });

      it('answers a query as a FeatureCollection with its @context in the body (ETSI 019_05)', async () => {
        const res = await get(`${E}?type=Building&id=urn:ngsi-ld:Building:geo-1,urn:ngsi-ld:Building:geo-2`, {
          ...GEO,
          link: LINK,
        });
        expect(res.statusCode, res.body).toBe(200);
        expect(res.headers['content-type']).toMatch(/^application\/geo\+json/);
        expect(res.json()).toEqual({
          type: 'FeatureCollection',
          features: [feature(1), feature(2)],
          '@context': SUITE,
        });
        // Without a Link header, the core context is the one the answer is compacted with.
        const core = await get(
          `${E}?type=${encodeURIComponent('https://ngsi-ld-test-suite/context#Building')}&options=keyValues&attrs=${encodeURIComponent('https://ngsi-ld-test-suite/context#name')}&limit=1`,
          GEO,
        );
        expect(core.json()).toEqual({
          type: 'FeatureCollection',
          features: [
            {
              id: 'urn:ngsi-ld:Building:geo-1',
              type: 'Feature',
              geometry: POINT,
              properties: {
                type: 'https://ngsi-ld-test-suite/context#Building',
                'https://ngsi-ld-test-suite/context#name': 'Eiffel Tower',
              },
            },
          ],
          '@context': CORE,
        });
      });

      it('answers a retrieval as one Feature with its @context, the geometry from geometryProperty (ETSI 018_05)', async () => {
        const one = await get(`${E}/urn:ngsi-ld:Building:geo-1`, { ...GEO, link: LINK });
        expect(one.json()).toEqual({ ...feature(1), '@context': SUITE });
        const space = await get(`${E}/urn:ngsi-ld:Building:geo-1?geometryProperty=observationSpace`, {
          ...GEO,
          link: LINK,
        });
        expect(space.json()).toEqual({ ...feature(1, SPACE), '@context': SUITE });
        const none = await get(`${E}/urn:ngsi-ld:Building:geo-1?geometryProperty=operationSpace`, {
          ...GEO,
          link: LINK,
        });
        expect(none.json()).toEqual({ ...feature(1), geometry: null, '@context': SUITE });
        const simplified = await get(`${E}/urn:ngsi-ld:Building:geo-1?options=keyValues`, {
          ...GEO,
          link: LINK,
        });
        expect(simplified.json()).toEqual({
          id: 'urn:ngsi-ld:Building:geo-1',
          type: 'Feature',
          geometry: POINT,
          properties: {
            type: 'Building',
            name: 'Eiffel Tower',
            subCategory: 'tourism',
            location: POINT,
            observationSpace: SPACE,
          },
          '@context': SUITE,
        });
      });

      it('answers POST /entityOperations/query in GeoJSON with the @context of its payload', async () => {
        const query = {
          type: 'Query',
          entities: [{ type: 'Building' }],
          geoQ: { georel: 'near;maxDistance==100', geometry: 'Point', coordinates: POINT.coordinates },
        };
        const asLd = await t.app.inject({
          method: 'POST',
          url: `${QUERY}?geometryProperty=observationSpace`,
          headers: { ...alice, ...GEO, 'content-type': 'application/ld+json' },
          payload: { ...query, '@context': SUITE },
        });
        expect(asLd.statusCode, asLd.body).toBe(200);
        expect(asLd.headers['content-type']).toMatch(/^application\/geo\+json/);
        expect(asLd.json()).toEqual({
          type: 'FeatureCollection',
          features: [feature(1, SPACE), feature(2, SPACE)],
          '@context': SUITE,
        });
        const asJson = await t.app.inject({
          method: 'POST',
          url: QUERY,
          headers: { ...alice, ...GEO, 'content-type': 'application/json', link: LINK },
          payload: query,
        });
        expect(asJson.json()).toEqual({
          type: 'FeatureCollection',
          features: [feature(1), feature(2)],
          '@context': SUITE,
        });
        // The other organisation's building at the same place is its own only.
        const asBob = await t.app.inject({
          method: 'POST',
          url: QUERY,
          headers: { ...bob, ...GEO, 'content-type': 'application/json', link: LINK },
          payload: query,
        });
        expect(asBob.json()).toEqual({
          type: 'FeatureCollection',
          features: [feature(3)],
          '@context': SUITE,
        });
        const notAcceptable = await t.app.inject({
          method: 'POST',
          url: QUERY,
          headers: { ...alice, accept: 'text/html', 'content-type': 'application/json' },
          payload: query,
        });
        expect(notAcceptable.statusCode).toBe(406);
      });

      it('answers an empty FeatureCollection, with its @context, when nothing visible matches', async () => {
        const res = await get(`${E}?type=Building&id=urn:ngsi-ld:Building:geo-3`, { ...GEO, link: LINK });
        expect(res.json()).toEqual({ type: 'FeatureCollection', features: [], '@context': SUITE });
      });
    },
  );
