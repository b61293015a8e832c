/** The access module: organisations, communities, accounts, authentication, the marking policy. */
export {
  AccessService,
  type AccessServiceOptions,
  type CreatedToken,
  type CreateOrgInput,
  type CreateTokenInput,
  type CreateUserInput,
  type UpdateOrgInput,
  type UpdateUserInput,
} from './access-service.ts';
export * from './access-types.ts';
export {
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
export { explainVisibility, type VisibilityRule, type VisibilityVerdict } from './explain-visibility.ts';
export { LoginThrottle, type LoginThrottleOptions } from './login-throttle.ts';
export * from './marking.ts';
export { accessMigrations } from './migrations.ts';
export {
  canNotify,
  canReadObject,
  canWrite,
  hasRole,
  isAdmin,
  isWriter,
  readKeysMeet,
  requireAdmin,
  requireWriter,
} from './policy.ts';
export {
  type GeoPoint,
  type ObjectChangeEvent,
  REPORT_CREATED,
  REPORT_DELETED,
  REPORT_KIND,
  REPORT_UPDATED,
  type Report,
  type ReportInput,
  type ReportPatch,
  type ReportQuery,
  ReportService,
} from './report-service.ts';
export {
  getSharedObject,
  registerSharedObject,
  removeSharedObject,
  type SharedObject,
  type SharedObjectInput,
  updateSharedObjectMarking,
} from './shared-object-registry.ts';
