/** Subscriptions and their delivery status in the store. */
import { type Kysely, sql } from 'kysely';
import { AppError } from '../../kernel/errors.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import type { DeliveryStatus, SubscriptionRecord, SubscriptionSpec } from './subscription.ts';
import type { ContextLiveTables, SubscriptionRow } from './tables.ts';

type SelectedRow = Omit<SubscriptionRow, 'times_sent' | 'times_failed'> & {
  times_sent: number;
  times_failed: number;
};

function toRecord(r: SelectedRow): SubscriptionRecord {
  const delivery: DeliveryStatus = { timesSent: r.times_sent, timesFailed: r.times_failed };
  if (r.last_notification) delivery.lastNotification = new Date(r.last_notification).toISOString();
  if (r.last_success) delivery.lastSuccess = new Date(r.last_success).toISOString();
  if (r.last_failure) delivery.lastFailure = new Date(r.last_failure).toISOString();
  if (r.last_status === 'ok' || r.last_status === 'failed') delivery.status = r.last_status;
  if (r.last_error) delivery.lastError = r.last_error;
  return {
    tenant: r.tenant,
    spec: r.body as SubscriptionSpec,
    ownerOrg: r.owner_org,
    createdBy: r.created_by,
    readKeys: r.read_keys,
    delivery,
    createdAt: new Date(r.created_at).toISOString(),
    modifiedAt: new Date(r.modified_at).toISOString(),
  };
}

export class SubscriptionStore {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  get #db(): Kysely<ContextLiveTables> {
    return this.#tables(this.#store.db);
  }

  #tables(db: AnyDb): Kysely<ContextLiveTables> {
    return db.withTables<ContextLiveTables>() as unknown as Kysely<ContextLiveTables>;
  }

  /** Runs writes (given `trx`) and what must commit with them in one transaction. */
  transaction<T>(fn: (trx: AnyDb) => Promise<T>): Promise<T> {
    return this.#store.transaction(fn);
  }

  async insert(rec: SubscriptionRecord, db: AnyDb = this.#store.db): Promise<void> {
    const res = await this.#tables(db)
      .insertInto('context_live_subscription')
      .values({
        tenant: rec.tenant,
        id: rec.spec.id,
        owner_org: rec.ownerOrg,
        created_by: rec.createdBy,
        read_keys: rec.readKeys,
        body: JSON.stringify(rec.spec),
        is_active: rec.spec.isActive,
        expires_at: rec.spec.expiresAt ? new Date(rec.spec.expiresAt) : null,
        last_notification: null,
        last_success: null,
        last_failure: null,
        last_status: null,
        last_error: null,
        created_at: new Date(rec.createdAt),
        modified_at: new Date(rec.modifiedAt),
      })
      .onConflict((oc) => oc.columns(['tenant', 'id']).doNothing())
      .executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 0n) === 0) {
      throw new AppError('CONTEXT_LIVE_SUBSCRIPTION_EXISTS', `subscription ${rec.spec.id} already exists`);
    }
  }

  async update(
    tenant: string,
    spec: SubscriptionSpec,
    modifiedAt: Date,
    db: AnyDb = this.#store.db,
  ): Promise<void> {
    await this.#tables(db)
      .updateTable('context_live_subscription')
      .set({
        body: JSON.stringify(spec),
        is_active: spec.isActive,
        expires_at: spec.expiresAt ? new Date(spec.expiresAt) : null,
        modified_at: modifiedAt,
      })
      .where('tenant', '=', tenant)
      .where('id', '=', spec.id)
      .execute();
  }

  /** The subscription, or undefined. Visibility is the caller's concern (see SubscriptionService). */
  async get(tenant: string, id: string): Promise<SubscriptionRecord | undefined> {
    const row = await this.#db
      .selectFrom('context_live_subscription')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toRecord(row) : undefined;
  }

  async list(
    tenant: string,
    ownerOrg: string,
    limit: number,
    offset: number,
  ): Promise<{ items: SubscriptionRecord[]; total: number }> {
    const rows = await this.#db
      .selectFrom('context_live_subscription')
      .selectAll()
      .select(sql<number>`count(*) over ()`.as('total'))
      .where('tenant', '=', tenant)
      .where('owner_org', '=', ownerOrg)
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
    let total = Number(rows[0]?.total ?? 0);
    if (rows.length === 0 && offset > 0) {
      const c = await this.#db
        .selectFrom('context_live_subscription')
        .select(sql<number>`count(*)`.as('n'))
        .where('tenant', '=', tenant)
        .where('owner_org', '=', ownerOrg)
        .executeTakeFirst();
      total = Number(c?.n ?? 0);
    }
    return { items: rows.map(toRecord), total };
  }

  /** Every subscription of every tenant that may still notify (for the in-memory matcher). */
  async listLive(now: Date): Promise<SubscriptionRecord[]> {
    const rows = await this.#db
      .selectFrom('context_live_subscription')
      .selectAll()
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .execute();
    return rows.map(toRecord);
  }

  async delete(tenant: string, id: string, db: AnyDb = this.#store.db): Promise<boolean> {
    const res = await this.#tables(db)
      .deleteFrom('context_live_subscription')
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    await this.#tables(db)
      .deleteFrom('context_live_outbox')
      .where('tenant', '=', tenant)
      .where('subscription_id', '=', id)
      .execute();
    return Number(res.numDeletedRows) > 0;
  }

  /** Records the outcome of one notification attempt (clause 5.2.14 status members). */
  async recordAttempt(
    tenant: string,
    id: string,
    at: Date,
    outcome: { ok: true } | { ok: false; error: string },
  ): Promise<void> {
    const q = this.#db
      .updateTable('context_live_subscription')
      .where('tenant', '=', tenant)
      .where('id', '=', id);
    if (outcome.ok) {
      await q
        .set((eb) => ({
          times_sent: eb('times_sent', '+', 1),
          last_notification: at,
          last_success: at,
          last_status: 'ok',
          last_error: null,
        }))
        .execute();
    } else {
      await q
        .set((eb) => ({
          times_sent: eb('times_sent', '+', 1),
          times_failed: eb('times_failed', '+', 1),
          last_notification: at,
          last_failure: at,
          last_status: 'failed',
          last_error: outcome.error.slice(0, 1000),
        }))
        .execute();
    }
  }
}
