/**
 * Appending to and reading the hash-chained audit log.
 *
 * `appendAudit(trx, …)` runs inside the transaction of the write it records (`store.transaction`): the record
 * commits or rolls back with the write. It takes no lock: the record is written unchained (no sequence number,
 * no hash yet), so audited writes of every instance proceed in parallel. `chainPendingAudit` then links the
 * committed records into the chain, in order, under the chain head's row lock (one chainer at a time across
 * instances); every instance runs it a few times a second (`AuditChainer`), and reading or verifying the log
 * runs it first, so what is read is always chained.
 */
import { sql } from 'kysely';
import { type Clock, systemClock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import { type AuditEntry, type AuditRecord, hashAuditRecord } from './audit-record.ts';
import type { AuditRow, AuditTables } from './audit-tables.ts';

/** What an append returns: the record as written, before it is chained. */
export interface AppendedAudit {
  id: string;
  at: string;
}

export async function appendAudit(
  trx: AnyDb,
  entries: AuditEntry | AuditEntry[],
  clock: Clock = systemClock,
): Promise<AppendedAudit[]> {
  const list = Array.isArray(entries) ? entries : [entries];
  if (list.length === 0) return [];
  const db = trx.withTables<AuditTables>();
  const at = clock.now();
  const rows = list.map((e) => ({
    seq: null,
    id: newTimeOrderedId(at.getTime()),
    at,
    actor_id: e.actorId,
    actor_org: e.actorOrg,
    action: e.action,
    object_kind: e.objectKind ?? null,
    object_id: e.objectId ?? null,
    owner_org: e.ownerOrg ?? null,
    details: JSON.stringify(e.details ?? {}),
    prev_hash: null,
    hash: null,
  }));
  for (let i = 0; i < rows.length; i += 500) {
    await db
      .insertInto('audit_record')
      .values(rows.slice(i, i + 500))
      .execute();
  }
  return rows.map((r) => ({ id: r.id, at: at.toISOString() }));
}

const CHAIN_BATCH = 2000;

/**
 * Links committed, unchained records into the chain: the next sequence numbers and hashes, in the order the
 * records were written. Serialised across instances by the chain head's row lock; safe
 * to call anywhere at any time. Returns how many records it chained.
 */
export async function chainPendingAudit(db: AnyDb): Promise<number> {
  const t = db.withTables<AuditTables>();
  const pending = await t.selectFrom('audit_record').select('id').where('seq', 'is', null).limit(1).execute();
  if (pending.length === 0) return 0;
  let total = 0;
  for (;;) {
    const chained = await db.transaction().execute(async (trx) => {
      const x = trx.withTables<AuditTables>();
      const head = await x
        .selectFrom('audit_head')
        .select(['seq', 'hash'])
        .where('id', '=', 1)
        .forUpdate()
        .executeTakeFirst();
      if (!head) throw new AppError('AUDIT_CHAIN_BROKEN', 'the audit chain head is missing');
      const rows = await x
        .selectFrom('audit_record')
        .selectAll()
        .where('seq', 'is', null)
        .orderBy('written')
        .limit(CHAIN_BATCH)
        .execute();
      if (rows.length === 0) return 0;
      let seq = Number(head.seq);
      let prevHash = head.hash;
      const linked: { id: string; seq: number; prevHash: string; hash: string }[] = [];
      for (const row of rows) {
        seq += 1;
        const base = { ...rowToAuditRecord(row), seq, prevHash };
        const hash = hashAuditRecord(base);
        linked.push({ id: row.id, seq, prevHash, hash });
        prevHash = hash;
      }
      // One statement for the whole batch: a join on a VALUES list.
      await sql`update audit_record as r
        set seq = v.seq::bigint, prev_hash = v.prev_hash, hash = v.hash
        from (values ${sql.join(
          linked.map((l) => sql`(${l.id}, ${l.seq}, ${l.prevHash}, ${l.hash})`),
        )}) as v(id, seq, prev_hash, hash)
        where r.id = v.id`.execute(trx);
      await x.updateTable('audit_head').set({ seq, hash: prevHash }).where('id', '=', 1).execute();
      return rows.length;
    });
    total += chained;
    if (chained < CHAIN_BATCH) return total;
  }
}

/**
 * Chains every instance's committed records a few times a second, so the chain trails the writes by a
 * fraction of a second even when nobody reads the log.
 */
export class AuditChainer {
  readonly #store: Store;
  readonly #timer: NodeJS.Timeout;
  #running: Promise<unknown> = Promise.resolve();
  #onError: (e: unknown) => void;

  constructor(store: Store, opts: { everyMs?: number; onError?: (e: unknown) => void } = {}) {
    this.#store = store;
    this.#onError = opts.onError ?? (() => {});
    this.#timer = setInterval(() => this.chainNow(), opts.everyMs ?? 250);
    this.#timer.unref();
  }

  /** Chains now (after the chaining in progress, if any). */
  chainNow(): Promise<unknown> {
    this.#running = this.#running.then(() => chainPendingAudit(this.#store.db)).catch(this.#onError);
    return this.#running;
  }

  /** Stops the timer and chains what is left. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.chainNow();
  }
}

/** Appends in a transaction of its own, for facts with no write beside them (a read, a login). */
export function recordAudit(
  store: Store,
  entries: AuditEntry | AuditEntry[],
  clock: Clock = systemClock,
): Promise<AppendedAudit[]> {
  return store.transaction((trx) => appendAudit(trx, entries, clock));
}

export function rowToAuditRecord(r: AuditRow): AuditRecord {
  return {
    seq: r.seq === null ? 0 : Number(r.seq),
    id: r.id,
    at: r.at.toISOString(),
    actorId: r.actor_id,
    actorOrg: r.actor_org,
    action: r.action,
    objectKind: r.object_kind,
    objectId: r.object_id,
    ownerOrg: r.owner_org,
    details: (r.details ?? {}) as Record<string, unknown>,
    prevHash: r.prev_hash ?? '',
    hash: r.hash ?? '',
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
  // What is read is chained: records committed a moment ago are linked first (a no-op when none wait).
  if (!db.isTransaction) await chainPendingAudit(db);
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
