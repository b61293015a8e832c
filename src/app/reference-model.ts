/**
 * An independent model of ../shared/MARKINGS.md and of the writing rules of docs/access.md, for the randomized
 * test of the whole platform (sharing.randomized.test.ts). It is written from the documents, not from the
 * code: no read keys, no import of the sharing module. Each rule is a plain reading of one line of the
 * documents, so that when the platform and the model disagree, one of the two is plainly wrong. Tests only.
 */

export const TLPS = ['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED'] as const;
export type ModelTlp = (typeof TLPS)[number];
export const PAPS = ['CLEAR', 'GREEN', 'AMBER', 'RED'] as const;
export type ModelPap = (typeof PAPS)[number];

/** How restrictive a label is (MARKINGS.md's table, top to bottom). */
export const TLP_ORDER: Record<ModelTlp, number> = {
  CLEAR: 0,
  GREEN: 1,
  AMBER: 2,
  'AMBER+STRICT': 3,
  RED: 4,
};
export const PAP_ORDER: Record<ModelPap, number> = { CLEAR: 0, GREEN: 1, AMBER: 2, RED: 3 };

export interface ModelAudience {
  orgs: string[];
  communities: string[];
  /** User ids (the platform resolves usernames to ids). */
  users: string[];
}

export interface ModelMarking {
  tlp: ModelTlp;
  pap?: ModelPap | undefined;
  audience: ModelAudience;
}

export interface ModelUser {
  id: string;
  username: string;
  org: string;
  roles: string[];
  disabled: boolean;
}

/** Any marked object: its kind, where it lives (the NGSI-LD tenant, or ''), its owner and creator, its marking. */
export interface ModelObject {
  kind: string;
  scope: string;
  id: string;
  owner: string;
  createdBy: string;
  marking: ModelMarking;
}

/**
 * What a write answers: done, a role missing, refused (not the owner, RED re-shared), absent (404), an audience
 * naming nobody known, or an id already taken (409: the one thing an organisation may learn of an entity it
 * cannot see, docs/ngsi-ld.md).
 */
export type WriteOutcome = 'ok' | 'role' | 'denied' | 'absent' | 'unknown-audience' | 'taken';

/** The roles that write objects (docs/access.md, "Roles"); closures and slow-downs also `responder`. */
const WRITERS = ['admin', 'operator', 'analyst'];
const WRITERS_OF_KIND: Record<string, string[]> = {
  closure: [...WRITERS, 'responder'],
  slowdown: [...WRITERS, 'responder'],
};

export class ReferenceModel {
  readonly orgs = new Set<string>();
  /** organisation → the organisations it declared as its clients. */
  readonly clients = new Map<string, Set<string>>();
  /** community → its member organisations (`all` is implicit: every organisation). */
  readonly communities = new Map<string, Set<string>>();
  readonly users = new Map<string, ModelUser>();
  /** organisation → the marking its objects get when a request names none. */
  readonly defaults = new Map<string, ModelMarking>();

  addOrg(id: string, defaultMarking: ModelMarking): void {
    this.orgs.add(id);
    this.clients.set(id, new Set());
    this.defaults.set(id, defaultMarking);
  }

  userByName(username: string): ModelUser {
    for (const u of this.users.values()) if (u.username === username) return u;
    throw new Error(`the model has no user ${username}`);
  }

  /**
   * MARKINGS.md, "who may see the object", line by line. `null` is the public (no account). A disabled
   * account sees nothing, not even TLP:CLEAR objects: it cannot sign in (docs/access.md, explain's
   * `account-disabled`).
   */
  maySee(u: ModelUser | null, o: ModelObject): boolean {
    const { tlp, audience } = o.marking;
    if (u?.disabled) return false;
    if (tlp === 'CLEAR') return true;
    if (u === null) return false;
    switch (tlp) {
      case 'GREEN': {
        // "every user of every organisation in the audience's communities (default community: all)"; the owner
        // and the organisations named in the audience are in it outright.
        if (u.org === o.owner || audience.orgs.includes(u.org)) return true;
        const communities = audience.communities.length > 0 ? audience.communities : ['all'];
        return communities.some((c) => c === 'all' || (this.communities.get(c)?.has(u.org) ?? false));
      }
      case 'AMBER': {
        // "the owner organisation, the audience organisations, and the organisations those declared as clients"
        const named = [o.owner, ...audience.orgs];
        if (named.includes(u.org)) return true;
        return named.some((n) => this.clients.get(n)?.has(u.org) ?? false);
      }
      case 'AMBER+STRICT':
        // "the owner organisation and the audience organisations — never their clients"
        return u.org === o.owner || audience.orgs.includes(u.org);
      case 'RED':
        // "the named users in the audience and the object's creator — no one else"
        return u.id === o.createdBy || audience.users.includes(u.id);
    }
  }

  /** docs/access.md, "Writing": creating needs a writing role for the kind. */
  mayCreate(u: ModelUser, kind: string): WriteOutcome {
    return this.#writes(u, kind) ? 'ok' : 'role';
  }

  /**
   * docs/access.md, "Writing", in its order: absent when invisible; a writing role; the owner organisation;
   * a new marking's audience exists; a TLP:RED object's marking changed only by its creator.
   */
  mayChange(
    u: ModelUser,
    o: ModelObject,
    change: { next?: ModelMarking | undefined; unknownAudience?: boolean | undefined } = {},
  ): WriteOutcome {
    if (!this.maySee(u, o)) return 'absent';
    if (!this.#writes(u, o.kind)) return 'role';
    if (u.org !== o.owner) return 'denied';
    if (change.unknownAudience) return 'unknown-audience';
    if (change.next && !sameMarking(change.next, o.marking)) {
      if (o.marking.tlp === 'RED' && u.id !== o.createdBy) return 'denied';
    }
    return 'ok';
  }

  /**
   * docs/ngsi-ld.md, "What an organisation can learn about entities it cannot see": creating an id that is
   * taken answers AlreadyExists — for a writer; an upsert meeting an entity the caller cannot see answers
   * the same; an upsert of an entity it sees is a change like any other.
   */
  mayCreateTaken(u: ModelUser, o: ModelObject): WriteOutcome {
    return this.#writes(u, o.kind) ? 'taken' : 'role';
  }

  mayUpsert(u: ModelUser, o: ModelObject): WriteOutcome {
    return this.maySee(u, o) ? this.mayChange(u, o) : 'taken';
  }

  #writes(u: ModelUser, kind: string): boolean {
    const roles = WRITERS_OF_KIND[kind] ?? WRITERS;
    return u.roles.some((r) => roles.includes(r));
  }

  /** The explanation's verdict an administrator gets for (user, object): the same as maySee. */
  explainVisible(u: ModelUser, o: ModelObject): boolean {
    return this.maySee(u, o);
  }
}

/**
 * docs/routing.md, "Derived from context entities" and "Which sources may close roads": an `Alert` whose
 * sub-category closes roads becomes a closure, one that slows traffic a slow-down, owned and created as its
 * source and marked like it — unless the source is TLP:RED or PAP:AMBER/RED, which never act on the roads.
 * The derived change is named here by its source (`entity:<tenant>:<id>`), as the platform's answers name it.
 */
export function derivedRoadChange(
  source: ModelObject & { type: string; attrs: Map<string, unknown> },
): ModelObject | undefined {
  if (source.type !== 'Alert' || !source.attrs.has('location')) return undefined;
  const sub = String(source.attrs.get('subCategory') ?? '');
  const kind = CLOSING_ALERTS.includes(sub)
    ? 'closure'
    : SLOWING_ALERTS.includes(sub)
      ? 'slowdown'
      : undefined;
  if (!kind) return undefined;
  const m = source.marking;
  if (m.tlp === 'RED' || m.pap === 'AMBER' || m.pap === 'RED') return undefined;
  return {
    kind,
    scope: '',
    id: `entity:${source.scope}:${source.id}`,
    owner: source.owner,
    createdBy: source.createdBy,
    marking: m,
  };
}
export const CLOSING_ALERTS = [
  'roadClosed',
  'carAccident',
  'hazardOnRoad',
  'flood',
  'buildingFire',
  'forestFire',
  'suspiciousAction',
  'civilDisorder',
];
export const SLOWING_ALERTS = ['trafficJam', 'roadWorks'];

export function sameMarking(a: ModelMarking, b: ModelMarking): boolean {
  const norm = (m: ModelMarking) =>
    JSON.stringify([
      m.tlp,
      m.pap ?? null,
      [...m.audience.orgs].sort(),
      [...m.audience.communities].sort(),
      [...m.audience.users].sort(),
    ]);
  return norm(a) === norm(b);
}

/**
 * MARKINGS.md, "Markings only ever tighten on the way out": a message holding several objects carries at
 * least the most restrictive label and PAP among them, and names every owner.
 */
export function tightest(objects: readonly ModelObject[]): {
  tlp: ModelTlp;
  pap: ModelPap | undefined;
  owners: string[];
} {
  let tlp: ModelTlp = 'CLEAR';
  let pap: ModelPap | undefined;
  for (const o of objects) {
    if (TLP_ORDER[o.marking.tlp] > TLP_ORDER[tlp]) tlp = o.marking.tlp;
    const p = o.marking.pap;
    if (p && (!pap || PAP_ORDER[p] > PAP_ORDER[pap])) pap = p;
  }
  return { tlp, pap, owners: [...new Set(objects.map((o) => o.owner))].sort() };
}

/**
 * Reads a `SafeCity-Marking` header (docs/access.md, "Markings on the way out"):
 * `TLP:AMBER; PAP:GREEN; owner=fire,police`.
 */
export function readMarkingHeader(
  value: string | undefined,
): { tlp: ModelTlp; pap: ModelPap | undefined; owners: string[] } | undefined {
  if (!value) return undefined;
  let tlp: ModelTlp | undefined;
  let pap: ModelPap | undefined;
  let owners: string[] = [];
  for (const part of value.split(';').map((s) => s.trim())) {
    if (part.startsWith('TLP:')) tlp = part.slice(4) as ModelTlp;
    else if (part.startsWith('PAP:')) pap = part.slice(4) as ModelPap;
    else if (part.startsWith('owner=')) owners = part.slice(6).split(',').filter(Boolean);
  }
  return tlp && TLP_ORDER[tlp] !== undefined ? { tlp, pap, owners } : undefined;
}

/** True when a carried label is at least as tight as what the message holds (and names every owner). */
export function atLeastAsTight(
  carried: { tlp: ModelTlp; pap: ModelPap | undefined; owners: string[] } | undefined,
  held: readonly ModelObject[],
): boolean {
  if (held.length === 0) return true;
  if (!carried) return false;
  const need = tightest(held);
  if (TLP_ORDER[carried.tlp] < TLP_ORDER[need.tlp]) return false;
  if (need.pap && (!carried.pap || PAP_ORDER[carried.pap] < PAP_ORDER[need.pap])) return false;
  return need.owners.every((o) => carried.owners.includes(o));
}

/** mulberry32: small, fast, and the same sequence on every machine. */
export function seededRandom(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => {
    if (xs.length === 0) throw new Error('pick from an empty list');
    return xs[int(xs.length)] as T;
  };
  const some = <T>(xs: readonly T[], max: number): T[] => {
    const n = int(max + 1);
    const pool = [...xs];
    const out: T[] = [];
    while (out.length < n && pool.length > 0) out.push(pool.splice(int(pool.length), 1)[0] as T);
    return out;
  };
  const chance = (p: number) => next() < p;
  return { next, int, pick, some, chance };
}
export type Random = ReturnType<typeof seededRandom>;

/** Great-circle distance in metres (the NGSI-LD `near` relation). */
export function metres(a: readonly [number, number], b: readonly [number, number]): number {
  const rad = Math.PI / 180;
  const dLat = (b[1] - a[1]) * rad;
  const dLon = (b[0] - a[0]) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6_371_008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
}
