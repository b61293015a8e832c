/**
 * What the access module's parts share: who administers (the actor of a change), how a change is audited,
 * and how it is announced to every instance. Administration follows the roles of a city (docs/access.md):
 * the platform administrator manages organisations and communities; an organisation's administrator manages
 * its own organisation's accounts, service accounts, clients and default marking. Neither reads objects by
 * being an administrator.
 */
import type { Clock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import { type AuditEntry, appendAudit } from '../audit/index.ts';
import { isOrgAdmin, isPlatformAdmin } from '../sharing/roles.ts';
import type { AccessEvents } from './access-events.ts';

/** Who changes the directory: an account with its roles, or null for the platform itself (CLI, bootstrap). */
export type Administrator = { userId: string; orgId: string; roles: readonly string[] } | null;

export interface AccessContext {
  store: Store;
  clock: Clock;
  /**
   * Writes an access event in the transaction of the change (the outbox publishes it once committed; no-op
   * without one).
   */
  announce<K extends keyof AccessEvents>(trx: AnyDb, type: K, data: AccessEvents[K]): Promise<void>;
  /** Drops cached facts on this instance (all of them when no organisation is named). */
  invalidate(orgId?: string): void;
}

export async function auditAdministration(
  trx: AnyDb,
  clock: Clock,
  actor: Administrator,
  action: AuditEntry['action'],
  objectKind: string,
  objectId: string,
  ownerOrg: string | null,
  details: Record<string, unknown>,
): Promise<void> {
  await appendAudit(
    trx,
    {
      actorId: actor?.userId ?? null,
      actorOrg: actor?.orgId ?? null,
      action,
      objectKind,
      objectId,
      ownerOrg: ownerOrg ?? undefined,
      details,
    },
    clock,
  );
}

/** Organisations and communities, platform settings: the platform administrator (or the platform itself). */
export function requirePlatformAdmin(actor: Administrator, what: string): void {
  if (actor === null || isPlatformAdmin(actor)) return;
  throw new AppError('AUTH_ROLE_REQUIRED', `${what} needs the platform-admin role`);
}

/**
 * An organisation's own accounts, clients and defaults: its administrator. The platform administrator steps
 * in only for an organisation that has no enabled administrator yet (to appoint its first one): otherwise it
 * could create an account in any organisation and read that organisation's objects through it.
 */
export async function requireOrgAdmin(
  actor: Administrator,
  orgId: string,
  what: string,
  hasEnabledAdmin: (orgId: string) => Promise<boolean>,
): Promise<void> {
  if (actor === null) return;
  if (isOrgAdmin(actor) && actor.orgId === orgId) return;
  if (isPlatformAdmin(actor) && !(await hasEnabledAdmin(orgId))) return;
  if (!isOrgAdmin(actor) && !isPlatformAdmin(actor)) {
    throw new AppError('AUTH_ROLE_REQUIRED', `${what} needs the admin role of organisation ${orgId}`);
  }
  throw new AppError(
    'ACCESS_DENIED',
    `${what}: only the administrators of organisation ${orgId} manage it` +
      (isPlatformAdmin(actor) ? ' (the platform administrator appoints only the first one)' : ''),
  );
}

/** Reading the accounts of an organisation: its administrators and the platform administrator. */
export function requireAccountReader(actor: Administrator, orgId: string, what: string): void {
  if (actor === null || isPlatformAdmin(actor)) return;
  if (isOrgAdmin(actor) && actor.orgId === orgId) return;
  if (!isOrgAdmin(actor)) throw new AppError('AUTH_ROLE_REQUIRED', `${what} needs the admin role`);
  throw new AppError(
    'ACCESS_DENIED',
    `${what}: organisation ${orgId}'s accounts are its administrators' to see`,
  );
}
