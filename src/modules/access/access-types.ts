import type { Marking } from '../sharing/marking.ts';
import type { Role } from '../sharing/roles.ts';

export { ROLES, type Role, WRITER_ROLES } from '../sharing/roles.ts';

export const ORG_KINDS = [
  'police',
  'fire',
  'ems',
  'transport',
  'energy',
  'water',
  'traffic',
  'venue',
  'city',
  'cert',
  'other',
] as const;
export type OrgKind = (typeof ORG_KINDS)[number];

export type AccountKind = 'user' | 'service';

/** Who is calling: what the authentication hook puts on each request. */
export interface Principal {
  userId: string;
  username: string;
  orgId: string;
  roles: Role[];
  kind: AccountKind;
  /** The keys this principal reads with (see marking.ts). */
  readKeys: string[];
  /** The marking objects created by this principal get unless the request says otherwise. */
  defaultMarking: Marking;
  /** The API token the request came with (service accounts), to end its sessions when it is revoked. */
  tokenId?: string | undefined;
}

export interface Org {
  id: string;
  name: string;
  kind: OrgKind;
  defaultMarking: Marking;
  /** Organisations this one declared as its clients: TLP:AMBER objects shared with it reach them too. */
  clients: string[];
  createdAt: string;
  updatedAt: string;
}

export interface Community {
  id: string;
  name: string;
  description: string;
  /** Member organisation ids; for the built-in `all`, every organisation. */
  members: string[];
  builtIn: boolean;
}

export interface User {
  id: string;
  username: string;
  displayName: string | null;
  orgId: string;
  roles: Role[];
  kind: AccountKind;
  disabled: boolean;
  /** Set when an administrator reset the password: the account sets its own at its next login. */
  mustChangePassword: boolean;
  /** Session tokens issued before this instant no longer open sessions (its password changed). */
  sessionsSince: string | null;
  /** `issuer|subject` for accounts created from an external OIDC token. */
  externalSubject: string | null;
  createdAt: string;
}

export interface ApiTokenInfo {
  id: string;
  userId: string;
  username: string;
  orgId: string;
  name: string;
  /** The first characters of the secret, to recognise it in a list. */
  prefix: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** The actor of a change, as recorded in the audit log; null is the platform itself (bootstrap, CLI). */
export interface Actor {
  userId: string;
  orgId: string;
  roles: readonly string[];
}

export function actorOf(p: Pick<Principal, 'userId' | 'orgId' | 'roles'> | null | undefined): Actor | null {
  return p ? { userId: p.userId, orgId: p.orgId, roles: p.roles } : null;
}
