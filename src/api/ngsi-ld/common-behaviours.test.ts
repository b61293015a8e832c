/**
 * The common behaviours of the NGSI-LD API that the ETSI conformance tests (CommonBehaviours, and the
 * validation cases of Provision and Consumption) check across operations: body-less requests with a
 * Content-Type, validation and error types, pick/omit, query strings as clients encode them, media types,
 * pagination links, and where the platform's marking shows.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestApp, type TestApp } from './test-app.ts';

const E = '/ngsi-ld/v1/entities';
const CORE = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld';
const alice = { 'x-test-user': 'alice@metro' };
const json = { 'content-type': 'application/json' };
const err = (type: string) => `https://uri.etsi.org/ngsi-ld/errors/${type}`;

const STORES = [
  { name: 'pglite' as const, skip: undefined },
  {
    name: 'postgres' as const,
    skip: process.env.DATABASE_URL
      ? undefined
      : 'DATABASE_URL is not set (no PostgreSQL server to test against)',
  },
];

const LATITUDES: Record<number, number> = { 1: 52.5557, 2: 52.5567, 3: 52.5577 };
const tower = (n: number, extra: Record<string, unknown> = {}) => ({
  id: `urn:ngsi-ld:Building:cb-${n}`,
  type: 'Building',
  name: {
    type: 'Property',
    value: n === 1 ? 'Eiffel Tower' : `Tower ${n}`,
    observedAt: '2024-05-01T10:00:00Z',
  },
  subCategory: { type: 'Property', value: 'tourism' },
  location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [13.3986, LATITUDES[n] ?? 52.5] } },
  ...extra,
});

for (const store of STORES)
  describe.skipIf(store.skip)(
    `NGSI-LD common behaviours on ${store.name}${store.skip ? ` (skipped: ${store.skip})` : ''}`,
    () => {
      let t: TestApp;
      const inject = (o: InjectOptions) => t.app.inject(o);
      const get = (url: string, headers: Record<string, string> = {}) =>
        inject({ method: 'GET', url, headers: { ...alice, ...headers } });
      const problem = (res: { statusCode: number; json(): unknown }) => ({
        status: res.statusCode,
        type: (res.json() as { type: string }).type,
      });

      beforeAll(async () => {
        t = await openTestApp({ store: store.name });
        for (const n of [1, 2, 3]) {
          const res = await inject({
            method: 'POST',
            url: E,
            headers: { ...alice, ...json },
            payload: tower(n, n === 1 ? { scope: '/Madrid/Centro' } : {}),
          });
          expect(res.statusCode, res.body).toBe(201);
        }
      });
      afterAll(async () => {
        await t?.close();
      });

      describe('body-less requests with a Content-Type', () => {
        it('deletes an attribute and an entity when the DELETE says Content-Type and has no body (204)', async () => {
          await inject({
            method: 'POST',
            url: E,
            headers: { ...alice, ...json },
            payload: tower(9, { extra: { type: 'Property', value: 1 } }),
          });
          for (const type of ['application/json', 'application/ld+json']) {
            const attr = await inject({
              method: 'DELETE',
              url: `${E}/urn:ngsi-ld:Building:cb-9/attrs/${type === 'application/json' ? 'extra' : 'subCategory'}`,
              headers: { ...alice, 'content-type': type, 'content-length': '0' },
            });
            expect(attr.statusCode, attr.body).toBe(204);
          }
          const entity = await inject({
            method: 'DELETE',
            url: `${E}/urn:ngsi-ld:Building:cb-9`,
            headers: { ...alice, ...json },
            payload: '',
          });
          expect(entity.statusCode, entity.body).toBe(204);
          expect((await get(`${E}/urn:ngsi-ld:Building:cb-9`)).statusCode).toBe(404);
        });

        it('reads with a Content-Type and no body as without it', async () => {
          const res = await get(`${E}/urn:ngsi-ld:Building:cb-2?options=keyValues&attrs=name`, json);
          expect(res.statusCode).toBe(200);
          expect(res.json()).toEqual({ id: 'urn:ngsi-ld:Building:cb-2', type: 'Building', name: 'Tower 2' });
          expect(res.headers['content-type']).toMatch(/^application\/json/);
        });
      });

      describe('validation: status and NGSI-LD error type', () => {
        const send = (method: string, url: string, payload?: string, type = 'application/json') =>
          inject({
            method: method as 'POST',
            url,
            headers: { ...alice, 'content-type': type },
            ...(payload === undefined ? {} : { payload }),
          });

        it('answers malformed JSON and payloads of the wrong JSON type with 400 InvalidRequest', async () => {
          const cases: Array<[string, string, string]> = [
            ['POST', E, '{"id": "urn:ngsi-ld:Building:x", "type": "Building",,}'],
            ['POST', E, ''],
            ['POST', E, '[{"id": "urn:ngsi-ld:Building:x", "type": "Building"}]'],
            ['PATCH', `${E}/urn:ngsi-ld:Building:cb-2/attrs`, '{"name": {"type": "Property",, "value": 1}}'],
            ['POST', '/ngsi-ld/v1/entityOperations/create', '{"id": "urn:ngsi-ld:Building:x"}'],
            ['POST', '/ngsi-ld/v1/entityOperations/delete', '{"id": "urn:ngsi-ld:Building:x"}'],
          ];
          for (const [method, url, payload] of cases) {
            const res = await send(method, url, payload);
            expect(problem(res), `${method} ${url} ${payload}`).toEqual({
              status: 400,
              type: err('InvalidRequest'),
            });
          }
        });

        it('answers an empty batch with 400 BadRequestData', async () => {
          for (const op of ['create', 'upsert', 'update', 'merge', 'delete']) {
            const res = await send('POST', `/ngsi-ld/v1/entityOperations/${op}`, '[]');
            expect(problem(res), op).toEqual({ status: 400, type: err('BadRequestData') });
          }
        });

        it('answers an entity id in the path that is not a URI with 400 BadRequestData', async () => {
          const cases: Array<[string, string, string | undefined]> = [
            ['GET', `${E}/InvalidUri`, undefined],
            ['DELETE', `${E}/InvalidUri`, undefined],
            ['PATCH', `${E}/InvalidUri/attrs`, '{"name": {"type": "Property", "value": "x"}}'],
            ['POST', `${E}/InvalidUri/attrs`, '{"name": {"type": "Property", "value": "x"}}'],
            ['DELETE', `${E}/InvalidUri/attrs/name`, undefined],
          ];
          for (const [method, url, payload] of cases) {
            const res = await send(method, url, payload);
            expect(problem(res), `${method} ${url}`).toEqual({ status: 400, type: err('BadRequestData') });
          }
          // A URI that names no entity is still 404.
          expect(problem(await get(`${E}/urn:ngsi-ld:Building:none`))).toEqual({
            status: 404,
            type: err('ResourceNotFound'),
          });
        });

        it('answers a q with an operator where a value belongs with 400 BadRequestData', async () => {
          for (const q of ['name>>>', 'name===1', 'name==<a']) {
            const res = await get(`${E}?type=Building&q=${encodeURIComponent(q)}`);
            expect(problem(res), q).toEqual({ status: 400, type: err('BadRequestData') });
          }
        });
      });

      describe('query strings as clients encode them', () => {
        const ids = async (query: string) => {
          const res = await get(`${E}?type=Building&${query}`);
          expect(res.statusCode, `${query}: ${res.body}`).toBe(200);
          return (res.json() as { id: string }[]).map((e) => e.id).sort();
        };

        it('reads + as a space (form encoding), as Python requests and the ETSI tests send it', async () => {
          expect(await ids('q=name==%22Eiffel+Tower%22')).toEqual(['urn:ngsi-ld:Building:cb-1']);
          expect(await ids('q=name=="Eiffel+Tower"')).toEqual(['urn:ngsi-ld:Building:cb-1']);
          expect(
            await ids('georel=near;maxDistance==10&geometry=Point&coordinates=%5B13.3986,+52.5557%5D'),
          ).toEqual(['urn:ngsi-ld:Building:cb-1']);
          // A literal plus is %2B.
          expect(await ids('q=name==%22Eiffel%2BTower%22')).toEqual([]);
        });

        it('keeps + in scopeQ (the one-level wildcard) and in a time zone offset', async () => {
          expect(await ids('scopeQ=/Madrid/+')).toEqual(['urn:ngsi-ld:Building:cb-1']);
          expect(await ids('scopeQ=/Madrid/%2B')).toEqual(['urn:ngsi-ld:Building:cb-1']);
          // 11:00+02:00 is 09:00Z, before the observations at 10:00Z; 13:00+02:00 is after them.
          expect(await ids('q=name.observedAt>2024-05-01T11:00:00+02:00')).toHaveLength(3);
          expect(await ids('q=name.observedAt>2024-05-01T13:00:00+02:00')).toEqual([]);
        });
      });

      describe('media types', () => {
        it('accepts JSON and JSON-LD payloads that name their charset', async () => {
          const plain = await inject({
            method: 'POST',
            url: E,
            headers: { ...alice, 'content-type': 'application/json; charset=utf-8' },
            payload: tower(10),
          });
          expect(plain.statusCode, plain.body).toBe(201);
          const ld = await inject({
            method: 'POST',
            url: E,
            headers: { ...alice, 'content-type': 'application/ld+json;charset=UTF-8' },
            payload: { ...tower(11), '@context': CORE },
          });
          expect(ld.statusCode, ld.body).toBe(201);
          for (const n of [10, 11])
            await inject({ method: 'DELETE', url: `${E}/urn:ngsi-ld:Building:cb-${n}`, headers: alice });
        });
      });

      describe('the platform marking in entity answers', () => {
        it('leaves it out of options=sysAttrs and shows it with options=marking or when named', async () => {
          const sys = (await get(`${E}/urn:ngsi-ld:Building:cb-2?options=sysAttrs`)).json() as Record<
            string,
            unknown
          >;
          expect(sys.marking).toBeUndefined();
          expect(typeof sys.createdAt).toBe('string');
          const kv = (await get(`${E}/urn:ngsi-ld:Building:cb-2?options=keyValues,marking`)).json() as Record<
            string,
            unknown
          >;
          expect(kv.marking).toMatchObject({ tlp: 'AMBER' });
          expect(kv.name).toBe('Tower 2');
          const named = await get(`${E}/urn:ngsi-ld:Building:cb-2?attrs=marking`);
          expect(named.json()).toMatchObject({ marking: { type: 'Property', value: { tlp: 'AMBER' } } });
          const res = await get(`${E}/urn:ngsi-ld:Building:cb-2`);
          expect(res.headers['safecity-marking']).toMatch(/^TLP:AMBER/);
        });
      });
    },
  );
