import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestApp, type TestApp } from './test-app.ts';

const CORE = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld';
const LINK_CORE = `<${CORE}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`;
const TRANSPORT =
  'https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld';
const linkTo = (url: string) =>
  `<${url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`;
const E = '/ngsi-ld/v1/entities';
const alice = { 'x-test-user': 'alice@metro' };
const bob = { 'x-test-user': 'bob@metro' };
const carol = { 'x-test-user': 'carol@police' };
const json = { 'content-type': 'application/json' };
const ld = { 'content-type': 'application/ld+json' };
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

for (const store of STORES)
  describe.skipIf(store.skip)(
    `NGSI-LD entities over HTTP on ${store.name}${store.skip ? ` (skipped: ${store.skip})` : ''}`,
    () => {
      let t: TestApp;
      beforeAll(async () => {
        t = await openTestApp({ store: store.name });
      });
      afterAll(async () => {
        await t?.close();
      });
      const inject = (o: InjectOptions) => t.app.inject(o);

      it('creates an entity (201, Location) and retrieves it normalized with the Link header', async () => {
        const create = await inject({
          method: 'POST',
          url: E,
          headers: { ...alice, ...json },
          payload: {
            id: 'urn:ngsi-ld:Camera:1',
            type: 'Camera',
            fps: { type: 'Property', value: 25, unitCode: 'HZ', observedAt: '2024-05-01T10:00:00Z' },
            location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [-8.61, 41.15] } },
            watches: { type: 'Relationship', object: 'urn:ngsi-ld:Gate:1' },
            label: { type: 'LanguageProperty', languageMap: { en: 'North gate', pt: 'Porta norte' } },
          },
        });
        expect([create.statusCode, create.headers.location, create.body]).toEqual([
          201,
          `${E}/urn%3Angsi-ld%3ACamera%3A1`,
          '',
        ]);
        const get = await inject({ method: 'GET', url: `${E}/urn:ngsi-ld:Camera:1`, headers: alice });
        expect(get.statusCode).toBe(200);
        expect(get.headers['content-type']).toMatch(/^application\/json/);
        expect(get.headers.link).toBe(LINK_CORE);
        expect(get.json()).toEqual({
          id: 'urn:ngsi-ld:Camera:1',
          type: 'Camera',
          fps: { type: 'Property', value: 25, unitCode: 'HZ', observedAt: '2024-05-01T10:00:00Z' },
          location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [-8.61, 41.15] } },
          watches: { type: 'Relationship', object: 'urn:ngsi-ld:Gate:1' },
          label: { type: 'LanguageProperty', languageMap: { en: 'North gate', pt: 'Porta norte' } },
        });
      });

      it('answers concise, keyValues, sysAttrs, lang, ld+json and geo+json representations', async () => {
        const get = (query: string, headers: Record<string, string> = {}) =>
          inject({
            method: 'GET',
            url: `${E}/urn:ngsi-ld:Camera:1${query}`,
            headers: { ...alice, ...headers },
          });
        expect((await get('?options=keyValues')).json()).toEqual({
          id: 'urn:ngsi-ld:Camera:1',
          type: 'Camera',
          fps: 25,
          location: { type: 'Point', coordinates: [-8.61, 41.15] },
          watches: 'urn:ngsi-ld:Gate:1',
          label: { languageMap: { en: 'North gate', pt: 'Porta norte' } },
        });
        expect((await get('?format=concise&attrs=fps,watches')).json()).toEqual({
          id: 'urn:ngsi-ld:Camera:1',
          type: 'Camera',
          fps: { value: 25, unitCode: 'HZ', observedAt: '2024-05-01T10:00:00Z' },
          watches: { object: 'urn:ngsi-ld:Gate:1' },
        });
        const sys = (await get('?options=sysAttrs&attrs=fps')).json();
        // sysAttrs are the standard's createdAt/modifiedAt; the marking comes with options=marking.
        expect(Object.keys(sys).sort()).toEqual(['createdAt', 'fps', 'id', 'modifiedAt', 'type']);
        expect((await get('?options=sysAttrs,marking&attrs=fps')).json().marking).toEqual({
          type: 'Property',
          value: { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } },
        });
        expect(Object.keys(sys.fps).sort()).toEqual([
          'createdAt',
          'modifiedAt',
          'observedAt',
          'type',
          'unitCode',
          'value',
        ]);
        expect((await get('?attrs=label&lang=pt')).json().label).toEqual({
          type: 'Property',
          value: 'Porta norte',
          lang: 'pt',
        });
        const asLd = await get('?attrs=fps', { accept: 'application/ld+json' });
        expect([asLd.headers['content-type'], asLd.headers.link]).toEqual([
          'application/ld+json; charset=utf-8',
          undefined,
        ]);
        expect(asLd.json()['@context']).toBe(CORE);
        const geo = await get('?options=keyValues&attrs=fps', { accept: 'application/geo+json' });
        expect(geo.headers['content-type']).toMatch(/^application\/geo\+json/);
        expect(geo.json()).toEqual({
          id: 'urn:ngsi-ld:Camera:1',
          type: 'Feature',
          geometry: { type: 'Point', coordinates: [-8.61, 41.15] },
          properties: { type: 'Camera', fps: 25 },
          '@context': CORE,
        });
        const bad = await get('', { accept: 'text/html' });
        expect([bad.statusCode, bad.json().type]).toEqual([406, err('InvalidRequest')]);
      });

      it('reads its concise representation back as the same entity', async () => {
        const id = 'urn:ngsi-ld:Counter:concise';
        const normalized = {
          id,
          type: 'Counter',
          count: [
            { type: 'Property', value: 10, datasetId: 'urn:ds:a', observedAt: '2024-05-01T10:00:00Z' },
            { type: 'Property', value: 12 },
          ],
          area: [
            { type: 'GeoProperty', value: { type: 'Point', coordinates: [1, 2] }, datasetId: 'urn:ds:a' },
            { type: 'GeoProperty', value: { type: 'Point', coordinates: [3, 4] } },
          ],
          tags: { type: 'Property', value: ['a', 'b'] },
          address: { type: 'Property', value: { city: 'Porto' } },
          near: { type: 'Relationship', object: 'urn:ngsi-ld:Gate:1' },
          name: { type: 'LanguageProperty', languageMap: { en: 'Counter' } },
          level: {
            type: 'Property',
            value: 3,
            unitCode: 'C62',
            reliability: { type: 'Property', value: 0.9 },
          },
        };
        expect(
          (await inject({ method: 'POST', url: E, headers: { ...alice, ...json }, payload: normalized }))
            .statusCode,
        ).toBe(201);
        const concise = (
          await inject({ method: 'GET', url: `${E}/${id}?format=concise`, headers: alice })
        ).json();
        expect(concise).toEqual({
          id,
          type: 'Counter',
          count: [{ value: 10, datasetId: 'urn:ds:a', observedAt: '2024-05-01T10:00:00Z' }, { value: 12 }],
          area: [
            { value: { type: 'Point', coordinates: [1, 2] }, datasetId: 'urn:ds:a' },
            { value: { type: 'Point', coordinates: [3, 4] } },
          ],
          tags: ['a', 'b'],
          address: { value: { city: 'Porto' } },
          near: { object: 'urn:ngsi-ld:Gate:1' },
          name: { languageMap: { en: 'Counter' } },
          level: { value: 3, unitCode: 'C62', reliability: 0.9 },
        });
        const copy = { ...concise, id: `${id}:copy` };
        expect(
          (await inject({ method: 'POST', url: E, headers: { ...alice, ...json }, payload: copy }))
            .statusCode,
        ).toBe(201);
        const back = (await inject({ method: 'GET', url: `${E}/${id}:copy`, headers: alice })).json();
        expect(back).toEqual({ ...normalized, id: `${id}:copy` });
      });

      it('uses the Link context to expand and compact terms', async () => {
        const r = await inject({
          method: 'POST',
          url: E,
          headers: { ...alice, ...json, link: linkTo(TRANSPORT) },
          payload: { id: 'urn:ngsi-ld:CrowdFlowObserved:x', type: 'CrowdFlowObserved', peopleCount: 7 },
        });
        expect(r.statusCode).toBe(201);
        const core = await inject({
          method: 'GET',
          url: `${E}/urn:ngsi-ld:CrowdFlowObserved:x?options=keyValues`,
          headers: alice,
        });
        expect(core.json()).toEqual({
          id: 'urn:ngsi-ld:CrowdFlowObserved:x',
          type: 'https://smartdatamodels.org/dataModel.Transportation/CrowdFlowObserved',
          'https://smartdatamodels.org/dataModel.Transportation/peopleCount': 7,
        });
        const q = await inject({
          method: 'GET',
          url: `${E}?type=CrowdFlowObserved&q=peopleCount>5&options=keyValues`,
          headers: { ...alice, link: linkTo(TRANSPORT) },
        });
        expect([q.headers.link, q.json()]).toEqual([
          linkTo(TRANSPORT),
          [{ id: 'urn:ngsi-ld:CrowdFlowObserved:x', type: 'CrowdFlowObserved', peopleCount: 7 }],
        ]);
      });

      it('appends (204/207), updates, partially updates and deletes attributes', async () => {
        const id = 'urn:ngsi-ld:Camera:1';
        const append = await inject({
          method: 'POST',
          url: `${E}/${id}/attrs`,
          headers: { ...bob, ...json },
          payload: { online: { type: 'Property', value: true } },
        });
        expect([append.statusCode, append.body]).toEqual([204, '']);
        const noOverwrite = await inject({
          method: 'POST',
          url: `${E}/${id}/attrs?options=noOverwrite`,
          headers: { ...bob, ...json },
          payload: { online: false, zoom: 2 },
        });
        expect([noOverwrite.statusCode, noOverwrite.json()]).toEqual([
          207,
          {
            updated: ['zoom'],
            notUpdated: [{ attributeName: 'online', reason: 'the attribute exists and noOverwrite is set' }],
          },
        ]);
        const patch = await inject({
          method: 'PATCH',
          url: `${E}/${id}/attrs`,
          headers: { ...bob, ...json },
          payload: { zoom: 3, missing: 1 },
        });
        expect([patch.statusCode, patch.json()]).toEqual([
          207,
          {
            updated: ['zoom'],
            notUpdated: [{ attributeName: 'missing', reason: 'the entity has no such attribute' }],
          },
        ]);
        const partial = await inject({
          method: 'PATCH',
          url: `${E}/${id}/attrs/fps`,
          headers: { ...bob, ...json },
          payload: { value: 30 },
        });
        expect(partial.statusCode).toBe(204);
        const onlyObservedAt = await inject({
          method: 'PATCH',
          url: `${E}/${id}/attrs/fps`,
          headers: { ...bob, ...json },
          payload: { observedAt: '2024-06-01T00:00:00Z' },
        });
        expect(onlyObservedAt.statusCode).toBe(204);
        const fps = await inject({ method: 'GET', url: `${E}/${id}?attrs=fps`, headers: bob });
        expect(fps.json().fps).toEqual({
          type: 'Property',
          value: 30,
          unitCode: 'HZ',
          observedAt: '2024-06-01T00:00:00Z',
        });
        const del = await inject({ method: 'DELETE', url: `${E}/${id}/attrs/zoom`, headers: bob });
        expect(del.statusCode).toBe(204);
        const again = await inject({ method: 'DELETE', url: `${E}/${id}/attrs/zoom`, headers: bob });
        expect([again.statusCode, again.json().type]).toEqual([404, err('ResourceNotFound')]);
        const get = await inject({
          method: 'GET',
          url: `${E}/${id}?options=keyValues&attrs=fps,online,zoom`,
          headers: bob,
        });
        expect(get.json()).toEqual({ id, type: 'Camera', fps: 30, online: true });
        const merge = await inject({
          method: 'PATCH',
          url: `${E}/${id}`,
          headers: { ...bob, ...json },
          payload: {
            type: 'Sensor',
            fps: { observedAt: '2024-07-01T00:00:00Z' },
            online: 'urn:ngsi-ld:null',
            zoomLevel: 4,
          },
        });
        expect(merge.statusCode).toBe(204);
        const merged = await inject({
          method: 'GET',
          url: `${E}/${id}?attrs=fps,online,zoomLevel`,
          headers: bob,
        });
        expect(merged.json()).toEqual({
          id,
          type: ['Camera', 'Sensor'],
          fps: { type: 'Property', value: 30, unitCode: 'HZ', observedAt: '2024-07-01T00:00:00Z' },
          zoomLevel: { type: 'Property', value: 4 },
        });
        const omit = await inject({
          method: 'GET',
          url: `${E}/${id}?options=keyValues&omit=location,label,watches`,
          headers: bob,
        });
        expect(omit.json()).toEqual({ id, type: ['Camera', 'Sensor'], fps: 30, zoomLevel: 4 });
      });

      it('enforces markings: RED, AMBER and GREEN entities across organisations', async () => {
        for (const [id, tlp] of [
          ['urn:ngsi-ld:Alarm:red', 'RED'],
          ['urn:ngsi-ld:Alarm:amber', 'AMBER'],
          ['urn:ngsi-ld:Alarm:green', 'GREEN'],
        ]) {
          const r = await inject({
            method: 'POST',
            url: E,
            headers: { ...alice, ...json },
            payload: { id, type: 'Alarm', level: 1, marking: { type: 'Property', value: { tlp } } },
          });
          expect(r.statusCode).toBe(201);
        }
        const seen = async (who: Record<string, string>) =>
          (
            await inject({
              method: 'GET',
              url: `${E}?type=Alarm&options=keyValues&attrs=level`,
              headers: who,
            })
          )
            .json()
            .map((e: { id: string }) => e.id);
        expect(await seen(alice)).toEqual([
          'urn:ngsi-ld:Alarm:amber',
          'urn:ngsi-ld:Alarm:green',
          'urn:ngsi-ld:Alarm:red',
        ]);
        expect(await seen(bob)).toEqual(['urn:ngsi-ld:Alarm:amber', 'urn:ngsi-ld:Alarm:green']);
        expect(await seen(carol)).toEqual(['urn:ngsi-ld:Alarm:green']);
        const invisible = await inject({
          method: 'GET',
          url: `${E}/urn:ngsi-ld:Alarm:amber`,
          headers: carol,
        });
        expect([invisible.statusCode, invisible.json()]).toEqual([
          404,
          {
            type: err('ResourceNotFound'),
            title: 'Unknown entity',
            status: 404,
            detail: 'entity urn:ngsi-ld:Alarm:amber was not found',
            code: 'CONTEXT_ENTITY_NOT_FOUND',
          },
        ]);
        const redByBob = await inject({ method: 'DELETE', url: `${E}/urn:ngsi-ld:Alarm:red`, headers: bob });
        expect(redByBob.statusCode).toBe(404);
        const greenByCarol = await inject({
          method: 'DELETE',
          url: `${E}/urn:ngsi-ld:Alarm:green`,
          headers: carol,
        });
        expect([greenByCarol.statusCode, greenByCarol.json().type, greenByCarol.json().code]).toEqual([
          403,
          err('AccessDenied'),
          'ACCESS_DENIED',
        ]);
        const anonymous = await inject({ method: 'GET', url: `${E}?type=Alarm`, headers: {} });
        expect(anonymous.json()).toEqual([]);
        const types = await inject({ method: 'GET', url: '/ngsi-ld/v1/types', headers: carol });
        expect(types.json().typeList).toEqual(['Alarm']);
        const alarm = await inject({ method: 'GET', url: '/ngsi-ld/v1/types/Alarm', headers: carol });
        expect(alarm.json()).toEqual({
          id: 'https://uri.etsi.org/ngsi-ld/default-context/Alarm',
          type: 'EntityTypeInfo',
          typeName: 'Alarm',
          entityCount: 1,
          attributeDetails: [
            {
              id: 'https://uri.etsi.org/ngsi-ld/default-context/level',
              type: 'Attribute',
              attributeName: 'level',
              attributeTypes: ['Property'],
            },
          ],
        });
        const attrs = await inject({
          method: 'GET',
          url: '/ngsi-ld/v1/attributes?details=true',
          headers: carol,
        });
        expect(attrs.json()).toEqual([
          {
            id: 'https://uri.etsi.org/ngsi-ld/default-context/level',
            type: 'Attribute',
            attributeName: 'level',
            attributeCount: 1,
            attributeTypes: ['Property'],
            typeNames: ['Alarm'],
          },
        ]);
        const hidden = await inject({ method: 'GET', url: '/ngsi-ld/v1/types/Camera', headers: carol });
        expect([hidden.statusCode, hidden.json().type]).toEqual([404, err('ResourceNotFound')]);
      });

      it('queries with q, geo-queries, paging and NGSILD-Results-Count', async () => {
        const batch = Array.from({ length: 12 }, (_, i) => ({
          id: `urn:ngsi-ld:Bin:${String(i).padStart(2, '0')}`,
          type: 'Bin',
          fill: { type: 'Property', value: i * 10 },
          location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [-8.6 + i * 0.001, 41.15] } },
        }));
        const c = await inject({
          method: 'POST',
          url: '/ngsi-ld/v1/entityOperations/create',
          headers: { ...alice, ...json },
          payload: batch,
        });
        expect([c.statusCode, c.json().length]).toEqual([201, 12]);
        const page = await inject({
          method: 'GET',
          url: `${E}?type=Bin&q=fill>=30;fill<100&count=true&limit=2&offset=1&options=keyValues&attrs=fill`,
          headers: alice,
        });
        expect([page.headers['ngsild-results-count'], page.json()]).toEqual([
          '7',
          [
            { id: 'urn:ngsi-ld:Bin:04', type: 'Bin', fill: 40 },
            { id: 'urn:ngsi-ld:Bin:05', type: 'Bin', fill: 50 },
          ],
        ]);
        const near = await inject({
          method: 'GET',
          url: `${E}?type=Bin&georel=near;maxDistance==100&geometry=Point&coordinates=[-8.595,41.15]&options=keyValues&attrs=fill`,
          headers: alice,
        });
        expect(near.json().map((e: { id: string }) => e.id)).toEqual([
          'urn:ngsi-ld:Bin:05',
          'urn:ngsi-ld:Bin:04',
          'urn:ngsi-ld:Bin:06',
        ]);
        const poly = encodeURIComponent(
          JSON.stringify([
            [
              [-8.6005, 41.14],
              [-8.5975, 41.14],
              [-8.5975, 41.16],
              [-8.6005, 41.16],
              [-8.6005, 41.14],
            ],
          ]),
        );
        const within = await inject({
          method: 'GET',
          url: `${E}?type=Bin&georel=within&geometry=Polygon&coordinates=${poly}&options=keyValues&attrs=fill&count=true`,
          headers: alice,
        });
        expect([
          within.headers['ngsild-results-count'],
          within.json().map((e: { id: string }) => e.id),
        ]).toEqual(['3', ['urn:ngsi-ld:Bin:00', 'urn:ngsi-ld:Bin:01', 'urn:ngsi-ld:Bin:02']]);
        const fc = await inject({
          method: 'GET',
          url: `${E}?type=Bin&id=urn:ngsi-ld:Bin:00&options=keyValues&attrs=fill`,
          headers: { ...alice, accept: 'application/geo+json' },
        });
        expect(fc.json()).toEqual({
          type: 'FeatureCollection',
          features: [
            {
              id: 'urn:ngsi-ld:Bin:00',
              type: 'Feature',
              geometry: { type: 'Point', coordinates: [-8.6, 41.15] },
              properties: { type: 'Bin', fill: 0 },
            },
          ],
          '@context': CORE,
        });
        await inject({
          method: 'POST',
          url: E,
          headers: { ...alice, ...json },
          payload: {
            id: 'urn:ngsi-ld:Bin:scoped',
            type: 'Bin',
            scope: '/Porto/Ribeira',
            fill: { type: 'Property', value: 1, observedAt: '2024-05-01T10:00:00Z' },
          },
        });
        // A literal `+` stays a `+` (scopeQ wildcards, time zone offsets), as RFC 3986 decoding says.
        const plus = await inject({
          method: 'GET',
          url: `${E}?type=Bin&scopeQ=/Porto/+&q=fill.observedAt>2024-05-01T10:00:00+01:00&options=keyValues`,
          headers: alice,
        });
        expect(plus.json()).toEqual([
          { id: 'urn:ngsi-ld:Bin:scoped', type: 'Bin', scope: '/Porto/Ribeira', fill: 1 },
        ]);
        const post = await inject({
          method: 'POST',
          url: '/ngsi-ld/v1/entityOperations/query?count=true&options=keyValues',
          headers: { ...alice, ...json },
          payload: { type: 'Query', entities: [{ type: 'Bin' }], q: 'fill==110', attrs: ['fill'] },
        });
        expect([post.headers['ngsild-results-count'], post.json()]).toEqual([
          '1',
          [{ id: 'urn:ngsi-ld:Bin:11', type: 'Bin', fill: 110 }],
        ]);
      });

      it('batch upsert, update and delete answer per-entity results', async () => {
        const upsert = await inject({
          method: 'POST',
          url: '/ngsi-ld/v1/entityOperations/upsert?options=update',
          headers: { ...alice, ...json },
          payload: [
            { id: 'urn:ngsi-ld:Bin:00', type: 'Bin', fill: 5 },
            { id: 'urn:ngsi-ld:Bin:99', type: 'Bin', fill: 1 },
            { id: 'bad id', type: 'Bin' },
          ],
        });
        expect([upsert.statusCode, upsert.json()]).toEqual([
          207,
          {
            success: ['urn:ngsi-ld:Bin:00', 'urn:ngsi-ld:Bin:99'],
            errors: [
              {
                entityId: 'bad id',
                error: {
                  type: err('BadRequestData'),
                  title: 'Invalid NGSI-LD entity or attribute',
                  status: 400,
                  detail: 'the entity id "bad id" is not a URI',
                  code: 'CONTEXT_INVALID_ENTITY',
                },
              },
            ],
          },
        ]);
        const onlyUpdates = await inject({
          method: 'POST',
          url: '/ngsi-ld/v1/entityOperations/upsert?options=update',
          headers: { ...alice, ...json },
          payload: [{ id: 'urn:ngsi-ld:Bin:00', type: 'Bin', fill: 6 }],
        });
        expect(onlyUpdates.statusCode).toBe(204);
        const update = await inject({
          method: 'POST',
          url: '/ngsi-ld/v1/entityOperations/update',
          headers: { ...carol, ...json },
          payload: [{ id: 'urn:ngsi-ld:Bin:00', fill: 7 }],
        });
        expect([update.statusCode, update.json().errors[0].error.type]).toEqual([
          207,
          err('ResourceNotFound'),
        ]);
        const merge = await inject({
          method: 'POST',
          url: '/ngsi-ld/v1/entityOperations/merge',
          headers: { ...alice, ...json },
          payload: [
            { id: 'urn:ngsi-ld:Bin:00', fill: { observedAt: '2024-05-01T10:00:00Z' }, lid: 'closed' },
            { id: 'urn:ngsi-ld:Bin:77', fill: 1 },
          ],
        });
        expect([
          merge.statusCode,
          merge.json().success,
          merge.json().errors.map((e: { entityId: string }) => e.entityId),
        ]).toEqual([207, ['urn:ngsi-ld:Bin:00'], ['urn:ngsi-ld:Bin:77']]);
        const bin = await inject({
          method: 'GET',
          url: `${E}/urn:ngsi-ld:Bin:00?attrs=fill,lid`,
          headers: alice,
        });
        expect(bin.json()).toEqual({
          id: 'urn:ngsi-ld:Bin:00',
          type: 'Bin',
          fill: { type: 'Property', value: 6, observedAt: '2024-05-01T10:00:00Z' },
          lid: { type: 'Property', value: 'closed' },
        });
        const del = await inject({
          method: 'POST',
          url: '/ngsi-ld/v1/entityOperations/delete',
          headers: { ...alice, ...json },
          payload: ['urn:ngsi-ld:Bin:99', 'urn:ngsi-ld:Bin:98'],
        });
        expect([del.statusCode, del.json().success, del.json().errors[0].entityId]).toEqual([
          207,
          ['urn:ngsi-ld:Bin:99'],
          'urn:ngsi-ld:Bin:98',
        ]);
        const tooMany = await inject({
          method: 'POST',
          url: '/ngsi-ld/v1/entityOperations/delete',
          headers: { ...alice, ...json },
          payload: Array.from({ length: 1001 }, (_, i) => `urn:x:${i}`),
        });
        expect([tooMany.statusCode, tooMany.json().type]).toEqual([400, err('BadRequestData')]);
      });

      it('rejects bad input with NGSI-LD ProblemDetails and writes nothing', async () => {
        const post = (payload: string, headers: Record<string, string> = json) =>
          inject({ method: 'POST', url: E, headers: { ...alice, ...headers }, payload });
        const cases: [string, Record<string, string>, number, string][] = [
          ['{"id": "urn:x:1", ', json, 400, 'InvalidRequest'],
          ['{"id": "not a uri", "type": "T"}', json, 400, 'BadRequestData'],
          ['{"id": "urn:x:1"}', json, 400, 'BadRequestData'],
          ['{"id": "urn:x:1", "type": "T", "@context": "https://x.org/c"}', json, 400, 'BadRequestData'],
          ['{"id": "urn:x:1", "type": "T"}', ld, 400, 'BadRequestData'],
          ['{"id": "urn:x:1", "type": "T", "a": null}', json, 400, 'BadRequestData'],
          [
            '{"id": "urn:x:1", "type": "T", "l": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1]}}}',
            json,
            400,
            'BadRequestData',
          ],
          [
            '{"id": "urn:x:1", "type": "T", "r": {"type": "Relationship", "object": "no uri"}}',
            json,
            400,
            'BadRequestData',
          ],
          [
            '{"id": "urn:x:1", "type": "T", "marking": {"value": {"tlp": "PINK"}}}',
            json,
            400,
            'BadRequestData',
          ],
          ['{"id": "urn:x:1", "type": "T", "@context": {"a": {"@id": 5}}}', ld, 400, 'BadRequestData'],
          [
            '{"id": "urn:x:1", "type": "T", "@context": "https://unreachable.invalid/ctx.jsonld"}',
            ld,
            503,
            'LdContextNotAvailable',
          ],
        ];
        for (const [payload, headers, status, type] of cases) {
          const r = await post(payload, headers);
          expect([r.statusCode, r.json().type], payload).toEqual([status, err(type)]);
          expect(typeof r.json().detail).toBe('string');
        }
        const xml = await post('<x/>', { 'content-type': 'application/xml' });
        expect(xml.statusCode).toBe(415);
        const exists = await post('{"id": "urn:ngsi-ld:Camera:1", "type": "Camera"}');
        expect([exists.statusCode, exists.json().type]).toEqual([409, err('AlreadyExists')]);
        const q = await inject({ method: 'GET', url: `${E}?type=T&q=a==`, headers: alice });
        expect([q.statusCode, q.json().type]).toEqual([400, err('BadRequestData')]);
        const geo = await inject({
          method: 'GET',
          url: `${E}?type=T&georel=within&geometry=Circle&coordinates=[1,2]`,
          headers: alice,
        });
        expect([geo.statusCode, geo.json().type]).toEqual([422, err('OperationNotSupported')]);
        const none = await inject({ method: 'GET', url: E, headers: alice });
        expect([none.statusCode, none.json().type]).toEqual([400, err('BadRequestData')]);
        const tenant = await inject({
          method: 'GET',
          url: `${E}?type=T`,
          headers: { ...alice, 'ngsild-tenant': 'ghost' },
        });
        expect([tenant.statusCode, tenant.json().type]).toEqual([404, err('NonexistentTenant')]);
        const count = await inject({
          method: 'GET',
          url: `${E}?idPattern=^urn:x&count=true&limit=0`,
          headers: alice,
        });
        expect(count.headers['ngsild-results-count']).toBe('0');
      });

      it('hosts @contexts (the @context API) and uses them offline in Link headers', async () => {
        const add = await inject({
          method: 'POST',
          url: '/ngsi-ld/v1/jsonldContexts',
          headers: { ...alice, ...json },
          payload: {
            '@context': {
              Kiosk: 'https://city.example/vocab/Kiosk',
              open: 'https://city.example/vocab/open',
            },
          },
        });
        expect(add.statusCode).toBe(201);
        const location = String(add.headers.location);
        expect(location).toMatch(/^\/ngsi-ld\/v1\/jsonldContexts\/[0-9a-f-]{36}$/);
        const served = await inject({ method: 'GET', url: location });
        expect([served.statusCode, served.headers['content-type'], served.json()]).toEqual([
          200,
          'application/ld+json; charset=utf-8',
          {
            '@context': {
              Kiosk: 'https://city.example/vocab/Kiosk',
              open: 'https://city.example/vocab/open',
            },
          },
        ]);
        // Any host: the broker recognises its own hosted contexts and never fetches them.
        const link = linkTo(`https://broker.city.example${location}`);
        const create = await inject({
          method: 'POST',
          url: E,
          headers: { ...alice, ...json, link },
          payload: { id: 'urn:ngsi-ld:Kiosk:1', type: 'Kiosk', open: true },
        });
        expect(create.statusCode).toBe(201);
        const raw = await inject({
          method: 'GET',
          url: `${E}/urn:ngsi-ld:Kiosk:1?options=keyValues`,
          headers: alice,
        });
        expect(raw.json()).toEqual({
          id: 'urn:ngsi-ld:Kiosk:1',
          type: 'https://city.example/vocab/Kiosk',
          'https://city.example/vocab/open': true,
        });
        const list = await inject({
          method: 'GET',
          url: '/ngsi-ld/v1/jsonldContexts?kind=Hosted',
          headers: alice,
        });
        expect(list.json()).toEqual([`http://localhost:80${location}`]);
        const foreign = await inject({ method: 'DELETE', url: location, headers: carol });
        expect([foreign.statusCode, foreign.json().type]).toEqual([403, err('AccessDenied')]);
        expect((await inject({ method: 'DELETE', url: location, headers: bob })).statusCode).toBe(204);
        const gone = await inject({ method: 'GET', url: location });
        expect([gone.statusCode, gone.json().type]).toEqual([404, err('ResourceNotFound')]);
        const unusable = await inject({
          method: 'GET',
          url: `${E}/urn:ngsi-ld:Kiosk:1`,
          headers: { ...alice, link },
        });
        expect([unusable.statusCode, unusable.json().type]).toEqual([503, err('LdContextNotAvailable')]);
        const bad = await inject({
          method: 'POST',
          url: '/ngsi-ld/v1/jsonldContexts',
          headers: { ...alice, ...json },
          payload: { '@context': { a: { '@id': 5 } } },
        });
        expect([bad.statusCode, bad.json().type]).toEqual([400, err('BadRequestData')]);
      });

      it('rejects oversized payloads', async () => {
        const small = await openTestApp({ bodyLimit: 1000, store: store.name });
        try {
          const r = await small.app.inject({
            method: 'POST',
            url: E,
            headers: { ...alice, ...json },
            payload: JSON.stringify({ id: 'urn:x:big', type: 'T', blob: 'x'.repeat(2000) }),
          });
          expect([r.statusCode, r.json().type]).toEqual([413, err('BadRequestData')]);
        } finally {
          await small.close();
        }
      });
    },
  );
