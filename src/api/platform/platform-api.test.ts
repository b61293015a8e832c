import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import { verifyAuditChain } from '../../modules/audit/index.ts';
import { openPlatformTestApp, type PlatformTestApp } from './testing.ts';

type H = { authorization: string };
const PW = 'a-long-enough-passphrase';

for (const factory of testStoreFactories()) {
  describe.skipIf(factory.skip)(
    `platform API on ${factory.name}${factory.skip ? ` (skipped: ${factory.skip})` : ''}`,
    () => {
      let t: PlatformTestApp;
      type Who = 'alice' | 'bob' | 'vic' | 'mia' | 'fred' | 'eve' | 'polly' | 'fay';
      const ids = {} as Record<Who, string>;
      const as = {} as Record<Who, H>;

      const req = (method: string, url: string, who: H | undefined, payload?: unknown) =>
        t.app.inject({
          method: method as 'GET',
          url,
          ...(who ? { headers: who } : {}),
          ...(payload !== undefined ? { payload: payload as object } : {}),
        });

      beforeAll(async () => {
        t = await openPlatformTestApp(factory);
        // police declares metro as its client; fire is a peer; both police and fire sit in "crisis-cell".
        for (const [id, kind] of [
          ['police', 'police'],
          ['metro', 'transport'],
          ['fire', 'fire'],
          ['energy', 'energy'],
        ] as const) {
          const r = await req('POST', '/api/orgs', t.admin, { id, name: id.toUpperCase(), kind });
          expect(r.statusCode, r.body).toBe(201);
        }
        expect((await req('PATCH', '/api/orgs/police', t.admin, { clients: ['metro'] })).statusCode).toBe(
          200,
        );
        expect(
          (
            await req('POST', '/api/communities', t.admin, {
              id: 'crisis-cell',
              name: 'Crisis cell',
              members: ['police', 'fire'],
            })
          ).statusCode,
        ).toBe(201);
        for (const [u, org, roles] of [
          ['alice', 'police', ['operator']],
          ['bob', 'police', ['analyst']],
          ['vic', 'police', ['viewer']],
          ['mia', 'metro', ['operator']],
          ['fred', 'fire', ['operator']],
          ['eve', 'energy', ['operator']],
          // Each organisation's own administrators come last: once an organisation has one, only its
          // administrators create its accounts (the platform administrator appoints the first).
          ['polly', 'police', ['admin']],
          ['fay', 'fire', ['admin']],
        ] as const) {
          const r = await req('POST', '/api/users', t.admin, {
            username: u,
            orgId: org,
            roles,
            password: PW,
          });
          expect(r.statusCode, r.body).toBe(201);
          ids[u] = r.json().id;
          as[u] = await t.login(u, PW);
        }
      });
      afterAll(async () => {
        await t?.close();
      });

      const problem = (r: {
        statusCode: number;
        headers: Record<string, unknown>;
        json(): { code: string };
      }) => {
        expect(String(r.headers['content-type'])).toMatch(/application\/problem\+json/);
        return { status: r.statusCode, code: r.json().code };
      };

      describe('authentication', () => {
        it('logs in and says who the caller is', async () => {
          const me = await req('GET', '/api/auth/me', as.mia);
          expect(me.statusCode).toBe(200);
          expect(me.json()).toMatchObject({
            username: 'mia',
            orgId: 'metro',
            roles: ['operator'],
            kind: 'user',
            defaultMarking: { tlp: 'AMBER' },
          });
          expect(me.json().readKeys).toContain('amber:police');
        });

        it('answers a wrong password and an unknown user the same way', async () => {
          const a = await req('POST', '/api/auth/login', undefined, {
            username: 'alice',
            password: 'wrong-password-123',
          });
          const b = await req('POST', '/api/auth/login', undefined, {
            username: 'nobody',
            password: 'wrong-password-123',
          });
          expect(problem(a)).toEqual({ status: 401, code: 'AUTH_INVALID_CREDENTIALS' });
          expect(problem(b)).toEqual({ status: 401, code: 'AUTH_INVALID_CREDENTIALS' });
          expect(a.json().detail).toBe(b.json().detail);
        });

        it('rejects a missing, malformed, forged, alg-none and expired token', async () => {
          expect(problem(await req('GET', '/api/auth/me', undefined))).toEqual({
            status: 401,
            code: 'AUTH_TOKEN_MISSING',
          });
          expect(problem(await req('GET', '/api/auth/me', { authorization: 'Bearer nonsense' }))).toEqual({
            status: 401,
            code: 'AUTH_TOKEN_INVALID',
          });
          expect(problem(await req('GET', '/api/auth/me', { authorization: 'Basic YTpi' }))).toEqual({
            status: 401,
            code: 'AUTH_TOKEN_INVALID',
          });
          const now = Math.floor(Date.now() / 1000);
          const forged = await new SignJWT({ org: 'police', roles: ['admin'] })
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject(ids.alice ?? '')
            .setIssuer('safecity-hub')
            .setAudience('safecity-hub')
            .setExpirationTime(now + 600)
            .sign(new TextEncoder().encode('not-the-secret-not-the-secret-not-the-secret'));
          const r = await req('GET', '/api/auth/me', { authorization: `Bearer ${forged}` });
          expect(problem(r)).toEqual({ status: 401, code: 'AUTH_TOKEN_INVALID' });
          expect(r.json().detail).toMatch(/signature/);
          const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
          const body = Buffer.from(
            JSON.stringify({ sub: ids.alice, iss: 'safecity-hub', aud: 'safecity-hub', exp: now + 600 }),
          ).toString('base64url');
          expect(
            problem(await req('GET', '/api/auth/me', { authorization: `Bearer ${header}.${body}.` })),
          ).toEqual({
            status: 401,
            code: 'AUTH_TOKEN_INVALID',
          });
          const expired = await t.authenticator.issueToken(await t.access.accounts.getUser('alice'), -10);
          expect(problem(await req('GET', '/api/auth/me', { authorization: `Bearer ${expired}` }))).toEqual({
            status: 401,
            code: 'AUTH_TOKEN_EXPIRED',
          });
        });

        it('stops a disabled account at once, sessions included', async () => {
          const r = await req('POST', '/api/users', t.admin, {
            username: 'temp',
            orgId: 'energy',
            roles: ['viewer'],
            password: PW,
          });
          const temp = await t.login('temp', PW);
          expect((await req('GET', '/api/auth/me', temp)).statusCode).toBe(200);
          expect((await req('POST', `/api/users/${r.json().id}/disable`, t.admin)).json().disabled).toBe(
            true,
          );
          expect(problem(await req('GET', '/api/auth/me', temp))).toEqual({
            status: 401,
            code: 'AUTH_ACCOUNT_DISABLED',
          });
          expect(
            problem(await req('POST', '/api/auth/login', undefined, { username: 'temp', password: PW })),
          ).toEqual({
            status: 401,
            code: 'AUTH_ACCOUNT_DISABLED',
          });
        });

        it('changes the caller’s own password under the policy', async () => {
          await req('POST', '/api/users', t.admin, {
            username: 'pat',
            orgId: 'energy',
            roles: ['viewer'],
            password: PW,
          });
          const pat = await t.login('pat', PW);
          const weak = await req('POST', '/api/auth/password', pat, {
            currentPassword: PW,
            newPassword: 'short',
          });
          expect(problem(weak)).toEqual({ status: 400, code: 'ACCESS_WEAK_PASSWORD' });
          const wrong = await req('POST', '/api/auth/password', pat, {
            currentPassword: 'not-my-password',
            newPassword: 'another-good-passphrase',
          });
          expect(problem(wrong)).toEqual({ status: 401, code: 'AUTH_INVALID_CREDENTIALS' });
          const ok = await req('POST', '/api/auth/password', pat, {
            currentPassword: PW,
            newPassword: 'another-good-passphrase',
          });
          expect(ok.statusCode).toBe(200);
          // The session opened with the old password is over; the answer carries a new one.
          expect(problem(await req('GET', '/api/auth/me', pat))).toEqual({
            status: 401,
            code: 'AUTH_TOKEN_EXPIRED',
          });
          const fresh = { authorization: `Bearer ${ok.json().token}` };
          expect((await req('GET', '/api/auth/me', fresh)).statusCode).toBe(200);
          await expect(t.login('pat', PW)).rejects.toThrow(/401/);
          await t.login('pat', 'another-good-passphrase');
        });
      });

      describe('validation (problem+json)', () => {
        it('rejects malformed JSON, unknown fields, wrong types and missing fields with 400', async () => {
          const bad = await t.app.inject({
            method: 'POST',
            url: '/api/reports',
            headers: { ...as.alice, 'content-type': 'application/json' },
            payload: '{"title": "x",',
          });
          expect(problem(bad)).toEqual({ status: 400, code: 'PLATFORM_BAD_REQUEST' });
          const unknown = await req('POST', '/api/reports', as.alice, {
            title: 't',
            category: 'other',
            colour: 'red',
          });
          expect(problem(unknown)).toEqual({ status: 400, code: 'PLATFORM_VALIDATION_FAILED' });
          const typed = await req('POST', '/api/reports', as.alice, { title: 12, category: 'other' });
          expect(problem(typed)).toEqual({ status: 400, code: 'PLATFORM_VALIDATION_FAILED' });
          const missing = await req('POST', '/api/orgs', t.admin, { id: 'x' });
          expect(problem(missing)).toEqual({ status: 400, code: 'PLATFORM_VALIDATION_FAILED' });
          const long = await req('POST', '/api/reports', as.alice, {
            title: 'x'.repeat(301),
            category: 'other',
          });
          expect(problem(long)).toEqual({ status: 400, code: 'PLATFORM_VALIDATION_FAILED' });
          const inMarking = await req('POST', '/api/reports', as.alice, {
            title: 't',
            category: 'other',
            marking: { tlp: 'GREEN', audience: { teams: [] } },
          });
          expect(problem(inMarking)).toEqual({ status: 400, code: 'PLATFORM_VALIDATION_FAILED' });
        });

        it('rejects an invalid TLP and an audience naming unknown organisations, communities or users', async () => {
          const post = (marking: unknown) =>
            req('POST', '/api/reports', as.alice, { title: 't', category: 'other', marking });
          expect(problem(await post({ tlp: 'PURPLE' }))).toEqual({ status: 400, code: 'ACCESS_INVALID_TLP' });
          expect(problem(await post({ tlp: 'AMBER', pap: 'BLUE' }))).toEqual({
            status: 400,
            code: 'ACCESS_INVALID_PAP',
          });
          expect(problem(await post({ tlp: 'AMBER', audience: { orgs: ['atlantis'] } }))).toEqual({
            status: 404,
            code: 'ACCESS_ORG_NOT_FOUND',
          });
          expect(problem(await post({ tlp: 'GREEN', audience: { communities: ['ghosts'] } }))).toEqual({
            status: 404,
            code: 'ACCESS_COMMUNITY_NOT_FOUND',
          });
          expect(problem(await post({ tlp: 'RED', audience: { users: ['no-such-user'] } }))).toEqual({
            status: 404,
            code: 'ACCESS_USER_NOT_FOUND',
          });
          const ok = await post({ tlp: 'tlp:amber+strict' });
          expect(ok.statusCode).toBe(201);
          expect(ok.json().marking.tlp).toBe('AMBER+STRICT');
        });

        it('rejects bad organisations and communities', async () => {
          expect(
            problem(await req('POST', '/api/orgs', t.admin, { id: 'Bad Id', name: 'x', kind: 'police' })),
          ).toEqual({
            status: 400,
            code: 'PLATFORM_VALIDATION_FAILED',
          });
          expect(
            problem(await req('POST', '/api/orgs', t.admin, { id: 'navy', name: 'x', kind: 'army' })),
          ).toEqual({
            status: 400,
            code: 'PLATFORM_VALIDATION_FAILED',
          });
          expect(
            problem(await req('POST', '/api/orgs', t.admin, { id: 'police', name: 'x', kind: 'police' })),
          ).toEqual({
            status: 409,
            code: 'ACCESS_ORG_EXISTS',
          });
          expect(
            problem(await req('PATCH', '/api/orgs/police', as.polly, { clients: ['atlantis'] })),
          ).toEqual({
            status: 404,
            code: 'ACCESS_ORG_NOT_FOUND',
          });
          expect(problem(await req('PATCH', '/api/orgs/police', as.polly, { clients: ['police'] }))).toEqual({
            status: 400,
            code: 'ACCESS_INVALID_INPUT',
          });
          expect(problem(await req('POST', '/api/communities', t.admin, { id: 'all', name: 'x' }))).toEqual({
            status: 409,
            code: 'ACCESS_COMMUNITY_EXISTS',
          });
          expect(
            problem(
              await req('POST', '/api/users', as.polly, {
                username: 'weak',
                orgId: 'police',
                roles: ['viewer'],
                password: 'short',
              }),
            ),
          ).toEqual({
            status: 400,
            code: 'ACCESS_WEAK_PASSWORD',
          });
          expect(
            problem(
              await req('POST', '/api/users', t.admin, {
                username: 'lost',
                orgId: 'atlantis',
                roles: ['viewer'],
                password: PW,
              }),
            ),
          ).toEqual({
            status: 404,
            code: 'ACCESS_ORG_NOT_FOUND',
          });
        });
      });

      describe('administration', () => {
        it('lets only admins manage organisations, communities, users, tokens and read the audit', async () => {
          const calls: [string, string, unknown?][] = [
            ['POST', '/api/orgs', { id: 'x1', name: 'x', kind: 'other' }],
            ['PATCH', '/api/orgs/police', { name: 'P' }],
            ['POST', '/api/communities', { id: 'c1', name: 'c' }],
            ['PUT', '/api/communities/crisis-cell/members/metro'],
            ['GET', '/api/users'],
            ['POST', '/api/users', { username: 'x2', orgId: 'police', roles: ['admin'], password: PW }],
            ['GET', '/api/tokens'],
            ['POST', '/api/tokens', { orgId: 'police', name: 'cam-1' }],
            ['GET', '/api/audit'],
            ['GET', '/api/access/explain?object=x&user=alice'],
            ['POST', '/api/access/break-glass', { object: 'x', reason: 'just curious about it' }],
          ];
          for (const [m, url, body] of calls) {
            expect(problem(await req(m, url, as.alice, body)), `${m} ${url}`).toEqual({
              status: 403,
              code: 'AUTH_ROLE_REQUIRED',
            });
          }
        });

        it('gap 6: one admin for everything — an organisation’s admin administers its own organisation only', async () => {
          const tries: [string, string, unknown][] = [
            ['POST', '/api/users', { username: 'mole', orgId: 'police', roles: ['admin'], password: PW }],
            ['POST', '/api/tokens', { orgId: 'police', name: 'mole-sensor' }],
            ['PATCH', '/api/orgs/police', { clients: ['fire'] }],
            ['PATCH', '/api/orgs/police', { defaultMarking: { tlp: 'CLEAR' } }],
            ['GET', '/api/users?org=police', undefined],
            ['GET', '/api/tokens?org=police', undefined],
            ['POST', `/api/users/${ids.alice}/disable`, undefined],
            ['PATCH', `/api/users/${ids.alice}`, { password: 'a-password-of-my-choosing' }],
          ];
          for (const [m, url, body] of tries) {
            const r = problem(await req(m, url, as.fay, body));
            expect([403, 404], `${m} ${url} by fire's admin`).toContain(r.status);
          }
          // The platform administrator appoints an organisation's first administrator, then steps back.
          expect(
            problem(
              await req('POST', '/api/users', t.admin, {
                username: 'mole',
                orgId: 'police',
                roles: ['operator'],
                password: PW,
              }),
            ),
          ).toEqual({ status: 403, code: 'ACCESS_DENIED' });
          expect(
            problem(
              await req('POST', '/api/users', as.polly, {
                username: 'mole',
                orgId: 'police',
                roles: ['platform-admin'],
                password: PW,
              }),
            ),
          ).toEqual({ status: 403, code: 'ACCESS_DENIED' });
          // Nothing of police changed: its clients are as declared, alice works.
          expect((await req('GET', '/api/orgs/police', as.alice)).json().clients).toEqual(['metro']);
          expect((await req('GET', '/api/auth/me', as.alice)).statusCode).toBe(200);
          // What police's own admin may do.
          const mine = await req('POST', '/api/users', as.polly, {
            username: 'new-constable',
            orgId: 'police',
            roles: ['viewer'],
            password: PW,
          });
          expect(mine.statusCode, mine.body).toBe(201);
          expect(
            (await req('GET', '/api/users', as.polly))
              .json()
              .items.every((u: { orgId: string }) => u.orgId === 'police'),
          ).toBe(true);
        });

        it('gap 2: the audit log discloses content — records hold no content, and each admin reads its own organisation’s', async () => {
          const secret = 'Informant Z meets at pier 4';
          const r = await req('POST', '/api/reports', as.alice, {
            title: secret,
            body: `${secret}, 21:00`,
            category: 'intelligence',
            marking: { tlp: 'RED' },
          });
          expect(r.statusCode).toBe(201);
          const id = r.json().id as string;
          expect(
            (await req('PATCH', `/api/reports/${id}`, as.alice, { title: `${secret} (moved)` })).statusCode,
          ).toBe(200);
          const mine = await req('GET', `/api/audit?object=${id}`, as.polly);
          expect(mine.json().items.map((x: { action: string }) => x.action)).toEqual(['create', 'update']);
          expect(mine.body).not.toContain('Informant');
          expect(mine.json().items[1].details).toEqual({ fields: ['title'] });
          for (const other of [as.fay, t.admin]) {
            const theirs = await req('GET', '/api/audit?limit=1000', other);
            expect(theirs.statusCode).toBe(200);
            expect(theirs.body).not.toContain('Informant');
            expect(theirs.body).not.toContain(id);
          }
          expect(problem(await req('GET', '/api/audit', as.alice))).toEqual({
            status: 403,
            code: 'AUTH_ROLE_REQUIRED',
          });
        });

        it('manages communities and organisation defaults', async () => {
          const add = await req('PUT', '/api/communities/crisis-cell/members/energy', t.admin);
          expect(add.json().members).toEqual(['energy', 'fire', 'police']);
          const del = await req('DELETE', '/api/communities/crisis-cell/members/energy', t.admin);
          expect(del.json().members).toEqual(['fire', 'police']);
          const list = (await req('GET', '/api/communities', as.eve)).json().items;
          expect(list[0]).toMatchObject({ id: 'all', builtIn: true });
          expect(list[0].members).toContain('metro');
          const fire = await req('PATCH', '/api/orgs/fire', as.fay, {
            defaultMarking: { tlp: 'GREEN', audience: { communities: ['crisis-cell'] } },
          });
          expect(fire.json().defaultMarking).toEqual({
            tlp: 'GREEN',
            audience: { orgs: [], communities: ['crisis-cell'], users: [] },
          });
          const r = await req('POST', '/api/reports', as.fred, {
            title: 'Smoke at depot',
            category: 'infrastructure',
          });
          expect(r.json().marking.tlp).toBe('GREEN');
          expect((await req('GET', `/api/reports/${r.json().id}`, as.bob)).statusCode).toBe(200);
          expect((await req('GET', `/api/reports/${r.json().id}`, as.mia)).statusCode).toBe(404);
          expect((await req('GET', '/api/orgs/police', as.mia)).json().clients).toEqual(['metro']);
        });

        it('issues service-account tokens shown once, usable, listed without secret, revocable, expiring', async () => {
          const c = await req('POST', '/api/tokens', t.admin, {
            orgId: 'metro',
            name: 'gate-sensor-7',
            label: 'gate 7',
          });
          expect(c.statusCode).toBe(201);
          const { secret, token, serviceAccount } = c.json();
          expect(secret).toMatch(/^sc_[A-Za-z0-9_-]{43}$/);
          expect(serviceAccount).toMatchObject({
            username: 'gate-sensor-7',
            kind: 'service',
            orgId: 'metro',
            roles: ['operator'],
          });
          const machine = { authorization: `Bearer ${secret}` };
          const me = await req('GET', '/api/auth/me', machine);
          expect(me.json()).toMatchObject({ username: 'gate-sensor-7', kind: 'service', orgId: 'metro' });
          const created = await req('POST', '/api/reports', machine, {
            title: 'Gate forced',
            category: 'intrusion',
          });
          expect(created.statusCode).toBe(201);
          const list = await req('GET', '/api/tokens?org=metro', t.admin);
          expect(list.body).not.toContain(secret);
          expect(list.json().items.find((x: { id: string }) => x.id === token.id).lastUsedAt).not.toBeNull();
          expect((await req('DELETE', `/api/tokens/${token.id}`, t.admin)).json().revokedAt).not.toBeNull();
          expect(problem(await req('GET', '/api/auth/me', machine))).toEqual({
            status: 401,
            code: 'AUTH_TOKEN_REVOKED',
          });
          expect(
            problem(await req('GET', '/api/auth/me', { authorization: `Bearer sc_${'A'.repeat(43)}` })),
          ).toEqual({
            status: 401,
            code: 'AUTH_TOKEN_INVALID',
          });
          const soon = await t.access.accounts.createServiceAccountToken(null, {
            orgId: 'metro',
            name: 'gate-sensor-7',
            expiresAt: new Date(Date.now() + 2000),
          });
          expect(
            (await req('GET', '/api/auth/me', { authorization: `Bearer ${soon.secret}` })).statusCode,
          ).toBe(200);
          await new Promise((r) =>
            setTimeout(
              r,
              Math.max(0, soon.token.expiresAt ? Date.parse(soon.token.expiresAt) - Date.now() + 50 : 0),
            ),
          );
          expect(
            problem(await req('GET', '/api/auth/me', { authorization: `Bearer ${soon.secret}` })),
          ).toEqual({
            status: 401,
            code: 'AUTH_TOKEN_EXPIRED',
          });
          expect(
            problem(await req('POST', '/api/tokens', as.polly, { orgId: 'police', name: 'alice' })),
          ).toEqual({
            status: 409,
            code: 'ACCESS_USER_EXISTS',
          });
          expect(problem(await req('DELETE', '/api/tokens/nope', t.admin))).toEqual({
            status: 404,
            code: 'ACCESS_TOKEN_NOT_FOUND',
          });
        });
      });

      describe('reports and the marking policy', () => {
        const create = async (who: H, marking: unknown, title = 'r') => {
          const r = await req('POST', '/api/reports', who, {
            title,
            body: 'details',
            category: 'other',
            marking,
          });
          expect(r.statusCode, r.body).toBe(201);
          return r.json().id as string;
        };
        const sees = async (who: H, id: string) =>
          (await req('GET', `/api/reports/${id}`, who)).statusCode === 200;
        const listed = async (who: H, id: string) =>
          (await req('GET', '/api/reports?limit=1000', who))
            .json()
            .items.some((r: { id: string }) => r.id === id);

        it('keeps TLP:RED from the rest of the owner organisation', async () => {
          const id = await create(as.alice, { tlp: 'RED', audience: { users: [ids.fred] } });
          expect(await sees(as.alice, id)).toBe(true);
          expect(await sees(as.fred, id)).toBe(true);
          expect(await sees(as.bob, id)).toBe(false);
          expect(await listed(as.bob, id)).toBe(false);
          expect(await sees(as.vic, id)).toBe(false);
          expect(await sees(as.mia, id)).toBe(false);
          // Named users may be given by username; the marking keeps their ids.
          const byName = await req('POST', '/api/reports', as.alice, {
            title: 'r',
            category: 'other',
            marking: { tlp: 'RED', audience: { users: ['fred', ids.fred] } },
          });
          expect(byName.json().marking.audience.users).toEqual([ids.fred]);
          expect(await sees(as.fred, byName.json().id)).toBe(true);
          expect(await sees(as.bob, byName.json().id)).toBe(false);
          // bob writes for police but cannot see it: for him it does not exist.
          expect(problem(await req('PATCH', `/api/reports/${id}`, as.bob, { title: 'x' }))).toEqual({
            status: 404,
            code: 'ACCESS_OBJECT_NOT_FOUND',
          });
          // fred sees it but is not of the owner organisation: he may not change it.
          expect(problem(await req('PATCH', `/api/reports/${id}`, as.fred, { title: 'x' }))).toEqual({
            status: 403,
            code: 'ACCESS_DENIED',
          });
        });

        it('existence: an unknown audience named for an invisible report answers like a missing report', async () => {
          // Found by the randomized reference model: the audience was checked before visibility, so the
          // error told an outsider that the report exists (ACCESS_ORG_NOT_FOUND instead of not found).
          const id = await create(as.alice, { tlp: 'RED' });
          const unknown = { marking: { tlp: 'CLEAR', audience: { orgs: ['no-such-org'] } } };
          const missing = problem(
            await req('PATCH', '/api/reports/01a2a2a2-0000-7000-8000-000000000000', as.bob, unknown),
          );
          expect(problem(await req('PATCH', `/api/reports/${id}`, as.bob, unknown))).toEqual(missing);
          expect(missing).toEqual({ status: 404, code: 'ACCESS_OBJECT_NOT_FOUND' });
          // And a role is checked before the audience: a viewer is told it may not, not what is unknown.
          const amber = await create(as.alice, { tlp: 'AMBER' });
          expect(problem(await req('PATCH', `/api/reports/${amber}`, as.vic, unknown))).toMatchObject({
            status: 403,
          });
        });

        it('lets TLP:AMBER reach declared clients, and AMBER+STRICT never', async () => {
          const amber = await create(as.fred, { tlp: 'AMBER', audience: { orgs: ['police'] } });
          const strict = await create(as.fred, { tlp: 'AMBER+STRICT', audience: { orgs: ['police'] } });
          expect(await sees(as.bob, amber)).toBe(true);
          expect(await sees(as.mia, amber)).toBe(true);
          expect(await listed(as.mia, amber)).toBe(true);
          expect(await sees(as.eve, amber)).toBe(false);
          expect(await sees(as.bob, strict)).toBe(true);
          expect(await sees(as.mia, strict)).toBe(false);
          expect(await listed(as.mia, strict)).toBe(false);
          const why = await req('GET', `/api/access/explain?object=${strict}&user=mia`, as.fay);
          expect(why.json()).toMatchObject({ visible: false, rule: 'strict-excludes-clients' });
          expect(why.json().reason).toBe(
            'TLP:AMBER+STRICT — user mia’s organisation metro is a client of police, which is in the audience, but AMBER+STRICT never reaches clients'.replace(
              '’',
              "'",
            ),
          );
          const yes = await req('GET', `/api/access/explain?object=${amber}&user=${ids.mia}`, as.fay);
          expect(yes.json()).toMatchObject({
            visible: true,
            rule: 'client-of-audience-org',
            reason:
              "TLP:AMBER — user mia's organisation metro is a client of police, which is in the audience",
          });
        });

        it('does not let an admin read objects by being an admin; break-glass reads with a reason, audited', async () => {
          const id = await create(as.alice, { tlp: 'AMBER' }, 'Suspicious bag');
          expect(await sees(t.admin, id)).toBe(false);
          expect(await listed(t.admin, id)).toBe(false);
          expect(
            problem(await req('POST', '/api/access/break-glass', t.admin, { object: id, reason: 'why' })),
          ).toEqual({
            status: 400,
            code: 'ACCESS_BREAK_GLASS_REASON_REQUIRED',
          });
          const bg = await req('POST', '/api/access/break-glass', t.admin, {
            object: id,
            reason: 'Bomb threat call names this station; need the report',
          });
          expect(bg.statusCode).toBe(200);
          expect(bg.json()).toMatchObject({
            object: { id, ownerOrg: 'police' },
            content: { title: 'Suspicious bag' },
          });
          const seen = await req('GET', '/api/access/break-glass', as.vic);
          expect(seen.json().items[0]).toMatchObject({
            action: 'break_glass',
            objectId: id,
            ownerOrg: 'police',
            details: { reason: 'Bomb threat call names this station; need the report', username: 'admin' },
          });
          expect((await req('GET', '/api/access/break-glass', as.mia)).json().items).toEqual([]);
          expect(
            problem(
              await req('POST', '/api/access/break-glass', t.admin, {
                object: 'nope',
                reason: 'a long enough reason',
              }),
            ),
          ).toEqual({
            status: 404,
            code: 'ACCESS_OBJECT_NOT_FOUND',
          });
        });

        it('lets writers of the owner organisation change and delete, never viewers; re-marking acts at once', async () => {
          const id = await create(as.alice, { tlp: 'AMBER+STRICT' }, 'Drone over stadium');
          expect(problem(await req('PATCH', `/api/reports/${id}`, as.vic, { title: 'x' }))).toEqual({
            status: 403,
            code: 'AUTH_ROLE_REQUIRED',
          });
          expect(
            problem(await req('POST', '/api/reports', as.vic, { title: 'x', category: 'other' })),
          ).toEqual({
            status: 403,
            code: 'AUTH_ROLE_REQUIRED',
          });
          expect(await sees(as.fred, id)).toBe(false);
          const up = await req('PATCH', `/api/reports/${id}`, as.bob, {
            title: 'Drone over stadium (confirmed)',
            location: { type: 'Point', coordinates: [-8.61, 41.16] },
            marking: { tlp: 'GREEN', pap: 'AMBER', audience: { communities: ['crisis-cell'] } },
          });
          expect(up.statusCode, up.body).toBe(200);
          expect(up.json()).toMatchObject({
            title: 'Drone over stadium (confirmed)',
            marking: { tlp: 'GREEN', pap: 'AMBER' },
          });
          expect(await sees(as.fred, id)).toBe(true);
          expect(await sees(as.eve, id)).toBe(false);
          const audit = (await req('GET', `/api/audit?object=${id}`, as.polly)).json().items;
          expect(audit.map((a: { action: string }) => a.action)).toEqual(['create', 'update', 'share']);
          expect(audit[2].details.from.tlp).toBe('AMBER+STRICT');
          expect(audit[2].details.to.tlp).toBe('GREEN');
          const bad = await req('PATCH', `/api/reports/${id}`, as.bob, {
            location: { type: 'Point', coordinates: [500, 1] },
          });
          expect(problem(bad)).toEqual({ status: 400, code: 'ACCESS_INVALID_INPUT' });
          expect((await req('DELETE', `/api/reports/${id}`, as.vic)).statusCode).toBe(403);
          expect((await req('DELETE', `/api/reports/${id}`, as.fred)).statusCode).toBe(403);
          expect((await req('DELETE', `/api/reports/${id}`, as.alice)).statusCode).toBe(204);
          expect(await sees(as.alice, id)).toBe(false);
          expect(problem(await req('GET', `/api/access/explain?object=${id}&user=alice`, as.polly))).toEqual({
            status: 404,
            code: 'ACCESS_OBJECT_NOT_FOUND',
          });
        });

        it('audits disclosures of AMBER and RED outside the owner organisation, not inside it', async () => {
          const id = await create(as.alice, { tlp: 'AMBER', audience: { orgs: ['fire'] } });
          await sees(as.bob, id);
          await sees(as.fred, id);
          await listed(as.mia, id);
          const disclosed = (await req('GET', `/api/audit?object=${id}&action=disclose`, as.polly)).json()
            .items;
          expect(disclosed.map((d: { actorId: string }) => d.actorId).sort()).toEqual(
            [ids.fred, ids.mia].sort(),
          );
          const byActor = (
            await req('GET', `/api/audit?actor=${ids.fred}&order=desc&limit=1`, as.polly)
          ).json().items;
          expect(byActor).toHaveLength(1);
          const future = (await req('GET', '/api/audit?from=2100-01-01T00:00:00Z', as.polly)).json().items;
          expect(future).toEqual([]);
          expect(problem(await req('GET', '/api/audit?from=yesterday', as.polly))).toEqual({
            status: 400,
            code: 'PLATFORM_VALIDATION_FAILED',
          });
        });

        it("records a user's repeated reads of one object once, and again after its label changes", async () => {
          const id = await create(as.alice, { tlp: 'AMBER', audience: { orgs: ['fire'] } });
          for (let i = 0; i < 3; i++) {
            await sees(as.fred, id);
            await listed(as.fred, id);
          }
          const count = async () =>
            (await req('GET', `/api/audit?object=${id}&action=disclose`, as.polly)).json().items.length;
          expect(await count()).toBe(1);
          const patched = await req('PATCH', `/api/reports/${id}`, as.alice, {
            marking: { tlp: 'AMBER+STRICT', audience: { orgs: ['fire'] } },
          });
          expect(patched.statusCode).toBe(200);
          await sees(as.fred, id);
          expect(await count()).toBe(2);
        });

        it('pages the list newest first', async () => {
          const a = await create(as.eve, { tlp: 'AMBER' }, 'p1');
          const b = await create(as.eve, { tlp: 'AMBER' }, 'p2');
          const first = (await req('GET', '/api/reports?limit=1&owner=energy', as.eve)).json();
          expect(first.items.map((r: { id: string }) => r.id)).toEqual([b]);
          const second = (
            await req('GET', `/api/reports?limit=1&owner=energy&before=${first.next}`, as.eve)
          ).json();
          expect(second.items.map((r: { id: string }) => r.id)).toEqual([a]);
        });
      });

      it('keeps a verifiable audit chain of all of the above', async () => {
        const v = await req('GET', '/api/audit/verify', t.admin);
        expect(v.json().ok).toBe(true);
        expect(v.json().records).toBeGreaterThan(30);
        expect(await verifyAuditChain(t.store)).toEqual(v.json());
      });

      it('documents its routes and schemas in the OpenAPI document', async () => {
        const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
        for (const path of [
          '/api/auth/login',
          '/api/orgs',
          '/api/reports/{id}',
          '/api/access/explain',
          '/api/audit',
        ]) {
          expect(doc.paths[path], path).toBeDefined();
        }
        const body = doc.paths['/api/reports'].post.requestBody.content['application/json'].schema;
        expect(body.additionalProperties).toBe(false);
        expect(body.properties.marking.properties.tlp).toBeDefined();
      });
    },
  );
}
