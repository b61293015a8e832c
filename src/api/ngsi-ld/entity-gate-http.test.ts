/**
 * The sharing gate as NGSI-LD clients meet it (issue 7): who may write (gap 4), audiences refused as bad
 * data (gap 5), the SafeCity-Marking header (gap 7), and invisible entities answering as missing ones.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMarkingLabel } from '../../modules/sharing/index.ts';
import { openTestApp, type TestApp } from './test-app.ts';

const E = '/ngsi-ld/v1/entities';
const OPS = '/ngsi-ld/v1/entityOperations';
const json = { 'content-type': 'application/json' };
const as = (user: string, roles = 'operator') => ({ 'x-test-user': user, 'x-test-roles': roles });
const op = as('op@metro');
const err = (type: string) => `https://uri.etsi.org/ngsi-ld/errors/${type}`;

const STORES = [
  { name: 'pglite' as const, skip: undefined },
  {
    name: 'postgres' as const,
    skip: process.env.DATABASE_URL ? undefined : 'DATABASE_URL is not set',
  },
];

for (const store of STORES)
  describe.skipIf(store.skip)(
    `NGSI-LD entities on the sharing gate over HTTP, ${store.name}${store.skip ? ` (skipped: ${store.skip})` : ''}`,
    () => {
      let t: TestApp;
      beforeAll(async () => {
        t = await openTestApp({ store: store.name });
        await t.directory.addOrgs('metro', 'police', 'fire');
      });
      afterAll(async () => {
        await t?.close();
      });
      const inject = (o: InjectOptions) => t.app.inject(o);
      const create = async (headers: Record<string, string>, payload: object) => {
        const r = await inject({ method: 'POST', url: E, headers: { ...headers, ...json }, payload });
        expect([r.statusCode, r.body]).toEqual([201, '']);
      };

      describe('gap 4: no role on NGSI-LD writes', () => {
        it('answers 403 AccessDenied to viewers and responders on every write, and per entity in batches', async () => {
          const id = 'urn:ngsi-ld:Gate:http-1';
          const url = `${E}/${id}`;
          await create(op, { id, type: 'Gate', state: { type: 'Property', value: 'open' } });
          for (const who of [as('v@metro', 'viewer'), as('r@metro', 'responder')]) {
            const h = { ...who, ...json };
            const attempts: InjectOptions[] = [
              {
                method: 'POST',
                url: E,
                headers: h,
                payload: { id: 'urn:ngsi-ld:Gate:http-x', type: 'Gate' },
              },
              { method: 'POST', url: `${url}/attrs`, headers: h, payload: { state: 'closed' } },
              { method: 'PATCH', url: `${url}/attrs`, headers: h, payload: { state: 'closed' } },
              { method: 'PATCH', url, headers: h, payload: { state: 'closed' } },
              { method: 'PUT', url, headers: h, payload: { type: 'Gate' } },
              { method: 'PATCH', url: `${url}/attrs/state`, headers: h, payload: { value: 'x' } },
              {
                method: 'PUT',
                url: `${url}/attrs/state`,
                headers: h,
                payload: { type: 'Property', value: 'x' },
              },
              { method: 'DELETE', url: `${url}/attrs/state`, headers: who },
              { method: 'DELETE', url, headers: who },
              { method: 'POST', url: `${url}/attrs`, headers: h, payload: { marking: { tlp: 'CLEAR' } } },
              {
                method: 'POST',
                url: '/ngsi-ld/v1/jsonldContexts',
                headers: h,
                payload: { '@context': { a: 'https://example.org/a' } },
              },
            ];
            for (const a of attempts) {
              const r = await inject(a);
              expect([a.method, a.url, r.statusCode, r.json().type, r.json().code]).toEqual([
                a.method,
                a.url,
                403,
                err('AccessDenied'),
                'AUTH_ROLE_REQUIRED',
              ]);
            }
            for (const [path, payload] of [
              ['create', [{ id: 'urn:ngsi-ld:Gate:http-y', type: 'Gate' }]],
              ['upsert', [{ id, type: 'Gate' }]],
              ['update', [{ id, state: 'x' }]],
              ['merge', [{ id, state: 'x' }]],
              ['delete', [id]],
            ] as const) {
              const r = await inject({ method: 'POST', url: `${OPS}/${path}`, headers: h, payload });
              const entityId = path === 'create' ? 'urn:ngsi-ld:Gate:http-y' : id;
              expect([r.statusCode, r.json()]).toEqual([
                207,
                {
                  success: [],
                  errors: [
                    {
                      entityId,
                      error: expect.objectContaining({
                        type: err('AccessDenied'),
                        status: 403,
                        code: 'AUTH_ROLE_REQUIRED',
                      }),
                    },
                  ],
                },
              ]);
            }
          }
          const after = await inject({ method: 'GET', url: `${url}?options=keyValues`, headers: op });
          expect(after.json()).toEqual({ id, type: 'Gate', state: 'open' });
        });

        it('a batch writes what the caller may write and answers 403 and 404 for the others', async () => {
          await create(as('op@police'), {
            id: 'urn:ngsi-ld:Pump:police-green',
            type: 'Pump',
            marking: { tlp: 'GREEN' },
          });
          await create(as('op@police'), { id: 'urn:ngsi-ld:Pump:police-amber', type: 'Pump' });
          await create(op, { id: 'urn:ngsi-ld:Pump:metro', type: 'Pump' });
          const r = await inject({
            method: 'POST',
            url: `${OPS}/update`,
            headers: { ...op, ...json },
            payload: [
              { id: 'urn:ngsi-ld:Pump:metro', rate: 1 },
              { id: 'urn:ngsi-ld:Pump:police-green', rate: 1 },
              { id: 'urn:ngsi-ld:Pump:police-amber', rate: 1 },
            ],
          });
          expect(r.statusCode).toBe(207);
          expect(r.json().success).toEqual(['urn:ngsi-ld:Pump:metro']);
          expect(
            r
              .json()
              .errors.map((e: { entityId: string; error: { status: number; type: string } }) => [
                e.entityId,
                e.error.status,
                e.error.type,
              ]),
          ).toEqual([
            ['urn:ngsi-ld:Pump:police-green', 403, err('AccessDenied')],
            ['urn:ngsi-ld:Pump:police-amber', 404, err('ResourceNotFound')],
          ]);
        });
      });

      describe('visibility: an invisible entity answers exactly like a missing one', () => {
        it('404 ResourceNotFound for invisible and missing alike; 403 AccessDenied when visible but not writable', async () => {
          await create(op, { id: 'urn:ngsi-ld:Door:amber', type: 'Door' });
          await create(op, { id: 'urn:ngsi-ld:Door:green', type: 'Door', marking: { tlp: 'GREEN' } });
          const police = as('op@police');
          const body = (r: { json(): { detail: string } & Record<string, unknown> }, id: string) => ({
            ...r.json(),
            detail: r.json().detail.replace(id, '<id>'),
          });
          for (const [method, suffix, payload] of [
            ['GET', '', undefined],
            ['DELETE', '', undefined],
            ['PATCH', '', { a: 1 }],
            ['POST', '/attrs', { a: 1 }],
          ] as const) {
            const invisible = await inject({
              method,
              url: `${E}/urn:ngsi-ld:Door:amber${suffix}`,
              headers: payload ? { ...police, ...json } : police,
              ...(payload ? { payload } : {}),
            });
            const missing = await inject({
              method,
              url: `${E}/urn:ngsi-ld:Door:none${suffix}`,
              headers: payload ? { ...police, ...json } : police,
              ...(payload ? { payload } : {}),
            });
            expect(invisible.statusCode).toBe(404);
            expect(body(invisible, 'urn:ngsi-ld:Door:amber')).toEqual(body(missing, 'urn:ngsi-ld:Door:none'));
            expect(invisible.json().type).toBe(err('ResourceNotFound'));
          }
          const foreign = await inject({
            method: 'DELETE',
            url: `${E}/urn:ngsi-ld:Door:green`,
            headers: police,
          });
          expect([foreign.statusCode, foreign.json().type, foreign.json().code]).toEqual([
            403,
            err('AccessDenied'),
            'ACCESS_DENIED',
          ]);
        });
      });

      describe('gap 5: entities bypass the access module', () => {
        it('refuses an audience naming an unknown organisation, community or user (400 BadRequestData)', async () => {
          for (const audience of [
            { orgs: ['nowhere'] },
            { communities: ['no-cell'] },
            { users: ['nobody'] },
          ]) {
            const r = await inject({
              method: 'POST',
              url: E,
              headers: { ...op, ...json },
              payload: { id: 'urn:ngsi-ld:Van:aud', type: 'Van', marking: { tlp: 'AMBER', audience } },
            });
            expect([r.statusCode, r.json().type]).toEqual([400, err('BadRequestData')]);
          }
          const missing = await inject({ method: 'GET', url: `${E}/urn:ngsi-ld:Van:aud`, headers: op });
          expect(missing.statusCode).toBe(404);
        });
      });

      describe('gap 7: markings do not travel', () => {
        it('every answer holding entities carries SafeCity-Marking; the body stays standard', async () => {
          await create(op, {
            id: 'urn:ngsi-ld:Lamp:1',
            type: 'Lamp',
            marking: { tlp: 'GREEN', pap: 'AMBER' },
          });
          await create(as('op@fire'), {
            id: 'urn:ngsi-ld:Lamp:2',
            type: 'Lamp',
            marking: { tlp: 'AMBER', audience: { orgs: ['metro'] } },
          });
          const one = await inject({ method: 'GET', url: `${E}/urn:ngsi-ld:Lamp:1`, headers: op });
          expect(one.headers['safecity-marking']).toBe('TLP:GREEN; PAP:AMBER; owner=metro');
          expect(Object.keys(one.json()).sort()).toEqual(['id', 'type']);
          const page = await inject({ method: 'GET', url: `${E}?type=Lamp`, headers: op });
          expect(page.json()).toHaveLength(2);
          expect(parseMarkingLabel(String(page.headers['safecity-marking']))).toEqual({
            tlp: 'AMBER',
            pap: 'AMBER',
            owners: ['fire', 'metro'],
          });
          const query = await inject({
            method: 'POST',
            url: `${OPS}/query`,
            headers: { ...op, ...json },
            payload: { type: 'Query', entities: [{ type: 'Lamp' }] },
          });
          expect(query.headers['safecity-marking']).toBe(page.headers['safecity-marking']);
          const green = await inject({ method: 'GET', url: `${E}?type=Lamp`, headers: as('op@police') });
          expect([green.json().length, green.headers['safecity-marking']]).toEqual([
            1,
            'TLP:GREEN; PAP:AMBER; owner=metro',
          ]);
          const none = await inject({ method: 'GET', url: `${E}?type=Nothing`, headers: op });
          expect([none.json(), none.headers['safecity-marking']]).toEqual([[], undefined]);
          const withMarking = await inject({
            method: 'GET',
            url: `${E}/urn:ngsi-ld:Lamp:1?attrs=marking`,
            headers: op,
          });
          expect(withMarking.json().marking).toMatchObject({ value: { tlp: 'GREEN', pap: 'AMBER' } });
        });
      });
    },
  );
