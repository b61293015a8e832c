/**
 * The access module: organisations and communities (the directory), accounts and their credentials,
 * authentication, and the facts the sharing policy needs about a principal.
 */
export type { Marking } from '../sharing/marking.ts';
export type { Role } from '../sharing/roles.ts';
export {
  type AccessChangedEvent,
  type AccessEvents,
  type AccountChangedEvent,
  COMMUNITY_CHANGED,
  ORG_CHANGED,
  type TokenRevokedEvent,
} from './access-events.ts';
export { AccessService, type AccessServiceOptions } from './access-service.ts';
export * from './access-types.ts';
export type { CreatedToken, CreateTokenInput, CreateUserInput, UpdateUserInput } from './accounts.ts';
export { Accounts } from './accounts.ts';
export type { Administrator } from './administration.ts';
export {
  type AuthenticateOptions,
  type Authenticator,
  type AuthenticatorOptions,
  createAuthenticator,
  type LoginResult,
  type OidcOptions,
} from './authenticator.ts';
export { bootstrapAccess, FIRST_ADMIN, FIRST_ORG } from './bootstrap-access.ts';
export {
  checkPasswordPolicy,
  generatePassword,
  isApiTokenSecret,
  PASSWORD_MIN_LENGTH,
} from './credentials.ts';
export {
  ACCOUNT_CHANGED,
  type LiveSession,
  LiveSessions,
  type LiveSessionsOptions,
  type OpenSession,
  type SessionAuthenticate,
  type SessionEnd,
  TOKEN_REVOKED,
} from './live-sessions.ts';
export { LoginThrottle, type LoginThrottleOptions } from './login-throttle.ts';
export { accessMigrations } from './migrations.ts';
export { type CreateOrgInput, OrgDirectory, type UpdateOrgInput } from './org-directory.ts';
export { PrincipalFactsCache } from './principal-facts.ts';
