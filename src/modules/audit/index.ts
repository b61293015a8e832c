export {
  type AppendedAudit,
  AuditChainer,
  type AuditQuery,
  appendAudit,
  chainPendingAudit,
  listAudit,
  recordAudit,
} from './audit-log.ts';
export {
  type AuditAction,
  type AuditEntry,
  type AuditRecord,
  GENESIS_HASH,
  hashAuditRecord,
} from './audit-record.ts';
export { canonicalJson } from './canonical-json.ts';
export { auditMigrations } from './migrations.ts';
export { type AuditChainVerdict, verifyAuditChain } from './verify-audit-chain.ts';
