import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import { fixedClock } from '../../kernel/clock.ts';
import type { Store } from '../../ports/store.ts';
import type { Principal } from '../access/index.ts';
import { listAudit } from '../audit/index.ts';
import { type Marking, parseMarkingLabel } from '../sharing/index.ts';
import { parseDuration, parseTemporalQuery } from './temporal-query.ts';
import { TemporalService } from './temporal-service.ts';
import { type RecordedChange, TemporalStore } from './temporal-store.ts';
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

function observation(
  id: string,
  sec: number,
  temperature: number,
  extra: Record<string, unknown> = {},
): RecordedChange {
  const entity = {
    id,
    type: [`${V}WeatherObserved`],
    [`${V}temperature`]: { type: 'Property', value: temperature, observedAt: iso(sec) },
    ...extra,
  };
  return {
    kind: 'updated',
    change: entityChange(entity, { changed: Object.keys(entity).filter((k) => k !== 'id' && k !== 'type') }),
    at: iso(sec),
  };
}

describe('temporal query parameters', () => {
  it('parses durations and rejects malformed ones', () => {
    expect(parseDuration('PT1H')).toBe(3600);
    expect(parseDuration('P1DT30M')).toBe(86400 + 1800);
    expect(parseDuration('P1W')).toBe(7 * 86400);
    expect(parseDuration('PT0S')).toBe(0);
    expect(() => parseDuration('1H')).toThrow(/ISO 8601/);
    expect(() => parseDuration('PT')).toThrow(/ISO 8601/);
  });

  it('refuses the filters it does not apply to history instead of ignoring them', () => {
    expect(() => parseTemporalQuery({ csf: 'x' })).toThrow(
      expect.objectContaining({ code: 'CONTEXT_LIVE_UNSUPPORTED' }),
    );
    // scopeQ is applied (clause 4.19): a malformed one is bad data, a well-formed one is parsed.
    expect(() => parseTemporalQuery({ scopeQ: 'x' })).toThrow(
      expect.objectContaining({ code: 'CONTEXT_INVALID_QUERY' }),
    );
    expect(parseTemporalQuery({ scopeQ: '/Madrid/#' }).scope).toBeDefined();
    // A geo-query without its relation, or a geoproperty without a geo-query, is malformed.
    for (const name of ['geometry', 'coordinates', 'geoproperty']) {
      expect(() => parseTemporalQuery({ [name]: 'x' })).toThrow(
        expect.objectContaining({ code: 'CONTEXT_LIVE_TEMPORAL_QUERY_INVALID' }),
      );
    }
    expect(
      parseTemporalQuery({ q: 'speed>1', georel: 'near;maxDistance==10', geometry: 'Point' }),
    ).toMatchObject({
      q: 'speed>1',
      geo: { georel: 'near;maxDistance==10', geometry: 'Point' },
    });
  });

  it('validates format, options and orderBy (400, never ignored)', () => {
    expect(parseTemporalQuery({ format: 'simplified' }).representation).toBe('temporalValues');
    expect(parseTemporalQuery({ options: 'temporalValues,sysAttrs' }).representation).toBe('temporalValues');
    expect(parseTemporalQuery({ format: 'normalized', options: 'temporalValues' }).representation).toBe(
      'normalized',
    );
    expect(parseTemporalQuery({ orderBy: 'id' }).representation).toBe('normalized');
    for (const params of [
      { format: 'keyValues' },
      { format: 'temporalvalues' },
      { options: 'temporalValues,aggregatedValues' },
      { options: 'nothing' },
      { orderBy: 'name' },
      { format: 'aggregatedValues' },
    ]) {
      expect(() => parseTemporalQuery(params)).toThrow(
        expect.objectContaining({ code: 'CONTEXT_LIVE_TEMPORAL_QUERY_INVALID' }),
      );
    }
  });

  it('validates timerel, timeAt, lastN and aggrMethods', () => {
    expect(() => parseTemporalQuery({ timerel: 'during', timeAt: iso(0) })).toThrow(/timerel/);
    expect(() => parseTemporalQuery({ timerel: 'after' })).toThrow(/timeAt/);
    expect(() => parseTemporalQuery({ timerel: 'between', timeAt: iso(10) })).toThrow(/endTimeAt/);
    expect(() => parseTemporalQuery({ timerel: 'between', timeAt: iso(10), endTimeAt: iso(5) })).toThrow(
      /after/,
    );
    expect(() => parseTemporalQuery({ timerel: 'after', timeAt: 'yesterday' })).toThrow(/DateTime/);
    expect(() => parseTemporalQuery({ lastN: '0' })).toThrow(/lastN/);
    expect(() => parseTemporalQuery({ aggrMethods: 'median' })).toThrow(/median/);
    expect(() => parseTemporalQuery({ options: 'aggregatedValues' })).toThrow(/aggrMethods/);
    expect(
      parseTemporalQuery({ options: 'aggregatedValues', aggrMethods: 'avg,max', aggrPeriodDuration: 'PT1M' }),
    ).toMatchObject({
      representation: 'aggregatedValues',
      aggrMethods: ['avg', 'max'],
      aggrPeriodSeconds: 60,
    });
  });
});

for (const factory of testStoreFactories()) {
  describe.skipIf(factory.skip)(
    `temporal history on ${factory.name}${factory.skip ? ` (skipped: ${factory.skip})` : ''}`,
    () => {
      let store: Store;
      let ts: TemporalStore;
      let temporal: TemporalService;
      let world: LiveTestWorld;
      /** Readers: an operator of each organisation. */
      const readers: Record<string, Principal> = {};
      const keysOf = (orgId: string) => readers[orgId] as Principal;
      const clock = fixedClock(new Date(T0 + 86400_000));

      beforeAll(async () => {
        store = await factory.open(LIVE_TEST_MIGRATIONS);
        world = await openLiveWorld(store);
        for (const org of ['org-a', 'org-b', 'org-c']) readers[org] = await world.as(`${org}-operator`);
        ts = new TemporalStore(store);
        temporal = new TemporalService({ store: ts, gate: world.gate, ld: testLdContext(), clock });
        const changes: RecordedChange[] = [];
        for (let s = 0; s < 10; s++)
          changes.push(observation('urn:ngsi-ld:WeatherObserved:a', s * 60, 10 + s));
        changes.push(observation('urn:ngsi-ld:WeatherObserved:b', 0, 99));
        const secret = entityChange(
          {
            id: 'urn:ngsi-ld:WeatherObserved:secret',
            type: [`${V}WeatherObserved`],
            [`${V}temperature`]: { type: 'Property', value: 1, observedAt: iso(0) },
          },
          {
            ownerOrg: 'org-c',
            marking: { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } },
          },
        );
        changes.push({ kind: 'created', change: secret, at: iso(0) });
        await ts.record(changes);
      });
      afterAll(async () => {
        await store?.close();
      });

      it('returns the normalized temporal representation, oldest first, with instance ids', async () => {
        const { value: e } = await temporal.getEntity(
          '',
          keysOf('org-a'),
          'urn:ngsi-ld:WeatherObserved:a',
          { params: {} },
          undefined,
        );
        expect(e.id).toBe('urn:ngsi-ld:WeatherObserved:a');
        expect(e.type).toBe('WeatherObserved');
        const series = e.temperature as Array<Record<string, unknown>>;
        expect(series.map((i) => i.value)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
        expect(series[0]).toMatchObject({ type: 'Property', observedAt: iso(0) });
        expect(String(series[0]!.instanceId)).toMatch(/^urn:ngsi-ld:attribute:instance:/);
      });

      it('filters by timerel before, after and between, and lastN', async () => {
        const values = async (params: Record<string, string>) => {
          const { value: e } = await temporal.getEntity(
            '',
            keysOf('org-a'),
            'urn:ngsi-ld:WeatherObserved:a',
            { params },
            undefined,
          );
          return ((e.temperature as Array<{ value: number }> | undefined) ?? []).map((i) => i.value);
        };
        expect(await values({ timerel: 'before', timeAt: iso(120) })).toEqual([10, 11]);
        expect(await values({ timerel: 'after', timeAt: iso(480) })).toEqual([18, 19]);
        expect(await values({ timerel: 'between', timeAt: iso(60), endTimeAt: iso(240) })).toEqual([
          11, 12, 13,
        ]);
        expect(await values({ lastN: '3' })).toEqual([17, 18, 19]);
        expect(await values({ timerel: 'before', timeAt: iso(300), lastN: '2' })).toEqual([13, 14]);
      });

      it('gives the simplified temporal representation (temporalValues)', async () => {
        const { value: e } = await temporal.getEntity(
          '',
          keysOf('org-a'),
          'urn:ngsi-ld:WeatherObserved:a',
          { params: { options: 'temporalValues', lastN: '2' } },
          undefined,
        );
        expect(e.temperature).toEqual({
          type: 'Property',
          values: [
            [18, iso(480)],
            [19, iso(540)],
          ],
        });
      });

      it('aggregates per period with every method', async () => {
        const { value: e } = await temporal.getEntity(
          '',
          keysOf('org-a'),
          'urn:ngsi-ld:WeatherObserved:a',
          {
            params: {
              timerel: 'between',
              timeAt: iso(0),
              endTimeAt: iso(600),
              aggrMethods: 'totalCount,distinctCount,sum,avg,min,max,stddev,sumsq',
              aggrPeriodDuration: 'PT5M',
            },
          },
          undefined,
        );
        const t = e.temperature as Record<string, Array<[number, string, string]>>;
        expect(t.totalCount).toEqual([
          [5, iso(0), iso(300)],
          [5, iso(300), iso(600)],
        ]);
        expect(t.sum!.map((x) => x[0])).toEqual([60, 85]);
        expect(t.avg!.map((x) => x[0])).toEqual([12, 17]);
        expect(t.min!.map((x) => x[0])).toEqual([10, 15]);
        expect(t.max!.map((x) => x[0])).toEqual([14, 19]);
        expect(t.distinctCount!.map((x) => x[0])).toEqual([5, 5]);
        expect(t.stddev![0]![0]).toBeCloseTo(Math.sqrt(2.5), 6);
        expect(t.sumsq![0]![0]).toBe(100 + 121 + 144 + 169 + 196);
      });

      it('answers aligned ranges from the per-minute rollups with the same values as from the instances', async () => {
        const query = (methods: string) =>
          temporal
            .getEntity(
              '',
              keysOf('org-a'),
              'urn:ngsi-ld:WeatherObserved:a',
              {
                params: {
                  timerel: 'between',
                  timeAt: iso(0),
                  endTimeAt: iso(600),
                  aggrMethods: methods,
                  aggrPeriodDuration: 'PT5M',
                },
              },
              undefined,
            )
            .then((a) => a.value);
        const common = 'totalCount,sum,avg,min,max,stddev,sumsq';
        const fromRollups = (await query(common)).temperature as Record<
          string,
          Array<[number, string, string]>
        >;
        const fromInstances = (await query(`${common},distinctCount`)).temperature as Record<
          string,
          Array<[number, string, string]>
        >;
        for (const m of common.split(',')) {
          expect(fromRollups[m]!.map((x) => x[1])).toEqual(fromInstances[m]!.map((x) => x[1]));
          fromRollups[m]!.forEach((x, i) => {
            expect(x[0]).toBeCloseTo(fromInstances[m]![i]![0], 9);
          });
        }
      });

      it('aggregates the whole range with PT0S', async () => {
        const { value: e } = await temporal.getEntity(
          '',
          keysOf('org-a'),
          'urn:ngsi-ld:WeatherObserved:a',
          { params: { aggrMethods: 'avg', aggrPeriodDuration: 'PT0S' } },
          undefined,
        );
        const avg = (e.temperature as Record<string, Array<[number, string, string]>>).avg!;
        expect(avg).toHaveLength(1);
        expect(avg[0]![0]).toBe(14.5);
      });

      it('queries by type and hides entities the reader may not see', async () => {
        const { value: list } = await temporal.query(
          '',
          keysOf('org-a'),
          { types: ['WeatherObserved'], params: { lastN: '1' } },
          undefined,
        );
        expect(list.map((e) => e.id)).toEqual([
          'urn:ngsi-ld:WeatherObserved:a',
          'urn:ngsi-ld:WeatherObserved:b',
        ]);
        const { value: owner } = await temporal.query(
          '',
          keysOf('org-c'),
          { types: ['WeatherObserved'], params: {} },
          undefined,
        );
        expect(owner.map((e) => e.id)).toContain('urn:ngsi-ld:WeatherObserved:secret');
        await expect(
          temporal.getEntity(
            '',
            keysOf('org-a'),
            'urn:ngsi-ld:WeatherObserved:secret',
            { params: {} },
            undefined,
          ),
        ).rejects.toMatchObject({ code: 'CONTEXT_LIVE_TEMPORAL_ENTITY_NOT_FOUND' });
        await expect(
          temporal.query('', keysOf('org-a'), { idPattern: '(', params: {} }, undefined),
        ).rejects.toMatchObject({ code: 'CONTEXT_LIVE_TEMPORAL_QUERY_INVALID' });
      });

      it('gap 11: idPatterns run in RE2 over visible ids only, the same on every store', async () => {
        const ids = async (idPattern: string, org = 'org-a') =>
          (await temporal.query('', keysOf(org), { idPattern, params: {} }, undefined)).value.map(
            (e) => e.id,
          );
        expect(await ids('^urn:ngsi-ld:WeatherObserved:[[:alpha:]]$')).toEqual([
          'urn:ngsi-ld:WeatherObserved:a',
          'urn:ngsi-ld:WeatherObserved:b',
        ]);
        expect(await ids('(?i)^URN:NGSI-LD:WEATHEROBSERVED:.*.*.*.*.*.*.*.*.*!')).toEqual([]);
        expect(await ids('secret$')).toEqual([]);
        expect(await ids('secret$', 'org-c')).toEqual(['urn:ngsi-ld:WeatherObserved:secret']);
        for (const p of ['\\mWeather', '(a)\\1']) {
          await expect(ids(p)).rejects.toMatchObject({
            code: 'CONTEXT_LIVE_TEMPORAL_QUERY_INVALID',
            message: expect.stringContaining('is not a regular expression this broker runs'),
          });
        }
      });

      describe('gap 6: one admin for everything — history retention belongs to each owner', () => {
        it('prunes history past the retention its owner organisation set for the type', async () => {
          const adminA = await world.as('org-a-admin');
          const adminC = await world.as('org-c-admin');
          // Only an organisation's administrators set its retention; no one sets another organisation's.
          for (const who of ['org-a-operator', 'org-a-viewer', 'org-a-responder']) {
            await expect(
              temporal.setRetention(await world.as(who), '', 'WeatherObserved', 60),
            ).rejects.toMatchObject({ code: 'AUTH_ROLE_REQUIRED' });
          }
          await temporal.setRetention(adminA, '', 'WeatherObserved', 86400 - 300);
          expect(await temporal.listRetention(keysOf('org-a'), '')).toEqual([
            { entityType: `${V}WeatherObserved`, seconds: 86100 },
          ]);
          expect(await temporal.listRetention(adminC, '')).toEqual([]);
          // The rule is org-a's object at the gate: created, audited under org-a.
          const audit = await listAudit(store.db, { ownerOrg: 'org-a', action: 'create' });
          expect(audit.map((r) => r.objectKind)).toContain('history_retention');
          // The clock is one day after T0: org-a's instances older than T0+300 s go (a: 10..14; b);
          // org-c's entity of the same type keeps its history (its organisation set no rule).
          expect(await temporal.prune()).toBe(6);
          const { value: e } = await temporal.getEntity(
            '',
            keysOf('org-a'),
            'urn:ngsi-ld:WeatherObserved:a',
            { params: {} },
            undefined,
          );
          expect((e.temperature as unknown[]).length).toBe(5);
          const secret = await temporal.getEntity(
            '',
            keysOf('org-c'),
            'urn:ngsi-ld:WeatherObserved:secret',
            { params: {} },
            undefined,
          );
          expect(secret.value.temperature).toBeDefined();
          await temporal.setRetention(adminC, '', 'WeatherObserved', 3600);
          expect(await temporal.prune()).toBe(1);
          await temporal.setRetention(adminC, '', 'WeatherObserved', null);
          expect(await temporal.listRetention(adminC, '')).toEqual([]);
          await expect(temporal.setRetention(adminA, '', 'WeatherObserved', -1)).rejects.toMatchObject({
            code: 'CONTEXT_LIVE_TEMPORAL_QUERY_INVALID',
          });
        });
      });

      describe('gap 1: history survives its entity', () => {
        const X = 'urn:ngsi-ld:Camera:x1';
        const red = (user: string): Marking => ({
          tlp: 'RED',
          audience: { orgs: [], communities: [], users: [user] },
        });
        const clear: Marking = { tlp: 'CLEAR', audience: { orgs: [], communities: [], users: [] } };
        const camera = (sec: number, count: number, createdSec: number) => ({
          id: X,
          type: [`${V}Camera`],
          createdAt: iso(createdSec),
          [`${V}count`]: { type: 'Property', value: count, observedAt: iso(sec) },
        });
        const change = (
          kind: RecordedChange['kind'],
          sec: number,
          entity: ReturnType<typeof camera>,
          opts: Parameters<typeof entityChange>[1],
        ): RecordedChange => ({
          kind,
          change: entityChange(entity, { tenant: 'gap1', ...opts, deleted: kind === 'deleted' }),
          at: iso(sec),
        });

        it('a re-created id starts a new incarnation with no access to the old history', async () => {
          const a = await world.as('org-a-operator');
          const b = await world.as('org-b-operator');
          const byA = { ownerOrg: 'org-a', createdBy: a.userId, marking: red(a.userId) };
          const byB = { ownerOrg: 'org-b', createdBy: b.userId, marking: clear };
          await ts.record([
            change('created', 1000, camera(1000, 1, 1000), byA),
            change('updated', 1010, camera(1010, 2, 1000), byA),
            change('updated', 1020, camera(1020, 3, 1000), byA),
          ]);
          const before = await temporal.getEntity('gap1', a, X, { params: {} }, undefined);
          expect((before.value.count as unknown[]).length).toBe(3);
          expect(before.marking).toBe('TLP:RED; owner=org-a');
          // Deleted by org-a (an event without incarnation: the core's today), created again by org-b.
          await ts.record([change('deleted', 1030, camera(1020, 3, 1000), byA)]);
          await ts.record([
            change('created', 1040, camera(1040, 100, 1040), byB),
            change('updated', 1050, camera(1050, 101, 1040), byB),
          ]);
          const seen = await temporal.getEntity('gap1', b, X, { params: {} }, undefined);
          expect((seen.value.count as Array<{ value: number }>).map((i) => i.value)).toEqual([100, 101]);
          expect(seen.marking).toBe('TLP:CLEAR; owner=org-b');
          // Nobody reads the old history any more — it is gone with its entity.
          const anon = await temporal.getEntity('gap1', null, X, { params: {} }, undefined);
          expect((anon.value.count as Array<{ value: number }>).map((i) => i.value)).toEqual([100, 101]);
          const asA = await temporal.getEntity('gap1', a, X, { params: {} }, undefined);
          expect((asA.value.count as Array<{ value: number }>).map((i) => i.value)).toEqual([100, 101]);
          const rows = await store.db
            .selectFrom('context_live_attr_instance' as never)
            .select(['value_num' as never])
            .where('tenant' as never, '=', 'gap1' as never)
            .execute();
          expect(rows.map((r) => (r as { value_num: number }).value_num).sort()).toEqual([100, 101]);
        });

        it('keeps incarnations apart whatever order their events arrive in', async () => {
          const a = await world.as('org-a-operator');
          const b = await world.as('org-b-operator');
          const Y = 'urn:ngsi-ld:Camera:y1';
          const cam = (sec: number, v: number, created: number) => ({ ...camera(sec, v, created), id: Y });
          const byA = { ownerOrg: 'org-a', createdBy: a.userId, marking: red(a.userId), incarnation: 'ya' };
          const byB = { ownerOrg: 'org-b', createdBy: b.userId, marking: clear, incarnation: 'yb' };
          await ts.record([change('created', 2000, cam(2000, 1, 2000), byA)]);
          // org-b's incarnation is recorded before org-a's deletion and a late update of org-a's arrive.
          await ts.record([change('created', 2040, cam(2040, 100, 2040), byB)]);
          await ts.record([
            change('updated', 2010, cam(2010, 2, 2000), byA),
            change('deleted', 2030, cam(2010, 2, 2000), byA),
          ]);
          await ts.record([change('updated', 2020, cam(2020, 3, 2000), byA)]);
          for (const reader of [a, b, null]) {
            const { value } = await temporal.getEntity('gap1', reader, Y, { params: {} }, undefined);
            expect((value.count as Array<{ value: number }>).map((i) => i.value)).toEqual([100]);
          }
          const current = await ts.currentEntities('gap1', [Y]);
          expect(current.get(Y)).toMatchObject({ incarnation: 'yb', ownerOrg: 'org-b', deleted: false });
        });
      });

      describe('derived data follows its sources: history keeps the marking it was recorded under', () => {
        it('shows each instance only to who may see the entity now and its marking then', async () => {
          const a = await world.as('org-a-operator');
          const b = await world.as('org-b-operator');
          const Z = 'urn:ngsi-ld:Camera:z1';
          const green: Marking = { tlp: 'GREEN', audience: { orgs: [], communities: [], users: [] } };
          const amber: Marking = {
            tlp: 'AMBER',
            pap: 'RED',
            audience: { orgs: [], communities: [], users: [] },
          };
          const obs = (sec: number, v: number, marking: Marking): RecordedChange => ({
            kind: 'updated',
            change: entityChange(
              {
                id: Z,
                type: [`${V}Camera`],
                createdAt: iso(0),
                [`${V}count`]: { type: 'Property', value: v, observedAt: iso(sec) },
              },
              { tenant: 'marks', ownerOrg: 'org-a', createdBy: a.userId, marking },
            ),
            at: iso(sec),
          });
          await ts.record([obs(10, 1, green), obs(20, 2, amber), obs(30, 3, green)]);
          const values = async (reader: Principal) => {
            const r = await temporal.getEntity('marks', reader, Z, { params: {} }, undefined);
            return {
              values: ((r.value.count as Array<{ value: number }> | undefined) ?? []).map((i) => i.value),
              label: parseMarkingLabel(r.marking ?? ''),
            };
          };
          // The owner sees everything, labelled with the tightest marking it holds.
          expect(await values(a)).toEqual({
            values: [1, 2, 3],
            label: { tlp: 'AMBER', pap: 'RED', owners: ['org-a'] },
          });
          // Widening the entity again does not widen what was recorded while it was AMBER.
          expect(await values(b)).toEqual({ values: [1, 3], label: { tlp: 'GREEN', owners: ['org-a'] } });
          const aggregate = await temporal.getEntity(
            'marks',
            b,
            Z,
            { params: { aggrMethods: 'sum', aggrPeriodDuration: 'PT0S' } },
            undefined,
          );
          expect((aggregate.value.count as { sum: Array<[number]> }).sum[0]![0]).toBe(4);
          // Tightening it hides its whole history at once.
          await ts.record([obs(40, 4, amber)]);
          await expect(temporal.getEntity('marks', b, Z, { params: {} }, undefined)).rejects.toMatchObject({
            code: 'CONTEXT_LIVE_TEMPORAL_ENTITY_NOT_FOUND',
          });
        });
      });
    },
  );
}
