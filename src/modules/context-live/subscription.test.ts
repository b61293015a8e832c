import { describe, expect, it } from 'vitest';
import { createCoreQueryPort } from './core-query-port.ts';
import { parseSubscription, patchSubscription, type SubscriptionSpec } from './subscription.ts';
import { compileIdPatterns, firedTriggers, matchChange } from './subscription-matcher.ts';
import { DEFAULT_VOCAB, entityChange, testLdContext } from './testing.ts';

const ld = testLdContext();
const deps = { ld, query: createCoreQueryPort(ld), now: new Date('2026-11-27T00:00:00Z'), newId: () => 'x1' };
const base = {
  type: 'Subscription',
  entities: [{ type: 'Vehicle' }],
  notification: { endpoint: { uri: 'http://127.0.0.1:9/n' } },
};
const parse = (body: Record<string, unknown>) => parseSubscription({ ...base, ...body }, undefined, deps);

describe('subscription validation (clause 5.2.12)', () => {
  it('fills defaults and expands terms', async () => {
    const s = await parse({ watchedAttributes: ['speed'] });
    expect(s).toMatchObject({
      id: 'urn:ngsi-ld:Subscription:x1',
      entities: [{ type: `${DEFAULT_VOCAB}Vehicle` }],
      watchedAttributes: [`${DEFAULT_VOCAB}speed`],
      notificationTrigger: ['attributeCreated', 'attributeUpdated'],
      isActive: true,
      notification: { format: 'normalized', endpoint: { accept: 'application/json' } },
    });
  });

  it.each([
    [{ type: 'Sub' }, /type must be "Subscription"/],
    [{ id: 'not a uri' }, /id must be a URI/],
    [{ entities: [] }, /entities/],
    [{ entities: [{ id: 'urn:x:1' }] }, /needs a type/],
    [{ entities: [{ type: 'T', idPattern: '(' }] }, /regular expression/],
    [{ entities: undefined }, /entities or watchedAttributes/],
    [{ watchedAttributes: [] }, /watchedAttributes/],
    [{ notificationTrigger: ['entityTouched'] }, /entityTouched/],
    [{ timeInterval: 10, watchedAttributes: ['a'] }, /timeInterval and watchedAttributes/],
    [{ timeInterval: 10, throttling: 5 }, /timeInterval and throttling/],
    [{ throttling: -1 }, /throttling/],
    [{ expiresAt: '2020-01-01T00:00:00Z' }, /future/],
    [{ expiresAt: 'tomorrow' }, /DateTime/],
    [{ q: '(speed>1' }, /./],
    [{ geoQ: { geometry: 'Circle', coordinates: [1, 2], georel: 'near;maxDistance==10' } }, /geometry/],
    [{ geoQ: { geometry: 'Point', coordinates: [1, 2], georel: 'close' } }, /georel/],
    [{ notification: {} }, /endpoint/],
    [{ notification: { endpoint: { uri: 'ftp://x/y' } } }, /scheme/],
    [{ notification: { endpoint: { uri: 'mqtt://broker:1883' } } }, /topic/],
    [{ notification: { endpoint: { uri: 'http://x/', accept: 'text/plain' } } }, /accept/],
    [{ notification: { endpoint: { uri: 'http://x/' }, format: 'xml' } }, /format/],
    [{ colour: 'red' }, /unknown subscription member/],
  ])('rejects %j', async (body, message) => {
    await expect(parse(body as Record<string, unknown>)).rejects.toThrow(message);
  });

  it('rejects what it does not support with CONTEXT_LIVE_UNSUPPORTED', async () => {
    await expect(parse({ scopeQ: '/a' })).rejects.toMatchObject({ code: 'CONTEXT_LIVE_UNSUPPORTED' });
  });

  it('patches members and keeps the others', async () => {
    const s = await parse({ q: 'speed>10' });
    const p = await patchSubscription(
      s,
      { q: null, throttling: 5, notification: { format: 'keyValues' } },
      undefined,
      deps,
    );
    expect(p.q).toBeUndefined();
    expect(p.throttling).toBe(5);
    expect(p.notification.format).toBe('keyValues');
    expect(p.notification.endpoint.uri).toBe('http://127.0.0.1:9/n');
    await expect(patchSubscription(s, { id: 'urn:other:1' }, undefined, deps)).rejects.toThrow(
      /cannot change/,
    );
    await expect(patchSubscription(s, { entities: null }, undefined, deps)).rejects.toThrow(
      /entities or watched/,
    );
  });
});

describe('matching changes to subscriptions', () => {
  const V = DEFAULT_VOCAB;
  const compiled = (spec: SubscriptionSpec) => ({
    spec,
    idPatterns: compileIdPatterns(spec),
  });
  const car = {
    id: 'urn:ngsi-ld:Vehicle:9',
    type: [`${V}Vehicle`],
    [`${V}speed`]: { type: 'Property', value: 1 },
  };

  it('fires entity and attribute triggers by kind of change', () => {
    const created = firedTriggers('created', entityChange(car));
    expect([...created.keys()]).toEqual(['entityCreated', 'attributeCreated']);
    const removed = firedTriggers('updated', entityChange(car, { changed: [`${V}colour`] }));
    expect([...removed.keys()]).toEqual(['entityUpdated', 'attributeDeleted']);
    expect([...firedTriggers('deleted', entityChange(car, { deleted: true })).keys()]).toEqual([
      'entityDeleted',
    ]);
  });

  it('matches selectors by type, id and idPattern', async () => {
    const byPattern = compiled(
      await parse({ entities: [{ type: 'Vehicle', idPattern: ':Vehicle:[0-8]$' }] }),
    );
    const byId = compiled(await parse({ entities: [{ type: 'Vehicle', id: 'urn:ngsi-ld:Vehicle:9' }] }));
    const otherType = compiled(await parse({ entities: [{ type: 'Bus' }] }));
    const c = entityChange(car);
    const fired = firedTriggers('updated', c);
    expect(matchChange(byPattern, 'updated', c, fired)).toBeUndefined();
    expect(matchChange(byId, 'updated', c, fired)).toBe('attributeUpdated');
    expect(matchChange(otherType, 'updated', c, fired)).toBeUndefined();
  });
});

describe('gap 11: subscribers cannot stall the delivery of others', () => {
  const car = (id: string) => ({
    id,
    type: [`${DEFAULT_VOCAB}Vehicle`],
    [`${DEFAULT_VOCAB}name`]: { type: 'Property', value: 'x'.repeat(52) },
  });

  it('runs selectors idPatterns and q patterns in linear time, refuses PostgreSQL-only syntax', async () => {
    const cs = await parse({
      entities: [{ type: 'Vehicle', idPattern: '^urn:(x|xx)*$' }],
      q: 'name~=".*.*.*.*.*.*.*.*.*!"',
    });
    const q = await deps.query.compileQ(cs.q as string, undefined);
    const compiled = { spec: cs, idPatterns: compileIdPatterns(cs), q };
    const c = entityChange(car(`urn:${'x'.repeat(60)}`));
    const started = performance.now();
    expect(matchChange(compiled, 'updated', c, firedTriggers('updated', c))).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(200);
    for (const idPattern of ['\\mVehicle', '(a)\\1']) {
      await expect(parse({ entities: [{ type: 'Vehicle', idPattern }] })).rejects.toThrow(
        /is not a regular expression this broker runs/,
      );
    }
    await expect(parse({ q: 'name~="(?<=a)b"' })).rejects.toMatchObject({ code: 'CONTEXT_INVALID_QUERY' });
  });

  it('an id too long for a large pattern does not match, instead of holding the event loop', async () => {
    const cs = await parse({ entities: [{ type: 'Vehicle', idPattern: '^urn:[^!]{0,999}$' }] });
    const compiled = { spec: cs, idPatterns: compileIdPatterns(cs) };
    const short = entityChange(car('urn:ngsi-ld:Vehicle:1'));
    const long = entityChange(car(`urn:ngsi-ld:Vehicle:${'9'.repeat(400)}`));
    expect(matchChange(compiled, 'updated', short, firedTriggers('updated', short))).toBe('attributeUpdated');
    expect(matchChange(compiled, 'updated', long, firedTriggers('updated', long))).toBeUndefined();
  });
});
