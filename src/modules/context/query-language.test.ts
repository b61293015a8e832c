import { describe, expect, it } from 'vitest';
import { AppError } from '../../kernel/errors.ts';
import type { ExpandedEntity } from './entity-model.ts';
import {
  expandQueryValues,
  matchesQuery,
  matchesScopeQuery,
  parseQuery,
  parseScopeQuery,
} from './query-language.ts';

const V = 'https://v/';
const expand = (t: string) => (t.includes(':') ? t : `${V}${t}`);

const entity: ExpandedEntity = {
  id: 'urn:ngsi-ld:Sensor:1',
  type: [`${V}Sensor`],
  scope: ['/Madrid/Gardens/ParqueNorte'],
  [`${V}temperature`]: {
    type: 'Property',
    value: 21.5,
    observedAt: '2024-05-01T10:00:00Z',
    unitCode: 'CEL',
    [`${V}accuracy`]: { type: 'Property', value: 0.5 },
  },
  [`${V}name`]: { type: 'Property', value: 'Gate "North"' },
  [`${V}status`]: [
    { type: 'Property', value: 'ok', datasetId: 'urn:ds:a' },
    { type: 'Property', value: 'degraded', datasetId: 'urn:ds:b' },
  ],
  [`${V}tags`]: { type: 'Property', value: ['crowd', 'metro'] },
  [`${V}address`]: { type: 'Property', value: { city: 'Porto', street: { name: 'Rua A', no: 12 } } },
  [`${V}isOpen`]: { type: 'Property', value: true },
  [`${V}refStation`]: { type: 'Relationship', object: 'urn:ngsi-ld:Station:7' },
  [`${V}label`]: { type: 'LanguageProperty', languageMap: { en: 'Exit', pt: 'Saída' } },
  [`${V}since`]: { type: 'Property', value: { '@type': 'DateTime', '@value': '2024-01-01T00:00:00Z' } },
};

const m = (q: string) => matchesQuery(entity, parseQuery(q, expand));

describe('q language', () => {
  it('compares numbers, strings, booleans and dates', () => {
    expect([
      m('temperature>20'),
      m('temperature>=21.5'),
      m('temperature<21.5'),
      m('temperature==21.5'),
    ]).toEqual([true, true, false, true]);
    expect([
      m('temperature!=21.5'),
      m('isOpen==true'),
      m('isOpen==false'),
      m('name=="Gate \\"North\\""'),
    ]).toEqual([false, true, false, true]);
    expect([m('since<2024-06-01T00:00:00Z'), m('since>2024-06-01T00:00:00Z')]).toEqual([true, false]);
  });

  it('handles ranges, lists and patterns', () => {
    expect([m('temperature==20..22'), m('temperature==22..30'), m('temperature!=22..30')]).toEqual([
      true,
      false,
      true,
    ]);
    expect([m('status=="broken","ok"'), m('status==broken,failed'), m('tags==metro')]).toEqual([
      true,
      false,
      true,
    ]);
    expect([m('name~=^Gate'), m('name~=(?i)^gate'), m('name!~=^Gate'), m('name~=^gate')]).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });

  it('follows sub-attribute paths and compound values', () => {
    expect([m('temperature.observedAt>=2024-05-01T00:00:00Z'), m('temperature.unitCode=="CEL"')]).toEqual([
      true,
      true,
    ]);
    expect([m('temperature.accuracy<1'), m('temperature.accuracy>1')]).toEqual([true, false]);
    expect([m('address[city]=="Porto"'), m('address[street][no]==12'), m('address[street][no]==13')]).toEqual(
      [true, true, false],
    );
  });

  it('matches relationships, language properties and multi-attributes', () => {
    expect([m('refStation==urn:ngsi-ld:Station:7'), m('refStation=="urn:ngsi-ld:Station:8"')]).toEqual([
      true,
      false,
    ]);
    expect([m('label=="Saída"'), m('status=="degraded"'), m('status=="ok"')]).toEqual([true, true, true]);
  });

  it('combines with ; and | and parentheses, ; binding tighter', () => {
    expect(m('temperature>30;isOpen==true')).toBe(false);
    expect(m('temperature>30|isOpen==true')).toBe(true);
    expect(m('temperature>30;isOpen==true|name~=Gate')).toBe(true);
    expect(m('temperature>30;(isOpen==true|name~=Gate)')).toBe(false);
    expect(m('(temperature>20;isOpen==true)|missing')).toBe(true);
  });

  it('tests existence and never matches absent attributes', () => {
    expect([m('temperature'), m('missing'), m('missing!=3'), m('missing==3')]).toEqual([
      true,
      false,
      false,
      false,
    ]);
  });

  it('negates existence with ! (clause 4.9)', () => {
    expect([
      m('!missing'),
      m('!temperature'),
      m('!temperature.accuracy'),
      m('!temperature.precision'),
    ]).toEqual([true, false, false, true]);
    expect([m('!address[city]'), m('!address[zip]'), m('!id'), m('!scope')]).toEqual([
      false,
      true,
      false,
      false,
    ]);
    expect([m('!missing;temperature>20'), m('!temperature|isOpen==true'), m('(!missing)')]).toEqual([
      true,
      true,
      true,
    ]);
    for (const bad of [
      '!',
      '! missing',
      '!temperature>5',
      '!(temperature)',
      '!!temperature',
      'temperature;!',
    ]) {
      expect(() => parseQuery(bad, expand), bad).toThrowError(
        expect.objectContaining({ code: 'CONTEXT_INVALID_QUERY' }),
      );
    }
  });

  it('expands the values of the attributes expandValues lists, and only those', () => {
    const v = (q: string, attrs: string[]) =>
      expandQueryValues(parseQuery(q, expand), new Set(attrs.map(expand)), expand);
    expect(v('status==ok', ['status'])).toMatchObject({ value: { kind: 'string', value: `${V}ok` } });
    expect(v('status==ok,degraded;name=="x"', ['status'])).toMatchObject({
      terms: [
        { value: { kind: 'list', values: [{ value: `${V}ok` }, { value: `${V}degraded` }] } },
        { value: { kind: 'string', value: 'x' } },
      ],
    });
    // Numbers, sub-attribute paths and attributes not listed stay as written.
    expect(v('status==3|status.since==ok|name==ok', ['status'])).toMatchObject({
      terms: [
        { value: { kind: 'number', value: 3 } },
        { value: { value: 'ok' } },
        { value: { value: 'ok' } },
      ],
    });
  });

  it('expands attribute names but keeps core members and full IRIs', () => {
    const ast = parseQuery('temperature.observedAt>2020-01-01T00:00:00Z;https://x.org/a==1', expand);
    expect(ast).toMatchObject({
      kind: 'and',
      terms: [
        { path: { attribute: `${V}temperature`, subAttributes: ['observedAt'] } },
        { path: { attribute: 'https://x.org/a', subAttributes: [] } },
      ],
    });
  });

  it('rejects bad syntax with a detail', () => {
    for (const q of [
      '',
      'a==',
      '(a==1',
      'a==1)',
      'a==1;',
      '==3',
      'a==1..',
      'a~=(',
      'a>true',
      'a>1,2',
      'a[b==1',
    ]) {
      let err: unknown;
      try {
        parseQuery(q);
      } catch (e) {
        err = e;
      }
      expect(err, q).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('CONTEXT_INVALID_QUERY');
    }
  });
});

describe('patterns (RE2)', () => {
  it('runs what backtracking engines cannot: nested quantifiers are linear', () => {
    const slow = { ...entity, [`${V}name`]: { type: 'Property', value: 'a'.repeat(52) } };
    for (const q of ['name~=(a+)+$', 'name~=(a|aa)*b', 'name~=".*.*.*.*.*.*.*.*.*!"', 'name~=(\\w+\\s?)*$']) {
      const t = performance.now();
      matchesQuery(slow, parseQuery(q, expand));
      expect(performance.now() - t, q).toBeLessThan(200);
    }
    expect(matchesQuery(slow, parseQuery('name~=^(a+)+$', expand))).toBe(true);
  });

  it('refuses syntax RE2 does not have, saying why', () => {
    for (const [q, why] of [
      ['name~=(a)\\1', /invalid escape sequence/],
      ['name~=\\mGate', /invalid escape sequence/],
      ['name~=(?=G)', /unsupported Perl syntax/],
      ['name~=a{1001}', /invalid repeat count/],
      [`name~=${'x'.repeat(300)}`, /longer than 256/],
    ] as const) {
      expect(() => parseQuery(q, expand), q).toThrow(why);
    }
  });

  it("bounds the work of a query's patterns on one entity, however many values it has", () => {
    const long = 'ab'.repeat(1000);
    const many = { ...entity, [`${V}notes`]: { type: 'Property', value: [long, long, long] } };
    // Each value is within the bound of one evaluation; the three together are not.
    expect(
      matchesQuery(
        { ...entity, [`${V}notes`]: { type: 'Property', value: long } },
        parseQuery('notes~=a[ab]{200}c', expand),
      ),
    ).toBe(false);
    let err: unknown;
    try {
      matchesQuery(many, parseQuery('notes~=a[ab]{200}c', expand));
    } catch (e) {
      err = e;
    }
    expect((err as AppError).code).toBe('CONTEXT_QUERY_TOO_COMPLEX');
    expect((err as AppError).message).toMatch(/more text of one entity than allowed/);
  });

  it('takes POSIX classes and inline flags', () => {
    expect([m('name~=^[[:alpha:]]+ '), m('name~=(?i)^GATE'), m('name~=^gate')]).toEqual([true, true, false]);
  });
});

describe('scopeQ', () => {
  const s = (q: string) => matchesScopeQuery(entity, parseScopeQuery(q));
  it('matches exact, + and # scopes', () => {
    expect([
      s('/Madrid/Gardens/ParqueNorte'),
      s('/Madrid/+/ParqueNorte'),
      s('/Madrid/#'),
      s('/Madrid'),
    ]).toEqual([true, true, true, false]);
    expect([s('/Porto|/Madrid/#'), s('/Porto;/Madrid/#'), s('/#')]).toEqual([true, false, true]);
  });
  it('rejects bad scopes', () => {
    expect(() => parseScopeQuery('Madrid')).toThrow(/not a scope/);
    expect(() => parseScopeQuery('/a/#/b')).toThrow(AppError);
  });
});
