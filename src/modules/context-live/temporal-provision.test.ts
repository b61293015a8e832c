import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import { fixedClock } from '../../kernel/clock.ts';
import type { Store } from '../../ports/store.ts';
import type { Principal } from '../access/index.ts';
import { listAudit } from '../audit/index.ts';
import { parseMarkingLabel } from '../sharing/index.ts';
import { TemporalProvision } from './temporal-provision.ts';
import { TemporalService } from './temporal-service.ts';
import { TemporalStore } from './temporal-store.ts';
import {
  DEFAULT_VOCAB,
  entityChange,
  LIVE_TEST_MIGRATIONS,
  type LiveTestWorld,
  openLiveWorld,
  testLdContext,
} from './testing.ts';

const V = DEFAULT_VOCAB;
const T0 = Date.parse('2026-11-26T00:00:00.000Z');
const iso = (sec: number) => new Date(T0 + sec * 1000).toISOString();
const amber = { type: 'Property', value: { tlp: 'AMBER' } };

/** A Vehicle with speed instances at these seconds (values 100 + second / 60). */
function vehicle(id: string, seconds: number[], extra: Record<string, unknown> = {}) {
  return {
    id,
    type: 'Vehicle',
    speed: seconds.map((s) => ({ type: 'Property', value: 100 + s / 60, observedAt: iso(s) })),
    ...extra,
  };
}

for (const factory of testStoreFactories()) {
  describe.skipIf(factory.skip)(
    `temporal entities (provision) on ${factory.name}${factory.skip ? ` (skipped: ${factory.skip})` : ''}`,
    () => {
      let store: Store;
      let ts: TemporalStore;
      let temporal: TemporalService;
      let provision: TemporalProvision;
      let world: LiveTestWorld;
      const as: Record<string, Principal> = {};
      const clock = fixedClock(new Date(T0 + 86400_000));
      let n = 0;
      const fresh = () => `urn:ngsi-ld:Vehicle:prov-${++n}`;

      const read = async (who: string, id: string, params: Record<string, string> = {}) =>
        (await temporal.getEntity('', as[who] as Principal, id, { params }, undefined)).value;
      const speeds = async (who: string, id: string, params: Record<string, string> = {}) =>
        ((await read(who, id, params)).speed as Array<Record<string, unknown>>).map((i) => i.value);
      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e: { code?: string }) => e.code,
        );

      beforeAll(async () => {
        store = await factory.open(LIVE_TEST_MIGRATIONS);
        world = await openLiveWorld(store);
        for (const name of world.users.keys()) as[name] = await world.as(name);
        ts = new TemporalStore(store);
        const ld = testLdContext();
        temporal = new TemporalService({ store: ts, gate: world.gate, ld, clock });
        provision = new TemporalProvision({ gate: world.gate, ld, clock });
      });
      afterAll(async () => {
        await store?.close();
      });

      it('creates a temporal entity, then adds instances to it and joins its types', async () => {
        const id = fresh();
        const op = as['org-a-operator'] as Principal;
        expect(await provision.upsert('', op, vehicle(id, [0, 120]), undefined)).toEqual({
          created: true,
          id,
        });
        const e = await read('org-a-operator', id);
        expect(e.type).toBe('Vehicle');
        const series = e.speed as Array<Record<string, unknown>>;
        expect(series.map((i) => [i.value, i.observedAt])).toEqual([
          [100, iso(0)],
          [102, iso(120)],
        ]);
        expect(String(series[0]!.instanceId)).toMatch(/^urn:ngsi-ld:attribute:instance:/);
        expect(series[0]!.instanceId).not.toBe(series[1]!.instanceId);
        const again = { ...vehicle(id, [60]), type: ['Vehicle', 'Truck'] };
        expect(await provision.upsert('', op, again, undefined)).toEqual({ created: false, id });
        const after = await read('org-a-operator', id);
        expect(after.type).toEqual(['Vehicle', 'Truck']);
        expect(await speeds('org-a-operator', id)).toEqual([100, 101, 102]);
        await provision.append(
          '',
          op,
          id,
          { fuel: [{ type: 'Property', value: 40, observedAt: iso(30) }] },
          undefined,
        );
        expect(
          ((await read('org-a-operator', id)).fuel as Array<{ value: number }>).map((i) => i.value),
        ).toEqual([40]);
      });

      it('refuses payloads that are no temporal entity, and adds to nothing that does not exist', async () => {
        const op = as['org-a-operator'] as Principal;
        expect(await code(provision.upsert('', op, { type: 'Vehicle' }, undefined))).toBe(
          'CONTEXT_INVALID_ENTITY',
        );
        expect(await code(provision.upsert('', op, { id: fresh() }, undefined))).toBe(
          'CONTEXT_INVALID_ENTITY',
        );
        expect(
          await code(
            provision.upsert(
              '',
              op,
              { id: fresh(), type: 'Vehicle', expiresAt: 'urn:ngsi-ld:null' },
              undefined,
            ),
          ),
        ).toBe('CONTEXT_INVALID_ENTITY');
        expect(
          await code(
            provision.upsert(
              '',
              op,
              { id: fresh(), type: 'Vehicle', speed: [{ type: 'Property', value: 1, observedAt: 'noon' }] },
              undefined,
            ),
          ),
        ).toBe('CONTEXT_INVALID_ENTITY');
        expect(await code(provision.append('', op, 'not a uri', { speed: [] }, undefined))).toBe(
          'CONTEXT_INVALID_ENTITY',
        );
        expect(await code(provision.append('', op, fresh(), vehicle(fresh(), [0]), undefined))).toBe(
          'CONTEXT_INVALID_ENTITY',
        );
        expect(
          await code(
            provision.append('', op, fresh(), { speed: [{ type: 'Property', value: 1 }] }, undefined),
          ),
        ).toBe('ACCESS_OBJECT_NOT_FOUND');
      });

      it("is a marked object: roles, owner organisation and visibility are the gate's, and audited", async () => {
        const id = fresh();
        expect(
          await code(provision.upsert('', as['org-a-viewer'] as Principal, vehicle(id, [0]), undefined)),
        ).toBe('AUTH_ROLE_REQUIRED');
        await provision.upsert(
          '',
          as['org-a-operator'] as Principal,
          { ...vehicle(id, [0, 60]), marking: amber },
          undefined,
        );
        const answer = await temporal.getEntity(
          '',
          as['org-a-viewer'] as Principal,
          id,
          { params: {} },
          undefined,
        );
        expect(parseMarkingLabel(answer.marking ?? '')).toMatchObject({ tlp: 'AMBER', owners: ['org-a'] });
        // org-b is no client of org-a: the TLP:AMBER temporal entity does not exist for it.
        expect(await code(read('org-b-operator', id))).toBe('CONTEXT_LIVE_TEMPORAL_ENTITY_NOT_FOUND');
        expect(await code(provision.deleteEntity('', as['org-b-operator'] as Principal, id))).toBe(
          'ACCESS_OBJECT_NOT_FOUND',
        );
        expect(
          await code(provision.upsert('', as['org-b-operator'] as Principal, vehicle(id, [5]), undefined)),
        ).toBe('ACCESS_OBJECT_NOT_FOUND');
        expect(
          await code(
            provision.append(
              '',
              as['org-b-operator'] as Principal,
              id,
              { speed: [{ type: 'Property', value: 1 }] },
              undefined,
            ),
          ),
        ).toBe('ACCESS_OBJECT_NOT_FOUND');
        // A viewer of the owner sees it and changes nothing.
        const viewer = as['org-a-viewer'] as Principal;
        for (const attempt of [
          () => provision.append('', viewer, id, { speed: [{ type: 'Property', value: 1 }] }, undefined),
          () => provision.deleteAttribute('', viewer, id, 'speed', { deleteAll: true }, undefined),
          () => provision.deleteEntity('', viewer, id),
        ]) {
          expect(await code(attempt())).toBe('AUTH_ROLE_REQUIRED');
        }
        expect(await speeds('org-a-viewer', id)).toEqual([100, 101]);
        const audit = await listAudit(store.db, { ownerOrg: 'org-a' });
        const mine = audit.filter((r) => r.objectKind === 'temporal_entity' && r.objectId === id);
        expect(mine.map((r) => r.action)).toContain('create');
        await provision.deleteEntity('', as['org-a-analyst'] as Principal, id);
        const after = await listAudit(store.db, { ownerOrg: 'org-a', action: 'delete' });
        expect(after.some((r) => r.objectKind === 'temporal_entity' && r.objectId === id)).toBe(true);
        // Audit records name attributes, never values.
        expect(JSON.stringify(mine)).not.toContain('101');
      });

      it('modifies one instance in place and keeps aggregations exact', async () => {
        const id = fresh();
        const op = as['org-a-operator'] as Principal;
        await provision.upsert('', op, vehicle(id, [0, 60, 120]), undefined);
        const sum = async () => {
          const e = await read('org-a-operator', id, {
            timerel: 'between',
            timeAt: iso(0),
            endTimeAt: iso(180),
            aggrMethods: 'sum,max',
            aggrPeriodDuration: 'PT3M',
          });
          const s = e.speed as Record<string, Array<[number, string, string]>>;
          return [s.sum![0]![0], s.max![0]![0]];
        };
        expect(await sum()).toEqual([303, 102]);
        const before = (await read('org-a-operator', id)).speed as Array<Record<string, unknown>>;
        const target = String(before[1]!.instanceId);
        await provision.modifyInstance('', op, id, 'speed', target, { value: 150 }, undefined);
        const after = (await read('org-a-operator', id)).speed as Array<Record<string, unknown>>;
        expect(after.map((i) => [i.instanceId, i.value, i.observedAt])).toEqual([
          [before[0]!.instanceId, 100, iso(0)],
          [target, 150, iso(60)],
          [before[2]!.instanceId, 102, iso(120)],
        ]);
        expect(await sum()).toEqual([352, 150]);
        // Moved in time: it is answered at its new place, and every minute's rollup follows.
        await provision.modifyInstance(
          '',
          op,
          id,
          'speed',
          target,
          { type: 'Property', value: 7, observedAt: iso(150) },
          undefined,
        );
        expect(await speeds('org-a-operator', id)).toEqual([100, 102, 7]);
        expect(await sum()).toEqual([209, 102]);
        expect(
          await code(
            provision.modifyInstance(
              '',
              op,
              id,
              'speed',
              'urn:ngsi-ld:attribute:instance:none',
              { value: 1 },
              undefined,
            ),
          ),
        ).toBe('CONTEXT_ATTRIBUTE_NOT_FOUND');
        expect(
          await code(provision.modifyInstance('', op, id, 'fuel', target, { value: 1 }, undefined)),
        ).toBe('CONTEXT_ATTRIBUTE_NOT_FOUND');
      });

      it('hostile input: values near the largest double are stored and aggregated (was 500: float overflow)', async () => {
        const id = fresh();
        const op = as['org-a-operator'] as Principal;
        const huge = { type: 'Property', value: 1e308, observedAt: iso(0) };
        await provision.upsert(
          '',
          op,
          { id, type: 'Vehicle', speed: [huge, { ...huge, observedAt: iso(1) }] },
          undefined,
        );
        for (const aggrMethods of ['sum,avg,sumsq,stddev,max', 'sum,avg,sumsq,stddev,max,distinctCount']) {
          const e = await read('org-a-operator', id, { aggrMethods, aggrPeriodDuration: 'PT0S' });
          const s = e.speed as Record<string, Array<[number | null, string, string]>>;
          expect(s.max![0]![0]).toBe(1e308);
          expect(s.sum![0]![0]).toBe(Infinity);
        }
      });

      it('deletes an attribute by datasetId or all of it, and one instance', async () => {
        const id = fresh();
        const op = as['org-a-operator'] as Principal;
        const fuel = (value: number, sec: number, datasetId?: string) => ({
          type: 'Property',
          value,
          observedAt: iso(sec),
          ...(datasetId ? { datasetId } : {}),
        });
        const body = {
          ...vehicle(id, [0, 60]),
          fuelLevel: [fuel(67, 0), fuel(53, 60), fuel(40, 120, 'urn:ngsi-ld:Dataset:fuel')],
        };
        const fuels = async () =>
          ((await read('org-a-operator', id)).fuelLevel as Array<{ value: number }> | undefined)?.map(
            (i) => i.value,
          );
        await provision.upsert('', op, body, undefined);
        await provision.deleteAttribute('', op, id, 'fuelLevel', {}, undefined);
        expect(await fuels()).toEqual([40]);
        expect(await code(provision.deleteAttribute('', op, id, 'fuelLevel', {}, undefined))).toBe(
          'CONTEXT_ATTRIBUTE_NOT_FOUND',
        );
        await provision.deleteAttribute(
          '',
          op,
          id,
          'fuelLevel',
          { datasetId: 'urn:ngsi-ld:Dataset:fuel' },
          undefined,
        );
        expect(await fuels()).toBeUndefined();
        await provision.append(
          '',
          op,
          id,
          { fuelLevel: [fuel(1, 0), fuel(2, 0, 'urn:ngsi-ld:Dataset:fuel')] },
          undefined,
        );
        await provision.deleteAttribute('', op, id, 'fuelLevel', { deleteAll: true }, undefined);
        expect(await fuels()).toBeUndefined();
        const speed = (await read('org-a-operator', id)).speed as Array<Record<string, unknown>>;
        await provision.deleteInstance('', op, id, 'speed', String(speed[0]!.instanceId), undefined);
        expect(await speeds('org-a-operator', id)).toEqual([101]);
        expect(
          await code(provision.deleteInstance('', op, id, 'speed', String(speed[0]!.instanceId), undefined)),
        ).toBe('CONTEXT_ATTRIBUTE_NOT_FOUND');
      });

      it('deletes the temporal entity with its history; the id created again starts afresh', async () => {
        const id = fresh();
        const op = as['org-a-operator'] as Principal;
        await provision.upsert('', op, vehicle(id, [0, 60]), undefined);
        const old = (await read('org-a-operator', id)).speed as Array<Record<string, unknown>>;
        await provision.deleteEntity('', op, id);
        expect(await code(read('org-a-operator', id))).toBe('CONTEXT_LIVE_TEMPORAL_ENTITY_NOT_FOUND');
        expect(await code(provision.deleteEntity('', op, id))).toBe('ACCESS_OBJECT_NOT_FOUND');
        // Created again (by another organisation, even): the old instances are gone for good.
        const b = as['org-b-operator'] as Principal;
        expect((await provision.upsert('', b, vehicle(id, [300]), undefined)).created).toBe(true);
        expect(await speeds('org-b-operator', id)).toEqual([105]);
        expect(await code(read('org-a-operator', id, { timerel: 'before', timeAt: iso(200) }))).toBe('ok');
        expect(
          (await read('org-b-operator', id, { timerel: 'before', timeAt: iso(200) })).speed,
        ).toBeUndefined();
        expect(
          await code(
            provision.modifyInstance('', b, id, 'speed', String(old[0]!.instanceId), { value: 1 }, undefined),
          ),
        ).toBe('CONTEXT_ATTRIBUTE_NOT_FOUND');
        const { value: list } = await temporal.query(
          '',
          as['org-b-operator'] as Principal,
          { ids: [id], params: {} },
          undefined,
        );
        expect(list).toHaveLength(1);
      });

      it('filters by q and geo-query over the instances in the time window (clause 5.7.4.4)', async () => {
        const op = as['org-a-operator'] as Principal;
        const inWindow = iso(3600);
        const outside = iso(0);
        const scooter = (id: string, attrs: Record<string, Array<[unknown, string]>>) => {
          const body: Record<string, unknown> = { id, type: 'Scooter' };
          for (const [name, list] of Object.entries(attrs)) {
            body[name] = list.map(([value, observedAt]) =>
              name === 'location'
                ? { type: 'GeoProperty', value, observedAt }
                : { type: 'Property', value, observedAt },
            );
          }
          return body;
        };
        const fast = 'urn:ngsi-ld:Scooter:fast';
        const slow = 'urn:ngsi-ld:Scooter:slow';
        const idle = 'urn:ngsi-ld:Scooter:idle';
        const here = { type: 'Point', coordinates: [7.42, 43.73] };
        const far = { type: 'Point', coordinates: [2.35, 48.85] };
        await provision.upsert(
          '',
          op,
          scooter(fast, {
            speed: [
              [30, inWindow],
              [90, outside],
            ],
            heading: [[45, inWindow]],
            location: [[here, inWindow]],
          }),
          undefined,
        );
        await provision.upsert(
          '',
          op,
          scooter(slow, {
            speed: [
              [10, inWindow],
              [80, outside],
            ],
            heading: [[170, inWindow]],
            location: [
              [far, inWindow],
              [here, outside],
            ],
          }),
          undefined,
        );
        await provision.upsert('', op, scooter(idle, { speed: [[99, outside]] }), undefined);
        const window = { timerel: 'between', timeAt: iso(1800), endTimeAt: iso(7200) };
        const ids = async (params: Record<string, string>) =>
          (
            await temporal.query('', op, { types: ['Scooter'], params: { ...window, ...params } }, undefined)
          ).value.map((e) => e.id);
        expect(await ids({ q: 'speed>25' })).toEqual([fast]);
        expect(await ids({ q: 'speed>=5;heading<90' })).toEqual([fast]);
        expect(await ids({ q: 'speed>25|heading>100' })).toEqual([fast, slow]);
        expect(await ids({ q: 'speed==10..40' })).toEqual([fast, slow]);
        const near = { georel: 'near;maxDistance==1000', geometry: 'Point', coordinates: '[7.42,43.73]' };
        expect(await ids(near)).toEqual([fast]);
        expect(await ids({ ...near, q: 'speed<20' })).toEqual([]);
        // The entities answered carry their instances in the window only.
        const { value } = await temporal.query(
          '',
          op,
          { types: ['Scooter'], params: { ...window, q: 'speed>25' } },
          undefined,
        );
        expect((value[0]!.speed as Array<{ value: number }>).map((i) => i.value)).toEqual([30]);
        // Paged after filtering.
        expect(
          (
            await temporal.query(
              '',
              op,
              { types: ['Scooter'], limit: 1, offset: 1, params: { ...window, q: 'speed>5' } },
              undefined,
            )
          ).value.map((e) => e.id),
        ).toEqual([slow]);
        await expect(ids({ q: '>1' })).rejects.toMatchObject({ kind: 'invalid' });
        await expect(ids({ georel: 'near', geometry: 'Point', coordinates: 'x' })).rejects.toMatchObject({
          kind: 'invalid',
        });
      });

      it('pages instances by time past the most an answer holds: 206 with Content-Range (clause 6.3.10)', async () => {
        const small = new TemporalService({
          store: ts,
          gate: world.gate,
          ld: testLdContext(),
          clock,
          maxInstances: 2,
        });
        const id = fresh();
        const op = as['org-a-operator'] as Principal;
        await provision.upsert(
          '',
          op,
          {
            ...vehicle(id, [0, 60, 120, 180, 240]),
            fuel: [
              { type: 'Property', value: 9, observedAt: iso(90) },
              { type: 'Property', value: 8, observedAt: iso(200) },
            ],
          },
          undefined,
        );
        const oldest = await small.getEntity('', op, id, { params: {} }, undefined);
        expect(oldest.range).toBe(`date-time ${iso(0)}-${iso(60)}/*`);
        expect((oldest.value.speed as Array<{ value: number }>).map((i) => i.value)).toEqual([100, 101]);
        expect(oldest.value.fuel).toBeUndefined();
        const after = await small.getEntity(
          '',
          op,
          id,
          { params: { timerel: 'after', timeAt: iso(100) } },
          undefined,
        );
        expect(after.range).toBe(`date-time ${iso(100)}-${iso(180)}/*`);
        expect((after.value.speed as Array<{ value: number }>).map((i) => i.value)).toEqual([102, 103]);
        expect(after.value.fuel).toBeUndefined();
        const newest = await small.getEntity('', op, id, { params: { lastN: '4' } }, undefined);
        expect(newest.range).toBe(`date-time ${iso(240)}-${iso(180)}/4`);
        expect((newest.value.speed as Array<{ value: number }>).map((i) => i.value)).toEqual([103, 104]);
        expect((newest.value.fuel as Array<{ value: number }>).map((i) => i.value)).toEqual([8]);
        // Nothing left out: a plain answer.
        expect(
          (await small.getEntity('', op, id, { params: { lastN: '2' } }, undefined)).range,
        ).toBeUndefined();
        expect((await temporal.getEntity('', op, id, { params: {} }, undefined)).range).toBeUndefined();
      });

      it('answers an id with history from its entity and its temporal entity as one, each under its marking', async () => {
        const id = fresh();
        await ts.record([
          {
            kind: 'created',
            change: entityChange({
              id,
              type: [`${V}Vehicle`],
              [`${V}speed`]: { type: 'Property', value: 1, observedAt: iso(30) },
            }),
            at: iso(30),
          },
        ]);
        const op = as['org-a-operator'] as Principal;
        expect(
          (await provision.upsert('', op, { ...vehicle(id, [0, 60]), marking: amber }, undefined)).created,
        ).toBe(true);
        expect(await speeds('org-a-operator', id)).toEqual([100, 1, 101]);
        // org-b sees the entity's TLP:GREEN history only, not the TLP:AMBER temporal entity's.
        expect(await speeds('org-b-operator', id)).toEqual([1]);
        const { marking } = await temporal.getEntity('', op, id, { params: {} }, undefined);
        expect(parseMarkingLabel(marking ?? '')?.tlp).toBe('AMBER');
        await provision.deleteEntity('', op, id);
        expect(await speeds('org-a-operator', id)).toEqual([1]);
      });
    },
  );
}
