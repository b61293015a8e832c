/**
 * `pick` and `omit` on the temporal reads (ETSI GS CIM 009 v1.8.1, clauses 4.21, 5.7.3, 5.7.4; the ETSI test
 * suite's 020_21–020_23 shapes), on the whole platform: `id` and `type` are members like the attributes;
 * `attrs` beside them, or a member in both, is 400 BadRequestData; a retrieval left with nothing is 404, a
 * query leaves such entities out. Embedded preset (PGlite) always; the server preset when DATABASE_URL and
 * NATS_URL are set.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.ts';
import { createPlatform, type Platform } from '../../app/platform.ts';
import { embeddedTestEnv, SERVER_SKIP, seedWorld, serverPresetTestEnv } from '../../app/testing.ts';

const T = '/ngsi-ld/v1/temporal/entities';
const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';
const err = (type: string) => `https://uri.etsi.org/ngsi-ld/errors/${type}`;
const V1 = 'urn:ngsi-ld:Vehicle:tp1';
const V2 = 'urn:ngsi-ld:Vehicle:tp2';

const instance = (value: number, minute: number) => ({
  type: 'Property',
  value,
  observedAt: `2026-11-27T10:0${minute}:00.000Z`,
});

function describePlatform(
  name: string,
  envOf: () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>,
) {
  describe(`pick and omit on temporal reads (${name})`, () => {
    let platform: Platform;
    let cleanup: () => Promise<void> = async () => {};
    let auth = '';
    const get = async (url: string) => {
      const r = await platform.server.inject({ method: 'GET', url, headers: { authorization: auth } });
      return { status: r.statusCode, body: r.json() };
    };

    beforeAll(async () => {
      const { env, cleanup: c } = await envOf();
      cleanup = c;
      platform = await createPlatform(
        loadConfig({ SAFECITY_MQTT_PORT: '0', PORT: '0', SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD, ...env }),
        { log: pino({ level: 'silent' }) },
      );
      const accounts = await seedWorld(platform, ADMIN_PASSWORD, PW, {
        orgs: [['metro', 'transport']],
        users: [['metro-operator', 'metro', 'operator']],
      });
      auth = accounts['metro-operator'] as string;
      for (const payload of [
        { id: V1, type: 'Vehicle', speed: [instance(10, 1), instance(20, 2)], fuelLevel: [instance(0.5, 1)] },
        { id: V2, type: 'Vehicle', speed: [instance(30, 3)] },
      ]) {
        const r = await platform.server.inject({
          method: 'POST',
          url: T,
          headers: { authorization: auth, 'content-type': 'application/json' },
          payload: JSON.stringify(payload),
        });
        expect(r.statusCode, r.body).toBe(201);
      }
    }, 120_000);
    afterAll(async () => {
      await platform?.shutdown();
      await cleanup();
    });

    const values = (body: Record<string, unknown>) =>
      Object.fromEntries(
        Object.entries(body).map(([k, v]) => [
          k,
          Array.isArray(v) ? v.map((i: { value: unknown }) => i.value) : v,
        ]),
      );

    it('Retrieve: id and type are members like the attributes', async () => {
      const cases: [string, unknown][] = [
        ['pick=speed', { speed: [10, 20] }],
        ['pick=id,fuelLevel', { id: V1, fuelLevel: [0.5] }],
        ['omit=type,speed', { id: V1, fuelLevel: [0.5] }],
        ['omit=id', { type: 'Vehicle', speed: [10, 20], fuelLevel: [0.5] }],
        ['attrs=speed', { id: V1, type: 'Vehicle', speed: [10, 20] }],
      ];
      for (const [qs, expected] of cases) {
        const r = await get(`${T}/${V1}?${qs}`);
        expect([qs, r.status, values(r.body)]).toEqual([qs, 200, expected]);
      }
      const simplified = await get(`${T}/${V1}?pick=fuelLevel&options=temporalValues`);
      expect(simplified.body).toEqual({
        fuelLevel: { type: 'Property', values: [[0.5, '2026-11-27T10:01:00.000Z']] },
      });
    });

    it('attrs beside pick or omit, a member in both, braces: 400 BadRequestData (020_22)', async () => {
      for (const qs of [
        'pick=speed&omit=speed',
        'pick=speed&attrs=fuelLevel',
        'omit=speed&attrs=fuelLevel',
        'pick=id;speed',
        'pick=speed{id}',
      ]) {
        for (const url of [`${T}/${V1}?${qs}`, `${T}?type=Vehicle&${qs}`]) {
          const r = await get(url);
          expect([url, r.status, r.body.type]).toEqual([url, 400, err('BadRequestData')]);
        }
      }
    });

    it('nothing left: a retrieval is 404 (020_23), a query leaves the entity out', async () => {
      for (const qs of ['pick=unknown', 'omit=id,type,fuelLevel,speed']) {
        const r = await get(`${T}/${V1}?${qs}`);
        expect([qs, r.status, r.body.type]).toEqual([qs, 404, err('ResourceNotFound')]);
      }
      const q = await get(`${T}?type=Vehicle&pick=fuelLevel`);
      expect([q.status, q.body.map(values)]).toEqual([200, [{ fuelLevel: [0.5] }]]);
      const ids = await get(`${T}?type=Vehicle&pick=id`);
      expect(ids.body).toEqual([{ id: V1 }, { id: V2 }]);
    });
  });
}

describePlatform('PGlite', () => embeddedTestEnv('temporal_projection'));

describe.skipIf(SERVER_SKIP)(`server preset${SERVER_SKIP ? ` (skipped: ${SERVER_SKIP})` : ''}`, () => {
  describePlatform('PostgreSQL + NATS', () => serverPresetTestEnv('temporal_projection'));
});
