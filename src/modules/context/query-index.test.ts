/**
 * The attribute value index of q (attribute-values.ts, query-index.ts) answers exactly what evaluating q on
 * every visible entity answers: random entities of every attribute shape, random queries, compared with
 * matchesQuery and with the service that evaluates q without the index, before and after random writes,
 * with paging, counts and geo-queries. `SAFECITY_QINDEX_SEED=<seed>` replays a run.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../adapters/bus/index.ts';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import type { EventBus } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { TransactionalOutbox } from '../events/index.ts';
import { emptyAudience, principalReadKeys } from '../sharing/marking.ts';
import { backfillAttributeValues } from './attribute-values.ts';
import { type Caller, ContextService, type EntityQuery } from './context-service.ts';
import type { ContextEvents } from './entity-change-event.ts';
import type { ActiveContext } from './json-ld-context.ts';
import { ContextResolver } from './json-ld-context.ts';
import { matchesQuery, parseQuery } from './query-language.ts';
import { CONTEXT_TEST_MIGRATIONS, openTestDirectory } from './testing.ts';

function callerOf(org: string): Caller {
  return {
    tenant: '',
    principal: { userId: `u-${org}`, orgId: org, roles: ['operator'] },
    readKeys: principalReadKeys({ userId: `u-${org}`, orgId: org, communities: [], patronOrgs: [] }),
    defaultMarking: { tlp: 'GREEN', audience: emptyAudience() },
  };
}

const SEED = Number(process.env.SAFECITY_QINDEX_SEED ?? Math.floor(Math.random() * 2 ** 31));

function rng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x7fffffff;
  };
}

const NUMBERS = [0, 1, 2, 3, 5, 7, 2.5, -1, 10, 1e21];
const STRINGS = ['x', 'y', 'z', 'X', '10', 'urn:x:1', '2024-05-01T10:00:00Z', '2024-05-01', 'a'.repeat(300)];
const DATES = ['2024-05-01T10:00:00Z', '2024-05-01', '2024-04-30T00:00:00Z', '2024-05-01T10:00:00+02:00'];

function generator(rand: () => number) {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const scalar = (): unknown => pick([() => pick(NUMBERS), () => pick(STRINGS), () => rand() < 0.5])();
  const attribute = (): unknown =>
    pick([
      () => ({ type: 'Property', value: pick(NUMBERS) }),
      () => ({ type: 'Property', value: pick(NUMBERS) }),
      () => ({ type: 'Property', value: pick(STRINGS) }),
      () => ({ type: 'Property', value: rand() < 0.5 }),
      () => ({ type: 'Property', value: [scalar(), scalar(), [scalar()]] }),
      () => [
        { type: 'Property', value: scalar(), datasetId: 'urn:ds:1' },
        { type: 'Property', value: scalar() },
      ],
      () => ({ type: 'Property', value: { '@type': 'DateTime', '@value': pick(DATES) } }),
      () => ({ type: 'Property', value: { '@type': 'xsd:int', '@value': pick(NUMBERS) } }),
      () => ({ type: 'Relationship', object: pick(['urn:x:1', 'urn:x:2']) }),
      () => ({ type: 'LanguageProperty', languageMap: { en: pick(STRINGS), fr: pick(STRINGS) } }),
      () => ({ type: 'JsonProperty', json: pick([pick(NUMBERS), { k: pick(NUMBERS) }, [1, 'x']]) }),
      () => ({ type: 'ListProperty', valueList: [scalar(), scalar()] }),
      () => ({ type: 'Property', value: { k: pick(NUMBERS), s: pick(STRINGS) } }),
      () => ({ type: 'Property', value: pick(NUMBERS), sub: { type: 'Property', value: pick(NUMBERS) } }),
    ])();
  const entity = (id: string, marking: string): Record<string, unknown> => {
    const body: Record<string, unknown> = {
      id,
      type: 'R',
      location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [rand(), rand()] } },
      marking: { tlp: marking },
    };
    for (const a of ['a', 'b', 'c', 'd']) if (rand() < 0.8) body[a] = attribute();
    return body;
  };
  const value = (op: string): string => {
    if (op === '~=' || op === '!~=') return pick(['^x', 'y$', '^2024', '"^(?i)x$"']);
    return pick([
      () => String(pick(NUMBERS)),
      () => `"${pick(STRINGS.slice(0, 8))}"`,
      () => pick(['urn:x:1', 'x', 'true', 'false']),
      () => pick(DATES),
      () =>
        pick(['1..5', '"x".."z"', '2024-04-30T00:00:00Z..2024-05-01T12:00:00Z', '2.5..2.5', 'false..true']),
      () => pick(['1,3,7', '"x","y"', '1,"x",true', '2024-05-01T10:00:00Z,2024-05-01']),
      () => `"${'a'.repeat(300)}"`,
    ])();
  };
  const term = (depth: number): string => {
    if (depth < 2 && rand() < 0.2) return `(${expression(depth + 1)})`;
    const path = pick(['a', 'b', 'c', 'd', 'a', 'b', 'a.sub', 'b[k]', 'id']);
    if (rand() < 0.1) return path;
    if (path === 'id') return `id==urn:ngsi-ld:R:${Math.floor(rand() * 40)}`;
    const op = pick(['==', '==', '==', '!=', '>', '>=', '<', '<=', '~=']);
    return `${path}${op}${value(op)}`;
  };
  const expression = (depth = 0): string => {
    let q = term(depth);
    const n = Math.floor(rand() * 3);
    for (let i = 0; i < n; i++) q += `${rand() < 0.6 ? ';' : '|'}${term(depth)}`;
    return q;
  };
  return { entity, attribute, expression, pick };
}

for (const f of testStoreFactories()) {
  describe.skipIf(f.skip)(
    `q on the attribute value index, ${f.name}${f.skip ? ` (skipped: ${f.skip})` : ''}`,
    () => {
      let store: Store;
      let bus: EventBus;
      let outbox: TransactionalOutbox;
      let indexed: ContextService;
      let plain: ContextService;
      let ctx: ActiveContext;
      const me = callerOf('o');
      const other = callerOf('p');
      const rand = rng(SEED);
      const gen = generator(rand);
      const owners = new Map<string, Caller>();

      beforeAll(async () => {
        store = await f.open(CONTEXT_TEST_MIGRATIONS);
        bus = createMemoryBus();
        const { gate } = openTestDirectory(store);
        outbox = new TransactionalOutbox({ store, bus });
        const common = {
          store,
          bus,
          events: outbox.emitter<ContextEvents>('context'),
          gate,
          resolver: new ContextResolver(),
        };
        indexed = new ContextService(common);
        plain = new ContextService({ ...common, attributeIndex: 'maintain' });
        ctx = await indexed.resolveContext(null);
        for (const who of [me, other]) {
          const bodies = [];
          for (let i = 0; i < 60; i++) {
            const id = `urn:ngsi-ld:R:${who === me ? i : 60 + i}`;
            owners.set(id, who);
            bodies.push(gen.entity(id, gen.pick(['GREEN', 'AMBER'])));
          }
          const r = await indexed.batchCreate(
            who,
            bodies.map((body) => ({ body, ctx })),
          );
          expect(r.errors).toEqual([]);
        }
      });
      afterAll(async () => {
        await indexed?.close();
        await plain?.close();
        await outbox?.stop();
        await bus?.close();
        await store?.close();
      });

      const ids = (r: { items: { entity: { id: string } }[] }) => r.items.map((v) => v.entity.id);

      /** Every comparison of one attribute with every value of the pools: a check of each indexed test. */
      async function compareEveryComparison(): Promise<void> {
        const visible = (await plain.queryEntities(me, { type: 'R', limit: 1000 }, ctx)).items.map(
          (v) => v.entity,
        );
        const values = [
          ...NUMBERS.map(String),
          ...DATES,
          ...STRINGS.map((x) => `"${x}"`),
          'true',
          'false',
          'urn:x:1',
          '1..5',
          '2024-04-30T00:00:00Z..2024-05-01T12:00:00Z',
          'false..true',
          '1,"x",true,2024-05-01',
        ];
        for (const op of ['==', '>', '>=', '<', '<=']) {
          for (const value of values) {
            for (const q of [`a${op}${value}`, `b${op}${value}|c${op}${value}`]) {
              let ast: ReturnType<typeof parseQuery>;
              try {
                ast = parseQuery(q, ctx.expandTerm);
              } catch {
                continue;
              }
              const expected = visible.filter((e) => matchesQuery(e, ast)).map((e) => e.id);
              const r = await indexed.queryEntities(me, { type: 'R', q, count: true, limit: 1000 }, ctx);
              expect(ids(r), `q=${q}`).toEqual(expected);
              expect(r.count, `q=${q}`).toBe(expected.length);
            }
          }
        }
      }

      async function compareRandomQueries(n: number): Promise<void> {
        const visible = (await plain.queryEntities(me, { type: 'R', limit: 1000 }, ctx)).items.map(
          (v) => v.entity,
        );
        expect(visible.length).toBeGreaterThan(40);
        expect(visible.length).toBeLessThan(120);
        const within = {
          georel: 'within',
          geometry: 'Polygon',
          coordinates: '[[[0,0],[0.6,0],[0.6,0.6],[0,0.6],[0,0]]]',
        };
        let matched = 0;
        for (let i = 0; i < n; i++) {
          const q = gen.expression();
          const what = `seed ${SEED}, q=${q}`;
          let ast: ReturnType<typeof parseQuery>;
          try {
            ast = parseQuery(q, ctx.expandTerm);
          } catch {
            await expect(indexed.queryEntities(me, { type: 'R', q }, ctx), what).rejects.toThrow();
            continue;
          }
          const expected = visible.filter((e) => matchesQuery(e, ast)).map((e) => e.id);
          matched += expected.length;
          const ask = (svc: ContextService, extra: Partial<EntityQuery>) =>
            svc.queryEntities(me, { type: 'R', q, count: true, ...extra }, ctx);
          const all = await ask(indexed, { limit: 1000 });
          expect(ids(all), what).toEqual(expected);
          expect(all.count, what).toBe(expected.length);
          const page = await ask(indexed, { limit: 3, offset: 2 });
          expect(ids(page), what).toEqual(expected.slice(2, 5));
          expect(page.count, what).toBe(expected.length);
          const geo = await ask(indexed, { limit: 1000, geo: within });
          const geoPlain = await ask(plain, { limit: 1000, geo: within });
          expect(ids(geo), what).toEqual(ids(geoPlain));
          expect(geo.count, what).toBe(geoPlain.count);
          const near = { georel: 'near;maxDistance==40000', geometry: 'Point', coordinates: '[0.3,0.3]' };
          const nearPage = await ask(indexed, { limit: 4, offset: 1, geo: near });
          const nearPlain = await ask(plain, { limit: 4, offset: 1, geo: near });
          expect(ids(nearPage), what).toEqual(ids(nearPlain));
          expect(nearPage.count, what).toBe(nearPlain.count);
        }
        // The queries are not all empty: the comparisons above compared something.
        expect(matched, `seed ${SEED}`).toBeGreaterThan(n);
      }

      it(`answers what matchesQuery answers on the visible entities (seed ${SEED})`, async () => {
        await compareEveryComparison();
        await compareRandomQueries(40);
      }, 300_000);

      it('stays exact through every kind of write', async () => {
        const ids = [...owners.keys()];
        for (let i = 0; i < 50; i++) {
          const id = gen.pick(ids);
          const who = owners.get(id)!;
          const attr = gen.pick(['a', 'b', 'c', 'd']);
          const op = Math.floor(rand() * 7);
          const attempt = async () => {
            if (op === 0) await indexed.updateAttributes(who, id, { [attr]: gen.attribute() }, ctx);
            else if (op === 1) await indexed.appendAttributes(who, id, { [attr]: gen.attribute() }, ctx);
            else if (op === 2) await indexed.deleteAttribute(who, id, attr, ctx);
            else if (op === 3) await indexed.mergeEntity(who, id, { [attr]: gen.attribute() }, ctx);
            else if (op === 4)
              // A new type too, sometimes: the rows' copies of the types follow.
              await indexed.replaceEntity(
                who,
                id,
                { ...gen.entity(id, 'GREEN'), type: gen.pick(['R', 'Q']) },
                ctx,
              );
            else if (op === 5) {
              const r = await indexed.batchUpsert(who, [
                { body: gen.entity(id, gen.pick(['GREEN', 'AMBER'])), ctx },
              ]);
              expect(r.errors).toEqual([]);
            } else await indexed.deleteEntity(who, id);
          };
          // An entity deleted before, or an attribute it lacks, answers 404: the write did nothing.
          await attempt().catch((e: { code?: string }) => {
            if (!/NOT_FOUND/.test(String(e?.code))) throw e;
          });
        }
        await compareEveryComparison();
        await compareRandomQueries(30);
      }, 300_000);

      it('is rebuilt from the entities by the migration', async () => {
        await sql`delete from context_entity_value`.execute(store.db);
        await backfillAttributeValues(store.db);
        await compareRandomQueries(20);
      });

      it('follows marking and type changes that leave the values as they were', async () => {
        const id = 'urn:ngsi-ld:T:1';
        const body = (type: string) => ({ id, type, n: { type: 'Property', value: 1 } });
        await indexed.createEntity(other, { ...body('T'), marking: { tlp: 'GREEN' } }, ctx);
        const found = async (type: string) => {
          const r = await indexed.queryEntities(me, { type, q: 'n==1', count: true }, ctx);
          return { ids: ids(r), count: r.count };
        };
        expect(await found('T')).toEqual({ ids: [id], count: 1 });
        await indexed.mergeEntity(other, id, { marking: { tlp: 'AMBER' } }, ctx);
        expect(await found('T')).toEqual({ ids: [], count: 0 });
        await indexed.mergeEntity(other, id, { marking: { tlp: 'GREEN' } }, ctx);
        expect(await found('T')).toEqual({ ids: [id], count: 1 });
        await indexed.replaceEntity(other, id, body('T2'), ctx);
        expect(await found('T')).toEqual({ ids: [], count: 0 });
        expect(await found('T2')).toEqual({ ids: [id], count: 1 });
      });

      it('answers a selective q without evaluating the entities of the type, and counts only visible ones', async () => {
        const s = await f.open(CONTEXT_TEST_MIGRATIONS);
        const b = createMemoryBus();
        const { gate } = openTestDirectory(s);
        const o = new TransactionalOutbox({ store: s, bus: b });
        const common = {
          store: s,
          bus: b,
          events: o.emitter<ContextEvents>('context'),
          gate,
          resolver: new ContextResolver(),
        };
        // maxScan 10: a query that evaluates more than 10 entities in memory is refused (403 TooManyResults).
        const small = new ContextService({ ...common, maxScan: 10 });
        const smallPlain = new ContextService({ ...common, maxScan: 10, attributeIndex: 'maintain' });
        try {
          const body = (i: number, who: Caller) => ({
            id: `urn:ngsi-ld:S:${who === me ? '' : 'p'}${i}`,
            type: 'S',
            n: { type: 'Property', value: i },
            // An array: the jsonb prefilter cannot narrow on it, the index can.
            m: { type: 'Property', value: [i, -i] },
            name: { type: 'Property', value: `s${i}` },
            marking: { tlp: 'AMBER' },
          });
          for (const who of [me, other]) {
            const items = Array.from({ length: 50 }, (_, i) => ({ body: body(i, who), ctx }));
            expect((await small.batchCreate(who, items)).errors).toEqual([]);
          }
          const r = await small.queryEntities(me, { type: 'S', q: 'n>=45|name=="s3"', count: true }, ctx);
          expect(ids(r)).toEqual([
            'urn:ngsi-ld:S:3',
            ...[45, 46, 47, 48, 49].map((i) => `urn:ngsi-ld:S:${i}`),
          ]);
          expect(r.count).toBe(6);
          const m = await small.queryEntities(me, { type: 'S', q: 'm>=45', count: true, limit: 2 }, ctx);
          expect([ids(m), m.count]).toEqual([['urn:ngsi-ld:S:45', 'urn:ngsi-ld:S:46'], 5]);
          // Without the index, every entity with m is evaluated in memory; a pattern (not indexed) too; and
          // a q that selects more than maxScan entities stays refused, index or not.
          for (const [svc, q] of [
            [smallPlain, 'm>=45'],
            [small, 'name~=^s3$'],
            [small, 'n>=0'],
          ] as const) {
            await expect(svc.queryEntities(me, { type: 'S', q, count: true }, ctx), q).rejects.toMatchObject({
              code: 'CONTEXT_TOO_MANY_RESULTS',
            });
          }
          await expect(small.queryEntities(me, { type: 'S', q: 'name~=^s3$' }, ctx)).rejects.toMatchObject({
            code: 'CONTEXT_TOO_MANY_RESULTS',
          });
          // A superset from the index (n>=45), then the evaluation of != on those five only.
          const some = await small.queryEntities(me, { type: 'S', q: 'n>=45;n!=46', count: true }, ctx);
          expect(some.count).toBe(4);
        } finally {
          await small.close();
          await smallPlain.close();
          await o.stop();
          await b.close();
          await s.close();
        }
      });
    },
  );
}
