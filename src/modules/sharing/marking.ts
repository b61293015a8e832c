/**
 * Markings: what every shared object carries (../shared/MARKINGS.md).
 * An owner organisation, a TLP 2.0 label, an optional PAP label and an audience.
 */
import { AppError } from '../../kernel/errors.ts';

export const TLP_LABELS = ['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED'] as const;
export type Tlp = (typeof TLP_LABELS)[number];

export const PAP_LABELS = ['CLEAR', 'GREEN', 'AMBER', 'RED'] as const;
export type Pap = (typeof PAP_LABELS)[number];

/** The built-in community holding every organisation of the platform. */
export const COMMUNITY_ALL = 'all';

export interface Audience {
  /** Organisation ids. */
  orgs: string[];
  /** Community ids (slugs); `all` is every organisation. */
  communities: string[];
  /** User ids (for RED). */
  users: string[];
}

export interface Marking {
  tlp: Tlp;
  pap?: Pap;
  audience: Audience;
}

/** The facts the policy needs about one shared object. */
export interface MarkedObject {
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
}

/** How restrictive a label is: higher is tighter. */
export const TLP_RANK: Record<Tlp, number> = { CLEAR: 0, GREEN: 1, AMBER: 2, 'AMBER+STRICT': 3, RED: 4 };

export function emptyAudience(): Audience {
  return { orgs: [], communities: [], users: [] };
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$/;

/** Parses untrusted input into a Marking, or throws ACCESS_INVALID_* errors that say what is wrong. */
export function parseMarking(input: unknown): Marking {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new AppError(
      'ACCESS_INVALID_MARKING',
      'marking must be an object with tlp, optional pap and audience',
    );
  }
  const raw = input as Record<string, unknown>;
  for (const k of Object.keys(raw)) {
    if (k !== 'tlp' && k !== 'pap' && k !== 'audience') {
      throw new AppError('ACCESS_INVALID_MARKING', `unknown marking field "${k}"`);
    }
  }
  const tlp = normaliseTlp(raw.tlp);
  const marking: Marking = { tlp, audience: parseAudience(raw.audience) };
  if (raw.pap !== undefined && raw.pap !== null) marking.pap = normalisePap(raw.pap);
  return marking;
}

export function normaliseTlp(value: unknown): Tlp {
  if (typeof value !== 'string') throw new AppError('ACCESS_INVALID_TLP', 'tlp must be a string');
  const v = value.trim().toUpperCase().replace(/^TLP:/, '');
  const label = v === 'WHITE' ? 'CLEAR' : v; // TLP 1.0 WHITE is TLP 2.0 CLEAR
  if (!(TLP_LABELS as readonly string[]).includes(label)) {
    throw new AppError('ACCESS_INVALID_TLP', `"${value}" is not a TLP 2.0 label (${TLP_LABELS.join(', ')})`);
  }
  return label as Tlp;
}

export function normalisePap(value: unknown): Pap {
  if (typeof value !== 'string') throw new AppError('ACCESS_INVALID_PAP', 'pap must be a string');
  const v = value.trim().toUpperCase().replace(/^PAP:/, '');
  const label = v === 'WHITE' ? 'CLEAR' : v;
  if (!(PAP_LABELS as readonly string[]).includes(label)) {
    throw new AppError('ACCESS_INVALID_PAP', `"${value}" is not a PAP label (${PAP_LABELS.join(', ')})`);
  }
  return label as Pap;
}

function parseAudience(input: unknown): Audience {
  if (input === undefined || input === null) return emptyAudience();
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new AppError('ACCESS_INVALID_AUDIENCE', 'audience must be an object with orgs, communities, users');
  }
  const raw = input as Record<string, unknown>;
  const out = emptyAudience();
  for (const [k, v] of Object.entries(raw)) {
    if (k !== 'orgs' && k !== 'communities' && k !== 'users') {
      throw new AppError('ACCESS_INVALID_AUDIENCE', `unknown audience field "${k}"`);
    }
    if (!Array.isArray(v) || v.length > 1000 || !v.every((x) => typeof x === 'string' && ID_RE.test(x))) {
      throw new AppError('ACCESS_INVALID_AUDIENCE', `audience.${k} must be a list of at most 1000 ids`);
    }
    out[k] = [...new Set(v as string[])];
  }
  return out;
}

/**
 * The read keys of an object: an object is visible to a principal when the two key sets intersect.
 * Stored beside each object (text[] with a GIN index) so that queries filter in SQL with `&&`.
 * The rules are MARKINGS.md's:
 * - CLEAR: everyone, including the public.
 * - GREEN: the owner organisation, audience organisations, and every organisation of the audience's
 *   communities (default `all`).
 * - AMBER: users of the owner and audience organisations, and of the organisations that those declared
 *   as their clients (the client side is resolved in principalReadKeys).
 * - AMBER+STRICT: users of the owner and audience organisations only.
 * - RED: the named users and the creator only.
 */
export function objectReadKeys(o: MarkedObject): string[] {
  const { tlp, audience } = o.marking;
  const keys = new Set<string>();
  switch (tlp) {
    case 'CLEAR':
      keys.add('public');
      break;
    case 'GREEN': {
      keys.add(`org:${o.ownerOrg}`);
      for (const org of audience.orgs) keys.add(`org:${org}`);
      const communities = audience.communities.length > 0 ? audience.communities : [COMMUNITY_ALL];
      for (const c of communities) keys.add(`community:${c}`);
      break;
    }
    case 'AMBER':
      keys.add(`amber:${o.ownerOrg}`);
      for (const org of audience.orgs) keys.add(`amber:${org}`);
      break;
    case 'AMBER+STRICT':
      keys.add(`org:${o.ownerOrg}`);
      for (const org of audience.orgs) keys.add(`org:${org}`);
      break;
    case 'RED':
      keys.add(`user:${o.createdBy}`);
      for (const u of audience.users) keys.add(`user:${u}`);
      break;
  }
  return [...keys].sort();
}

/** What the policy needs to know about who a principal is. */
export interface PrincipalFacts {
  userId: string;
  orgId: string;
  /** Communities the principal's organisation belongs to (without `all`, which is implicit). */
  communities: string[];
  /** Organisations that declared the principal's organisation as one of their clients. */
  patronOrgs: string[];
}

/** The read keys of a principal (see objectReadKeys). The anonymous public has only `public`. */
export function principalReadKeys(p: PrincipalFacts | null): string[] {
  if (!p) return ['public'];
  const keys = new Set<string>(['public', `user:${p.userId}`, `org:${p.orgId}`, `amber:${p.orgId}`]);
  keys.add(`community:${COMMUNITY_ALL}`);
  for (const c of p.communities) keys.add(`community:${c}`);
  for (const patron of p.patronOrgs) keys.add(`amber:${patron}`);
  return [...keys].sort();
}

/** The one read decision: true when the principal may see the object. */
export function canRead(p: PrincipalFacts | null, o: MarkedObject): boolean {
  const mine = new Set(principalReadKeys(p));
  return objectReadKeys(o).some((k) => mine.has(k));
}

/**
 * The marking of something derived from several sources (an export, an alert built from evidence):
 * the most restrictive label, and the intersection of the sources' audiences (MARKINGS.md).
 */
export function combineMarkings(sources: Marking[]): Marking {
  if (sources.length === 0) throw new AppError('ACCESS_INVALID_MARKING', 'nothing to combine');
  let tlp: Tlp = 'CLEAR';
  let pap: Pap | undefined;
  const PAP_RANK: Record<Pap, number> = { CLEAR: 0, GREEN: 1, AMBER: 2, RED: 3 };
  for (const m of sources) {
    if (TLP_RANK[m.tlp] > TLP_RANK[tlp]) tlp = m.tlp;
    if (m.pap && (!pap || PAP_RANK[m.pap] > PAP_RANK[pap])) pap = m.pap;
  }
  const intersect = (lists: string[][]): string[] => {
    const nonEmpty = lists.filter((l) => l.length > 0);
    if (nonEmpty.length === 0) return [];
    return nonEmpty.reduce((acc, l) => acc.filter((x) => l.includes(x)));
  };
  const audience: Audience = {
    orgs: intersect(sources.map((s) => s.audience.orgs)),
    communities: intersect(sources.map((s) => s.audience.communities)),
    users: intersect(sources.map((s) => s.audience.users)),
  };
  return pap ? { tlp, pap, audience } : { tlp, audience };
}
