/**
 * Roles, and what each may do. Roles never widen reading (read keys decide that, marking.ts); they decide
 * writing and administration. The role × action matrix is documented in docs/access.md and tried by a
 * table-driven test over every API surface.
 */
import { AppError } from '../../kernel/errors.ts';

export const ROLES = ['platform-admin', 'admin', 'operator', 'analyst', 'responder', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Roles that create, change and delete their organisation's objects. `admin` is the organisation's
 * administrator, who also writes like an operator; `platform-admin` administers the platform (organisations,
 * communities, settings) and gets no writing of objects from that role.
 */
export const WRITER_ROLES: readonly Role[] = ['admin', 'operator', 'analyst'];

/** Who holds a role of a set. */
export function hasRole(p: { readonly roles: readonly string[] }, ...roles: readonly Role[]): boolean {
  return p.roles.some((r) => (roles as readonly string[]).includes(r));
}

export function isWriter(p: { readonly roles: readonly string[] }): boolean {
  return hasRole(p, ...WRITER_ROLES);
}

/** The organisation's administrator (its users, service accounts, clients, retention of its data). */
export function isOrgAdmin(p: { readonly roles: readonly string[] }): boolean {
  return hasRole(p, 'admin');
}

/** The platform's administrator (organisations, communities, platform settings). */
export function isPlatformAdmin(p: { readonly roles: readonly string[] }): boolean {
  return hasRole(p, 'platform-admin');
}

export function requireRole(
  p: { readonly roles: readonly string[] },
  roles: readonly Role[],
  what: string,
): void {
  if (!hasRole(p, ...roles)) {
    throw new AppError(
      'AUTH_ROLE_REQUIRED',
      `${what} needs ${roles.length > 1 ? 'one of the roles' : 'the role'} ${roles.join(', ')}`,
    );
  }
}

export function requireWriter(p: { readonly roles: readonly string[] }, what = 'this action'): void {
  requireRole(p, WRITER_ROLES, what);
}

/** Either administrator: the audit log, explain, break-glass. */
export function requireAnyAdmin(p: { readonly roles: readonly string[] }, what = 'this action'): void {
  requireRole(p, ['admin', 'platform-admin'], what);
}

export function checkRoles(roles: unknown): Role[] {
  if (!Array.isArray(roles) || roles.length === 0)
    throw new AppError('ACCESS_INVALID_INPUT', 'an account needs at least one role');
  const bad = roles.filter((r) => !(ROLES as readonly unknown[]).includes(r));
  if (bad.length > 0)
    throw new AppError('ACCESS_INVALID_INPUT', `unknown role ${bad.join(', ')} (roles: ${ROLES.join(', ')})`);
  return [...new Set(roles as Role[])];
}
