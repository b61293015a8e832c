/**
 * Attribute projection over HTTP (ETSI GS CIM 009 v1.8.1, clause 4.21; the ETSI test suite's 018_17–018_19
 * and 019_17–019_18 shapes): `id`, `type` and `scope` are members like the attributes, so `pick=name` answers
 * `name` alone; `attrs` with `pick` or `omit`, and a member in both, are 400 BadRequestData; a retrieval that
 * leaves nothing is 404, a query leaves such entities out. On Retrieve Entity, Query Entities (GET and POST)
 * and the temporal reads.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestApp, type TestApp } from './test-app.ts';

const E = '/ngsi-ld/v1/entities';
const json = { 'content-type': 'application/json' };
const metro = { 'x-test-user': 'op@metro', 'x-test-roles': 'operator' };
const err = (type: string) => `https://uri.etsi.org/ngsi-ld/errors/${type}`;
const prop = (value: unknown) => ({ type: 'Property', value });

const STORES = [
  { name: 'pglite' as const, skip: undefined },
  {
    name: 'postgres' as const,
    skip: process.env.DATABASE_URL ? undefined : 'DATABASE_URL is not set',
  },
];

const B1 = 'urn:ngsi-ld:Building:p1';
const B3 = 'urn:ngsi-ld:Building:p3';
const V2 = 'urn:ngsi-ld:Vehicle:p2';
const AQ = { type: 'Property', value: 4, unitCode: 'C62', observedAt: '2020-09-09T16:40:00.000Z' };

for (const store of STORES)
  describe.skipIf(store.skip)(
    `NGSI-LD pick and omit over HTTP, ${store.name}${store.skip ? ` (skipped: ${store.skip})` : ''}`,
    () => {
      let t: TestApp;
      beforeAll(async () => {
        t = await openTestApp({ store: store.name });
        await t.directory.addOrgs('metro');
        for (const payload of [
          {
            id: B1,
            type: 'Building',
            name: prop('Eiffel Tower'),
            subCategory: prop('tourism'),
            airQualityLevel: AQ,
            almostFull: prop(false),
          },
          { id: V2, type: 'Vehicle', brandName: prop('Mercedes') },
          { id: B3, type: 'Building', name: prop('Pisa Tower'), scope: '/Italy/Pisa' },
        ]) {
          const r = await t.app.inject({ method: 'POST', url: E, headers: { ...metro, ...json }, payload });
          expect([r.statusCode, r.body]).toEqual([201, '']);
        }
      });
      afterAll(async () => {
        await t?.close();
      });
      const inject = (o: InjectOptions) => t.app.inject(o);
      const get = (url: string) => inject({ method: 'GET', url, headers: metro });

      it('Retrieve Entity: id and type are members like the attributes (018_17)', async () => {
        const cases: [string, unknown][] = [
          ['pick=name', { name: prop('Eiffel Tower') }],
          [
            'omit=name',
            {
              id: B1,
              type: 'Building',
              subCategory: prop('tourism'),
              airQualityLevel: AQ,
              almostFull: prop(false),
            },
          ],
          ['pick=id', { id: B1 }],
          [
            'omit=id',
            {
              type: 'Building',
              name: prop('Eiffel Tower'),
              subCategory: prop('tourism'),
              airQualityLevel: AQ,
              almostFull: prop(false),
            },
          ],
          ['pick=id,name', { id: B1, name: prop('Eiffel Tower') }],
          [
            'omit=type,name',
            { id: B1, subCategory: prop('tourism'), airQualityLevel: AQ, almostFull: prop(false) },
          ],
          // attrs chooses attributes only: id and type stay.
          ['attrs=name', { id: B1, type: 'Building', name: prop('Eiffel Tower') }],
          ['pick=type,name&options=keyValues', { type: 'Building', name: 'Eiffel Tower' }],
          ['pick=name&format=concise', { name: 'Eiffel Tower' }],
          // An empty parameter is no parameter.
          [
            'pick=&omit=subCategory,airQualityLevel,almostFull',
            { id: B1, type: 'Building', name: prop('Eiffel Tower') },
          ],
        ];
        for (const [qs, body] of cases) {
          const r = await get(`${E}/${B1}?${qs}`);
          expect([qs, r.statusCode, r.json()]).toEqual([qs, 200, body]);
        }
        const scoped = await get(`${E}/${B3}?pick=scope`);
        expect(scoped.json()).toEqual({ scope: '/Italy/Pisa' });
        const ld = await inject({
          method: 'GET',
          url: `${E}/${B1}?pick=name`,
          headers: { ...metro, accept: 'application/ld+json' },
        });
        expect(Object.keys(ld.json())).toEqual(['name', '@context']);
        // GeoJSON: the Feature keeps its id (GeoJSON's member); the entity's members follow the projection.
        const geo = await inject({
          method: 'GET',
          url: `${E}/${B1}?pick=name`,
          headers: { ...metro, accept: 'application/geo+json' },
        });
        expect(geo.json()).toMatchObject({
          id: B1,
          type: 'Feature',
          properties: { name: prop('Eiffel Tower') },
        });
        expect(geo.json().properties.type).toBeUndefined();
      });

      it('attrs with pick or omit, a member in both, bad expressions: 400 BadRequestData (018_18, 019_18)', async () => {
        for (const qs of [
          'pick=name&omit=name',
          'pick=id,name&omit=id',
          'pick=name&attrs=category',
          'omit=name&attrs=category',
          'pick=id;name',
          'pick=id,,name',
        ]) {
          for (const url of [`${E}/${B1}?${qs}`, `${E}?type=Building,Vehicle&${qs}`]) {
            const r = await get(url);
            expect([url, r.statusCode, r.json().type]).toEqual([url, 400, err('BadRequestData')]);
            expect(r.json().title).toEqual(expect.any(String));
          }
        }
        // Different members in pick and omit are no conflict.
        const r = await get(`${E}/${B1}?pick=id,name&omit=type`);
        expect([r.statusCode, r.json()]).toEqual([200, { id: B1, name: prop('Eiffel Tower') }]);
      });

      it('a retrieval that leaves nothing of the entity is 404 ResourceNotFound (018_19)', async () => {
        for (const qs of ['pick=unknown', 'omit=id,type,name,subCategory,airQualityLevel,almostFull']) {
          const r = await get(`${E}/${B1}?${qs}`);
          expect([qs, r.statusCode, r.json().type]).toEqual([qs, 404, err('ResourceNotFound')]);
        }
        // The scope is a member: a picked scope the entity lacks leaves nothing either.
        expect((await get(`${E}/${B1}?pick=scope`)).statusCode).toBe(404);
      });

      it('Query Entities leaves out the entities the projection empties (019_17)', async () => {
        const q = async (qs: string) => {
          const r = await get(`${E}?type=Building,Vehicle&${qs}`);
          expect(r.statusCode).toBe(200);
          return r.json();
        };
        expect(await q('pick=name')).toEqual([{ name: prop('Eiffel Tower') }, { name: prop('Pisa Tower') }]);
        expect(await q('pick=id')).toEqual([{ id: B1 }, { id: B3 }, { id: V2 }]);
        expect(await q('pick=id,name')).toEqual([
          { id: B1, name: prop('Eiffel Tower') },
          { id: B3, name: prop('Pisa Tower') },
          { id: V2 },
        ]);
        expect(await q('omit=type,name&pick=')).toEqual([
          { id: B1, subCategory: prop('tourism'), airQualityLevel: AQ, almostFull: prop(false) },
          { id: B3, scope: '/Italy/Pisa' },
          { id: V2, brandName: prop('Mercedes') },
        ]);
        expect(await q('omit=id,type,name,scope')).toEqual([
          { subCategory: prop('tourism'), airQualityLevel: AQ, almostFull: prop(false) },
          { brandName: prop('Mercedes') },
        ]);
        const counted = await get(`${E}?type=Building,Vehicle&pick=name&count=true`);
        expect(counted.headers['ngsild-results-count']).toBe('2');
      });

      it('POST /entityOperations/query: attrs of the Query keep id and type; pick from the URL', async () => {
        const post = (url: string, payload: object) =>
          inject({ method: 'POST', url, headers: { ...metro, ...json }, payload });
        const byAttrs = await post(`${E.replace('/entities', '/entityOperations/query')}`, {
          type: 'Query',
          entities: [{ type: 'Building' }],
          attrs: ['name'],
        });
        expect(byAttrs.json()).toEqual([
          { id: B1, type: 'Building', name: prop('Eiffel Tower') },
          { id: B3, type: 'Building', scope: '/Italy/Pisa', name: prop('Pisa Tower') },
        ]);
        const picked = await post(`${E.replace('/entities', '/entityOperations/query')}?pick=name`, {
          type: 'Query',
          entities: [{ type: 'Building' }, { type: 'Vehicle' }],
        });
        expect(picked.json()).toEqual([{ name: prop('Eiffel Tower') }, { name: prop('Pisa Tower') }]);
        const both = await post(`${E.replace('/entities', '/entityOperations/query')}?pick=name`, {
          type: 'Query',
          entities: [{ type: 'Building' }],
          attrs: ['name'],
        });
        expect([both.statusCode, both.json().type]).toEqual([400, err('BadRequestData')]);
      });
    },
  );
