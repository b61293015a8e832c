/**
 * Linked entity retrieval over HTTP (ETSI GS CIM 009 v1.8.1, clause 4.5.23; the ETSI test suite's 018_10–018_21
 * and 019_13–019_23 shapes): `join=inline|flat`, `joinLevel`, `containedBy`, projections into linked entities,
 * on the sharing gate — a linked entity the caller may not see is not joined, exactly like an absent one, and
 * the answer's SafeCity-Marking covers every entity joined. Beside them, the smaller query features of the
 * issue: `lang=*`, `scopeQ` with `,`, the `datasetId` parameter, and purge (`DELETE /entities?type=…`).
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit } from '../../modules/audit/index.ts';
import { parseMarkingLabel } from '../../modules/sharing/index.ts';
import { openTestApp, type TestApp } from './test-app.ts';

const E = '/ngsi-ld/v1/entities';
const json = { 'content-type': 'application/json' };
const as = (user: string, roles = 'operator') => ({ 'x-test-user': user, 'x-test-roles': roles });
const err = (type: string) => `https://uri.etsi.org/ngsi-ld/errors/${type}`;
const rel = (object: string) => ({ type: 'Relationship', object });
const prop = (value: unknown) => ({ type: 'Property', value });

const STORES = [
  { name: 'pglite' as const, skip: undefined },
  {
    name: 'postgres' as const,
    skip: process.env.DATABASE_URL ? undefined : 'DATABASE_URL is not set',
  },
];

for (const store of STORES)
  describe.skipIf(store.skip)(
    `NGSI-LD linked entities and query features over HTTP, ${store.name}${store.skip ? ` (skipped: ${store.skip})` : ''}`,
    () => {
      let t: TestApp;
      beforeAll(async () => {
        t = await openTestApp({ store: store.name, budgets: { maxJoined: 6, maxPurge: 5 } });
        await t.directory.addOrgs('metro', 'police', 'fire');
      });
      afterAll(async () => {
        await t?.close();
      });
      const inject = (o: InjectOptions) => t.app.inject(o);
      const metro = as('op@metro');
      const police = as('op@police');
      const create = async (headers: Record<string, string>, payload: object) => {
        const r = await inject({ method: 'POST', url: E, headers: { ...headers, ...json }, payload });
        expect([r.statusCode, r.body]).toEqual([201, '']);
      };
      const get = (url: string, headers: Record<string, string> = metro) =>
        inject({ method: 'GET', url, headers });

      describe('join (clause 4.5.23)', () => {
        const B = 'urn:ngsi-ld:Building:b1';
        const C = 'urn:ngsi-ld:City:Paris';
        const K = 'urn:ngsi-ld:Country:France';
        beforeAll(async () => {
          const green = { marking: { tlp: 'GREEN' } };
          await create(metro, { id: B, type: 'Building', locatedAt: rel(C), ...green });
          await create(metro, {
            id: C,
            type: 'City',
            name: prop('Paris'),
            description: prop('capital'),
            isInCountry: rel(K),
            ...green,
          });
          await create(metro, {
            id: K,
            type: 'Country',
            name: prop('France'),
            description: prop('a country'),
            ...green,
          });
        });

        it('inline and flat, normalized and keyValues, one level (018_10)', async () => {
          const city = { id: C, type: 'City', name: prop('Paris'), description: prop('capital') };
          const inl = await get(`${E}/${B}?join=inline&joinLevel=1`);
          expect(inl.json()).toEqual({
            id: B,
            type: 'Building',
            locatedAt: { ...rel(C), entity: { ...city, isInCountry: rel(K) } },
          });
          const flat = await get(`${E}/${B}?join=flat&joinLevel=1`);
          expect(flat.json()).toEqual([
            { id: B, type: 'Building', locatedAt: rel(C) },
            { ...city, isInCountry: rel(K) },
          ]);
          const kvInline = await get(`${E}/${B}?join=inline&joinLevel=1&options=keyValues`);
          expect(kvInline.json()).toEqual({
            id: B,
            type: 'Building',
            locatedAt: { id: C, type: 'City', name: 'Paris', description: 'capital', isInCountry: K },
          });
          const kvFlat = await get(`${E}/${B}?join=flat&joinLevel=1&format=simplified`);
          expect(kvFlat.json()).toEqual([
            { id: B, type: 'Building', locatedAt: C },
            { id: C, type: 'City', name: 'Paris', description: 'capital', isInCountry: K },
          ]);
          const none = await get(`${E}/${B}?join=@none&joinLevel=1`);
          expect(none.json()).toEqual({ id: B, type: 'Building', locatedAt: rel(C) });
        });

        it('two levels inline and flat (018_13), sysAttrs on joined entities (018_11, 018_12)', async () => {
          const two = await get(`${E}/${B}?join=inline&joinLevel=2&options=keyValues`);
          expect(two.json()).toEqual({
            id: B,
            type: 'Building',
            locatedAt: {
              id: C,
              type: 'City',
              name: 'Paris',
              description: 'capital',
              isInCountry: { id: K, type: 'Country', name: 'France', description: 'a country' },
            },
          });
          const flat = await get(`${E}/${B}?join=flat&joinLevel=2`);
          expect(flat.json().map((e: { id: string }) => e.id)).toEqual([B, C, K]);
          const sys = await get(`${E}/${B}?join=inline&joinLevel=1&options=sysAttrs`);
          expect(sys.json().locatedAt.entity.createdAt).toEqual(expect.any(String));
          const sysFlat = await get(`${E}/${B}?join=flat&joinLevel=1&options=sysAttrs`);
          expect(sysFlat.json().map((e: { createdAt?: string }) => typeof e.createdAt)).toEqual([
            'string',
            'string',
          ]);
        });

        it('projections reach into linked entities with braces (018_20, 018_21)', async () => {
          const picked = await get(
            `${E}/${B}?join=inline&joinLevel=2&pick=${encodeURIComponent('id,type,locatedAt{id,type,name,isInCountry{id,type,description}}')}`,
          );
          expect(picked.json()).toEqual({
            id: B,
            type: 'Building',
            locatedAt: {
              ...rel(C),
              entity: {
                id: C,
                type: 'City',
                name: prop('Paris'),
                isInCountry: {
                  ...rel(K),
                  entity: { id: K, type: 'Country', description: prop('a country') },
                },
              },
            },
          });
          // isInCountry not picked at the second level: the country is not joined at all.
          const one = await get(
            `${E}/${B}?join=flat&joinLevel=2&pick=${encodeURIComponent('id,type,locatedAt{id,type,name}')}`,
          );
          expect(one.json()).toEqual([
            { id: B, type: 'Building', locatedAt: rel(C) },
            { id: C, type: 'City', name: prop('Paris') },
          ]);
          // omit with braces keeps the relationship and omits in the linked entity only (one level).
          const omitted = await get(
            `${E}/${B}?join=flat&joinLevel=2&omit=${encodeURIComponent('locatedAt{name}')}`,
          );
          expect(omitted.json()).toEqual([
            { id: B, type: 'Building', locatedAt: rel(C) },
            { id: C, type: 'City', description: prop('capital'), isInCountry: rel(K) },
            { id: K, type: 'Country', name: prop('France'), description: prop('a country') },
          ]);
        });

        it('a relationship to nothing is answered as it is (018_14); containedBy ids are not joined', async () => {
          await create(metro, {
            id: 'urn:ngsi-ld:Building:lost',
            type: 'Building',
            locatedAt: rel('urn:x:none'),
          });
          for (const join of ['inline', 'flat']) {
            const r = await get(`${E}/urn:ngsi-ld:Building:lost?join=${join}&joinLevel=1`);
            expect(r.json()).toEqual({
              id: 'urn:ngsi-ld:Building:lost',
              type: 'Building',
              locatedAt: rel('urn:x:none'),
            });
          }
          const contained = await get(`${E}/${B}?join=flat&joinLevel=2&containedBy=${K}`);
          expect(contained.json().map((e: { id: string }) => e.id)).toEqual([B, C]);
        });

        it('concise and GeoJSON answers carry joined entities too', async () => {
          const concise = await get(`${E}/${B}?join=inline&joinLevel=1&format=concise`);
          expect(concise.json().locatedAt).toEqual({
            object: C,
            entity: {
              id: C,
              type: 'City',
              name: 'Paris',
              description: 'capital',
              isInCountry: { object: K },
            },
          });
          const geo = { ...metro, accept: 'application/geo+json' };
          const flat = await get(`${E}/${B}?join=flat&joinLevel=1`, geo);
          expect(flat.json().type).toBe('FeatureCollection');
          expect(flat.json().features.map((f: { id: string }) => f.id)).toEqual([B, C]);
          const inline = await get(`${E}/${B}?join=inline&joinLevel=1&options=keyValues`, geo);
          expect(inline.json()).toMatchObject({
            type: 'Feature',
            id: B,
            properties: { locatedAt: { id: C, type: 'City', name: 'Paris' } },
          });
        });

        it('cycles stop at the entities already on the path', async () => {
          await create(metro, { id: 'urn:ngsi-ld:Node:a', type: 'Node', next: rel('urn:ngsi-ld:Node:b') });
          await create(metro, { id: 'urn:ngsi-ld:Node:b', type: 'Node', next: rel('urn:ngsi-ld:Node:a') });
          const r = await get(`${E}/urn:ngsi-ld:Node:a?join=inline&joinLevel=5&options=keyValues`);
          expect(r.json()).toEqual({
            id: 'urn:ngsi-ld:Node:a',
            type: 'Node',
            next: { id: 'urn:ngsi-ld:Node:b', type: 'Node', next: 'urn:ngsi-ld:Node:a' },
          });
        });

        it('queries join their page: inline per entity, flat after the page (019_13, 019_16)', async () => {
          await create(metro, { id: 'urn:ngsi-ld:Building:b2', type: 'Building', locatedAt: rel(C) });
          const inline = await get(`${E}?type=Building&join=inline&joinLevel=1&options=keyValues&count=true`);
          expect(inline.headers['ngsild-results-count']).toBe('3');
          expect(inline.json().map((e: { locatedAt: unknown }) => e.locatedAt)).toEqual([
            expect.objectContaining({ id: C, name: 'Paris' }),
            expect.objectContaining({ id: C, name: 'Paris' }),
            'urn:x:none',
          ]);
          const flat = await get(`${E}?type=Building&join=flat&joinLevel=2`);
          expect(flat.json().map((e: { id: string }) => e.id)).toEqual([
            B,
            'urn:ngsi-ld:Building:b2',
            'urn:ngsi-ld:Building:lost',
            C,
            K,
          ]);
          const post = await inject({
            method: 'POST',
            url: '/ngsi-ld/v1/entityOperations/query',
            headers: { ...metro, ...json },
            payload: { type: 'Query', entities: [{ type: 'Building' }], join: 'flat', joinLevel: 1 },
          });
          expect(post.json().map((e: { id: string }) => e.id)).toEqual([
            B,
            'urn:ngsi-ld:Building:b2',
            'urn:ngsi-ld:Building:lost',
            C,
          ]);
        });

        it('refuses bad join parameters and projections with 400 BadRequestData (018_18, 5.7.1.4)', async () => {
          for (const q of [
            'join=sideways',
            'join=inline&joinLevel=0',
            'join=inline&joinLevel=6',
            'join=inline&joinLevel=x',
            `join=inline&containedBy=${encodeURIComponent('not a uri')}`,
            'pick=id;name',
            `pick=${encodeURIComponent('locatedAt{name')}&join=inline`,
            `pick=${encodeURIComponent('locatedAt{{name}')}&join=inline`,
            'pick=id,,name',
            `pick=${encodeURIComponent('locatedAt{,name}')}&join=inline`,
            `pick=${encodeURIComponent('locatedAt{}')}&join=inline`,
            `pick=${encodeURIComponent('locatedAt{name}')}`,
            `omit=${encodeURIComponent('locatedAt{name}')}`,
          ]) {
            const r = await get(`${E}/${B}?${q}`);
            expect([q, r.statusCode, r.json().type]).toEqual([q, 400, err('BadRequestData')]);
          }
        });
      });

      describe('joins on the sharing gate', () => {
        const HQ = 'urn:ngsi-ld:Station:hq';
        const SECRET = 'urn:ngsi-ld:Unit:secret';
        beforeAll(async () => {
          // A GREEN station of metro names police's AMBER unit (police only) and an id that names nothing.
          await create(metro, {
            id: HQ,
            type: 'Station',
            guardedBy: rel(SECRET),
            near: rel('urn:ngsi-ld:Unit:absent'),
            marking: { tlp: 'GREEN', pap: 'GREEN' },
          });
          await create(police, { id: SECRET, type: 'Unit', callSign: prop('K9'), marking: { tlp: 'AMBER' } });
        });

        it('an invisible linked entity is not joined, exactly like an absent one', async () => {
          for (const join of ['inline', 'flat']) {
            const r = await get(`${E}/${HQ}?join=${join}&joinLevel=2`);
            expect(r.json()).toEqual({
              id: HQ,
              type: 'Station',
              guardedBy: rel(SECRET),
              near: rel('urn:ngsi-ld:Unit:absent'),
            });
            expect(r.headers['safecity-marking']).toBe('TLP:GREEN; PAP:GREEN; owner=metro');
            expect(r.body).not.toContain('K9');
          }
          const q = await get(`${E}?type=Station&join=flat&joinLevel=1`);
          expect(q.json().map((e: { id: string }) => e.id)).toEqual([HQ]);
          expect(q.headers['safecity-marking']).toBe('TLP:GREEN; PAP:GREEN; owner=metro');
        });

        it('the owner of the linked entity sees it joined, under a marking as tight as both', async () => {
          const r = await get(`${E}/${HQ}?join=inline&joinLevel=1&options=keyValues`, police);
          expect(r.json().guardedBy).toEqual({ id: SECRET, type: 'Unit', callSign: 'K9' });
          expect(parseMarkingLabel(String(r.headers['safecity-marking']))).toEqual({
            tlp: 'AMBER',
            pap: 'GREEN',
            owners: ['metro', 'police'],
          });
        });

        it('bounds what one answer may follow: past maxJoined, 403 TooManyResults, visible or not', async () => {
          // Seven targets: three absent, three invisible (police AMBER), one visible; the bound is six.
          const targets = ['a1', 'a2', 'a3', 'p1', 'p2', 'p3', 'v1'].map((x) => `urn:ngsi-ld:T:${x}`);
          for (const x of ['p1', 'p2', 'p3'])
            await create(police, { id: `urn:ngsi-ld:T:${x}`, type: 'T', marking: { tlp: 'AMBER' } });
          await create(metro, { id: 'urn:ngsi-ld:T:v1', type: 'T' });
          await create(metro, {
            id: 'urn:ngsi-ld:Hub:many',
            type: 'Hub',
            links: { type: 'ListRelationship', objectList: targets },
          });
          const r = await get(`${E}/urn:ngsi-ld:Hub:many?join=inline&joinLevel=1`);
          expect([r.statusCode, r.json().type]).toEqual([403, err('TooManyResults')]);
          // Six targets of which three are invisible answer like six of which three are absent.
          await create(metro, {
            id: 'urn:ngsi-ld:Hub:six',
            type: 'Hub',
            links: { type: 'ListRelationship', objectList: targets.slice(0, 6) },
            marking: { tlp: 'GREEN' },
          });
          const six = await get(`${E}/urn:ngsi-ld:Hub:six?join=inline&joinLevel=1`);
          expect(six.statusCode).toBe(200);
          expect(six.json().links.entityList).toBeUndefined();
          const withVisible = await get(`${E}/urn:ngsi-ld:Hub:six?join=inline&joinLevel=1`, police);
          expect(withVisible.json().links.entityList.map((e: { id: string }) => e.id)).toEqual(
            targets.slice(3, 6),
          );
        });
      });

      describe('lang, scopeQ, datasetId', () => {
        it('lang=* and ranked languages turn a LanguageProperty into a Property with its lang (018_07)', async () => {
          const id = 'urn:ngsi-ld:Building:lang';
          await create(metro, {
            id,
            type: 'Building',
            street: { type: 'LanguageProperty', languageMap: { fr: 'Grand Place', nl: 'Grote Markt' } },
          });
          for (const lang of [
            '*',
            'fr',
            'fr-CH,fr',
            'fr-CH,fr;q=0.9,en;q=0.8,*;q=0.5',
            'en;q=0.1,fr;q=0.9',
          ]) {
            const r = await get(`${E}/${id}?lang=${encodeURIComponent(lang)}`);
            expect([lang, r.json().street]).toEqual([
              lang,
              { type: 'Property', value: 'Grand Place', lang: 'fr' },
            ]);
          }
          const nl = await get(`${E}/${id}?lang=nl&options=keyValues`);
          expect(nl.json().street).toBe('Grote Markt');
          const any = await get(`${E}/${id}?lang=*&options=keyValues`);
          expect(any.json().street).toBe('Grand Place');
        });

        it('scopeQ takes "," as or, like "|" (clause 4.19)', async () => {
          await create(metro, { id: 'urn:ngsi-ld:Park:n', type: 'Park', scope: '/Madrid/Gardens/North' });
          await create(metro, {
            id: 'urn:ngsi-ld:Park:s',
            type: 'Park',
            scope: ['/Madrid/Gardens/South', '/CompanyA'],
          });
          const ids = async (scopeQ: string) =>
            (await get(`${E}?type=Park&scopeQ=${encodeURIComponent(scopeQ)}`))
              .json()
              .map((e: { id: string }) => e.id);
          expect(await ids('/Madrid/Gardens/North,/CompanyA')).toEqual([
            'urn:ngsi-ld:Park:n',
            'urn:ngsi-ld:Park:s',
          ]);
          expect(await ids('/Madrid/Gardens/North|/CompanyA')).toEqual([
            'urn:ngsi-ld:Park:n',
            'urn:ngsi-ld:Park:s',
          ]);
          expect(await ids('/Madrid/#;/CompanyA')).toEqual(['urn:ngsi-ld:Park:s']);
          expect(await ids('(/Madrid/Gardens/South;/CompanyA),/Nowhere')).toEqual(['urn:ngsi-ld:Park:s']);
        });

        it('datasetId selects attribute instances, @none the default one', async () => {
          const id = 'urn:ngsi-ld:Sensor:ds';
          await create(metro, {
            id,
            type: 'Sensor',
            speed: [
              prop(1),
              { ...prop(2), datasetId: 'urn:ds:radar' },
              { ...prop(3), datasetId: 'urn:ds:gps' },
            ],
            name: prop('s'),
          });
          const radar = await get(`${E}/${id}?datasetId=urn:ds:radar`);
          expect(radar.json()).toEqual({
            id,
            type: 'Sensor',
            speed: { ...prop(2), datasetId: 'urn:ds:radar' },
          });
          const two = await get(
            `${E}/${id}?datasetId=${encodeURIComponent('@none,urn:ds:gps')}&options=keyValues`,
          );
          expect(two.json()).toEqual({ id, type: 'Sensor', speed: [1, 3], name: 's' });
          const q = await get(`${E}?type=Sensor&datasetId=urn:ds:gps&options=keyValues`);
          expect(q.json()).toEqual([{ id, type: 'Sensor', speed: 3 }]);
        });
      });

      describe('purge (DELETE /entities?type=…)', () => {
        const ids = async (headers: Record<string, string>) =>
          (await get(`${E}?type=Crate&limit=100`, headers)).json().map((e: { id: string }) => e.id);

        it('deletes, through the gate, what the caller may delete; reports the others; never another organisation’s', async () => {
          await create(police, { id: 'urn:ngsi-ld:Crate:p1', type: 'Crate' });
          await create(police, { id: 'urn:ngsi-ld:Crate:p2', type: 'Crate', level: prop(7) });
          await create(metro, { id: 'urn:ngsi-ld:Crate:mg', type: 'Crate', marking: { tlp: 'GREEN' } });
          await create(metro, { id: 'urn:ngsi-ld:Crate:ma', type: 'Crate', marking: { tlp: 'AMBER' } });
          // A viewer purges nothing.
          const viewer = await inject({
            method: 'DELETE',
            url: `${E}?type=Crate`,
            headers: as('v@police', 'viewer'),
          });
          expect([viewer.statusCode, viewer.json().type]).toEqual([403, err('AccessDenied')]);
          const r = await inject({ method: 'DELETE', url: `${E}?type=Crate`, headers: police });
          // metro's GREEN crate is visible to police but not theirs to delete; metro's AMBER one is invisible.
          expect([r.statusCode, r.json()]).toEqual([
            207,
            {
              success: ['urn:ngsi-ld:Crate:p1', 'urn:ngsi-ld:Crate:p2'],
              errors: [
                {
                  entityId: 'urn:ngsi-ld:Crate:mg',
                  error: expect.objectContaining({ status: 403, type: err('AccessDenied') }),
                },
              ],
            },
          ]);
          expect(await ids(metro)).toEqual(['urn:ngsi-ld:Crate:ma', 'urn:ngsi-ld:Crate:mg']);
          expect(await ids(police)).toEqual(['urn:ngsi-ld:Crate:mg']);
          for (const id of ['urn:ngsi-ld:Crate:p1', 'urn:ngsi-ld:Crate:p2']) {
            const audit = await listAudit(t.store.db, { objectId: id });
            expect(audit.map((a) => a.action)).toContain('delete');
          }
          const mine = await inject({ method: 'DELETE', url: `${E}?type=Crate&q=level==7`, headers: metro });
          expect(mine.statusCode).toBe(204);
          const all = await inject({ method: 'DELETE', url: `${E}?type=Crate`, headers: metro });
          expect(all.statusCode).toBe(204);
          expect(await ids(metro)).toEqual([]);
        });

        it('needs a selector, refuses attrs, and past maxPurge deletes nothing', async () => {
          const bare = await inject({ method: 'DELETE', url: E, headers: metro });
          expect([bare.statusCode, bare.json().type]).toEqual([400, err('BadRequestData')]);
          const attrs = await inject({
            method: 'DELETE',
            url: `${E}?type=Crate&attrs=level`,
            headers: metro,
          });
          expect([attrs.statusCode, attrs.json().type]).toEqual([422, err('OperationNotSupported')]);
          for (let i = 0; i < 6; i++) await create(metro, { id: `urn:ngsi-ld:Crate:n${i}`, type: 'Crate' });
          const many = await inject({ method: 'DELETE', url: `${E}?type=Crate`, headers: metro });
          expect([many.statusCode, many.json().type]).toEqual([403, err('TooManyResults')]);
          expect((await ids(metro)).length).toBe(6);
          const some = await inject({
            method: 'DELETE',
            url: `${E}?type=Crate&idPattern=${encodeURIComponent('^urn:ngsi-ld:Crate:n[0-2]$')}`,
            headers: metro,
          });
          expect(some.statusCode).toBe(204);
          expect((await ids(metro)).length).toBe(3);
        });
      });
    },
  );
