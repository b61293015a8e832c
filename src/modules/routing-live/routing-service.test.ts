/**
 * Closures and slow-downs as marked objects of the sharing gate, on real stores (PGlite, and PostgreSQL when
 * DATABASE_URL is set), without a road network: who creates, lifts and sees them, what the audit records,
 * how derived changes follow their source, what the events tell a live stream, and the upgrade of existing
 * rows. The engine's part (routes avoid every closure) is tested with the Monaco network in
 * src/api/routing/routing-api.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus, type MemoryBus } from '../../adapters/bus/index.ts';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import { fixedClock } from '../../kernel/clock.ts';
import type { PlatformEvent } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { AccessService, accessMigrations, type Principal } from '../access/index.ts';
import { type AuditRecord, auditMigrations, listAudit } from '../audit/index.ts';
import { contextMigrations } from '../context/index.ts';
import { eventsMigrations, TransactionalOutbox } from '../events/index.ts';
import { type Marking, SharingGate, sharingMigrations } from '../sharing/index.ts';
import { routingLiveMigrations } from './migrations.ts';
import {
  type DerivedChangeInput,
  ROUTING_CHANGE_ADDED,
  ROUTING_CHANGE_LIFTED,
  ROUTING_CHANGE_UPDATED,
  type RoutingChangeEvent,
  RoutingService,
} from './routing-service.ts';

const AT = { type: 'Point', coordinates: [7.4245, 43.7349] };
const none = { orgs: [], communities: [], users: [] };
const green = (...communities: string[]): Marking => ({ tlp: 'GREEN', audience: { ...none, communities } });

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'no error';
}

for (const factory of testStoreFactories()) {
  describe.skipIf(factory.skip)(`closures and slow-downs at the sharing gate (${factory.name})`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'safecity-routing-live-'));
    const clock = fixedClock(new Date('2026-12-01T08:00:00Z'));
    let store: Store;
    let bus: MemoryBus;
    let gate: SharingGate;
    let access: AccessService;
    let routing: RoutingService;
    let outbox: TransactionalOutbox;
    const events: PlatformEvent<RoutingChangeEvent>[] = [];
    const who: Record<string, Principal> = {};
    const ids: Record<string, string> = {};

    beforeAll(async () => {
      store = await factory.open({
        ...accessMigrations,
        ...sharingMigrations,
        ...auditMigrations,
        ...routingLiveMigrations,
        ...eventsMigrations,
      });
      bus = createMemoryBus();
      outbox = new TransactionalOutbox({ store, bus });
      access = new AccessService({ store });
      gate = new SharingGate({ store, directory: access });
      routing = new RoutingService({
        store,
        bus,
        events: outbox.emitter('routing'),
        gate,
        clock,
        dataDir: dir,
        expirySweepMs: 0,
      });
      await routing.start();
      await bus.subscribe({ types: ['routing.change.*'], mode: 'broadcast' }, async (e) => {
        events.push(e as PlatformEvent<RoutingChangeEvent>);
      });
      for (const [id, kind] of [
        ['police', 'police'],
        ['fire', 'fire'],
        ['metro', 'transport'],
      ] as const) {
        await access.orgs.createOrg(null, { id, name: id, kind });
      }
      await access.orgs.createCommunity(null, {
        id: 'crisis',
        name: 'Crisis cell',
        members: ['police', 'fire'],
      });
      const users: [string, string, string][] = [
        ['pat', 'police', 'operator'],
        ['rae', 'police', 'responder'],
        ['vic', 'police', 'viewer'],
        ['ana', 'police', 'analyst'],
        ['finn', 'fire', 'responder'],
        ['fay', 'fire', 'operator'],
        ['mo', 'metro', 'operator'],
      ];
      for (const [username, orgId, role] of users) {
        const u = await access.accounts.createUser(null, { username, orgId, roles: [role as 'viewer'] });
        who[username] = await access.principalFor(u);
        ids[username] = u.id;
      }
    });
    afterAll(async () => {
      await routing?.stop();
      await outbox?.stop();
      await bus?.close();
      await store?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const visibleTo = async (username: string) =>
      (await routing.listChanges(who[username] as Principal)).map((c) => c.id);
    const auditOf = (id: string): Promise<AuditRecord[]> => listAudit(store.db, { objectId: id });
    const eventsOf = (id: string) =>
      events.filter((e) => e.data.id === id).map((e) => ({ type: e.type, ...e.data }));

    it('creating needs a role: writers and responders; viewers may not', async () => {
      expect(await errorOf(routing.addChange(who.vic as Principal, { kind: 'closure', geometry: AT }))).toBe(
        'AUTH_ROLE_REQUIRED',
      );
      for (const u of ['pat', 'rae', 'ana']) {
        const c = await routing.addChange(who[u] as Principal, { kind: 'closure', geometry: AT });
        expect(c).toMatchObject({ ownerOrg: 'police', createdBy: ids[u], source: 'api' });
        await routing.liftChange(who[u] as Principal, c.id, 'closure');
      }
    });

    it("is marked with the organisation's default, or the request's marking (audience checked)", async () => {
      const byDefault = await routing.addChange(who.pat as Principal, {
        kind: 'closure',
        geometry: AT,
        reason: 'suspicious package at the port',
      });
      expect(byDefault.marking).toEqual({ tlp: 'AMBER', audience: none });
      const shared = await routing.addChange(who.pat as Principal, {
        kind: 'slowdown',
        geometry: AT,
        factor: 0.5,
        marking: { tlp: 'GREEN', audience: { communities: ['crisis'] } },
      });
      expect(shared.marking).toEqual(green('crisis'));
      expect(
        await errorOf(
          routing.addChange(who.pat as Principal, {
            kind: 'closure',
            geometry: AT,
            marking: { tlp: 'GREEN', audience: { communities: ['nowhere'] } },
          }),
        ),
      ).toBe('ACCESS_COMMUNITY_NOT_FOUND');

      expect(await visibleTo('vic')).toEqual(expect.arrayContaining([byDefault.id, shared.id]));
      expect(await visibleTo('finn')).toContain(shared.id);
      expect(await visibleTo('finn')).not.toContain(byDefault.id);
      expect(await visibleTo('mo')).toEqual([]);
      expect(await errorOf(routing.getChange(who.mo as Principal, shared.id, 'slowdown'))).toBe(
        'ROUTING_SLOWDOWN_NOT_FOUND',
      );
      expect(await routing.getChange(who.finn as Principal, shared.id, 'slowdown')).toMatchObject({
        id: shared.id,
        ownerOrg: 'police',
        marking: green('crisis'),
      });
      expect(await routing.countChanges(who.finn as Principal)).toEqual({ closures: 0, slowdowns: 1 });
      expect(await routing.countChanges(who.vic as Principal)).toEqual({ closures: 1, slowdowns: 1 });

      // The gate registered them and wrote the audit record in the same transaction, without their content.
      const [created] = await auditOf(byDefault.id);
      expect(created).toMatchObject({
        action: 'create',
        objectKind: 'closure',
        ownerOrg: 'police',
        actorId: ids.pat,
        actorOrg: 'police',
      });
      expect(JSON.stringify(created?.details)).not.toContain('suspicious');
      const explained = await gate.explain(
        { ...(who.pat as Principal), roles: ['admin'] },
        { kind: 'closure', id: byDefault.id },
        'finn',
      );
      expect(explained).toMatchObject({ visible: false, object: { kind: 'closure', ownerOrg: 'police' } });
      await routing.liftChange(who.pat as Principal, byDefault.id, 'closure');
      await routing.liftChange(who.pat as Principal, shared.id, 'slowdown');
    });

    describe("gap 9: any responder lifts another organisation's closure", () => {
      it('only writers and responders of the owner organisation who see it lift it; the audit names the owner', async () => {
        const c = await routing.addChange(who.pat as Principal, {
          kind: 'closure',
          geometry: AT,
          marking: green('crisis'),
        });
        const hidden = await routing.addChange(who.pat as Principal, { kind: 'closure', geometry: AT });
        // Another organisation's responder who sees it: refused; who does not see it: as if it did not exist.
        expect(await errorOf(routing.liftChange(who.finn as Principal, c.id, 'closure'))).toBe(
          'ACCESS_DENIED',
        );
        expect(await errorOf(routing.liftChange(who.fay as Principal, c.id, 'closure'))).toBe(
          'ACCESS_DENIED',
        );
        expect(await errorOf(routing.liftChange(who.mo as Principal, c.id, 'closure'))).toBe(
          'ROUTING_CLOSURE_NOT_FOUND',
        );
        expect(await errorOf(routing.liftChange(who.finn as Principal, hidden.id, 'closure'))).toBe(
          'ROUTING_CLOSURE_NOT_FOUND',
        );
        expect(await errorOf(routing.liftChange(who.finn as Principal, 'no-such-id', 'closure'))).toBe(
          'ROUTING_CLOSURE_NOT_FOUND',
        );
        // A viewer of the owner organisation reads it but does not lift it; a slow-down path does not lift a closure.
        expect(await errorOf(routing.liftChange(who.vic as Principal, c.id, 'closure'))).toBe(
          'AUTH_ROLE_REQUIRED',
        );
        expect(await errorOf(routing.liftChange(who.rae as Principal, c.id, 'slowdown'))).toBe(
          'ROUTING_SLOWDOWN_NOT_FOUND',
        );
        expect(await visibleTo('finn')).toContain(c.id);

        await routing.liftChange(who.rae as Principal, c.id, 'closure');
        expect(await visibleTo('finn')).not.toContain(c.id);
        expect(await errorOf(routing.liftChange(who.rae as Principal, c.id, 'closure'))).toBe(
          'ROUTING_CLOSURE_NOT_FOUND',
        );
        const lifted = (await auditOf(c.id)).find((r) => r.action === 'delete');
        expect(lifted).toMatchObject({ actorId: ids.rae, actorOrg: 'police', ownerOrg: 'police' });
        expect((await auditOf(c.id)).map((r) => r.action)).toEqual(['create', 'delete']);
        await routing.liftChange(who.pat as Principal, hidden.id, 'closure');
      });
    });

    it('tells live streams who may see a change, before and after, with its marking and no content', async () => {
      const c = await routing.addChange(who.pat as Principal, {
        kind: 'closure',
        geometry: AT,
        reason: 'bomb threat',
        marking: green('crisis'),
      });
      await routing.liftChange(who.pat as Principal, c.id, 'closure');
      const keys = ['community:crisis', 'org:police'];
      expect(eventsOf(c.id)).toEqual([
        {
          type: ROUTING_CHANGE_ADDED,
          kind: 'closure',
          id: c.id,
          ownerOrg: 'police',
          readKeys: keys,
          previousReadKeys: [],
          marking: green('crisis'),
        },
        {
          type: ROUTING_CHANGE_LIFTED,
          kind: 'closure',
          id: c.id,
          ownerOrg: 'police',
          readKeys: [],
          previousReadKeys: keys,
          marking: green('crisis'),
          previousMarking: green('crisis'),
        },
      ]);
    });

    describe('gap 3: GREEN becomes public', () => {
      // The source object, registered at the gate like an NGSI-LD entity: deleting it and creating it again
      // gives a new incarnation.
      const ref = { kind: 'test-alert', scope: '', id: 'urn:ngsi-ld:Alert:a1' };
      const name = 'entity::urn:ngsi-ld:Alert:a1';
      const incarnations: string[] = [];
      const source = (incarnation = incarnations.at(-1) as string) => ({ name, ref, incarnation });
      const createSource = async () => {
        const r = await store.transaction((trx) =>
          gate.create(trx, who.ana as Principal, { kind: ref.kind, id: ref.id, marking: green('crisis') }),
        );
        incarnations.push(r.incarnation);
      };
      const deleteSource = () =>
        store.transaction((trx) =>
          gate.recordDeleted(trx, who.ana as Principal, ref.kind, [
            { id: ref.id, ownerOrg: 'police', createdBy: ids.ana as string, marking: green('crisis') },
          ]),
        );
      const alert = (marking: Marking): DerivedChangeInput => ({
        kind: 'closure',
        geometry: AT,
        radiusMeters: 50,
        reason: 'Alert urn:ngsi-ld:Alert:a1',
        ownerOrg: 'police',
        createdBy: ids.ana as string,
        marking,
      });
      const active = async () =>
        (await routing.listChanges(who.pat as Principal)).filter((c) => c.source === name);

      beforeAll(() => gate.defineKind(ref.kind, { label: 'alert' }));

      it('a closure derived from a TLP:GREEN Alert shared with one community is seen only by that community', async () => {
        await createSource();
        await routing.followSource(source(), alert(green('crisis')));
        const [c] = await active();
        expect(c).toMatchObject({
          kind: 'closure',
          ownerOrg: 'police',
          createdBy: ids.ana,
          marking: green('crisis'),
          reason: 'Alert urn:ngsi-ld:Alert:a1',
        });
        expect(await visibleTo('finn')).toContain(c?.id);
        expect(await visibleTo('mo')).not.toContain(c?.id);
        expect(await errorOf(routing.getChange(who.mo as Principal, c?.id as string, 'closure'))).toBe(
          'ROUTING_CLOSURE_NOT_FOUND',
        );
        expect(await routing.countChanges(who.mo as Principal)).toEqual({ closures: 0, slowdowns: 0 });
        // Gap 4's part here: the platform acted for the Alert's creator, and the gate's record says so.
        const [created] = await auditOf(c?.id as string);
        expect(created).toMatchObject({
          action: 'create',
          actorId: null,
          ownerOrg: 'police',
          objectKind: 'closure',
          details: { derived: true, createdBy: ids.ana, source: name, marking: green('crisis') },
        });
      });

      it("follows the source's marking: same closure, new marking, audited as a share", async () => {
        const [before] = await active();
        await routing.followSource(source(), alert({ tlp: 'AMBER', audience: { ...none, orgs: ['fire'] } }));
        const [after] = await active();
        expect(after?.id).toBe(before?.id);
        expect(after?.marking).toEqual({ tlp: 'AMBER', audience: { ...none, orgs: ['fire'] } });
        expect(await visibleTo('finn')).toContain(after?.id);
        expect(await visibleTo('mo')).not.toContain(after?.id);
        const shared = (await auditOf(after?.id as string)).find((r) => r.action === 'share');
        expect(shared).toMatchObject({ actorId: null, ownerOrg: 'police', details: { widened: false } });
        expect(eventsOf(after?.id as string).at(-1)).toMatchObject({
          type: ROUTING_CHANGE_UPDATED,
          readKeys: ['amber:fire', 'amber:police'],
          previousReadKeys: ['community:crisis', 'org:police'],
          marking: { tlp: 'AMBER', audience: { ...none, orgs: ['fire'] } },
          previousMarking: green('crisis'),
        });
        // The same marking again is no change at all.
        const count = (await auditOf(after?.id as string)).length;
        await routing.followSource(source(), alert({ tlp: 'AMBER', audience: { ...none, orgs: ['fire'] } }));
        expect((await auditOf(after?.id as string)).length).toBe(count);
      });

      it('follows the incarnation: deleted → lifted; created again → a new closure that late events of the old one never touch', async () => {
        const [first] = await active();
        const old = incarnations.at(-1) as string;
        await deleteSource();
        await createSource();
        // The deletion's event lifts the old incarnation's closure, as the platform's act under its owner.
        await routing.followSource(source(old), null);
        expect(await active()).toEqual([]);
        expect((await auditOf(first?.id as string)).at(-1)).toMatchObject({
          action: 'delete',
          actorId: null,
          ownerOrg: 'police',
        });
        await routing.followSource(source(), alert(green('crisis')));
        const [renewed] = await active();
        expect(renewed?.id).not.toBe(first?.id);
        // A late or repeated delivery about the gone incarnation changes nothing.
        await routing.followSource(source(old), alert(green()));
        await routing.followSource(source(old), null);
        expect((await active()).map((c) => [c.id, c.marking])).toEqual([[renewed?.id, green('crisis')]]);

        // Created again while the deletion's event was lost: the new incarnation's event replaces the closure.
        await deleteSource();
        await createSource();
        await routing.followSource(source(), alert(green('crisis')));
        const [third] = await active();
        expect(third?.id).not.toBe(renewed?.id);
        expect((await auditOf(renewed?.id as string)).map((r) => r.action)).toEqual(['create', 'delete']);

        // Deleted for good: its event lifts the last closure.
        await deleteSource();
        await routing.followSource(source(), null);
        expect(await active()).toEqual([]);
      });
    });

    it('lifts expired changes at the gate (registry and audit), once', async () => {
      const c = await routing.addChange(who.pat as Principal, {
        kind: 'closure',
        geometry: AT,
        expiresAt: new Date(clock.now().getTime() + 60_000),
      });
      expect(await routing.sweepExpired()).toBe(0);
      clock.advance(61_000);
      expect(await visibleTo('pat')).not.toContain(c.id);
      expect(await routing.sweepExpired()).toBe(1);
      expect(await routing.sweepExpired()).toBe(0);
      expect((await auditOf(c.id)).map((r) => [r.action, r.actorId])).toEqual([
        ['create', ids.pat],
        ['delete', null],
      ]);
      expect(eventsOf(c.id).map((e) => e.type)).toEqual([ROUTING_CHANGE_ADDED, ROUTING_CHANGE_LIFTED]);
    });
  });

  describe.skipIf(factory.skip)(`upgrade: existing changes become marked objects (${factory.name})`, () => {
    it('marks derived changes like their entity, operators’ changes as before (GREEN, all), lifts orphans', async () => {
      const { routing_live_0002_marked, ...first } = routingLiveMigrations;
      const store = await factory.open({
        ...accessMigrations,
        ...sharingMigrations,
        ...auditMigrations,
        ...contextMigrations,
        ...first,
      });
      try {
        const now = new Date('2026-11-30T12:00:00Z');
        const row = (id: string, source: string, owner: string | null, lifted: Date | null = null) => ({
          id,
          kind: 'closure',
          geometry: JSON.stringify(AT),
          factor: 0,
          radius_m: 20,
          reason: '',
          source,
          created_by: owner ? `${owner}-user` : null,
          owner_org: owner,
          created_at: now,
          expires_at: null,
          lifted_at: lifted,
        });
        await store.db
          .insertInto('routing_live_change' as never)
          .values([
            row('manual', 'api', 'police'),
            row('derived', 'entity::urn:ngsi-ld:Alert:x', null),
            row('orphan', 'entity::urn:ngsi-ld:Alert:gone', null),
            row('old', 'api', 'police', now),
          ] as never)
          .execute();
        const marking = { tlp: 'GREEN', audience: { orgs: [], communities: ['crisis'], users: [] } };
        await sql`insert into context_entity
            (tenant, id, types, entity, created_at, modified_at, owner_org, created_by, marking, read_keys, incarnation)
          values ('', 'urn:ngsi-ld:Alert:x', '{Alert}', ${JSON.stringify({ id: 'urn:ngsi-ld:Alert:x' })}::jsonb,
            ${now}, ${now}, 'fire', 'fire-user', ${JSON.stringify(marking)}::jsonb,
            '{community:crisis,org:fire}', 'incarnation-of-x')`.execute(store.db);

        await routing_live_0002_marked?.up(store.db as never);

        const rows = await sql<Record<string, unknown>>`select id, owner_org, created_by, tlp, audience,
            read_keys, source_incarnation, lifted_at is not null as lifted
          from routing_live_change order by id`.execute(store.db);
        const byId = Object.fromEntries(rows.rows.map((r) => [r.id, r]));
        expect(byId.derived).toMatchObject({
          owner_org: 'fire',
          created_by: 'fire-user',
          tlp: 'GREEN',
          audience: marking.audience,
          read_keys: ['community:crisis', 'org:fire'],
          source_incarnation: 'incarnation-of-x',
          lifted: false,
        });
        expect(byId.manual).toMatchObject({
          owner_org: 'police',
          tlp: 'GREEN',
          read_keys: ['community:all', 'org:police'],
          lifted: false,
        });
        expect(byId.orphan).toMatchObject({ lifted: true, read_keys: [] });
        expect(byId.old).toMatchObject({ lifted: true, read_keys: [] });
        const registry = await sql<{ kind: string; id: string; owner_org: string }>`select kind, id, owner_org
          from shared_object order by id`.execute(store.db);
        expect(registry.rows).toEqual([
          { kind: 'closure', id: 'derived', owner_org: 'fire' },
          { kind: 'closure', id: 'manual', owner_org: 'police' },
        ]);
      } finally {
        await store.close();
      }
    });
  });
}
