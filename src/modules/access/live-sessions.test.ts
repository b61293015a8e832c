import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../adapters/bus/index.ts';
import { openTestPgliteStore } from '../../adapters/storage/testing.ts';
import type { EventBus } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { auditMigrations } from '../audit/index.ts';
import { eventsMigrations, TransactionalOutbox } from '../events/index.ts';
import {
  AccessService,
  type Authenticator,
  accessMigrations,
  bootstrapAccess,
  createAuthenticator,
  type LiveSession,
  LiveSessions,
  type SessionEnd,
} from './index.ts';

const PW = 'correct-horse-staple-9';

async function until(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('live sessions end when their credential stops holding', () => {
  let store: Store;
  let bus: EventBus;
  let outbox: TransactionalOutbox;
  let access: AccessService;
  let auth: Authenticator;
  let sessions: LiveSessions;
  const admin = { userId: '', orgId: 'city', roles: ['platform-admin', 'admin'] as string[] };

  beforeAll(async () => {
    store = await openTestPgliteStore({ ...accessMigrations, ...auditMigrations, ...eventsMigrations });
    bus = createMemoryBus();
    outbox = new TransactionalOutbox({ store, bus });
    access = new AccessService({ store, events: outbox.emitter('access'), factsTtlMs: 60_000 });
    await bootstrapAccess(access, { adminPassword: 'long-secret-for-tests' });
    admin.userId = (await access.accounts.getUser('admin')).id;
    // The sessions live on another instance, which caches accounts for a minute and hears of changes only
    // through the announcements; the periodic fallback is out of reach: only the events can end them in time.
    const other = new AccessService({ store, factsTtlMs: 60_000 });
    auth = createAuthenticator({ service: other });
    sessions = new LiveSessions({ authenticate: (h, o) => auth.authenticate(h, o), recheckMs: 600_000 });
    await sessions.listen(bus);
  });
  afterAll(async () => {
    sessions?.close();
    await outbox?.stop();
    await bus?.close();
    await store?.close();
  });

  /** Opens a session for a bearer header, recording how it ended. */
  async function open(authorization: string) {
    const principal = await auth.authenticate(authorization);
    const endings: SessionEnd[] = [];
    const session: LiveSession = sessions.open({
      authorization,
      principal,
      ended: (why) => endings.push(why),
    });
    return { session, endings };
  }

  it('ends the sessions of a revoked token at once, and only those', async () => {
    const a = await access.accounts.createServiceAccountToken(admin, { orgId: 'city', name: 'gw-a' });
    const b = await access.accounts.createServiceAccountToken(admin, { orgId: 'city', name: 'gw-a' });
    const first = await open(`Bearer ${a.secret}`);
    const second = await open(`Bearer ${b.secret}`);
    expect(first.session.principal.tokenId).toBe(a.token.id);
    await access.accounts.revokeToken(admin, a.token.id);
    await until(() => first.endings.length > 0, 'revoked token ends');
    expect(first.endings).toEqual([{ code: 'AUTH_TOKEN_REVOKED', message: 'this API token was revoked' }]);
    expect(first.session.active).toBe(false);
    expect(await first.session.valid()).toBe(false);
    // The same account's other token holds.
    expect(second.session.active).toBe(true);
    expect(await second.session.valid()).toBe(true);
    second.session.close();
  });

  it('ends every session of a disabled account, though this instance cached the account', async () => {
    const user = await access.accounts.createUser(admin, {
      username: 'dora',
      orgId: 'city',
      roles: ['operator'],
      password: PW,
    });
    const token = await auth.login('dora', PW);
    const s = await open(`Bearer ${token.token}`);
    // Cached now: an ordinary check would still pass for a minute.
    await auth.authenticate(`Bearer ${token.token}`);
    await access.accounts.updateUser(admin, user.id, { disabled: true });
    await until(() => s.endings.length > 0, 'disabled account ends');
    expect(s.endings[0]?.code).toBe('AUTH_ACCOUNT_DISABLED');
  });

  it('ends the sessions opened before a password change, not the one opened with the new password', async () => {
    await access.accounts.createUser(admin, {
      username: 'pat',
      orgId: 'city',
      roles: ['operator'],
      password: PW,
    });
    const old = await open(`Bearer ${(await auth.login('pat', PW)).token}`);
    const changed = await createAuthenticator({ service: access }).login(
      'pat',
      PW,
      'another-long-passphrase',
    );
    const fresh = await open(`Bearer ${changed.token}`);
    await until(() => old.endings.length > 0, 'old session ends');
    expect(old.endings[0]?.code).toBe('AUTH_TOKEN_EXPIRED');
    // The announcement was handled for both: the new one was checked and holds.
    await access.accounts.updateUser(admin, changed.principal.userId, { displayName: 'Pat' });
    await new Promise((r) => setTimeout(r, 100));
    expect(fresh.endings).toEqual([]);
    expect(await fresh.session.valid()).toBe(true);
    fresh.session.close();
  });

  it('makes a question asked during a check wait for its verdict', async () => {
    // Sessions that hear of no event: the check below is the only one.
    const quiet = new LiveSessions({ authenticate: (h, o) => auth.authenticate(h, o), recheckMs: 600_000 });
    const t = await access.accounts.createServiceAccountToken(admin, { orgId: 'city', name: 'gw-b' });
    const endings: SessionEnd[] = [];
    const session = quiet.open({
      authorization: `Bearer ${t.secret}`,
      principal: await auth.authenticate(`Bearer ${t.secret}`),
      ended: (why) => endings.push(why),
    });
    await access.accounts.updateUser(admin, t.serviceAccount.id, { disabled: true });
    expect(await session.valid()).toBe(true);
    const checking = quiet.accountChanged(t.serviceAccount.id);
    // Asked while the check runs (an MQTT publish arriving then): the answer is the check's verdict.
    expect(await session.valid()).toBe(false);
    await checking;
    expect(endings.map((e) => e.code)).toEqual(['AUTH_ACCOUNT_DISABLED']);
    quiet.close();
  });

  it('checks again on its own without events: the fallback ends an expired session token', async () => {
    const periodic = new LiveSessions({ authenticate: (h, o) => auth.authenticate(h, o), recheckMs: 100 });
    const user = await access.accounts.getUser('admin');
    const shortLived = await auth.issueToken(user, 1);
    const endings: SessionEnd[] = [];
    periodic.open({
      authorization: `Bearer ${shortLived}`,
      principal: await auth.authenticate(`Bearer ${shortLived}`),
      ended: (why) => endings.push(why),
    });
    expect(periodic.size).toBe(1);
    await until(() => endings.length > 0, 'expired', 4000);
    expect(endings[0]?.code).toBe('AUTH_TOKEN_EXPIRED');
    expect(periodic.size).toBe(0);
    periodic.close();
  });
});
