/** Ingestion messages that were refused, each with the reason (the dead-letter record). */
import type { Kysely } from 'kysely';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import { toStorableText } from '../../kernel/text.ts';
import type { Store } from '../../ports/store.ts';
import type { ContextLiveTables } from './tables.ts';

export interface DeadLetter {
  id: string;
  receivedAt: string;
  source: 'mqtt' | 'http';
  topic: string | null;
  tenant: string | null;
  orgId: string | null;
  principal: string | null;
  reason: string;
  /** The message as received (UTF-8 text, cut at 256 KiB; NUL and lone surrogates shown as U+FFFD). */
  payload: string;
}

export class DeadLetterStore {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  get #db(): Kysely<ContextLiveTables> {
    return this.#store.db.withTables<ContextLiveTables>() as unknown as Kysely<ContextLiveTables>;
  }

  async add(letters: Array<Omit<DeadLetter, 'id' | 'receivedAt'> & { receivedAt: Date }>): Promise<void> {
    if (letters.length === 0) return;
    await this.#db
      .insertInto('context_live_dead_letter')
      .values(
        letters.map((l) => ({
          id: newTimeOrderedId(l.receivedAt.getTime()),
          received_at: l.receivedAt,
          source: l.source,
          // A refused message is kept whatever it holds: text PostgreSQL cannot store is replaced (U+FFFD).
          topic: l.topic === null ? null : toStorableText(l.topic.slice(0, 1024)),
          tenant: l.tenant === null ? null : toStorableText(l.tenant),
          org_id: l.orgId,
          principal: l.principal,
          reason: toStorableText(l.reason.slice(0, 2000)),
          payload: toStorableText(l.payload.slice(0, 256 * 1024)),
        })),
      )
      .execute();
  }

  /** Newest first; limited to one organisation's messages when `orgId` is given. */
  async list(opts: { orgId?: string; limit: number; before?: string }): Promise<DeadLetter[]> {
    let q = this.#db.selectFrom('context_live_dead_letter').selectAll();
    if (opts.orgId !== undefined) q = q.where('org_id', '=', opts.orgId);
    if (opts.before !== undefined) q = q.where('id', '<', opts.before);
    const rows = await q.orderBy('id', 'desc').limit(opts.limit).execute();
    return rows.map((r) => ({
      id: r.id,
      receivedAt: new Date(r.received_at).toISOString(),
      source: r.source as 'mqtt' | 'http',
      topic: r.topic,
      tenant: r.tenant,
      orgId: r.org_id,
      principal: r.principal,
      reason: r.reason,
      payload: r.payload,
    }));
  }
}
