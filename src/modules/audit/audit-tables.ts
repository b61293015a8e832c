import type { Generated } from 'kysely';

export type AuditTables = {
  audit_record: {
    /** Null until the record is chained (see chainPendingAudit). */
    seq: number | null;
    id: string;
    at: Date;
    actor_id: string | null;
    actor_org: string | null;
    action: string;
    object_kind: string | null;
    object_id: string | null;
    owner_org: string | null;
    details: unknown;
    prev_hash: string | null;
    hash: string | null;
    /** The order of writing (a sequence): chaining follows it. */
    written: Generated<string>;
  };
  audit_head: { id: number; seq: number; hash: string };
};

export type AuditRow = Omit<AuditTables['audit_record'], 'written'>;
