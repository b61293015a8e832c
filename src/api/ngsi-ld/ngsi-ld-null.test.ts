/**
 * The NGSI-LD Null (ETSI GS CIM 009 clauses 4.5.x, 5.5.8, 5.5.12) and the entity members an update changes
 * (types, scope: clauses 4.16, 4.18), over HTTP as the ETSI conformance tests send them, on every store.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import { openTestApp, type TestApp } from './test-app.ts';

const E = '/ngsi-ld/v1/entities';
const NULL = 'urn:ngsi-ld:null';
const alice = { 'x-test-user': 'alice@metro' };
const json = { ...alice, 'content-type': 'application/json' };
const err = (type: string) => `https://uri.etsi.org/ngsi-ld/errors/${type}`;

for (const f of testStoreFactories())
  describe.skipIf(f.skip)(
    `NGSI-LD Null and entity members over HTTP on ${f.name}${f.skip ? ` (skipped: ${f.skip})` : ''}`,
    () => {
      let t: TestApp;
      let n = 0;
      beforeAll(async () => {
        t = await openTestApp({ store: f.name });
      });
      afterAll(async () => {
        await t?.close();
      });
      const inject = (o: InjectOptions) => t.app.inject(o);
      const get = async (id: string) => {
        const res = await inject({ method: 'GET', url: `${E}/${id}`, headers: alice });
        expect(res.statusCode).toBe(200);
        return res.json() as Record<string, unknown>;
      };
      /** A Building with one attribute of each kind, two instances of `name` and `scope` /Madrid. */
      const building = async (extra: Record<string, unknown> = {}) => {
        const id = `urn:ngsi-ld:Building:${f.name}-${++n}`;
        const res = await inject({
          method: 'POST',
          url: E,
          headers: json,
          payload: {
            id,
            type: 'Building',
            scope: '/Madrid',
            name: [
              { type: 'Property', value: 'Eiffel Tower' },
              { type: 'Property', value: 'Tour Eiffel', datasetId: 'urn:ngsi-ld:Dataset:fr' },
            ],
            locatedAt: { type: 'Relationship', object: 'urn:ngsi-ld:City:Paris' },
            location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [2.29, 48.85] } },
            street: { type: 'LanguageProperty', languageMap: { fr: 'Grand Place', nl: 'Grote Markt' } },
            airQualityLevel: {
              type: 'Property',
              value: 4,
              unitCode: 'C62',
              observedAt: '2024-05-01T10:00:00Z',
              measuredBy: { type: 'Relationship', object: 'urn:ngsi-ld:Device:1' },
            },
            details: { type: 'Property', value: { floors: 3, category: 'monument', open: true } },
            doc: { type: 'JsonProperty', json: { a: 1, b: { c: 2 } } },
            ...extra,
          },
        });
        expect(res.statusCode).toBe(201);
        return id;
      };
      const patch = (url: string, payload: unknown) =>
        inject({ method: 'PATCH', url, headers: json, payload: payload as object });

      describe('PATCH /entities/{id}/attrs/{attrId} (5.6.4)', () => {
        it('deletes the attribute of each kind the NGSI-LD Null names (GeoProperty included)', async () => {
          const id = await building();
          const fragments: Array<[string, unknown]> = [
            ['locatedAt', { type: 'Relationship', object: NULL }],
            ['location', { type: 'GeoProperty', value: NULL }],
            ['street', { type: 'LanguageProperty', languageMap: { '@none': NULL } }],
            ['airQualityLevel', { value: NULL }],
          ];
          for (const [attr, fragment] of fragments) {
            const res = await patch(`${E}/${id}/attrs/${attr}`, fragment);
            expect([attr, res.statusCode, res.body]).toEqual([attr, 204, '']);
          }
          const e = await get(id);
          for (const [attr] of fragments) expect(e[attr]).toBeUndefined();
          expect(e.name).toHaveLength(2);
        });

        it('deletes only the instance its datasetId names, and the default one without', async () => {
          const id = await building();
          const fr = await patch(`${E}/${id}/attrs/name`, {
            type: 'Property',
            value: NULL,
            datasetId: 'urn:ngsi-ld:Dataset:fr',
          });
          expect(fr.statusCode).toBe(204);
          expect((await get(id)).name).toEqual({ type: 'Property', value: 'Eiffel Tower' });
          const again = await patch(`${E}/${id}/attrs/name`, {
            type: 'Property',
            value: NULL,
            datasetId: 'urn:ngsi-ld:Dataset:fr',
          });
          expect([again.statusCode, again.json().type]).toEqual([404, err('ResourceNotFound')]);
          expect((await patch(`${E}/${id}/attrs/name`, { value: NULL })).statusCode).toBe(204);
          expect((await get(id)).name).toBeUndefined();
        });

        it('removes the members the NGSI-LD Null names; a null datasetId and scope are refused', async () => {
          const id = await building();
          const res = await patch(`${E}/${id}/attrs/airQualityLevel`, {
            type: 'Property',
            value: 5,
            observedAt: NULL,
            measuredBy: { type: 'Relationship', object: NULL },
          });
          expect(res.statusCode).toBe(204);
          expect((await get(id)).airQualityLevel).toEqual({ type: 'Property', value: 5, unitCode: 'C62' });
          const ds = await patch(`${E}/${id}/attrs/airQualityLevel`, { value: 6, datasetId: NULL });
          expect([ds.statusCode, ds.json().type]).toEqual([400, err('BadRequestData')]);
          const scope = await patch(`${E}/${id}/attrs/scope`, { value: '/Barcelona' });
          expect([scope.statusCode, scope.json().type]).toEqual([400, err('BadRequestData')]);
          expect((await get(id)).scope).toBe('/Madrid');
        });
      });

      describe('PATCH /entities/{id}/attrs (5.6.2)', () => {
        it('deletes attributes given as the NGSI-LD Null, in any representation', async () => {
          const id = await building();
          const res = await patch(`${E}/${id}/attrs`, {
            locatedAt: NULL,
            location: { type: 'GeoProperty', value: NULL },
            name: { type: 'Property', value: NULL, datasetId: 'urn:ngsi-ld:Dataset:fr' },
          });
          expect([res.statusCode, res.body]).toEqual([204, '']);
          const e = await get(id);
          expect([e.locatedAt, e.location, e.name]).toEqual([
            undefined,
            undefined,
            { type: 'Property', value: 'Eiffel Tower' },
          ]);
          const missing = await patch(`${E}/${id}/attrs`, { locatedAt: NULL });
          expect(missing.statusCode).toBe(207);
          expect(missing.json()).toMatchObject({ updated: [], notUpdated: [{ attributeName: 'locatedAt' }] });
        });

        it('adds the types given and replaces the scope (4.16, 4.18)', async () => {
          const id = await building();
          const res = await patch(`${E}/${id}/attrs`, { type: 'Vehicle', scope: '/Paris/North' });
          expect(res.statusCode).toBe(204);
          const e = await get(id);
          expect([e.type, e.scope]).toEqual([['Building', 'Vehicle'], '/Paris/North']);
          const same = await patch(`${E}/${id}/attrs`, { type: ['Building', 'Vehicle'] });
          expect(same.statusCode).toBe(204);
          expect((await get(id)).type).toEqual(['Building', 'Vehicle']);
        });
      });

      describe('PATCH /entities/{id} (merge, 5.6.17 and 5.5.12)', () => {
        it('deletes the instance a null with a datasetId names, not the attribute', async () => {
          const id = await building();
          const res = await patch(`${E}/${id}`, {
            name: { type: 'Property', value: NULL, datasetId: 'urn:ngsi-ld:Dataset:fr' },
            street: { type: 'LanguageProperty', languageMap: { '@none': NULL } },
            location: NULL,
          });
          expect(res.statusCode).toBe(204);
          const e = await get(id);
          expect([e.name, e.street, e.location]).toEqual([
            { type: 'Property', value: 'Eiffel Tower' },
            undefined,
            undefined,
          ]);
        });

        it('merges object values, language maps and JSON key by key, the null removing one', async () => {
          const id = await building();
          const res = await patch(`${E}/${id}`, {
            details: { type: 'Property', value: { floors: NULL, category: 'museum' } },
            street: { type: 'LanguageProperty', languageMap: { nl: NULL, de: 'Grosser Platz' } },
            doc: { type: 'JsonProperty', json: { b: { c: NULL, d: 3 } } },
            airQualityLevel: { unitCode: NULL, measuredBy: { type: 'Relationship', object: NULL } },
          });
          expect(res.statusCode).toBe(204);
          const e = await get(id);
          expect(e.details).toEqual({ type: 'Property', value: { category: 'museum', open: true } });
          expect(e.street).toEqual({
            type: 'LanguageProperty',
            languageMap: { fr: 'Grand Place', de: 'Grosser Platz' },
          });
          expect(e.doc).toEqual({ type: 'JsonProperty', json: { a: 1, b: { d: 3 } } });
          expect(e.airQualityLevel).toEqual({
            type: 'Property',
            value: 4,
            observedAt: '2024-05-01T10:00:00Z',
          });
        });

        it('adds types, replaces the scope and removes it with the NGSI-LD Null', async () => {
          const id = await building();
          expect((await patch(`${E}/${id}`, { type: 'Vehicle', scope: '/Lyon' })).statusCode).toBe(204);
          const e = await get(id);
          expect([e.type, e.scope]).toEqual([['Building', 'Vehicle'], '/Lyon']);
          expect((await patch(`${E}/${id}`, { scope: NULL })).statusCode).toBe(204);
          expect((await get(id)).scope).toBeUndefined();
        });

        it('refuses a null datasetId with 400 BadRequestData and changes nothing', async () => {
          const id = await building();
          const res = await patch(`${E}/${id}`, {
            name: { type: 'Property', value: 'x', datasetId: NULL },
          });
          expect([res.statusCode, res.json().type]).toEqual([400, err('BadRequestData')]);
          expect((await get(id)).name).toHaveLength(2);
        });

        it('merges batches the same way (POST /entityOperations/merge)', async () => {
          const id = await building();
          const res = await inject({
            method: 'POST',
            url: '/ngsi-ld/v1/entityOperations/merge',
            headers: json,
            payload: [{ id, type: 'Building', name: { value: NULL, datasetId: 'urn:ngsi-ld:Dataset:fr' } }],
          });
          expect(res.statusCode).toBe(204);
          expect((await get(id)).name).toEqual({ type: 'Property', value: 'Eiffel Tower' });
        });
      });

      describe('where there is nothing to delete, the NGSI-LD Null is refused', () => {
        it('append (5.6.3), create (5.6.1) and replace (5.6.18) answer 400 BadRequestData', async () => {
          const id = await building();
          const append = await inject({
            method: 'POST',
            url: `${E}/${id}/attrs`,
            headers: json,
            payload: { name: { type: 'Property', value: NULL } },
          });
          expect([append.statusCode, append.json().type]).toEqual([400, err('BadRequestData')]);
          const create = await inject({
            method: 'POST',
            url: E,
            headers: json,
            payload: { id: `${id}:other`, type: 'Building', name: NULL },
          });
          expect([create.statusCode, create.json().type]).toEqual([400, err('BadRequestData')]);
          const sub = await inject({
            method: 'POST',
            url: E,
            headers: json,
            payload: {
              id: `${id}:sub`,
              type: 'Building',
              name: { type: 'Property', value: 'x', unitCode: NULL },
            },
          });
          expect([sub.statusCode, sub.json().type]).toEqual([400, err('BadRequestData')]);
          const replace = await inject({
            method: 'PUT',
            url: `${E}/${id}`,
            headers: json,
            payload: { type: 'Building', name: { type: 'Property', value: NULL } },
          });
          expect([replace.statusCode, replace.json().type]).toEqual([400, err('BadRequestData')]);
          expect((await get(id)).name).toHaveLength(2);
        });

        it('append adds types, replaces the scope, or adds to it with noOverwrite', async () => {
          const id = await building();
          const url = `${E}/${id}/attrs`;
          const one = await inject({ method: 'POST', url, headers: json, payload: { scope: '/Rome' } });
          expect(one.statusCode).toBe(204);
          expect((await get(id)).scope).toBe('/Rome');
          const two = await inject({
            method: 'POST',
            url: `${url}?options=noOverwrite`,
            headers: json,
            payload: { type: 'Car', scope: '/Milan' },
          });
          expect(two.statusCode).toBe(204);
          const e = await get(id);
          expect([e.type, e.scope]).toEqual([
            ['Building', 'Car'],
            ['/Rome', '/Milan'],
          ]);
        });
      });

      it('tells what a change deleted and what it replaced in its event', async () => {
        const id = await building();
        t.events.length = 0;
        await patch(`${E}/${id}/attrs`, {
          name: { type: 'Property', value: NULL, datasetId: 'urn:ngsi-ld:Dataset:fr' },
          airQualityLevel: { type: 'Property', value: 7 },
        });
        const mine = () =>
          t.events.find(
            (e) => e.type === 'context.entity.updated' && (e.data as { entityId?: string }).entityId === id,
          );
        const deadline = Date.now() + 5000;
        while (!mine() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        const ev = mine();
        const data = ev?.data as Record<string, unknown>;
        const NAME = 'https://uri.etsi.org/ngsi-ld/default-context/name';
        const AQ = 'https://uri.etsi.org/ngsi-ld/default-context/airQualityLevel';
        expect(data.deletedAttributes).toEqual([NAME]);
        const previous = data.previous as Record<string, unknown>;
        expect(Object.keys(previous).sort()).toEqual([AQ, NAME].sort());
        expect(previous[NAME]).toHaveLength(2);
        expect(previous[AQ]).toMatchObject({ type: 'Property', value: 4 });
      });
    },
  );
