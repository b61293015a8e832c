/**
 * The one policy beside read keys: who may write, and who administers. Reading is decided by read keys
 * alone (marking.ts); roles never widen reading, so an administrator reads what any user of the same
 * organisation reads, plus break-glass reads that are audited.
 */
import { AppError } from '../../kernel/errors.ts';
import { type Principal, type Role, WRITER_ROLES } from './access-types.ts';
import { type MarkedObject, objectReadKeys } from './marking.ts';

export function hasRole(p: Pick<Principal, 'roles'>, ...roles: Role[]): boolean {
  return p.roles.some((r) => roles.includes(r));
}

export function isAdmin(p: Pick<Principal, 'roles'>): boolean {
  return p.roles.includes('admin');
}

export function requireAdmin(p: Pick<Principal, 'roles'>): void {
  if (!isAdmin(p)) throw new AppError('AUTH_ROLE_REQUIRED', 'this action needs the admin role');
}

export function isWriter(p: Pick<Principal, 'roles'>): boolean {
  return hasRole(p, ...WRITER_ROLES);
}

export function requireWriter(p: Pick<Principal, 'roles'>): void {
  if (!isWriter(p)) {
    throw new AppError('AUTH_ROLE_REQUIRED', `this action needs one of the roles ${WRITER_ROLES.join(', ')}`);
  }
}

/** True when the principal's read keys meet the object's. */
export function readKeysMeet(principalKeys: readonly string[], objectKeys: readonly string[]): boolean {
  const mine = new Set(principalKeys);
  return objectKeys.some((k) => mine.has(k));
}

export function canReadObject(p: Pick<Principal, 'readKeys'>, o: MarkedObject): boolean {
  return readKeysMeet(p.readKeys, objectReadKeys(o));
}

/**
 * Writing (update, delete, re-marking): a user of the owner organisation with a writing role who can also
 * read the object — so a TLP:RED object is written only by its creator and the named users of the owner
 * organisation, never by the rest of it. Viewers and responders never write.
 */
export function canWrite(p: Pick<Principal, 'orgId' | 'roles' | 'readKeys'>, o: MarkedObject): boolean {
  return p.orgId === o.ownerOrg && isWriter(p) && canReadObject(p, o);
}

/**
 * Notifications and live streams: the read rule, evaluated at delivery time with the recipient's current
 * facts, so a marking or membership change acts on the next delivery.
 */
export function canNotify(recipient: Pick<Principal, 'readKeys'>, o: MarkedObject): boolean {
  return canReadObject(recipient, o);
}
