export type AuditTables = {
  audit_record: {
    seq: number;
    id: string;
    at: Date;
    actor_id: string | null;
    actor_org: string | null;
    action: string;
    object_kind: string | null;
    object_id: string | null;
    owner_org: string | null;
    details: unknown;
    prev_hash: string;
    hash: string;
  };
  audit_head: { id: number; seq: number; hash: string };
};

export type AuditRow = AuditTables['audit_record'];
