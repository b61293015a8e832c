import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../adapters/bus/index.ts';
import { openTestPgliteStore } from '../../adapters/storage/testing.ts';
import type { Store } from '../../ports/store.ts';
import { auditMigrations, listAudit, verifyAuditChain } from '../audit/index.ts';
import { eventsMigrations, TransactionalOutbox } from '../events/index.ts';
import { AccessService, accessMigrations, bootstrapAccess, createAuthenticator } from './index.ts';

let store: Store;
let access: AccessService;
beforeAll(async () => {
  store = await openTestPgliteStore({ ...accessMigrations, ...auditMigrations, ...eventsMigrations });
  access = new AccessService({ store });
});
afterAll(async () => {
  await store?.close();
});

describe('bootstrapAccess', () => {
  it('creates the first organisation and admin once, with a generated password when none is given', async () => {
    const [a, b] = await Promise.all([bootstrapAccess(access), bootstrapAccess(access)]);
    const created = [a, b].filter((r) => r.created);
    expect(created).toHaveLength(1);
    const password = created[0]?.generatedPassword ?? '';
    expect(password.length).toBeGreaterThanOrEqual(20);
    expect(await bootstrapAccess(access, { adminPassword: 'ignored-on-second-start' })).toEqual({
      created: false,
    });
    expect(await access.orgs.getOrg('city')).toMatchObject({ id: 'city', kind: 'city' });
    const auth = createAuthenticator({ service: access });
    const login = await auth.login('admin', password);
    expect(login.principal).toMatchObject({
      username: 'admin',
      orgId: 'city',
      roles: ['platform-admin', 'admin'],
      kind: 'user',
    });
    const claims = decodeJwt(login.token);
    expect(claims).toMatchObject({
      sub: login.principal.userId,
      org: 'city',
      roles: ['platform-admin', 'admin'],
    });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(3600);
  });
});

describe('session tokens', () => {
  it('share one generated HS256 key across instances, kept in the store', async () => {
    const other = new AccessService({ store });
    expect(await other.accounts.jwtSecret()).toBe(await access.accounts.jwtSecret());
    const user = await access.accounts.getUser('admin');
    const token = await createAuthenticator({ service: access, tokenTtlSeconds: 120 }).issueToken(user);
    const p = await createAuthenticator({ service: other }).authenticate(`Bearer ${token}`);
    expect(p.username).toBe('admin');
    const claims = decodeJwt(token);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(120);
  });

  it('use the configured secret when given: tokens of the stored key no longer verify', async () => {
    const user = await access.accounts.getUser('admin');
    const stored = await createAuthenticator({ service: access }).issueToken(user);
    const configured = createAuthenticator({ service: access, jwtSecret: 'x'.repeat(40) });
    await expect(configured.authenticate(`Bearer ${stored}`)).rejects.toMatchObject({
      code: 'AUTH_TOKEN_INVALID',
    });
    const own = await configured.issueToken(user);
    expect((await configured.authenticate(`Bearer ${own}`)).userId).toBe(user.id);
  });
});

describe('login', () => {
  it('is audited, and refuses a username after too many failures, whatever the password', async () => {
    await access.accounts.createUser(null, {
      username: 'guessme',
      orgId: 'city',
      roles: ['viewer'],
      password: 'the-right-passphrase',
    });
    const auth = createAuthenticator({
      service: access,
      loginThrottle: { maxFailures: 3, windowMs: 60_000 },
    });
    const ok = await auth.login('guessme', 'the-right-passphrase');
    const logins = await listAudit(store.db, { actorId: ok.principal.userId, action: 'login' });
    expect(logins).toHaveLength(1);
    for (let i = 0; i < 3; i++) {
      await expect(auth.login('guessme', `wrong-guess-${i}xx`)).rejects.toMatchObject({
        code: 'AUTH_INVALID_CREDENTIALS',
      });
    }
    await expect(auth.login('guessme', 'the-right-passphrase')).rejects.toMatchObject({
      code: 'PLATFORM_RATE_LIMITED',
    });
    await expect(auth.login('GUESSME', 'wrong-guess-again')).rejects.toMatchObject({
      code: 'PLATFORM_RATE_LIMITED',
    });
    // Other accounts are not affected.
    await expect(auth.login('admin', 'wrong-guess-admin')).rejects.toMatchObject({
      code: 'AUTH_INVALID_CREDENTIALS',
    });
  });
});

describe('principal facts', () => {
  it('follow client and community changes at once here, and on another instance when the bus says so', async () => {
    const bus = createMemoryBus();
    const outbox = new TransactionalOutbox({ store, bus });
    const here = new AccessService({ store, events: outbox.emitter('access'), factsTtlMs: 60_000 });
    const there = new AccessService({ store, factsTtlMs: 60_000 });
    const sub = await there.listenForChanges(bus);
    try {
      await here.orgs.createOrg(null, { id: 'rail', name: 'Rail', kind: 'transport' });
      await here.orgs.createOrg(null, { id: 'port', name: 'Port', kind: 'transport' });
      const factsOf = (s: AccessService) => s.principalFacts({ userId: 'u', orgId: 'port' });
      expect((await factsOf(there)).patronOrgs).toEqual([]);
      await here.orgs.updateOrg(null, 'rail', { clients: ['port'] });
      expect((await factsOf(here)).patronOrgs).toEqual(['rail']);
      await new Promise((r) => setTimeout(r, 50));
      expect((await factsOf(there)).patronOrgs).toEqual(['rail']);
      await here.orgs.createCommunity(null, { id: 'harbour', name: 'Harbour', members: ['port'] });
      await new Promise((r) => setTimeout(r, 50));
      expect((await factsOf(there)).communities).toEqual(['harbour']);
    } finally {
      await sub.unsubscribe();
      await outbox.stop();
      await bus.close();
    }
  });
});

describe('OIDC', () => {
  let server: Server;
  let jwksUrl: string;
  let key: SigningKey;
  let otherKey: SigningKey;
  const issuer = 'https://idp.example.test/realms/city';

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    key = pair.privateKey;
    otherKey = (await generateKeyPair('RS256')).privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/certs`;
    await access.orgs
      .createOrg(null, { id: 'police', name: 'Police', kind: 'police' })
      .catch(() => undefined);
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
  });

  const external = (
    claims: Record<string, unknown>,
    opts: { key?: SigningKey; exp?: number; aud?: string } = {},
  ) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(opts.aud ?? 'safecity')
      .setSubject(String(claims.sub ?? 'subject-1'))
      .setIssuedAt(now)
      .setExpirationTime(opts.exp ?? now + 300)
      .sign(opts.key ?? key);
  };

  it('maps an external identity to a local account created on first sight, roles kept in step', async () => {
    const auth = createAuthenticator({
      service: access,
      oidc: { issuer, jwksUrl, audience: 'safecity', orgClaim: 'agency', rolesClaim: 'realm_access.roles' },
    });
    const t1 = await external({
      sub: 'kc-123',
      preferred_username: 'officer.silva',
      agency: 'police',
      realm_access: { roles: ['analyst', 'offline_access'] },
    });
    const p1 = await auth.authenticate(`Bearer ${t1}`);
    expect(p1).toMatchObject({
      username: 'officer.silva',
      orgId: 'police',
      roles: ['analyst'],
      kind: 'user',
    });
    expect(p1.readKeys).toContain('org:police');
    const t2 = await external({
      sub: 'kc-123',
      preferred_username: 'officer.silva',
      agency: 'police',
      realm_access: { roles: ['operator'] },
    });
    const p2 = await auth.authenticate(`Bearer ${t2}`);
    expect(p2.userId).toBe(p1.userId);
    expect(p2.roles).toEqual(['operator']);
    expect((await access.accounts.getUser(p1.userId)).externalSubject).toBe(`${issuer}|kc-123`);
    const noRoles = await auth.authenticate(`Bearer ${await external({ sub: 'kc-9', agency: 'police' })}`);
    expect(noRoles.roles).toEqual(['viewer']);
    expect(noRoles.username).toBe('kc-9');
  });

  it('never lets an external username shadow another account by taking its id', async () => {
    const auth = createAuthenticator({ service: access, oidc: { issuer, jwksUrl } });
    const victim = await access.accounts.getUser('admin');
    const p = await auth.authenticate(
      `Bearer ${await external({ sub: 'kc-evil', preferred_username: victim.id, org: 'police', roles: ['admin'] })}`,
    );
    expect(p.userId).not.toBe(victim.id);
    expect(p.username).not.toBe(victim.id);
    const session = await createAuthenticator({ service: access }).issueToken(victim);
    expect((await createAuthenticator({ service: access }).authenticate(`Bearer ${session}`)).userId).toBe(
      victim.id,
    );
    await expect(
      access.accounts.createUser(null, {
        username: victim.id,
        orgId: 'police',
        roles: ['viewer'],
        password: 'long-enough-password',
      }),
    ).rejects.toMatchObject({ code: 'ACCESS_INVALID_INPUT' });
  });

  it('rejects unknown organisations, wrong audiences, expired tokens and foreign keys', async () => {
    const auth = createAuthenticator({ service: access, oidc: { issuer, jwksUrl, audience: 'safecity' } });
    const bad = async (token: Promise<string>, code: string, detail?: RegExp) => {
      const e = await auth.authenticate(`Bearer ${await token}`).then(
        () => undefined,
        (err: unknown) => err as { code: string; message: string },
      );
      expect(e?.code).toBe(code);
      if (detail) expect(e?.message).toMatch(detail);
    };
    await bad(external({ org: 'atlantis', roles: ['admin'] }), 'AUTH_TOKEN_INVALID', /atlantis is not known/);
    await bad(external({ roles: ['admin'] }), 'AUTH_TOKEN_INVALID', /"org" claim/);
    await bad(external({ org: 'police' }, { aud: 'someone-else' }), 'AUTH_TOKEN_INVALID', /aud/);
    await bad(external({ org: 'police' }, { exp: Math.floor(Date.now() / 1000) - 60 }), 'AUTH_TOKEN_EXPIRED');
    await bad(external({ org: 'police' }, { key: otherKey }), 'AUTH_TOKEN_INVALID', /signature/);
    const withoutOidc = createAuthenticator({ service: access });
    const e = await withoutOidc
      .authenticate(`Bearer ${await external({ org: 'police' })}`)
      .catch((err: { code: string }) => err);
    expect((e as { code: string }).code).toBe('AUTH_TOKEN_INVALID');
  });

  it('audited every account change along the way', async () => {
    expect((await verifyAuditChain(store)).ok).toBe(true);
  });
});
