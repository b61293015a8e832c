import { describe, expect, it } from 'vitest';
import { checkAttributeName, MAX_ID_BYTES, MAX_NAME_BYTES, parseEntity } from './entity-model.ts';

const vocab = (term: string) =>
  term.includes(':') ? term : `https://uri.etsi.org/ngsi-ld/default-context/${term}`;
const parse = (body: unknown) => parseEntity(body, vocab, { requireIdAndType: true });

describe('entity model: bounds that keep every key within its index', () => {
  it('refuses ids, types, attribute names and datasetIds longer than the index allows, in UTF-8 bytes', () => {
    const ok = { id: 'urn:ngsi-ld:Probe:1', type: 'Probe', level: { type: 'Property', value: 1 } };
    expect(parse(ok).entity.id).toBe('urn:ngsi-ld:Probe:1');
    expect(() => parse({ ...ok, id: `urn:x:${'i'.repeat(MAX_ID_BYTES)}` })).toThrow(/longer than 1024 bytes/);
    // Characters are not bytes: 400 three-byte characters are 1,200 bytes.
    expect(() => parse({ ...ok, id: `urn:x:${'東'.repeat(400)}` })).toThrow(/longer than 1024 bytes/);
    expect(() => parse({ ...ok, type: 'T'.repeat(300_000) })).toThrow(/longer than 512 bytes/);
    expect(() => parse({ ...ok, [`a${'n'.repeat(MAX_NAME_BYTES)}`]: 1 })).toThrow(
      /not a valid attribute name/,
    );
    expect(() =>
      parse({
        ...ok,
        level: { type: 'Property', value: 1, datasetId: `urn:ds:${'d'.repeat(MAX_NAME_BYTES)}` },
      }),
    ).toThrow(/datasetId/);
    // The expanded IRI counts, not only the term the client wrote.
    const longVocab = (t: string) => `https://example.org/${'v'.repeat(500)}/${t}`;
    expect(() => parseEntity(ok, longVocab, { requireIdAndType: true })).toThrow(/longer than 512 bytes/);
  });

  it('takes the names of Object.prototype members as attribute names, but never __proto__', () => {
    const e = parse({
      id: 'urn:ngsi-ld:Probe:2',
      type: 'Probe',
      constructor: { type: 'Property', value: 1 },
      toString: { type: 'Property', value: 2 },
    }).entity;
    expect(Object.keys(e)).toEqual(expect.arrayContaining([vocab('constructor'), vocab('toString')]));
    expect(() => checkAttributeName('__proto__')).toThrow(/not a valid attribute name/);
    expect(() => parse({ id: 'urn:x:3', type: '__proto__', a: 1 })).toThrow(/not a valid type name/);
  });
});
