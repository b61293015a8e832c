/**
 * Issue 7, gap 11 over HTTP: user patterns and query budgets answer 4xx NGSI-LD ProblemDetails, never 5xx
 * or a stall; an invisible entity answers exactly like an absent one.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestApp, type TestApp } from './test-app.ts';

const E = '/ngsi-ld/v1/entities';
const alice = { 'x-test-user': 'alice@metro' };
const carol = { 'x-test-user': 'carol@police' };
const json = { 'content-type': 'application/json' };
const err = (type: string) => `https://uri.etsi.org/ngsi-ld/errors/${type}`;
const ROWS = 30;

/** a/b text that makes RE2 walk its slowest path for `a[ab]{200}c`, and match at its end. */
function abText(seed: number): string {
  let s = seed;
  let out = '';
  for (let i = 0; i < 2100; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out += s % 2 === 0 ? 'a' : 'b';
  }
  return `${out}a${'b'.repeat(200)}c`;
}

const STORES = [
  { name: 'pglite' as const, skip: undefined },
  {
    name: 'postgres' as const,
    skip: process.env.DATABASE_URL ? undefined : 'DATABASE_URL is not set',
  },
];

for (const store of STORES)
  describe.skipIf(store.skip)(
    `gap 11 over HTTP on ${store.name}${store.skip ? ` (skipped: ${store.skip})` : ''}`,
    () => {
      let t: TestApp;
      let hurried: TestApp;
      const inject = (o: InjectOptions, app = t) => app.app.inject(o);
      const q = (query: string) => `${E}?type=Meter&${query}`;

      beforeAll(async () => {
        t = await openTestApp({ store: store.name });
        hurried = await openTestApp({ store: 'pglite', budgets: { queryTimeoutMs: 20 } });
        for (const app of [t, hurried]) {
          const batch = Array.from({ length: ROWS }, (_, i) => ({
            id: `urn:ngsi-ld:Meter:${i}`,
            type: 'Meter',
            label: { type: 'Property', value: 'x'.repeat(52) },
            trace: { type: 'Property', value: abText(i + 1) },
          }));
          const r = await inject(
            {
              method: 'POST',
              url: '/ngsi-ld/v1/entityOperations/create',
              headers: { ...alice, ...json },
              payload: batch,
            },
            app,
          );
          expect(r.statusCode).toBe(201);
        }
        const secret = await inject({
          method: 'POST',
          url: E,
          headers: { ...carol, ...json },
          payload: {
            id: 'urn:ngsi-ld:Meter:secret',
            type: ['Meter', 'Wiretap'],
            label: { type: 'Property', value: 'y' },
          },
        });
        expect(secret.statusCode).toBe(201);
      });
      afterAll(async () => {
        await t?.close();
        await hurried?.close();
      });

      it('a catastrophic q pattern answers 200 at once', async () => {
        const started = performance.now();
        const r = await inject({
          method: 'GET',
          url: q(`q=${encodeURIComponent('label~=".*.*.*.*.*.*.*.*.*!"')}&count=true`),
          headers: alice,
        });
        expect([r.statusCode, r.json(), r.headers['ngsild-results-count']]).toEqual([200, [], '0']);
        expect(performance.now() - started).toBeLessThan(2000);
      });

      it('PostgreSQL-only or backtracking-only syntax answers 400 BadRequestData saying why', async () => {
        for (const [param, pattern] of [
          ['idPattern', '\\mMeter'],
          ['idPattern', '(Meter)\\1'],
          ['q', 'label~="[[:<:]]x"'],
          ['q', 'label~="(?=x)x"'],
        ] as const) {
          const r = await inject({
            method: 'GET',
            url: q(`${param}=${encodeURIComponent(pattern)}`),
            headers: alice,
          });
          expect([r.statusCode, r.json().type], pattern).toEqual([400, err('BadRequestData')]);
          expect(r.json().detail, pattern).toMatch(
            /is not a regular expression this broker runs \(RE2 syntax/,
          );
        }
        const posix = await inject({
          method: 'GET',
          url: q(`idPattern=${encodeURIComponent('^urn:ngsi-ld:Meter:[[:digit:]]$')}&count=true&limit=0`),
          headers: alice,
        });
        expect([posix.statusCode, posix.headers['ngsild-results-count']]).toEqual([200, '10']);
      });

      it('other requests are answered while the costliest pattern runs over every row', async () => {
        const big = inject({
          method: 'GET',
          url: q(`q=${encodeURIComponent('trace~=a[ab]{200}c')}&count=true&limit=1`),
          headers: alice,
        });
        let bigDone = 0;
        void big.then(() => {
          bigDone = performance.now();
        });
        await new Promise((r) => setImmediate(r));
        const small = await inject({ method: 'GET', url: `${E}/urn:ngsi-ld:Meter:1`, headers: alice });
        const smallDone = performance.now();
        expect(small.statusCode).toBe(200);
        const answer = await big;
        expect([answer.statusCode, answer.headers['ngsild-results-count']]).toEqual([200, String(ROWS)]);
        expect(bigDone).toBeGreaterThan(smallDone);
      });

      it('a query past its time budget answers 403 TooComplexQuery', async () => {
        const r = await inject(
          {
            method: 'GET',
            url: q(`q=${encodeURIComponent('trace~=a[ab]{200}c;trace~=b[ab]{199}c')}`),
            headers: alice,
          },
          hurried,
        );
        expect(r.statusCode).toBe(403);
        expect(r.json()).toMatchObject({
          type: err('TooComplexQuery'),
          status: 403,
          detail: expect.stringMatching(/took more than 20 ms to evaluate; narrow it by type, id, attrs/),
        });
      });

      it('an invisible entity answers exactly like an absent one, and a create on its id 409 only', async () => {
        const same = async (method: 'GET' | 'PATCH' | 'DELETE', path: string) => {
          const request = (id: string): InjectOptions =>
            method === 'PATCH'
              ? {
                  method,
                  url: `${E}/${id}${path}`,
                  headers: { ...alice, ...json },
                  payload: { label: { type: 'Property', value: 'z' } },
                }
              : { method, url: `${E}/${id}${path}`, headers: alice };
          const hidden = await inject(request('urn:ngsi-ld:Meter:secret'));
          const absent = await inject(request('urn:ngsi-ld:Meter:absent'));
          expect(hidden.statusCode, `${method} ${path}`).toBe(404);
          expect(hidden.body.replaceAll('secret', 'X')).toBe(absent.body.replaceAll('absent', 'X'));
        };
        await same('GET', '');
        await same('PATCH', '/attrs');
        await same('DELETE', '');
        await same('DELETE', '/attrs/label');
        const taken = await inject({
          method: 'POST',
          url: E,
          headers: { ...alice, ...json },
          payload: { id: 'urn:ngsi-ld:Meter:secret', type: 'Meter' },
        });
        expect([taken.statusCode, taken.json()]).toEqual([
          409,
          {
            type: err('AlreadyExists'),
            title: 'The entity already exists',
            status: 409,
            detail: 'entity urn:ngsi-ld:Meter:secret already exists',
            code: 'CONTEXT_ENTITY_EXISTS',
          },
        ]);
        const types = await inject({ method: 'GET', url: '/ngsi-ld/v1/types', headers: alice });
        expect(types.body).not.toContain('Wiretap');
        const wiretap = await inject({ method: 'GET', url: '/ngsi-ld/v1/types/Wiretap', headers: alice });
        expect(wiretap.statusCode).toBe(404);
        const count = await inject({
          method: 'GET',
          url: `${E}?type=Meter&count=true&limit=0`,
          headers: alice,
        });
        expect(count.headers['ngsild-results-count']).toBe(String(ROWS));
      });
    },
  );
