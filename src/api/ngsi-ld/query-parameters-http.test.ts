/**
 * Query parameters and batch semantics over HTTP (ETSI GS CIM 009 v1.8.1): `q=!attr` (existence negation,
 * clause 4.9) on the indexed and the evaluated paths, `expandValues` (values of `q` expanded with the
 * @context), unknown parameters (400 InvalidRequest, clause 6.3.20, ETSI 059_01), and a batch delete naming
 * an id twice (clause 5.5.11, ETSI 006_04). PGlite always, PostgreSQL when DATABASE_URL is set.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestApp, type TestApp } from './test-app.ts';

const E = '/ngsi-ld/v1/entities';
const OPS = '/ngsi-ld/v1/entityOperations';
const json = { 'content-type': 'application/json' };
const as = (user: string, roles = 'operator') => ({ 'x-test-user': user, 'x-test-roles': roles });
const err = (type: string) => `https://uri.etsi.org/ngsi-ld/errors/${type}`;
const prop = (value: unknown) => ({ type: 'Property', value });
const DEFAULT_VOCAB = 'https://uri.etsi.org/ngsi-ld/default-context/';

const STORES = [
  { name: 'pglite' as const, skip: undefined },
  {
    name: 'postgres' as const,
    skip: process.env.DATABASE_URL ? undefined : 'DATABASE_URL is not set',
  },
];

for (const store of STORES)
  describe.skipIf(store.skip)(
    `NGSI-LD query parameters over HTTP, ${store.name}${store.skip ? ` (skipped: ${store.skip})` : ''}`,
    () => {
      let t: TestApp;
      const metro = as('op@metro');
      beforeAll(async () => {
        t = await openTestApp({ store: store.name });
        await t.directory.addOrgs('metro', 'police');
        const shops = [
          { id: 'urn:ngsi-ld:Shop:1', type: 'Shop', name: prop('Bakery'), speed: prop(5) },
          {
            id: 'urn:ngsi-ld:Shop:2',
            type: 'Shop',
            speed: prop(20),
            category: { type: 'VocabProperty', vocab: 'bakery' },
          },
          {
            id: 'urn:ngsi-ld:Shop:3',
            type: 'Shop',
            name: prop('Florist'),
            category: { type: 'VocabProperty', vocab: 'florist' },
          },
          { id: 'urn:ngsi-ld:Shop:4', type: 'Shop', speed: prop(30), kind: prop(`${DEFAULT_VOCAB}bakery`) },
        ];
        const r = await inject({
          method: 'POST',
          url: `${OPS}/create`,
          headers: { ...metro, ...json },
          payload: shops,
        });
        expect(r.statusCode, r.body).toBe(201);
      });
      afterAll(async () => {
        await t?.close();
      });
      const inject = (o: InjectOptions) => t.app.inject(o);
      const ids = async (url: string) => {
        const r = await inject({ method: 'GET', url, headers: metro });
        expect(r.statusCode, r.body).toBe(200);
        return {
          ids: (r.json() as { id: string }[]).map((e) => e.id),
          count: r.headers['ngsild-results-count'],
        };
      };

      it('q=!attr: the entities without the attribute (clause 4.9), counted, alone and with indexed terms', async () => {
        expect(await ids(`${E}?type=Shop&q=!name&count=true`)).toEqual({
          ids: ['urn:ngsi-ld:Shop:2', 'urn:ngsi-ld:Shop:4'],
          count: '2',
        });
        // speed>10 is answered by the value index, !name by the evaluation: together exact.
        expect((await ids(`${E}?type=Shop&q=${encodeURIComponent('speed>10;!category')}`)).ids).toEqual([
          'urn:ngsi-ld:Shop:4',
        ]);
        expect((await ids(`${E}?type=Shop&q=${encodeURIComponent('!speed|speed<10')}`)).ids).toEqual([
          'urn:ngsi-ld:Shop:1',
          'urn:ngsi-ld:Shop:3',
        ]);
        expect((await ids(`${E}?q=!missing&type=Shop&limit=1&count=true`)).count).toBe('4');
        const post = await inject({
          method: 'POST',
          url: `${OPS}/query`,
          headers: { ...metro, ...json },
          payload: { type: 'Query', entities: [{ type: 'Shop' }], q: '!speed' },
        });
        expect((post.json() as { id: string }[]).map((e) => e.id)).toEqual(['urn:ngsi-ld:Shop:3']);
        for (const q of ['!', '!name>1', '!(name)', '! name']) {
          const r = await inject({
            method: 'GET',
            url: `${E}?type=Shop&q=${encodeURIComponent(q)}`,
            headers: metro,
          });
          expect([q, r.statusCode, r.json().type]).toEqual([q, 400, err('BadRequestData')]);
        }
      });

      it('expandValues: the listed attributes compare with the expanded values of q', async () => {
        const q = encodeURIComponent('category==bakery|kind==bakery');
        expect((await ids(`${E}?type=Shop&q=${q}`)).ids).toEqual([]);
        expect((await ids(`${E}?type=Shop&q=${q}&expandValues=category`)).ids).toEqual([
          'urn:ngsi-ld:Shop:2',
        ]);
        expect((await ids(`${E}?type=Shop&q=${q}&expandValues=category,kind&count=true`)).ids).toEqual([
          'urn:ngsi-ld:Shop:2',
          'urn:ngsi-ld:Shop:4',
        ]);
        const list = encodeURIComponent('category==bakery,florist');
        expect((await ids(`${E}?type=Shop&q=${list}&expandValues=category`)).ids).toEqual([
          'urn:ngsi-ld:Shop:2',
          'urn:ngsi-ld:Shop:3',
        ]);
        const post = await inject({
          method: 'POST',
          url: `${OPS}/query`,
          headers: { ...metro, ...json },
          payload: { type: 'Query', entities: [{ type: 'Shop' }], q: 'kind==bakery', expandValues: 'kind' },
        });
        expect((post.json() as { id: string }[]).map((e) => e.id)).toEqual(['urn:ngsi-ld:Shop:4']);
        const bad = await inject({
          method: 'POST',
          url: `${OPS}/query`,
          headers: { ...metro, ...json },
          payload: { type: 'Query', entities: [{ type: 'Shop' }], q: 'kind==bakery', expandValues: 5 },
        });
        expect([bad.statusCode, bad.json().type]).toEqual([400, err('BadRequestData')]);
      });

      it('an unknown parameter is 400 InvalidRequest, never ignored (clause 6.3.20, ETSI 059_01)', async () => {
        for (const [method, url, payload] of [
          ['GET', `${E}?invalidParams=invalidValue&type=Shop`, undefined],
          ['GET', `${E}?typ=Shop`, undefined],
          ['GET', `${E}/urn:ngsi-ld:Shop:1?invalidParams=invalidValue`, undefined],
          ['POST', `${E}?invalidParams=invalidValue`, { id: 'urn:ngsi-ld:Shop:new', type: 'Shop' }],
          ['DELETE', `${E}?type=Shop&invalidParams=invalidValue`, undefined],
          ['GET', '/ngsi-ld/v1/types?invalidParams=invalidValue', undefined],
          // orderBy is V1.9.1's (clause 4.23): not a parameter of this version's Query Entities.
          ['GET', `${E}?type=Shop&orderBy=id`, undefined],
        ] as const) {
          const r = await inject({
            method,
            url,
            headers: { ...metro, ...(payload ? json : {}) },
            ...(payload ? { payload } : {}),
          });
          expect([method, url, r.statusCode, r.json().type]).toEqual([
            method,
            url,
            400,
            err('InvalidRequest'),
          ]);
          expect(r.json().detail).toMatch(/is not a parameter of this operation/);
        }
        // Nothing was created or deleted by the refused requests.
        expect((await ids(`${E}?type=Shop`)).ids).toHaveLength(4);
        // Purge's selectors it cannot honour stay 422 (defined, not supported), not unknown.
        const purge = await inject({ method: 'DELETE', url: `${E}?type=Shop&attrs=name`, headers: metro });
        expect([purge.statusCode, purge.json().type]).toEqual([422, err('OperationNotSupported')]);
      });

      it('a batch delete naming an id twice deletes it once and reports the repeat (clause 5.5.11, ETSI 006_04)', async () => {
        const id = 'urn:ngsi-ld:Kiosk:1';
        const other = 'urn:ngsi-ld:Kiosk:2';
        for (const k of [id, other]) {
          const r = await inject({
            method: 'POST',
            url: E,
            headers: { ...metro, ...json },
            payload: { id: k, type: 'Kiosk' },
          });
          expect(r.statusCode).toBe(201);
        }
        const del = (payload: object, headers = metro) =>
          inject({ method: 'POST', url: `${OPS}/delete`, headers: { ...headers, ...json }, payload });
        const r = await del([id, id]);
        expect(r.statusCode).toBe(207);
        expect(r.json()).toMatchObject({
          success: [id],
          errors: [{ entityId: id, error: { status: 404, type: err('ResourceNotFound') } }],
        });
        // A repeat of an id refused (another organisation's entity) is refused again, nothing deleted.
        const police = await del([other, other], as('op@police'));
        expect(police.json()).toMatchObject({
          success: [],
          errors: [
            { entityId: other, error: { status: 404 } },
            { entityId: other, error: { status: 404 } },
          ],
        });
        const again = await del([other, 'urn:ngsi-ld:Kiosk:none', other]);
        expect(again.json()).toMatchObject({
          success: [other],
          errors: [
            { entityId: 'urn:ngsi-ld:Kiosk:none', error: { status: 404 } },
            { entityId: other, error: { status: 404 } },
          ],
        });
        expect((await ids(`${E}?type=Kiosk`)).ids).toEqual([]);
      });
    },
  );
