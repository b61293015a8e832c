import type { Store } from '../../ports/store.ts';
import { chainPendingAudit, rowToAuditRecord } from './audit-log.ts';
import { GENESIS_HASH, hashAuditRecord } from './audit-record.ts';
import type { AuditTables } from './audit-tables.ts';

export interface AuditChainVerdict {
  ok: boolean;
  /** Records checked. */
  records: number;
  /** The first record that does not fit the chain (edited, or the one after a removed record). */
  firstBadId?: string;
  firstBadSeq?: number;
  reason?: string;
}

const PAGE = 2000;

/**
 * Walks the whole chain in order and recomputes every hash. Detects an edited record (its hash no
 * longer matches), a removed record (a gap in the sequence and a broken link), reordering, and records
 * removed at the end (the chain stops short of the head row, which is kept in its own table).
 */
export async function verifyAuditChain(store: Store): Promise<AuditChainVerdict> {
  // Records committed but not yet chained are chained first: they are part of what is verified.
  await chainPendingAudit(store.db);
  const db = store.db.withTables<AuditTables>();
  const head = await db
    .selectFrom('audit_head')
    .select(['seq', 'hash'])
    .where('id', '=', 1)
    .executeTakeFirst();
  if (!head) return { ok: false, records: 0, reason: 'the chain head row is missing' };
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let records = 0;
  for (;;) {
    const rows = await db
      .selectFrom('audit_record')
      .selectAll()
      .where('seq', '>=', expectedSeq)
      .orderBy('seq')
      .limit(PAGE)
      .execute();
    for (const row of rows) {
      const r = rowToAuditRecord(row);
      const bad = (reason: string): AuditChainVerdict => ({
        ok: false,
        records,
        firstBadId: r.id,
        firstBadSeq: r.seq,
        reason,
      });
      if (r.seq !== expectedSeq) {
        return bad(`record ${expectedSeq}${r.seq - expectedSeq > 1 ? `–${r.seq - 1}` : ''} is missing`);
      }
      if (r.prevHash !== prevHash) return bad(`record ${r.seq} does not link to the record before it`);
      if (hashAuditRecord(r) !== r.hash) return bad(`record ${r.seq} was altered: its hash does not match`);
      prevHash = r.hash;
      expectedSeq += 1;
      records += 1;
    }
    if (rows.length < PAGE) break;
  }
  const headSeq = Number(head.seq);
  if (headSeq !== records || head.hash !== prevHash) {
    return {
      ok: false,
      records,
      reason:
        headSeq > records
          ? `the chain ends at record ${records} but the head says ${headSeq}: records were removed at the end`
          : `the chain head (record ${headSeq}) does not match the last record (${records})`,
    };
  }
  return { ok: true, records };
}
