import { describe, expect, it } from 'vitest';
import {
  type Marking,
  type PrincipalFacts,
  principalReadKeys,
  TLP_LABELS,
  TLP_RANK,
  type Tlp,
} from '../sharing/index.ts';
import { objectReadKeys } from '../sharing/marking.ts';
import { alertMarking, type MarkingSource } from './alert-marking.ts';

const m = (tlp: Tlp, audience: Partial<Marking['audience']> = {}): Marking => ({
  tlp,
  audience: { orgs: [], communities: [], users: [], ...audience },
});

describe('alertMarking', () => {
  it('takes the most restrictive label and PAP and keeps the audience every source reaches', () => {
    const got = alertMarking('police', [
      { ownerOrg: 'police', marking: m('GREEN') },
      { ownerOrg: 'metro', marking: { ...m('AMBER', { orgs: ['police', 'fire'] }), pap: 'AMBER' } },
      { ownerOrg: 'energy', marking: { ...m('AMBER', { orgs: ['police', 'fire', 'metro'] }), pap: 'GREEN' } },
    ]);
    expect(got).toEqual({
      tlp: 'AMBER',
      pap: 'AMBER',
      audience: { orgs: ['fire', 'metro'], communities: [], users: [] },
    });
  });

  it('tightens AMBER to AMBER+STRICT when the alert owner reads a source only as a client', () => {
    const got = alertMarking('police', [{ ownerOrg: 'metro', marking: m('AMBER') }]);
    expect(got.tlp).toBe('AMBER+STRICT');
    expect(got.audience.orgs).toEqual(['metro']);
  });

  it('keeps the communities GREEN sources share, and falls back to AMBER+STRICT when they share none', () => {
    expect(
      alertMarking('police', [
        { ownerOrg: 'metro', marking: m('GREEN', { communities: ['transport', 'crisis'] }) },
        { ownerOrg: 'police', marking: m('GREEN', { communities: ['crisis'] }) },
      ]),
    ).toEqual(m('GREEN', { communities: ['crisis'] }));
    expect(
      alertMarking('police', [
        { ownerOrg: 'metro', marking: m('GREEN', { communities: ['transport'], orgs: ['police'] }) },
        { ownerOrg: 'police', marking: m('GREEN', { communities: ['crisis'] }) },
      ]),
    ).toEqual(m('AMBER+STRICT'));
  });

  /**
   * The property that matters: whoever may read the alert may read every one of its sources, in a random
   * directory (organisations, clients, communities) with random sources the alert owner can read.
   */
  it('never lets anyone read the alert who cannot read each source (randomized)', () => {
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const some = <T>(xs: readonly T[]): T[] => xs.filter(() => rnd() < 0.3);
    const ORGS = ['a', 'b', 'c', 'd', 'e'];
    const COMMUNITIES = ['x', 'y', 'z'];
    for (let run = 0; run < 3000; run++) {
      const members = new Map(COMMUNITIES.map((c) => [c, some(ORGS)]));
      const clients = new Map(ORGS.map((o) => [o, some(ORGS.filter((x) => x !== o))]));
      const facts = (org: string): PrincipalFacts => ({
        userId: `u-${org}`,
        orgId: org,
        communities: COMMUNITIES.filter((c) => members.get(c)?.includes(org)),
        patronOrgs: ORGS.filter((p) => clients.get(p)?.includes(org)),
      });
      const reads = (org: string, keys: string[]) => {
        const mine = new Set(principalReadKeys(facts(org)));
        return keys.some((k) => mine.has(k));
      };
      const owner = pick(ORGS);
      const sources: MarkingSource[] = [];
      const n = 1 + Math.floor(rnd() * 3);
      while (sources.length < n) {
        const tlp = pick(TLP_LABELS.filter((t) => t !== 'RED'));
        const src: MarkingSource = {
          ownerOrg: pick(ORGS),
          marking: m(tlp, { orgs: some(ORGS), communities: tlp === 'GREEN' ? some(COMMUNITIES) : [] }),
        };
        // A rule only consumes what its owner organisation reads.
        if (reads(owner, objectReadKeys({ ...src, createdBy: 'someone' }))) sources.push(src);
      }
      const alert = alertMarking(owner, sources);
      const alertKeys = objectReadKeys({ ownerOrg: owner, createdBy: 'rule-author', marking: alert });
      for (const s of sources) expect(TLP_RANK[alert.tlp]).toBeGreaterThanOrEqual(TLP_RANK[s.marking.tlp]);
      for (const reader of ORGS) {
        if (!reads(reader, alertKeys)) continue;
        for (const s of sources) {
          const ok = reads(reader, objectReadKeys({ ...s, createdBy: 'someone' }));
          if (!ok) {
            throw new Error(
              `run ${run}: ${reader} reads alert ${JSON.stringify(alert)} of ${owner} but not source ${JSON.stringify(s)}`,
            );
          }
        }
      }
    }
  });
});
