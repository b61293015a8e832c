/**
 * The sharing module: markings (TLP 2.0, PAP, audiences), roles, and the one gate every module's marked
 * objects go through (decision records 0001 and 0003). Modules use the gate they are given; only the access
 * module (which provides the gate's directory) and the composition root use the marking functions.
 */
export {
  explainVisibility,
  type VisibilityRule,
  type VisibilityVerdict,
} from './explain-visibility.ts';
export {
  type Audience,
  COMMUNITY_ALL,
  emptyAudience,
  type MarkedObject,
  type Marking,
  normalisePap,
  normaliseTlp,
  PAP_LABELS,
  type Pap,
  type PrincipalFacts,
  parseMarking,
  principalReadKeys,
  TLP_LABELS,
  TLP_RANK,
  type Tlp,
} from './marking.ts';
export { MARKING_HEADER, markingLabel, parseMarkingLabel } from './marking-label.ts';
export { sharingMigrations } from './migrations.ts';
export {
  checkRoles,
  hasRole,
  isOrgAdmin,
  isPlatformAdmin,
  isWriter,
  ROLES,
  type Role,
  requireAnyAdmin,
  requireRole,
  requireWriter,
  WRITER_ROLES,
} from './roles.ts';
export {
  currentIncarnations,
  type ObjectRef,
  type SharedObject,
  type SharedObjectTables,
} from './shared-object-registry.ts';
export {
  ADMINISTRATION_KINDS,
  type CurrentObject,
  type DerivedObject,
  type Directory,
  type GatePrincipal,
  isWider,
  type KindSpec,
  type Registered,
  SharingGate,
  type SharingGateOptions,
} from './sharing-gate.ts';
