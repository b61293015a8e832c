/**
 * The @context API (ETSI GS CIM 009 clause 5.13) beyond adding and serving hosted contexts: ContextInfo
 * (`details=true`), the `Cached` kind (the core context and the remote contexts in use), `numberOfHits`,
 * dropping and reloading cached contexts, on every store.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import { openTestApp, type TestApp } from './test-app.ts';

const CTX = '/ngsi-ld/v1/jsonldContexts';
const CORE = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld';
const TS =
  'https://forge.etsi.org/rep/cim/ngsi-ld-test-suite/-/raw/develop/resources/jsonld-contexts/ngsi-ld-test-suite.jsonld';
const alice = { 'x-test-user': 'alice@metro' };
const json = { ...alice, 'content-type': 'application/json' };
const linkTo = (url: string) =>
  `<${url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`;
const err = (type: string) => `https://uri.etsi.org/ngsi-ld/errors/${type}`;
const at = (url: string) => `${CTX}/${encodeURIComponent(url)}`;

for (const f of testStoreFactories())
  describe.skipIf(f.skip)(`The @context API on ${f.name}${f.skip ? ` (skipped: ${f.skip})` : ''}`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await openTestApp({ store: f.name });
    });
    afterAll(async () => {
      await t?.close();
    });
    const inject = (o: InjectOptions) => t.app.inject(o);

    it('tells a hosted context’s ContextInfo, with the hits of requests that named it', async () => {
      const add = await inject({
        method: 'POST',
        url: CTX,
        headers: json,
        payload: { '@context': { Kiosk: 'https://city.example/vocab/Kiosk' } },
      });
      expect(add.statusCode).toBe(201);
      const location = String(add.headers.location);
      const id = location.split('/').pop();
      const info = await inject({ method: 'GET', url: `${location}?details=true` });
      expect([info.statusCode, info.headers['content-type']]).toEqual([
        200,
        'application/json; charset=utf-8',
      ]);
      expect(info.json()).toEqual({
        URL: `http://localhost:80${location}`,
        localId: id,
        kind: 'Hosted',
        createdAt: expect.any(String),
        numberOfHits: 0,
      });
      const create = await inject({
        method: 'POST',
        url: '/ngsi-ld/v1/entities',
        headers: { ...json, link: linkTo(`https://broker.example${location}`) },
        payload: { id: `urn:ngsi-ld:Kiosk:${f.name}`, type: 'Kiosk' },
      });
      expect(create.statusCode).toBe(201);
      const used = (await inject({ method: 'GET', url: `${location}?details=true` })).json();
      expect(used).toMatchObject({ numberOfHits: 1, lastUsage: expect.any(String) });
      const reload = await inject({ method: 'DELETE', url: `${location}?reload=true`, headers: alice });
      expect([reload.statusCode, reload.json().type]).toEqual([400, err('BadRequestData')]);
      expect((await inject({ method: 'DELETE', url: location, headers: alice })).statusCode).toBe(204);
    });

    it('lists the core context and the remote contexts in use as Cached, and serves them by URL', async () => {
      const use = await inject({
        method: 'GET',
        url: '/ngsi-ld/v1/types',
        headers: { ...alice, link: linkTo(TS) },
      });
      expect(use.statusCode).toBe(200);
      const list = await inject({ method: 'GET', url: `${CTX}?kind=Cached&details=true`, headers: alice });
      expect(list.statusCode).toBe(200);
      const byUrl = new Map((list.json() as { URL: string }[]).map((i) => [i.URL, i]));
      expect(byUrl.get(CORE)).toMatchObject({ localId: CORE, kind: 'Cached', createdAt: expect.any(String) });
      expect(byUrl.get(TS)).toMatchObject({ kind: 'Cached', numberOfHits: 1 });
      const urls = await inject({ method: 'GET', url: `${CTX}?kind=Cached`, headers: alice });
      expect(urls.json()).toEqual(expect.arrayContaining([CORE, TS]));
      const doc = await inject({ method: 'GET', url: at(TS) });
      expect([doc.statusCode, doc.headers['content-type']]).toEqual([
        200,
        'application/ld+json; charset=utf-8',
      ]);
      expect(doc.json()).toHaveProperty('@context');
      const info = await inject({ method: 'GET', url: `${at(TS)}?details=true` });
      expect(info.json()).toMatchObject({ URL: TS, localId: TS, kind: 'Cached' });
      const unknown = await inject({ method: 'GET', url: at('https://nowhere.example/ctx.jsonld') });
      expect([unknown.statusCode, unknown.json().type]).toEqual([404, err('ResourceNotFound')]);
      const badKind = await inject({ method: 'GET', url: `${CTX}?kind=Other`, headers: alice });
      expect([badKind.statusCode, badKind.json().type]).toEqual([400, err('BadRequestData')]);
    });

    it('drops or reloads a cached context; the core context is only reloaded', async () => {
      await inject({ method: 'GET', url: '/ngsi-ld/v1/types', headers: { ...alice, link: linkTo(TS) } });
      const reload = await inject({ method: 'DELETE', url: `${at(TS)}?reload=true`, headers: alice });
      expect(reload.statusCode).toBe(204);
      expect((await inject({ method: 'GET', url: at(TS) })).statusCode).toBe(200);
      const drop = await inject({ method: 'DELETE', url: at(TS), headers: alice });
      expect(drop.statusCode).toBe(204);
      const gone = await inject({ method: 'GET', url: at(TS) });
      expect(gone.statusCode).toBe(404);
      const again = await inject({ method: 'DELETE', url: at(TS), headers: alice });
      expect([again.statusCode, again.json().type]).toEqual([404, err('ResourceNotFound')]);
      const core = await inject({ method: 'DELETE', url: at(CORE), headers: alice });
      expect([core.statusCode, core.json().type]).toEqual([400, err('BadRequestData')]);
      const coreReload = await inject({ method: 'DELETE', url: `${at(CORE)}?reload=true`, headers: alice });
      expect(coreReload.statusCode).toBe(204);
      const reader = await inject({
        method: 'DELETE',
        url: `${at(CORE)}?reload=true`,
        headers: { ...alice, 'x-test-roles': 'viewer' },
      });
      expect([reader.statusCode, reader.json().type]).toEqual([403, err('AccessDenied')]);
    });
  });
