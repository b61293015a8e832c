import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestApp, SHARED_DATA, type TestApp } from './test-app.ts';

const DIR = join(SHARED_DATA, 'standards/ngsi-ld/smart-data-models');
const MODELS = readdirSync(DIR).filter((d) => !d.startsWith('_'));
const CORE_URLS = new Set([
  'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld',
  'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld',
]);
const user = { 'x-test-user': 'alice@city' };

/** The model's own context: the last non-core URL of the example's @context. */
function linkOf(context: unknown): string {
  const list = (Array.isArray(context) ? context : [context]) as string[];
  const url = list.filter((u) => !CORE_URLS.has(u)).at(-1)!;
  return `<${url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`;
}

describe('Smart Data Models examples load as they are and come back equal', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each(MODELS)('%s: normalized (application/ld+json)', async (model) => {
    const doc = JSON.parse(readFileSync(join(DIR, model, 'example-normalized.jsonld'), 'utf8'));
    const { '@context': context, ...entity } = doc;
    const create = await t.app.inject({
      method: 'POST',
      url: '/ngsi-ld/v1/entities',
      headers: { ...user, 'content-type': 'application/ld+json' },
      payload: doc,
    });
    expect(create.statusCode, create.body).toBe(201);
    const get = await t.app.inject({
      method: 'GET',
      url: `/ngsi-ld/v1/entities/${encodeURIComponent(entity.id)}`,
      headers: { ...user, link: linkOf(context) },
    });
    expect(get.statusCode).toBe(200);
    expect(get.json()).toEqual(entity);
  });

  it.each(MODELS)('%s: keyValues (concise input, options=keyValues output)', async (model) => {
    const doc = JSON.parse(readFileSync(join(DIR, model, 'example.jsonld'), 'utf8'));
    const { '@context': context, ...entity } = doc;
    const id = `${entity.id}:kv`;
    const create = await t.app.inject({
      method: 'POST',
      url: '/ngsi-ld/v1/entities',
      headers: { ...user, 'content-type': 'application/ld+json' },
      payload: { ...doc, id },
    });
    expect(create.statusCode, create.body).toBe(201);
    const get = await t.app.inject({
      method: 'GET',
      url: `/ngsi-ld/v1/entities/${encodeURIComponent(id)}?options=keyValues`,
      headers: { ...user, link: linkOf(context) },
    });
    expect(get.json()).toEqual({ ...entity, id });
  });
});
