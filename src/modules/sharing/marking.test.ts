import { describe, expect, it } from 'vitest';
import { explainVisibility } from './explain-visibility.ts';
import {
  canRead,
  combineMarkings,
  type MarkedObject,
  normaliseTlp,
  objectReadKeys,
  type PrincipalFacts,
  parseMarking,
  principalReadKeys,
  TLP_LABELS,
} from './marking.ts';

const facts = (
  userId: string,
  orgId: string,
  communities: string[] = [],
  patronOrgs: string[] = [],
): PrincipalFacts => ({
  userId,
  orgId,
  communities,
  patronOrgs,
});

describe('parseMarking', () => {
  it('normalises labels: TLP: prefix, case, TLP 1.0 WHITE', () => {
    expect(normaliseTlp('tlp:amber+strict')).toBe('AMBER+STRICT');
    expect(normaliseTlp('WHITE')).toBe('CLEAR');
    expect(parseMarking({ tlp: 'TLP:RED', pap: 'pap:green', audience: { users: ['u1', 'u1'] } })).toEqual({
      tlp: 'RED',
      pap: 'GREEN',
      audience: { orgs: [], communities: [], users: ['u1'] },
    });
  });

  it('rejects what is not a marking, with the code that says why', () => {
    const code = (input: unknown) => {
      try {
        parseMarking(input);
        return 'accepted';
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    expect(code('AMBER')).toBe('ACCESS_INVALID_MARKING');
    expect(code({ tlp: 'AMBER', colour: 'x' })).toBe('ACCESS_INVALID_MARKING');
    expect(code({ tlp: 'YELLOW' })).toBe('ACCESS_INVALID_TLP');
    expect(code({ tlp: 3 })).toBe('ACCESS_INVALID_TLP');
    expect(code({ tlp: 'AMBER', pap: 'WHITEISH' })).toBe('ACCESS_INVALID_PAP');
    expect(code({ tlp: 'AMBER', audience: { orgs: 'police' } })).toBe('ACCESS_INVALID_AUDIENCE');
    expect(code({ tlp: 'AMBER', audience: { orgs: ['bad id with spaces'] } })).toBe(
      'ACCESS_INVALID_AUDIENCE',
    );
    expect(code({ tlp: 'AMBER', audience: { teams: [] } })).toBe('ACCESS_INVALID_AUDIENCE');
  });
});

describe('read keys', () => {
  it('gives the public only CLEAR', () => {
    for (const tlp of TLP_LABELS) {
      const o: MarkedObject = {
        ownerOrg: 'police',
        createdBy: 'u1',
        marking: { tlp, audience: { orgs: [], communities: [], users: [] } },
      };
      expect(canRead(null, o)).toBe(tlp === 'CLEAR');
    }
    expect(principalReadKeys(null)).toEqual(['public']);
  });

  it('agrees with the explanation on every label, relation and audience shape', () => {
    // A small world walked exhaustively: the reader's organisation is the owner, an audience org, a
    // client of either, a community member, or a stranger; the reader is the creator, named, or not.
    const readers: [string, PrincipalFacts][] = [
      ['creator', facts('u1', 'police')],
      ['same-org', facts('u2', 'police')],
      ['named-stranger', facts('u3', 'energy')],
      ['audience-org', facts('u4', 'fire')],
      ['client-of-owner', facts('u5', 'metro', [], ['police'])],
      ['client-of-audience', facts('u6', 'bus', [], ['fire'])],
      ['community-member', facts('u7', 'water', ['crisis'])],
      ['stranger', facts('u8', 'venue')],
    ];
    const audiences = [
      { orgs: [], communities: [], users: [] },
      { orgs: ['fire'], communities: [], users: ['u3'] },
      { orgs: [], communities: ['crisis'], users: [] },
      { orgs: ['fire'], communities: ['crisis'], users: ['u3', 'u5'] },
      { orgs: [], communities: ['all'], users: [] },
    ];
    let checked = 0;
    for (const tlp of TLP_LABELS) {
      for (const audience of audiences) {
        const o: MarkedObject = { ownerOrg: 'police', createdBy: 'u1', marking: { tlp, audience } };
        for (const [name, f] of readers) {
          const v = explainVisibility({ username: name, disabled: false, facts: f }, o);
          expect(v.visible, `${tlp} ${JSON.stringify(audience)} ${name}: ${v.reason}`).toBe(canRead(f, o));
          checked += 1;
        }
      }
    }
    expect(checked).toBe(200);
  });

  it('keeps RED from the rest of the owner organisation and AMBER+STRICT from clients', () => {
    const red: MarkedObject = {
      ownerOrg: 'police',
      createdBy: 'u1',
      marking: { tlp: 'RED', audience: { orgs: ['police'], communities: ['all'], users: ['u9'] } },
    };
    expect(objectReadKeys(red)).toEqual(['user:u1', 'user:u9']);
    expect(canRead(facts('u2', 'police'), red)).toBe(false);
    const strict: MarkedObject = {
      ownerOrg: 'police',
      createdBy: 'u1',
      marking: { tlp: 'AMBER+STRICT', audience: { orgs: ['fire'], communities: [], users: [] } },
    };
    expect(canRead(facts('u5', 'metro', [], ['police', 'fire']), strict)).toBe(false);
    expect(canRead(facts('u4', 'fire'), strict)).toBe(true);
  });

  it('explains a disabled account as not seeing anything', () => {
    const o: MarkedObject = {
      ownerOrg: 'police',
      createdBy: 'u1',
      marking: { tlp: 'CLEAR', audience: { orgs: [], communities: [], users: [] } },
    };
    expect(
      explainVisibility({ username: 'x', disabled: true, facts: facts('u1', 'police') }, o),
    ).toMatchObject({
      visible: false,
      rule: 'account-disabled',
    });
  });
});

describe('combineMarkings', () => {
  it('takes the tightest label and PAP and intersects audiences', () => {
    expect(
      combineMarkings([
        { tlp: 'GREEN', pap: 'GREEN', audience: { orgs: ['a', 'b'], communities: [], users: [] } },
        { tlp: 'AMBER', audience: { orgs: ['b', 'c'], communities: ['x'], users: [] } },
      ]),
    ).toEqual({ tlp: 'AMBER', pap: 'GREEN', audience: { orgs: ['b'], communities: ['x'], users: [] } });
    expect(() => combineMarkings([])).toThrow();
  });
});
