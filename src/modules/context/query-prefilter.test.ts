import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../adapters/bus/index.ts';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import type { EventBus } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { TransactionalOutbox } from '../events/index.ts';
import { emptyAudience, principalReadKeys } from '../sharing/marking.ts';
import { type Caller, ContextService } from './context-service.ts';
import { ContextResolver } from './json-ld-context.ts';
import { matchesQuery, parseQuery } from './query-language.ts';
import { CONTEXT_TEST_MIGRATIONS, openTestDirectory } from './testing.ts';

const caller: Caller = {
  tenant: '',
  principal: { userId: 'u', orgId: 'o', roles: ['operator'] },
  readKeys: principalReadKeys({ userId: 'u', orgId: 'o', communities: [], patronOrgs: [] }),
  defaultMarking: { tlp: 'AMBER', audience: emptyAudience() },
};

// Values of every shape the prefilter must let through when they may match.
const shapes: Record<string, unknown>[] = [
  { n: 5, s: 'a', b: true },
  { n: 15.5, s: 'b', b: false },
  { n: '15', s: 'urn:x:1' },
  { n: [1, 5, 20], s: ['a', 'c'] },
  { n: { type: 'Property', value: { '@type': 'xsd:int', '@value': 5 } } },
  {
    n: [
      { type: 'Property', value: 7, datasetId: 'urn:d:1' },
      { type: 'Property', value: 30 },
    ],
  },
  { n: { type: 'JsonProperty', json: 5 }, s: { type: 'Relationship', object: 'urn:x:1' } },
  {
    n: { type: 'Property', value: 5, sub: { type: 'Property', value: 9 } },
    b: { type: 'Property', value: true },
  },
  { s: { type: 'LanguageProperty', languageMap: { en: 'a', fr: 'b' } } },
  {},
];

const queries = [
  'n==5',
  'n>5',
  'n>=15.5',
  'n<6',
  'n<=1',
  'n==1..6',
  'n==7,30',
  'n!=5',
  'n',
  's=="a"',
  's==urn:x:1',
  's=="b"',
  's~=^u',
  'b==true',
  'b==false',
  'n.sub==9',
  'n==5;s=="a"',
  'n==5|s=="b"',
  '(n>10|b==true);s',
  'id==urn:ngsi-ld:P:3',
  'missing',
  '!n',
  '!missing',
  '!s;n>5',
  'n==5|!s',
  '!n.sub',
  '!n[x]',
  '!id',
  '!scope',
];

for (const f of testStoreFactories()) {
  describe.skipIf(f.skip)(`q prefilter on ${f.name}${f.skip ? ` (skipped: ${f.skip})` : ''}`, () => {
    let store: Store;
    let bus: EventBus;
    let outbox: TransactionalOutbox;
    let svc: ContextService;
    beforeAll(async () => {
      store = await f.open(CONTEXT_TEST_MIGRATIONS);
      bus = createMemoryBus();
      const { gate } = openTestDirectory(store);
      outbox = new TransactionalOutbox({ store, bus });
      svc = new ContextService({
        store,
        bus,
        events: outbox.emitter('context'),
        gate,
        resolver: new ContextResolver(),
      });
      const ctx = await svc.resolveContext(null);
      const r = await svc.batchCreate(
        caller,
        shapes.map((attrs, i) => ({ body: { id: `urn:ngsi-ld:P:${i}`, type: 'P', ...attrs }, ctx })),
      );
      expect(r.errors).toEqual([]);
    });
    afterAll(async () => {
      await outbox?.stop();
      await bus?.close();
      await store?.close();
    });

    it('answers exactly what evaluating q on every entity answers', async () => {
      const ctx = await svc.resolveContext(null);
      const all = (await svc.queryEntities(caller, { type: 'P', limit: 100 }, ctx)).items.map(
        (v) => v.entity,
      );
      expect(all.length).toBe(shapes.length);
      for (const q of queries) {
        const expected = all.filter((e) => matchesQuery(e, parseQuery(q, ctx.expandTerm))).map((e) => e.id);
        const got = (await svc.queryEntities(caller, { type: 'P', q, limit: 100 }, ctx)).items.map(
          (v) => v.entity.id,
        );
        expect(got, q).toEqual(expected);
      }
    });
  });
}
