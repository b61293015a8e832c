/**
 * Subscriptions as marked objects at the sharing gate: roles, registry and audit in the transaction of the
 * row, visibility, explain and break-glass; and the pause of a disabled creator's subscriptions on every
 * instance (two instances on one store and one bus).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../adapters/bus/index.ts';
import { openTestPgliteStore } from '../../adapters/storage/testing.ts';
import { AppError } from '../../kernel/errors.ts';
import type { EventBus } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import type { Principal } from '../access/index.ts';
import { listAudit } from '../audit/index.ts';
import { TransactionalOutbox } from '../events/index.ts';
import { type ContextLive, createContextLive } from './context-live.ts';
import type { ContextLiveEvents } from './context-live-events.ts';
import { createCoreQueryPort } from './core-query-port.ts';
import type { AccountStatusPort } from './ports.ts';
import { OWNER_DISABLED } from './subscription.ts';
import {
  DEFAULT_VOCAB,
  entityChange,
  LIVE_TEST_MIGRATIONS,
  type LiveTestWorld,
  loopbackEgress,
  openLiveWorld,
  type Receiver,
  startReceiver,
  testLdContext,
} from './testing.ts';

const V = DEFAULT_VOCAB;

async function until<T>(probe: () => Promise<T | undefined>, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function vehicle(id: string, speed: number) {
  return { id, type: [`${V}Vehicle`], [`${V}speed`]: { type: 'Property', value: speed } };
}

describe('subscriptions at the sharing gate (PGlite)', () => {
  let store: Store;
  let bus: EventBus;
  let world: LiveTestWorld;
  let live: ContextLive;
  /** A second instance on the same store and bus. */
  let other: ContextLive;
  let rx: Receiver;
  const ld = testLdContext();
  const as: Record<string, Principal> = {};
  let n = 0;

  beforeAll(async () => {
    store = await openTestPgliteStore(LIVE_TEST_MIGRATIONS);
    bus = createMemoryBus();
    world = await openLiveWorld(store, { bus });
    for (const name of world.users.keys()) as[name] = await world.as(name);
    const accounts: AccountStatusPort = {
      isActive: async (id) => !(await world.access.account(id)).disabled,
    };
    // Subscription changes reach the other instance as on the platform, through the outbox.
    const outbox = new TransactionalOutbox<ContextLiveEvents>({ store, bus });
    const make = () =>
      createContextLive({
        store,
        events: outbox.emitter<ContextLiveEvents>('context-live'),
        gate: world.gate,
        ld,
        query: createCoreQueryPort(ld),
        accounts,
        egress: loopbackEgress(),
        busMembers: 2,
        pauseSyncMs: 300,
        retry: { firstDelayMs: 50, maxDelayMs: 200 },
      });
    live = make();
    other = make();
    await live.start(bus);
    await other.start(bus);
    rx = await startReceiver();
  });
  afterAll(async () => {
    await live?.stop();
    await other?.stop();
    await rx?.close();
    await bus?.close();
    await store?.close();
  });

  const body = (extra: Record<string, unknown> = {}) => ({
    id: `urn:ngsi-ld:Subscription:t${++n}`,
    type: 'Subscription',
    entities: [{ type: 'Vehicle' }],
    notification: { endpoint: { uri: rx.url } },
    ...extra,
  });
  const create = (who: string, extra: Record<string, unknown> = {}) =>
    live.subscriptions.create('', as[who] as Principal, body(extra), undefined);
  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: unknown) => (e instanceof AppError ? e.code : String(e)),
    );
  const registry = (id: string) =>
    store.db
      .selectFrom('shared_object' as never)
      .selectAll()
      .where('kind' as never, '=', 'subscription' as never)
      .where('id' as never, '=', id as never)
      .executeTakeFirst() as Promise<Record<string, unknown> | undefined>;

  it.each([
    ['admin', 'ok'],
    ['operator', 'ok'],
    ['analyst', 'ok'],
    ['responder', 'AUTH_ROLE_REQUIRED'],
    ['viewer', 'AUTH_ROLE_REQUIRED'],
  ])('creating a subscription is a share: %s → %s', async (role, expected) => {
    expect(await codeOf(create(`org-a-${role}`))).toBe(expected);
    // A viewer is refused before its body is even read.
    if (expected !== 'ok') {
      expect(
        await codeOf(live.subscriptions.create('', as[`org-a-${role}`] as Principal, {}, undefined)),
      ).toBe(expected);
    }
  });

  it('is registered and audited by the gate in the transaction of its row', async () => {
    const rec = await create('org-a-operator', {
      notification: { endpoint: { uri: `${rx.url}?k=secret`.replace('http://', 'http://u:p@') } },
    });
    expect(await registry(rec.spec.id)).toMatchObject({
      scope: '',
      owner_org: 'org-a',
      created_by: as['org-a-operator']?.userId,
      tlp: 'AMBER+STRICT',
      read_keys: ['org:org-a'],
    });
    const [record] = await listAudit(store.db, { objectId: rec.spec.id });
    expect(record).toMatchObject({
      action: 'create',
      objectKind: 'subscription',
      ownerOrg: 'org-a',
      actorId: as['org-a-operator']?.userId,
    });
    // Where the data goes, without credentials, path or query.
    expect(record?.details.endpoint).toBe(new URL(rx.url).origin);
    // The same id again: a conflict, and nothing more recorded.
    expect(
      await codeOf(
        live.subscriptions.create(
          '',
          as['org-a-operator'] as Principal,
          { ...body(), id: rec.spec.id },
          undefined,
        ),
      ),
    ).toBe('ACCESS_OBJECT_EXISTS');
    expect(await listAudit(store.db, { objectId: rec.spec.id })).toHaveLength(1);
    // An invalid subscription leaves neither a registry row nor an audit record.
    const bad = { ...body(), notification: { endpoint: { uri: 'ftp://x/y' } } };
    expect(
      await codeOf(live.subscriptions.create('', as['org-a-operator'] as Principal, bad, undefined)),
    ).toBe('CONTEXT_LIVE_SUBSCRIPTION_INVALID');
    expect(await registry(bad.id)).toBeUndefined();
    expect(await listAudit(store.db, { objectId: bad.id })).toEqual([]);
  });

  it("is seen only by its organisation's users and changed or deleted only by its writers", async () => {
    const rec = await create('org-a-operator');
    const id = rec.spec.id;
    const subs = live.subscriptions;
    const viewer = as['org-a-viewer'] as Principal;
    const stranger = as['org-b-operator'] as Principal;
    expect((await subs.get('', viewer, id)).spec.id).toBe(id);
    expect((await subs.list('', viewer, { limit: 100, offset: 0 })).items.map((r) => r.spec.id)).toContain(
      id,
    );
    expect(await codeOf(subs.update('', viewer, id, { isActive: false }, undefined))).toBe(
      'AUTH_ROLE_REQUIRED',
    );
    expect(await codeOf(subs.delete('', as['org-a-responder'] as Principal, id))).toBe('AUTH_ROLE_REQUIRED');
    // Another organisation's user learns nothing: the answers of a missing subscription, whatever it sends.
    const missing = 'urn:ngsi-ld:Subscription:none';
    for (const target of [id, missing]) {
      expect(await codeOf(subs.get('', stranger, target))).toBe('ACCESS_OBJECT_NOT_FOUND');
      expect(await codeOf(subs.update('', stranger, target, { q: '((' }, undefined))).toBe(
        'ACCESS_OBJECT_NOT_FOUND',
      );
      expect(await codeOf(subs.delete('', stranger, target))).toBe('ACCESS_OBJECT_NOT_FOUND');
    }
    expect(
      (await subs.list('', stranger, { limit: 100, offset: 0 })).items.map((r) => r.spec.id),
    ).not.toContain(id);
    await subs.update('', as['org-a-analyst'] as Principal, id, { isActive: false }, undefined);
    const updates = await listAudit(store.db, { objectId: id, action: 'update' });
    expect(updates.map((r) => r.details)).toEqual([{ fields: ['isActive'] }]);
    await subs.delete('', as['org-a-admin'] as Principal, id);
    expect(await registry(id)).toBeUndefined();
    expect((await listAudit(store.db, { objectId: id, action: 'delete' })).length).toBe(1);
    expect(await codeOf(subs.get('', viewer, id))).toBe('ACCESS_OBJECT_NOT_FOUND');
  });

  it('explain and break-glass work for subscriptions', async () => {
    const rec = await create('org-a-operator');
    const ref = { kind: 'subscription', scope: '', id: rec.spec.id };
    const adminA = as['org-a-admin'] as Principal;
    expect(await world.gate.explain(adminA, ref, 'org-a-viewer')).toMatchObject({
      visible: true,
      rule: 'owner-org',
    });
    expect(await world.gate.explain(adminA, ref, 'org-b-operator')).toMatchObject({ visible: false });
    // Another organisation's administrator cannot ask about it, but may break the glass, audited.
    const adminB = as['org-b-admin'] as Principal;
    expect(await codeOf(world.gate.explain(adminB, ref, 'org-b-operator'))).toBe('ACCESS_OBJECT_NOT_FOUND');
    const glass = await world.gate.breakGlass(adminB, ref, 'the endpoint is suspected of leaking data');
    expect(glass.content).toMatchObject({ spec: { notification: { endpoint: { uri: rx.url } } } });
    expect(await world.gate.breakGlassRecords(as['org-a-viewer'] as Principal)).toEqual(
      expect.arrayContaining([expect.objectContaining({ objectId: rec.spec.id, actorOrg: 'org-b' })]),
    );
  });

  describe("gap 12: a disabled user's subscriptions keep delivering its organisation's AMBER data", () => {
    const amber = { tlp: 'AMBER' as const, audience: { orgs: [], communities: [], users: [] } };
    const received = (subscriptionId: string) =>
      rx.received.filter((r) => r.body.subscriptionId === subscriptionId).length;
    const receivedAtLeast = (subscriptionId: string, count: number) =>
      until(async () => (received(subscriptionId) >= count ? true : undefined), `${count} notifications`);
    const notifyBoth = async (id: string, speed: number) => {
      // The change reaches either instance (a consumer group): try both.
      for (const instance of [live, other]) {
        await instance.engine.handleChange('updated', entityChange(vehicle(id, speed), { marking: amber }));
      }
    };

    it('pauses them within seconds on every instance while the account is disabled, and resumes them', async () => {
      const alice = await world.access.accounts.createUser(null, {
        username: 'alice',
        orgId: 'org-a',
        roles: ['operator'],
      });
      const rec = await live.subscriptions.create('', await world.as('alice'), body(), undefined);
      // The other instance learns of it through the bus.
      await new Promise((r) => setTimeout(r, 100));
      await notifyBoth('urn:ngsi-ld:Vehicle:g12', 1);
      await receivedAtLeast(rec.spec.id, 2);
      const adminA = as['org-a-admin'] as Principal;
      await world.access.accounts.updateUser(adminA, alice.id, { disabled: true });
      const view = await until(async () => {
        const v = await live.subscriptions.view(
          await live.subscriptions.get('', adminA, rec.spec.id),
          undefined,
        );
        return v.status === 'paused' ? v : undefined;
      }, 'the pause');
      expect(view).toMatchObject({ status: 'paused', statusReason: OWNER_DISABLED });
      const paused = received(rec.spec.id);
      await notifyBoth('urn:ngsi-ld:Vehicle:g12', 2);
      await new Promise((r) => setTimeout(r, 300));
      expect(received(rec.spec.id)).toBe(paused);
      // Enabled again: both instances deliver again.
      await world.access.accounts.updateUser(adminA, alice.id, { disabled: false });
      await until(async () => {
        const v = await live.subscriptions.view(
          await live.subscriptions.get('', adminA, rec.spec.id),
          undefined,
        );
        return v.status === 'active' ? v : undefined;
      }, 'the resumption');
      await new Promise((r) => setTimeout(r, 100));
      await notifyBoth('urn:ngsi-ld:Vehicle:g12', 3);
      await receivedAtLeast(rec.spec.id, paused + 2);
    });

    it('a revoked API token pauses nothing; disabling its service account does', async () => {
      const adminA = as['org-a-admin'] as Principal;
      const created = await world.access.accounts.createServiceAccountToken(adminA, {
        orgId: 'org-a',
        name: 'svc-notifier',
        roles: ['operator'],
      });
      const rec = await live.subscriptions.create('', await world.as('svc-notifier'), body(), undefined);
      const status = async () =>
        (await live.subscriptions.view(await live.subscriptions.get('', adminA, rec.spec.id), undefined))
          .status;
      await world.access.accounts.revokeToken(adminA, created.token.id);
      await new Promise((r) => setTimeout(r, 400));
      expect(await status()).toBe('active');
      await world.access.accounts.updateUser(adminA, created.serviceAccount.id, { disabled: true });
      await until(async () => ((await status()) === 'paused' ? true : undefined), 'the pause');
    });

    it('an instance that missed the event catches up from the store', async () => {
      const bob = await world.access.accounts.createUser(null, {
        username: 'bob',
        orgId: 'org-a',
        roles: ['operator'],
      });
      const rec = await live.subscriptions.create('', await world.as('bob'), body(), undefined);
      await new Promise((r) => setTimeout(r, 100));
      // Disabled behind the bus's back (as if this instance's subscription to the bus had dropped the event).
      await store.db
        .updateTable('access_user' as never)
        .set({ disabled: true } as never)
        .where('id' as never, '=', bob.id as never)
        .execute();
      await live.subscriptions.recheckAccount(bob.id);
      await new Promise((r) => setTimeout(r, 500));
      await notifyBoth('urn:ngsi-ld:Vehicle:g12b', 1);
      await new Promise((r) => setTimeout(r, 300));
      expect(received(rec.spec.id)).toBe(0);
    });
  });
});
