import { describe, expect, it } from 'vitest';
import {
  expandProjection,
  followedRelationships,
  parseProjection,
  projectedMembers,
  projectsNothing,
  reachesLinked,
  relationshipObjects,
} from './linked-entities.ts';

describe('projections with braces (clause 4.21)', () => {
  it('parses names, nested braces and several levels', () => {
    const tree = parseProjection('id,locatedAt{id,name,isInCountry{description}},type', 'pick');
    expect(tree).toEqual(
      new Map<string, unknown>([
        ['id', null],
        [
          'locatedAt',
          new Map<string, unknown>([
            ['id', null],
            ['name', null],
            ['isInCountry', new Map([['description', null]])],
          ]),
        ],
        ['type', null],
      ]),
    );
    expect(reachesLinked(tree)).toBe(true);
    expect(reachesLinked(parseProjection('id,name', 'pick'))).toBe(false);
  });

  it('refuses what the ETSI tests 018_18 refuse, with 400 BadRequestData', () => {
    for (const bad of [
      'id;name',
      'id,locatedAt{name',
      'id,locatedAt{{name}',
      'id,,name',
      'id,locatedAt{,name}',
      'id,locatedAt{}',
      '',
      'name,',
      'a}b',
      'a b',
      'name,name',
      'a{b{c{d{e{f{g}}}}}}',
    ]) {
      expect(() => parseProjection(bad, 'pick'), bad).toThrowError(
        expect.objectContaining({ code: 'CONTEXT_INVALID_QUERY' }),
      );
    }
  });

  it('id, type and scope are members like the attributes (clause 4.21)', () => {
    const name = 'x:name';
    const e = { id: 'urn:a', type: ['x:Building'], [name]: { type: 'Property', value: 'Eiffel' } };
    const pick = (names: string[]) => new Map(names.map((n) => [n, null]));
    expect(projectedMembers({ pick: pick(['id', name]) })).toEqual({
      attrs: new Set([name]),
      core: new Set(['id']),
    });
    expect(projectedMembers({ omit: pick(['type', name]) })).toEqual({
      omit: new Set([name]),
      core: new Set(['id', 'scope']),
    });
    expect(projectsNothing(e, { pick: pick([name]) })).toBe(false);
    expect(projectsNothing(e, { pick: pick(['x:unknown']) })).toBe(true);
    expect(projectsNothing(e, { pick: pick(['scope']) })).toBe(true);
    expect(projectsNothing({ ...e, scope: ['/a'] }, { pick: pick(['scope']) })).toBe(false);
    expect(projectsNothing(e, { omit: pick(['id', 'type', name]) })).toBe(true);
    expect(projectsNothing(e, {})).toBe(false);
  });

  it('omit keeps a relationship with braces and drops one without', () => {
    const omit = expandProjection(parseProjection('type,locatedAt{name}', 'omit'), (t) => `x:${t}`);
    expect(projectedMembers({ omit })).toEqual({ omit: new Set(['x:type']) });
    const entity = {
      id: 'urn:a',
      type: ['x:Building'],
      'x:locatedAt': { type: 'Relationship', object: 'urn:c' },
      'x:owner': [
        { type: 'Relationship', object: 'urn:p' },
        { type: 'Relationship', object: 'urn:q', datasetId: 'urn:ds' },
      ],
      'x:name': { type: 'Property', value: 'b' },
    };
    expect(followedRelationships(entity, { omit })).toEqual([
      { attr: 'x:locatedAt', ids: ['urn:c'], next: { pick: undefined, omit: new Map([['x:name', null]]) } },
      { attr: 'x:owner', ids: ['urn:p', 'urn:q'], next: { pick: undefined, omit: undefined } },
    ]);
    const pick = expandProjection(parseProjection('locatedAt', 'pick'), (t) => `x:${t}`);
    expect(followedRelationships(entity, { pick }).map((r) => r.attr)).toEqual(['x:locatedAt']);
  });

  it('reads the ids of Relationships and ListRelationships only', () => {
    expect(relationshipObjects({ type: 'Relationship', object: 'urn:a' })).toEqual(['urn:a']);
    expect(
      relationshipObjects({ type: 'ListRelationship', objectList: ['urn:a', { object: 'urn:b' }, 7] }),
    ).toEqual(['urn:a', 'urn:b']);
    expect(relationshipObjects({ type: 'Property', value: 'urn:a' })).toEqual([]);
    expect(relationshipObjects(null)).toEqual([]);
  });
});
