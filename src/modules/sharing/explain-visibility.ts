/**
 * Says in words why one user can or cannot see one object. It walks MARKINGS.md's table rule by rule from
 * the same facts the read keys are made of; the tests check it agrees with canRead on every pair.
 */
import type { PrincipalFacts } from './marking.ts';
import { COMMUNITY_ALL, type MarkedObject } from './marking.ts';

export type VisibilityRule =
  | 'clear'
  | 'owner-org'
  | 'audience-org'
  | 'community'
  | 'client-of-audience-org'
  | 'creator'
  | 'named-user'
  | 'not-in-audience'
  | 'strict-excludes-clients'
  | 'red-not-named'
  | 'account-disabled';

export interface VisibilityVerdict {
  visible: boolean;
  rule: VisibilityRule;
  reason: string;
}

export interface ExplainSubject {
  username: string;
  disabled: boolean;
  facts: PrincipalFacts;
}

export function explainVisibility(user: ExplainSubject, o: MarkedObject): VisibilityVerdict {
  const { tlp, audience } = o.marking;
  const label = `TLP:${tlp}`;
  const who = `user ${user.username}`;
  const org = user.facts.orgId;
  const yes = (rule: VisibilityRule, reason: string): VisibilityVerdict => ({
    visible: true,
    rule,
    reason: `${label} — ${reason}`,
  });
  const no = (rule: VisibilityRule, reason: string): VisibilityVerdict => ({
    visible: false,
    rule,
    reason: `${label} — ${reason}`,
  });
  if (user.disabled) return no('account-disabled', `${who}'s account is disabled`);
  const list = (xs: string[]) => (xs.length === 0 ? 'nobody' : xs.join(', '));
  switch (tlp) {
    case 'CLEAR':
      return yes('clear', 'anyone may see it, including the public');
    case 'GREEN': {
      if (org === o.ownerOrg) return yes('owner-org', `${who}'s organisation ${org} owns the object`);
      if (audience.orgs.includes(org))
        return yes('audience-org', `${who}'s organisation ${org} is in the audience`);
      const communities = audience.communities.length > 0 ? audience.communities : [COMMUNITY_ALL];
      if (communities.includes(COMMUNITY_ALL)) {
        return yes(
          'community',
          `the audience is the community "all" (every organisation), and ${who}'s is ${org}`,
        );
      }
      const shared = communities.filter((c) => user.facts.communities.includes(c));
      if (shared.length > 0) {
        return yes(
          'community',
          `${who}'s organisation ${org} is a member of community ${shared.join(', ')}, which is in the audience`,
        );
      }
      return no(
        'not-in-audience',
        `${who}'s organisation ${org} is neither the owner (${o.ownerOrg}), nor an audience organisation (${list(
          audience.orgs,
        )}), nor a member of an audience community (${list(communities)})`,
      );
    }
    case 'AMBER':
    case 'AMBER+STRICT': {
      if (org === o.ownerOrg) return yes('owner-org', `${who}'s organisation ${org} owns the object`);
      if (audience.orgs.includes(org))
        return yes('audience-org', `${who}'s organisation ${org} is in the audience`);
      const reached = [o.ownerOrg, ...audience.orgs];
      const patrons = user.facts.patronOrgs.filter((p) => reached.includes(p));
      if (patrons.length > 0) {
        const p = patrons[0];
        const where = p === o.ownerOrg ? 'which owns the object' : 'which is in the audience';
        if (tlp === 'AMBER') {
          return yes('client-of-audience-org', `${who}'s organisation ${org} is a client of ${p}, ${where}`);
        }
        return no(
          'strict-excludes-clients',
          `${who}'s organisation ${org} is a client of ${p}, ${where}, but AMBER+STRICT never reaches clients`,
        );
      }
      const ignored =
        audience.communities.length > 0
          ? `; audience communities (${list(audience.communities)}) do not count for ${label}`
          : '';
      return no(
        'not-in-audience',
        `${who}'s organisation ${org} is neither the owner (${o.ownerOrg}) nor an audience organisation (${list(
          audience.orgs,
        )})${tlp === 'AMBER' ? ' nor a client of one' : ''}${ignored}`,
      );
    }
    case 'RED':
      if (user.facts.userId === o.createdBy) return yes('creator', `${who} created the object`);
      if (audience.users.includes(user.facts.userId))
        return yes('named-user', `${who} is named in the audience`);
      return no(
        'red-not-named',
        `${who} is neither the creator nor named in the audience${
          org === o.ownerOrg ? ` (being in the owner organisation ${org} is not enough for RED)` : ''
        }`,
      );
  }
}
