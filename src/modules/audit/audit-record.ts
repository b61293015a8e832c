import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';

/** The hash the first record of the chain links to. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * What is audited. `create`, `update`, `delete` of any object or account; `share` when a marking or an
 * audience changes; `disclose` when an object is read by someone outside its owner organisation (AMBER,
 * AMBER+STRICT, RED); `break_glass` when an administrator reads an object with a stated reason; `revoke`
 * for API tokens; `login` for sessions opened.
 */
export type AuditAction =
  | 'create'
  | 'update'
  | 'delete'
  | 'share'
  | 'disclose'
  | 'break_glass'
  | 'revoke'
  | 'disable'
  | 'enable'
  | 'login';

export interface AuditEntry {
  /** The user or service account that acted; null for the platform itself (bootstrap, migrations). */
  actorId: string | null;
  actorOrg: string | null;
  action: AuditAction;
  objectKind?: string | undefined;
  objectId?: string | undefined;
  /** The organisation owning the object: it may read the records about its objects. */
  ownerOrg?: string | undefined;
  details?: Record<string, unknown> | undefined;
}

export interface AuditRecord {
  seq: number;
  id: string;
  at: string;
  actorId: string | null;
  actorOrg: string | null;
  action: string;
  objectKind: string | null;
  objectId: string | null;
  ownerOrg: string | null;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** sha256 over the previous hash and the canonical JSON of every field of the record except its hash. */
export function hashAuditRecord(r: Omit<AuditRecord, 'hash'>): string {
  const body = canonicalJson({
    seq: r.seq,
    id: r.id,
    at: r.at,
    actorId: r.actorId,
    actorOrg: r.actorOrg,
    action: r.action,
    objectKind: r.objectKind,
    objectId: r.objectId,
    ownerOrg: r.ownerOrg,
    details: r.details,
  });
  return createHash('sha256').update(r.prevHash).update('\n').update(body).digest('hex');
}
