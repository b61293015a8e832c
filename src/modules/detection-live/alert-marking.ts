/**
 * The marking of an alert: derived from its sources (the rule and every piece of evidence), it may only
 * tighten (../shared/MARKINGS.md): the most restrictive label and PAP, and an audience that every source
 * already reaches. The alert is owned by the rule's organisation, which may differ from the evidence's owners,
 * so the audience intersection counts each source's owner as one of its readers, and the label is tightened
 * further where the alert's owner would otherwise pass the evidence on:
 *
 * - TLP:AMBER reaches the clients of the owner and of the audience. An alert owner that reads an AMBER source
 *   only as one of the source owner's clients, or a GREEN source shared with named communities (whose
 *   membership the alert's clients need not have), makes the alert TLP:AMBER+STRICT.
 * - TLP:GREEN keeps the communities every source names (a source without communities reaches `all`); when
 *   two sources name disjoint communities nothing GREEN can express is narrow enough: TLP:AMBER+STRICT with
 *   the organisations every source reaches.
 * - TLP:RED: the alert's creator only (named users are not carried over: each would need to be named by
 *   every source). Rules read with their organisation's keys, which never include a user's, so RED evidence
 *   does not reach a rule; this is the safe answer should it ever.
 */
import type { Marking, Pap, Tlp } from '../sharing/index.ts';
import { TLP_RANK } from '../sharing/index.ts';

/** A source of the alert: its owner organisation and marking. */
export interface MarkingSource {
  ownerOrg: string;
  marking: Marking;
}

const PAP_RANK: Record<Pap, number> = { CLEAR: 0, GREEN: 1, AMBER: 2, RED: 3 };

export function alertMarking(alertOwner: string, sources: readonly MarkingSource[]): Marking {
  let tlp: Tlp = 'CLEAR';
  let pap: Pap | undefined;
  for (const s of sources) {
    if (TLP_RANK[s.marking.tlp] > TLP_RANK[tlp]) tlp = s.marking.tlp;
    const p = s.marking.pap;
    if (p && (!pap || PAP_RANK[p] > PAP_RANK[pap])) pap = p;
  }
  const withPap = (m: Marking): Marking => (pap ? { ...m, pap } : m);
  const none = { orgs: [], communities: [], users: [] };
  if (tlp === 'CLEAR') return withPap({ tlp, audience: none });
  if (tlp === 'RED') return withPap({ tlp, audience: none });

  // The organisations every source reaches by name (its owner and audience); CLEAR and GREEN-for-all
  // sources reach everyone and do not narrow it.
  let orgs: Set<string> | undefined;
  let clientsSafe = true;
  const named: string[][] = [];
  for (const s of sources) {
    const m = s.marking;
    const everyone = m.tlp === 'CLEAR' || (m.tlp === 'GREEN' && m.audience.communities.length === 0);
    if (everyone) continue;
    const reach = new Set([s.ownerOrg, ...m.audience.orgs]);
    orgs = orgs ? new Set([...orgs].filter((o) => reach.has(o))) : reach;
    if (m.tlp === 'GREEN') {
      named.push(m.audience.communities);
      clientsSafe = false;
    }
    if (m.tlp === 'AMBER' && !reach.has(alertOwner)) clientsSafe = false;
  }
  const audienceOrgs = [...(orgs ?? [])].filter((o) => o !== alertOwner).sort();

  if (tlp === 'GREEN') {
    if (named.length === 0) return withPap({ tlp, audience: none });
    const communities = named.reduce((acc, l) => acc.filter((c) => l.includes(c))).sort();
    if (communities.length > 0) return withPap({ tlp, audience: { ...none, communities } });
    return withPap({ tlp: 'AMBER+STRICT', audience: { ...none, orgs: audienceOrgs } });
  }
  if (tlp === 'AMBER' && !clientsSafe) tlp = 'AMBER+STRICT';
  return withPap({ tlp, audience: { ...none, orgs: audienceOrgs } });
}
