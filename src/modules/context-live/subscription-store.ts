/**
 * Subscriptions and their delivery status in the store. Each subscription also has its row in the sharing
 * gate's registry (`shared_object`, kind `subscription`, scope = tenant), written by the gate in the same
 * transaction; reads join it for the marking and the read keys the gate's visibility filter meets.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely';
import { AppError } from '../../kernel/errors.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import type { CurrentObject, Marking, SharedObjectTables } from '../sharing/index.ts';
import type { DeliveryStatus, SubscriptionRecord, SubscriptionSpec } from './subscription.ts';
import type { ContextLiveTables, SubscriptionRow } from './tables.ts';

export const SUBSCRIPTION_KIND = 'subscription';

type Tables = ContextLiveTables & SharedObjectTables;

type SelectedRow = Omit<SubscriptionRow, 'times_sent' | 'times_failed'> & {
  times_sent: number;
  times_failed: number;
};

type JoinedRow = SelectedRow & { tlp: string; pap: string | null; audience: unknown; read_keys: string[] };

/** A subscription with the facts the gate decides on (its registry row). */
export interface MarkedSubscription {
  rec: SubscriptionRecord;
  object: CurrentObject & { readKeys: string[] };
}

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
    ...(r.paused_reason ? { pausedReason: r.paused_reason } : {}),
    delivery,
    createdAt: new Date(r.created_at).toISOString(),
    modifiedAt: new Date(r.modified_at).toISOString(),
  };
}

function toMarked(r: JoinedRow): MarkedSubscription {
  const rec = toRecord(r);
  const marking = { tlp: r.tlp, audience: r.audience } as Marking;
  if (r.pap) marking.pap = r.pap as NonNullable<Marking['pap']>;
  return {
    rec,
    object: {
      id: rec.spec.id,
      scope: rec.tenant,
      ownerOrg: rec.ownerOrg,
      createdBy: rec.createdBy,
      marking,
      readKeys: r.read_keys,
    },
  };
}

export class SubscriptionStore {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  #tables(db: AnyDb): Kysely<Tables> {
    return db.withTables<Tables>() as unknown as Kysely<Tables>;
  }

  get #db(): Kysely<Tables> {
    return this.#tables(this.#store.db);
  }

  /** Runs writes (given `trx`) and what must commit with them (the gate's records) in one transaction. */
  transaction<T>(fn: (trx: AnyDb) => Promise<T>): Promise<T> {
    return this.#store.transaction(fn);
  }

  #joined(db: AnyDb) {
    return this.#tables(db)
      .selectFrom('context_live_subscription as c')
      .innerJoin('shared_object as s', (j) =>
        j.onRef('s.id', '=', 'c.id').onRef('s.scope', '=', 'c.tenant').on('s.kind', '=', SUBSCRIPTION_KIND),
      )
      .selectAll('c')
      .select(['s.tlp', 's.pap', 's.audience', 's.read_keys']);
  }

  async insert(rec: SubscriptionRecord, db: AnyDb = this.#store.db): Promise<void> {
    const res = await this.#tables(db)
      .insertInto('context_live_subscription')
      .values({
        tenant: rec.tenant,
        id: rec.spec.id,
        owner_org: rec.ownerOrg,
        created_by: rec.createdBy,
        body: JSON.stringify(rec.spec),
        is_active: rec.spec.isActive,
        expires_at: rec.spec.expiresAt ? new Date(rec.spec.expiresAt) : null,
        last_notification: null,
        last_success: null,
        last_failure: null,
        last_status: null,
        last_error: null,
        paused_reason: rec.pausedReason ?? null,
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

  /** The subscription whatever its visibility (the engine, other instances' changes), or undefined. */
  async get(tenant: string, id: string): Promise<SubscriptionRecord | undefined> {
    const row = await this.#db
      .selectFrom('context_live_subscription')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toRecord(row) : undefined;
  }

  /** The subscription if `visible` (the gate's filter over the registry's `s.read_keys`) admits it. */
  async getVisible(
    tenant: string,
    id: string,
    visible: RawBuilder<boolean>,
  ): Promise<SubscriptionRecord | undefined> {
    const row = await this.#joined(this.#store.db)
      .where('c.tenant', '=', tenant)
      .where('c.id', '=', id)
      .where(visible)
      .executeTakeFirst();
    return row ? toRecord(row) : undefined;
  }

  /** The subscription and its registry facts; undefined when absent. */
  async marked(tenant: string, id: string): Promise<MarkedSubscription | undefined> {
    const row = await this.#joined(this.#store.db)
      .where('c.tenant', '=', tenant)
      .where('c.id', '=', id)
      .executeTakeFirst();
    return row ? toMarked(row) : undefined;
  }

  /** The subscription and its registry facts, locked for a write in `trx`; undefined when absent. */
  async locked(trx: AnyDb, tenant: string, id: string): Promise<MarkedSubscription | undefined> {
    const row = await this.#joined(trx)
      .where('c.tenant', '=', tenant)
      .where('c.id', '=', id)
      .forUpdate()
      .executeTakeFirst();
    return row ? toMarked(row) : undefined;
  }

  async list(
    tenant: string,
    visible: RawBuilder<boolean>,
    limit: number,
    offset: number,
  ): Promise<{ items: SubscriptionRecord[]; total: number }> {
    const rows = await this.#joined(this.#store.db)
      .select(sql<number>`count(*) over ()`.as('total'))
      .where('c.tenant', '=', tenant)
      .where(visible)
      .orderBy('c.created_at')
      .orderBy('c.id')
      .limit(limit)
      .offset(offset)
      .execute();
    let total = Number(rows[0]?.total ?? 0);
    if (rows.length === 0 && offset > 0) {
      const c = await this.#joined(this.#store.db)
        .clearSelect()
        .select(sql<number>`count(*)`.as('n'))
        .where('c.tenant', '=', tenant)
        .where(visible)
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

  /** Subscriptions without their registry row (created before subscriptions were marked objects). */
  async unregistered(): Promise<SubscriptionRecord[]> {
    const rows = await this.#db
      .selectFrom('context_live_subscription as c')
      .leftJoin('shared_object as s', (j) =>
        j.onRef('s.id', '=', 'c.id').onRef('s.scope', '=', 'c.tenant').on('s.kind', '=', SUBSCRIPTION_KIND),
      )
      .selectAll('c')
      .where('s.id', 'is', null)
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

  /** The creators of subscriptions (to re-check their accounts at start). */
  async creators(): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('context_live_subscription')
      .select('created_by')
      .distinct()
      .execute();
    return rows.map((r) => r.created_by);
  }

  /**
   * Pauses (reason) or resumes (null) the subscriptions created by an account; returns those that changed.
   * Idempotent: every instance may apply the same account change.
   */
  async setPausedReason(
    createdBy: string,
    reason: string | null,
  ): Promise<Array<{ tenant: string; id: string }>> {
    return this.#db
      .updateTable('context_live_subscription')
      .set({ paused_reason: reason })
      .where('created_by', '=', createdBy)
      .where(sql<boolean>`paused_reason is distinct from ${reason}`)
      .returning(['tenant', 'id'])
      .execute();
  }

  /** The subscriptions the platform pauses now, by key (tenant, id), with why. */
  async pausedReasons(): Promise<Map<string, string>> {
    const rows = await this.#db
      .selectFrom('context_live_subscription')
      .select(['tenant', 'id', 'paused_reason'])
      .where('paused_reason', 'is not', null)
      .execute();
    return new Map(rows.map((r) => [`${r.tenant}\u0000${r.id}`, r.paused_reason as string]));
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
