/**
 * NGSI-LD entities on the sharing gate (issue 7): roles on every write path (gap 4), the access module's
 * audiences, audit, registry, explain and break-glass (gap 5), usernames in RED audiences (gap 12), and
 * the registration of the entities that existed before (migration context_0004).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../adapters/bus/index.ts';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import type { AppError } from '../../kernel/errors.ts';
import type { EventBus, PlatformEvent } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { type AuditRecord, listAudit } from '../audit/index.ts';
import { TransactionalOutbox } from '../events/index.ts';
import {
  currentIncarnations,
  type GatePrincipal,
  type Marking,
  principalReadKeys,
} from '../sharing/index.ts';
import { type Caller, ContextService } from './context-service.ts';
import type { EntityChangeEvent } from './entity-change-event.ts';
import { ContextResolver } from './json-ld-context.ts';
import { contextMigrations } from './migrations.ts';
import { CONTEXT_TEST_MIGRATIONS, openTestDirectory, type TestDirectory } from './testing.ts';

const V = 'https://uri.etsi.org/ngsi-ld/default-context/';
const amber: Marking = { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } };

function caller(userId: string, orgId: string, roles: string[] = ['operator'], tenant = ''): Caller {
  return {
    tenant,
    principal: { userId, orgId, roles },
    readKeys: principalReadKeys({ userId, orgId, communities: [], patronOrgs: [] }),
    defaultMarking: amber,
  };
}

async function rejects(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    return e as AppError;
  }
  throw new Error('expected a rejection');
}

for (const f of testStoreFactories()) {
  describe.skipIf(f.skip)(
    `entities on the sharing gate, ${f.name}${f.skip ? ` (skipped: ${f.skip})` : ''}`,
    () => {
      let store: Store;
      let bus: EventBus;
      let outbox: TransactionalOutbox;
      let dir: TestDirectory;
      let svc: ContextService;
      const events: PlatformEvent[] = [];
      const op = caller('op-metro', 'metro');
      const viewer = caller('viewer-metro', 'metro', ['viewer']);
      const responder = caller('responder-metro', 'metro', ['responder']);
      const police = caller('op-police', 'police');
      const audit = (objectId: string): Promise<AuditRecord[]> => listAudit(store.db, { objectId });

      beforeAll(async () => {
        store = await f.open(CONTEXT_TEST_MIGRATIONS);
        dir = openTestDirectory(store);
        await dir.addOrgs('metro', 'police', 'fire');
        bus = createMemoryBus();
        outbox = new TransactionalOutbox({ store, bus });
        await bus.subscribe({ types: ['context.>'], mode: 'broadcast' }, async (e) => {
          events.push(e);
        });
        svc = new ContextService({
          store,
          bus,
          events: outbox.emitter('context'),
          gate: dir.gate,
          resolver: new ContextResolver(),
        });
      });
      afterAll(async () => {
        await svc?.close();
        await outbox?.stop();
        await bus?.close();
        await store?.close();
      });

      describe('gap 4: no role on NGSI-LD writes', () => {
        it('refuses every write of viewers and responders, single and batch, and their ingestion', async () => {
          const ctx = await svc.resolveContext(null);
          const id = 'urn:ngsi-ld:Gate:g4';
          await svc.createEntity(op, { id, type: 'Gate', state: 'open' }, ctx);
          for (const who of [viewer, responder]) {
            // Thunks, awaited one by one: a promise that rejects before it is awaited is an unhandled rejection.
            const refusals = [
              () => svc.createEntity(who, { id: 'urn:ngsi-ld:Gate:g4-new', type: 'Gate' }, ctx),
              () => svc.appendAttributes(who, id, { state: 'closed' }, ctx),
              () => svc.updateAttributes(who, id, { state: 'closed' }, ctx),
              () => svc.mergeEntity(who, id, { state: 'closed' }, ctx),
              () => svc.replaceEntity(who, id, { type: 'Gate', state: 'closed' }, ctx),
              () => svc.partialUpdateAttribute(who, id, 'state', { value: 'closed' }, ctx),
              () => svc.deleteAttribute(who, id, 'state', ctx),
              () => svc.deleteEntity(who, id),
              () => svc.appendAttributes(who, id, { marking: { tlp: 'CLEAR' } }, ctx),
            ];
            for (const r of refusals) expect((await rejects(r())).code).toBe('AUTH_ROLE_REQUIRED');
            const batches = [
              await svc.batchCreate(who, [{ body: { id: 'urn:ngsi-ld:Gate:g4-b', type: 'Gate' }, ctx }]),
              await svc.batchUpsert(who, [{ body: { id, type: 'Gate', state: 'x' }, ctx }]),
              await svc.batchUpsert(who, [{ body: { id: 'urn:ngsi-ld:Gate:g4-u', type: 'Gate' }, ctx }]),
              await svc.batchUpdate(who, [{ body: { id, state: 'x' }, ctx }]),
              await svc.batchMerge(who, [{ body: { id, state: 'x' }, ctx }]),
              await svc.batchDelete(who, [id]),
            ];
            for (const b of batches) {
              expect(b.success).toEqual([]);
              expect(b.errors.map((e) => e.error.code)).toEqual(['AUTH_ROLE_REQUIRED']);
            }
            const ingested = await svc.upsertFragments(
              '',
              { userId: who.principal.userId, orgId: 'metro', roles: who.principal.roles },
              [
                { id, type: 'Gate', state: { type: 'Property', value: 'x' } },
                { id: 'urn:ngsi-ld:Gate:g4-i', type: 'Gate' },
              ],
              undefined,
            );
            expect(ingested.map((r) => r !== undefined && /needs one of the roles/.test(r))).toEqual([
              true,
              true,
            ]);
          }
          const after = await svc.getEntity(op, id);
          expect(after.entity[`${V}state`]).toMatchObject({ value: 'open' });
          expect(after.marking.tlp).toBe('AMBER');
          for (const missing of [
            'urn:ngsi-ld:Gate:g4-new',
            'urn:ngsi-ld:Gate:g4-b',
            'urn:ngsi-ld:Gate:g4-i',
          ]) {
            expect((await rejects(svc.getEntity(op, missing))).code).toBe('CONTEXT_ENTITY_NOT_FOUND');
          }
        });

        it('a batch writes the items the caller may write and lists the others (403, 404)', async () => {
          const ctx = await svc.resolveContext(null);
          await svc.createEntity(op, { id: 'urn:ngsi-ld:Bin:mine', type: 'Bin' }, ctx);
          await svc.createEntity(
            police,
            { id: 'urn:ngsi-ld:Bin:green', type: 'Bin', marking: { tlp: 'GREEN' } },
            ctx,
          );
          await svc.createEntity(police, { id: 'urn:ngsi-ld:Bin:amber', type: 'Bin' }, ctx);
          const r = await svc.batchUpdate(op, [
            { body: { id: 'urn:ngsi-ld:Bin:mine', fill: 1 }, ctx },
            { body: { id: 'urn:ngsi-ld:Bin:green', fill: 1 }, ctx },
            { body: { id: 'urn:ngsi-ld:Bin:amber', fill: 1 }, ctx },
          ]);
          expect(r.success).toEqual(['urn:ngsi-ld:Bin:mine']);
          expect(r.errors.map((e) => [e.entityId, e.error.code])).toEqual([
            ['urn:ngsi-ld:Bin:green', 'ACCESS_DENIED'],
            ['urn:ngsi-ld:Bin:amber', 'CONTEXT_ENTITY_NOT_FOUND'],
          ]);
        });

        it('a marking change is the gate’s: a viewer may not widen it, the owner’s operator may, audited as share', async () => {
          const ctx = await svc.resolveContext(null);
          const id = 'urn:ngsi-ld:Camera:g4-marking';
          await svc.createEntity(op, { id, type: 'Camera' }, ctx);
          const byViewer = await rejects(
            svc.appendAttributes(viewer, id, { marking: { tlp: 'CLEAR' } }, ctx),
          );
          expect(byViewer.code).toBe('AUTH_ROLE_REQUIRED');
          const byPolice = await rejects(
            svc.appendAttributes(police, id, { marking: { tlp: 'CLEAR' } }, ctx),
          );
          expect(byPolice.code).toBe('CONTEXT_ENTITY_NOT_FOUND');
          expect((await audit(id)).map((a) => a.action)).toEqual(['create']);
          const r = await svc.appendAttributes(op, id, { marking: { tlp: 'CLEAR' } }, ctx);
          expect(r.updated).toEqual(['marking']);
          const share = (await audit(id)).find((a) => a.action === 'share');
          expect(share).toMatchObject({
            actorId: 'op-metro',
            actorOrg: 'metro',
            objectKind: 'entity',
            ownerOrg: 'metro',
            details: { from: { tlp: 'AMBER' }, to: { tlp: 'CLEAR' }, widened: true },
          });
          const anonymous: Caller = {
            ...caller('anonymous', 'anonymous', []),
            readKeys: ['public'],
          };
          expect((await svc.getEntity(anonymous, id)).marking.tlp).toBe('CLEAR');
          const reg = await currentIncarnations(store.db, 'entity', '', [id]);
          expect(reg.size).toBe(1);
        });

        it('only the creator changes the marking of a TLP:RED entity', async () => {
          const ctx = await svc.resolveContext(null);
          const colleague = await dir.addUser('red-colleague', 'metro');
          const creator = caller('red-creator', 'metro');
          const id = 'urn:ngsi-ld:Note:red';
          await svc.createEntity(
            creator,
            { id, type: 'Note', marking: { tlp: 'RED', audience: { users: [colleague] } } },
            ctx,
          );
          const named = caller(colleague, 'metro');
          expect((await svc.getEntity(named, id)).marking.tlp).toBe('RED');
          const passOn = await rejects(svc.appendAttributes(named, id, { marking: { tlp: 'AMBER' } }, ctx));
          expect(passOn.code).toBe('ACCESS_DENIED');
          await svc.appendAttributes(creator, id, { marking: { tlp: 'AMBER' } }, ctx);
          expect((await svc.getEntity(op, id)).marking.tlp).toBe('AMBER');
        });
      });

      describe('gap 5: entities bypass the access module', () => {
        it('records reads from outside the owner organisation as disclosures: once, and a page as one record', async () => {
          const ctx = await svc.resolveContext(null);
          const shared: Marking = {
            tlp: 'AMBER',
            audience: { orgs: ['police'], communities: [], users: [] },
          };
          const ids = Array.from({ length: 6 }, (_, i) => `urn:ngsi-ld:Camera:disclosed-${i}`);
          for (const id of ids) await svc.createEntity(op, { id, type: 'Camera', marking: shared }, ctx);
          await svc.getEntity(op, ids[0] as string);
          await svc.getEntity(police, ids[0] as string);
          await svc.getEntity(police, ids[0] as string);
          const single = (await audit(ids[0] as string)).filter((r) => r.action === 'disclose');
          expect(single.map((r) => [r.actorId, r.ownerOrg, r.details.tlp])).toEqual([
            ['op-police', 'metro', 'AMBER'],
          ]);
          await svc.queryEntities(police, { type: 'Camera' }, ctx);
          await svc.queryEntities(police, { type: 'Camera' }, ctx);
          const page = (await audit(ids[5] as string)).filter((r) => r.action === 'disclose');
          expect(page).toHaveLength(1);
          expect(page[0]?.details).toMatchObject({ batch: true, count: 5, tlps: ['AMBER'] });
          expect(page[0]?.details.ids).toEqual(ids.slice(1));
        });

        it('refuses audiences naming unknown organisations, communities and users', async () => {
          const ctx = await svc.resolveContext(null);
          const cases: [Marking['audience'], string][] = [
            [{ orgs: ['nowhere'], communities: [], users: [] }, 'ACCESS_ORG_NOT_FOUND'],
            [{ orgs: [], communities: ['no-such-cell'], users: [] }, 'ACCESS_COMMUNITY_NOT_FOUND'],
            [{ orgs: [], communities: [], users: ['nobody'] }, 'ACCESS_USER_NOT_FOUND'],
          ];
          for (const [audience, code] of cases) {
            const id = `urn:ngsi-ld:Sign:${code}`;
            const e = await rejects(
              svc.createEntity(op, { id, type: 'Sign', marking: { tlp: 'AMBER', audience } }, ctx),
            );
            expect(e.code).toBe(code);
            const b = await svc.batchCreate(op, [
              { body: { id, type: 'Sign', marking: { tlp: 'AMBER', audience } }, ctx },
              { body: { id: `${id}:plain`, type: 'Sign' }, ctx },
            ]);
            expect([b.success, b.errors.map((x) => x.error.code)]).toEqual([[`${id}:plain`], [code]]);
          }
          await svc.createEntity(op, { id: 'urn:ngsi-ld:Sign:1', type: 'Sign' }, ctx);
          const change = await rejects(
            svc.mergeEntity(
              op,
              'urn:ngsi-ld:Sign:1',
              { marking: { tlp: 'AMBER', audience: { orgs: ['nowhere'] } } },
              ctx,
            ),
          );
          expect(change.code).toBe('ACCESS_ORG_NOT_FOUND');
          await svc.mergeEntity(
            op,
            'urn:ngsi-ld:Sign:1',
            { marking: { tlp: 'AMBER', audience: { orgs: ['fire'] } } },
            ctx,
          );
          expect((await svc.getEntity(caller('op-fire', 'fire'), 'urn:ngsi-ld:Sign:1')).ownerOrg).toBe(
            'metro',
          );
        });

        it('audits creates, updates (attribute names, never values), deletes; a batch is one record', async () => {
          const ctx = await svc.resolveContext(null);
          const id = 'urn:ngsi-ld:Valve:1';
          await svc.createEntity(op, { id, type: 'Valve', pressure: 3.25 }, ctx);
          await svc.appendAttributes(op, id, { pressure: 'secret-value-7', flow: 2 }, ctx);
          await svc.deleteEntity(op, id);
          const records = await audit(id);
          expect(records.map((r) => [r.action, r.actorId, r.objectKind, r.ownerOrg])).toEqual([
            ['create', 'op-metro', 'entity', 'metro'],
            ['update', 'op-metro', 'entity', 'metro'],
            ['delete', 'op-metro', 'entity', 'metro'],
          ]);
          expect(records[1]?.details).toEqual({ fields: [`${V}pressure`, `${V}flow`] });
          expect(JSON.stringify(records)).not.toContain('secret-value-7');
          const ids = Array.from({ length: 20 }, (_, i) => `urn:ngsi-ld:Meter:${i}`);
          await svc.batchUpsert(
            op,
            ids.map((m) => ({ body: { id: m, type: 'Meter', kwh: 1 }, ctx })),
            'update',
          );
          const batch = await audit(ids[7] as string);
          expect(batch).toHaveLength(1);
          expect(batch[0]).toMatchObject({
            action: 'create',
            objectKind: 'entity',
            ownerOrg: 'metro',
            details: { batch: true, count: 20 },
          });
          expect([...((batch[0]?.details.ids ?? []) as string[])].sort()).toEqual([...ids].sort());
        });

        it('registers each entity with an incarnation: events carry it, deleting and creating again starts a new one', async () => {
          const ctx = await svc.resolveContext(null);
          const id = 'urn:ngsi-ld:Drone:1';
          events.length = 0;
          await svc.createEntity(op, { id, type: 'Drone', alt: 10 }, ctx);
          const first = (await currentIncarnations(store.db, 'entity', '', [id])).get(id);
          expect(first).toMatch(/^[0-9a-f-]{36}$/);
          await svc.appendAttributes(op, id, { alt: 20 }, ctx);
          await svc.deleteEntity(op, id);
          expect((await currentIncarnations(store.db, 'entity', '', [id])).size).toBe(0);
          await svc.createEntity(police, { id, type: 'Drone', alt: 5 }, ctx);
          const second = (await currentIncarnations(store.db, 'entity', '', [id])).get(id);
          expect(second).toBeDefined();
          expect(second).not.toBe(first);
          for (let i = 0; i < 100 && events.length < 4; i++) await new Promise((r) => setTimeout(r, 10));
          expect(
            events.map((e) => [
              e.type,
              (e.data as EntityChangeEvent).incarnation,
              (e.data as EntityChangeEvent).ownerOrg,
            ]),
          ).toEqual([
            ['context.entity.created', first, 'metro'],
            ['context.entity.updated', first, 'metro'],
            ['context.entity.deleted', first, 'metro'],
            ['context.entity.created', second, 'police'],
          ]);
          const otherTenant = caller('op-metro', 'metro', ['operator'], 'tenant-b');
          await svc.createEntity(otherTenant, { id, type: 'Drone' }, ctx);
          expect((await currentIncarnations(store.db, 'entity', 'tenant-b', [id])).size).toBe(1);
        });

        it('explain and break-glass answer for entities (kind entity, tenant as scope)', async () => {
          const ctx = await svc.resolveContext(null);
          const id = 'urn:ngsi-ld:Hydrant:1';
          await svc.createEntity(op, { id, type: 'Hydrant', pressure: 4 }, ctx);
          await dir.addUser('metro-admin', 'metro', ['admin']);
          const policeAdminId = await dir.addUser('police-admin', 'police', ['admin']);
          const admin = (userId: string, orgId: string): GatePrincipal => ({
            userId,
            orgId,
            roles: ['admin'],
            readKeys: principalReadKeys({ userId, orgId, communities: [], patronOrgs: [] }),
          });
          const verdict = await dir.gate.explain(
            admin('metro-admin', 'metro'),
            { kind: 'entity', scope: '', id },
            'police-admin',
          );
          expect(verdict).toMatchObject({
            visible: false,
            object: { kind: 'entity', scope: '', id, ownerOrg: 'metro', marking: { tlp: 'AMBER' } },
          });
          const glass = await dir.gate.breakGlass(
            admin(policeAdminId, 'police'),
            { kind: 'entity', scope: '', id },
            'pressure check during a fire',
          );
          expect(glass.content).toMatchObject({
            id,
            type: 'Hydrant',
            pressure: { type: 'Property', value: 4 },
          });
          expect((await audit(id)).map((a) => a.action)).toContain('break_glass');
        });
      });

      describe('gap 12: a RED audience naming a user by username is never resolved', () => {
        it('resolves the username to the account id, so the named user reads the entity', async () => {
          const ctx = await svc.resolveContext(null);
          const daveId = await dir.addUser('dave', 'police');
          const id = 'urn:ngsi-ld:Tip:red';
          await svc.createEntity(
            op,
            { id, type: 'Tip', marking: { tlp: 'RED', audience: { users: ['dave'] } } },
            ctx,
          );
          const dave = caller(daveId, 'police');
          const v = await svc.getEntity(dave, id);
          expect(v.marking.audience.users).toEqual([daveId]);
          expect((await rejects(svc.getEntity(police, id))).code).toBe('CONTEXT_ENTITY_NOT_FOUND');
        });
      });

      it('registers the entities and hosted @contexts that existed before (migration context_0004)', async () => {
        // An entity row as the broker wrote it before the gate, without its registry row.
        await store.transaction(async (trx) => {
          const { sql } = await import('kysely');
          await sql`insert into context_entity (tenant, id, types, entity, created_at, modified_at, owner_org,
            created_by, marking, read_keys, incarnation)
          values ('legacy', 'urn:ngsi-ld:Old:1', array['T'], '{"id":"urn:ngsi-ld:Old:1","type":["T"]}'::jsonb,
            now(), now(), 'metro', 'op-metro', '{"tlp":"GREEN","audience":{"orgs":[],"communities":[],"users":[]}}'::jsonb,
            array['community:all', 'org:metro'], 'pending')`.execute(trx);
          await sql`alter table context_entity drop column incarnation`.execute(trx);
          await contextMigrations.context_0004_register_entities?.up(trx);
        });
        const reg = await currentIncarnations(store.db, 'entity', 'legacy', ['urn:ngsi-ld:Old:1']);
        const inc = reg.get('urn:ngsi-ld:Old:1');
        expect(inc).toMatch(/^[0-9a-f-]{36}$/);
        const legacy = caller('op-metro', 'metro', ['operator'], 'legacy');
        await svc.appendAttributes(legacy, 'urn:ngsi-ld:Old:1', { x: 1 }, await svc.resolveContext(null));
        const explained = await dir.gate.explain(
          {
            userId: 'metro-admin',
            orgId: 'metro',
            roles: ['admin'],
            readKeys: principalReadKeys({
              userId: 'metro-admin',
              orgId: 'metro',
              communities: [],
              patronOrgs: [],
            }),
          },
          { kind: 'entity', scope: 'legacy', id: 'urn:ngsi-ld:Old:1' },
          await dir.addUser('legacy-reader', 'police'),
        );
        expect(explained).toMatchObject({ visible: true, object: { marking: { tlp: 'GREEN' } } });
      });
    },
  );
}
