import { describe, expect, it } from 'vitest';
import { markingLabel, parseMarkingLabel } from './marking-label.ts';

const m = (tlp: 'CLEAR' | 'GREEN' | 'AMBER' | 'RED', pap?: 'GREEN' | 'RED') => ({
  tlp,
  ...(pap ? { pap } : {}),
  audience: { orgs: [], communities: [], users: [] },
});

describe('marking labels on the way out', () => {
  it('labels one object, and several with the tightest label and PAP and every owner', () => {
    expect(markingLabel([{ marking: m('AMBER', 'GREEN'), ownerOrg: 'police' }])).toBe(
      'TLP:AMBER; PAP:GREEN; owner=police',
    );
    expect(
      markingLabel([
        { marking: m('GREEN', 'RED'), ownerOrg: 'police' },
        { marking: m('RED'), ownerOrg: 'fire' },
        { marking: m('CLEAR'), ownerOrg: 'police' },
      ]),
    ).toBe('TLP:RED; PAP:RED; owner=fire,police');
    expect(markingLabel([])).toBeUndefined();
  });

  it('reads a label back', () => {
    expect(parseMarkingLabel('TLP:AMBER+STRICT; PAP:GREEN; owner=fire,police')).toEqual({
      tlp: 'AMBER+STRICT',
      pap: 'GREEN',
      owners: ['fire', 'police'],
    });
    expect(parseMarkingLabel('TLP:YELLOW; owner=x')).toBeUndefined();
  });
});
