/**
 * Appending to and reading the hash-chained audit log.
 *
 * `appendAudit(trx, …)` must run inside the transaction of the write it records (`store.transaction`):
 * the record commits or rolls back with the write. It locks the chain head row (`select … for update`),
 * so concurrent appends from several instances on one PostgreSQL queue up and the chain never forks.
 */
import { sql } from 'kysely';
import { type Clock, systemClock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import { type AuditEntry, type AuditRecord, hashAuditRecord } from './audit-record.ts';
import type { AuditRow, AuditTables } from './audit-tables.ts';

export async function appendAudit(
  trx: AnyDb,
  entries: AuditEntry | AuditEntry[],
  clock: Clock = systemClock,
): Promise<AuditRecord[]> {
  const list = Array.isArray(entries) ? entries : [entries];
  if (list.length === 0) return [];
  const db = trx.withTables<AuditTables>();
  const head = await db
    .selectFrom('audit_head')
    .select(['seq', 'hash'])
    .where('id', '=', 1)
    .forUpdate()
    .executeTakeFirst();
  if (!head) throw new AppError('AUDIT_CHAIN_BROKEN', 'the audit chain head is missing');
  let seq = Number(head.seq);
  let prevHash = head.hash;
  const at = clock.now();
  const records: AuditRecord[] = [];
  for (const e of list) {
    seq += 1;
    const base: Omit<AuditRecord, 'hash'> = {
      seq,
      id: newTimeOrderedId(at.getTime()),
      at: at.toISOString(),
      actorId: e.actorId,
      actorOrg: e.actorOrg,
      action: e.action,
      objectKind: e.objectKind ?? null,
      objectId: e.objectId ?? null,
      ownerOrg: e.ownerOrg ?? null,
      details: e.details ?? {},
      prevHash,
    };
    const record = { ...base, hash: hashAuditRecord(base) };
    records.push(record);
    prevHash = record.hash;
  }
  for (let i = 0; i < records.length; i += 500) {
    await db
      .insertInto('audit_record')
      .values(
        records.slice(i, i + 500).map((r) => ({
          seq: r.seq,
          id: r.id,
          at: new Date(r.at),
          actor_id: r.actorId,
          actor_org: r.actorOrg,
          action: r.action,
          object_kind: r.objectKind,
          object_id: r.objectId,
          owner_org: r.ownerOrg,
          details: JSON.stringify(r.details),
          prev_hash: r.prevHash,
          hash: r.hash,
        })),
      )
      .execute();
  }
  await db.updateTable('audit_head').set({ seq, hash: prevHash }).where('id', '=', 1).execute();
  return records;
}

/** Appends in a transaction of its own, for facts with no write beside them (a read, a login). */
export function recordAudit(
  store: Store,
  entries: AuditEntry | AuditEntry[],
  clock: Clock = systemClock,
): Promise<AuditRecord[]> {
  return store.transaction((trx) => appendAudit(trx, entries, clock));
}

export function rowToAuditRecord(r: AuditRow): AuditRecord {
  return {
    seq: Number(r.seq),
    id: r.id,
    at: r.at.toISOString(),
    actorId: r.actor_id,
    actorOrg: r.actor_org,
    action: r.action,
    objectKind: r.object_kind,
    objectId: r.object_id,
    ownerOrg: r.owner_org,
    details: (r.details ?? {}) as Record<string, unknown>,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export interface AuditQuery {
  objectId?: string | undefined;
  actorId?: string | undefined;
  ownerOrg?: string | undefined;
  action?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  /** Records after this sequence number (paging forward). */
  afterSeq?: number | undefined;
  /** Newest first when true (default false: oldest first). */
  newestFirst?: boolean | undefined;
  limit?: number | undefined;
  /**
   * Only records an administrator may read: about or by these organisations, or about objects of these
   * kinds (the platform's administration). Unset: every record (the platform itself, the CLI).
   */
  visibleTo?: { orgs: string[]; kinds: string[] } | undefined;
}

export async function listAudit(db: AnyDb, q: AuditQuery = {}): Promise<AuditRecord[]> {
  let query = db.withTables<AuditTables>().selectFrom('audit_record').selectAll();
  if (q.objectId !== undefined) {
    const id = q.objectId;
    // Batches are recorded once with their objects' ids listed in details.ids.
    query = query.where(sql<boolean>`(object_id = ${id} or (details -> 'ids') @> to_jsonb(${id}::text))`);
  }
  if (q.visibleTo) {
    const { orgs, kinds } = q.visibleTo;
    if (orgs.length === 0 && kinds.length === 0) return [];
    query = query.where((eb) =>
      eb.or([
        ...(orgs.length > 0 ? [eb('owner_org', 'in', orgs), eb('actor_org', 'in', orgs)] : []),
        ...(kinds.length > 0 ? [eb('object_kind', 'in', kinds)] : []),
      ]),
    );
  }
  if (q.actorId !== undefined) query = query.where('actor_id', '=', q.actorId);
  if (q.ownerOrg !== undefined) query = query.where('owner_org', '=', q.ownerOrg);
  if (q.action !== undefined) query = query.where('action', '=', q.action);
  if (q.from !== undefined) query = query.where('at', '>=', q.from);
  if (q.to !== undefined) query = query.where('at', '<', q.to);
  if (q.afterSeq !== undefined) query = query.where('seq', '>', q.afterSeq);
  const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
  const rows = await query
    .orderBy('seq', q.newestFirst ? 'desc' : 'asc')
    .limit(limit)
    .execute();
  return rows.map(rowToAuditRecord);
}
