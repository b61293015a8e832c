/**
 * The history of entities' attributes (the NGSI-LD temporal API's data), recorded from entity change
 * events, queried by time and aggregated in SQL, pruned by a retention per entity type.
 *
 * Every read is limited to entities whose *current* read keys meet the reader's: a marking change applies
 * to the whole history at once.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely';
import { newId } from '../../kernel/ids.ts';
import type { Store } from '../../ports/store.ts';
import { likePrefixPattern, QueryBudget, type UserPattern } from '../context/index.ts';
import { attributeNames, type ChangeKind, type LiveEntityChange } from './entity-change-event.ts';
import type { ContextLiveTables } from './tables.ts';
import type { AggrMethod, TemporalQuery } from './temporal-query.ts';

const OBSERVED_AT = ['observedAt', 'https://uri.etsi.org/ngsi-ld/observedAt'];
const MODIFIED_AT = ['modifiedAt', 'https://uri.etsi.org/ngsi-ld/modifiedAt'];
const DATASET_ID = ['datasetId', 'https://uri.etsi.org/ngsi-ld/datasetId'];

export interface RecordedChange {
  kind: ChangeKind;
  change: LiveEntityChange;
  /** Time of the change (the event's time). */
  at: string;
}

export interface TemporalSelection {
  tenant: string;
  readKeys: string[];
  ids?: string[];
  /** Expanded types; an entity matches when one of its types is listed. */
  types?: string[];
  /** The idPattern, compiled for RE2: it runs in memory over the visible ids, never in SQL. */
  idPattern?: UserPattern;
  /** Expanded attribute names; all when absent. */
  attrs?: string[];
  limit: number;
  offset: number;
}

export interface AttrInstance {
  attr: string;
  datasetId: string;
  instanceId: string;
  type: string;
  observedAt: string;
  modifiedAt: string;
  instance: Record<string, unknown>;
}

export interface TemporalEntity {
  id: string;
  types: string[];
  instances: AttrInstance[];
}

export interface AggregateValue {
  attr: string;
  datasetId: string;
  type: string;
  method: AggrMethod;
  /** [value, period start, period end] (clause 4.5.19). */
  values: Array<[number | null, string, string]>;
}

function pick(o: Record<string, unknown>, keys: string[]): unknown {
  for (const k of keys) if (o[k] !== undefined) return o[k];
  return undefined;
}

function instancesOf(v: unknown): Array<Record<string, unknown>> {
  if (Array.isArray(v))
    return v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null);
  if (typeof v === 'object' && v !== null) return [v as Record<string, unknown>];
  return [];
}

function mainValue(inst: Record<string, unknown>): unknown {
  for (const k of ['value', 'object', 'languageMap', 'vocab', 'json', 'valueList', 'objectList']) {
    if (inst[k] !== undefined) return inst[k];
  }
  const v = inst['https://uri.etsi.org/ngsi-ld/hasValue'] ?? inst['https://uri.etsi.org/ngsi-ld/hasObject'];
  return v;
}

type InstanceInsert = ContextLiveTables['context_live_attr_instance'];

const PLAIN_MEMBERS = new Set(['type', 'value', 'observedAt', 'createdAt', 'modifiedAt']);

/**
 * A numeric Property with nothing but its value and times (most IoT observations) is stored in its
 * columns only, without a JSON copy: the instance is rebuilt from them when read.
 */
function isPlainNumber(inst: Record<string, unknown>): boolean {
  if (inst.type !== 'Property' || typeof inst.value !== 'number') return false;
  for (const k of Object.keys(inst)) if (!PLAIN_MEMBERS.has(k)) return false;
  return true;
}

/** The instance rows one change brings (created: all attributes; updated: those it changed). */
export function instanceRows(r: RecordedChange): InstanceInsert[] {
  const { change } = r;
  if (r.kind === 'deleted' || !change.entity) return [];
  const names = r.kind === 'created' ? attributeNames(change.entity) : change.changedAttributes;
  const rows: InstanceInsert[] = [];
  const at = new Date(r.at);
  for (const attr of names) {
    for (const inst of instancesOf(change.entity[attr])) {
      const observed = pick(inst, OBSERVED_AT) ?? change.observedAt;
      const modified = pick(inst, MODIFIED_AT);
      const observedAt =
        typeof observed === 'string' && !Number.isNaN(Date.parse(observed)) ? new Date(observed) : at;
      const modifiedAt =
        typeof modified === 'string' && !Number.isNaN(Date.parse(modified)) ? new Date(modified) : at;
      const value = mainValue(inst);
      const ds = pick(inst, DATASET_ID);
      rows.push({
        tenant: change.tenant,
        entity_id: change.entityId,
        attr,
        dataset_id: typeof ds === 'string' ? ds : '',
        instance_id: `urn:ngsi-ld:attribute:instance:${newId()}`,
        attr_type: typeof inst.type === 'string' ? inst.type : 'Property',
        observed_at: observedAt,
        modified_at: modifiedAt,
        value_num: typeof value === 'number' ? value : typeof value === 'boolean' ? (value ? 1 : 0) : null,
        value_text: typeof value === 'string' ? value : value === undefined ? null : JSON.stringify(value),
        instance: isPlainNumber(inst) ? null : JSON.stringify(inst),
      });
    }
  }
  return rows;
}

const MINUTE = 60_000;
type RollupInsert = ContextLiveTables['context_live_attr_rollup'];

function rollupKey(r: {
  tenant: string;
  entity_id: string;
  attr: string;
  dataset_id: string;
  bucket: Date;
}): string {
  return `${r.tenant}\u0000${r.entity_id}\u0000${r.attr}\u0000${r.dataset_id}\u0000${r.bucket.getTime()}`;
}

/** Adds rollup deltas into `into` (same minute: counts and sums add, min and max combine). */
export function mergeRollups(into: Map<string, RollupInsert>, rows: RollupInsert[]): void {
  for (const r of rows) {
    const key = rollupKey(r);
    const b = into.get(key);
    if (!b) {
      into.set(key, { ...r });
      continue;
    }
    b.n += r.n;
    b.n_num += r.n_num;
    if (r.sum !== null) b.sum = (b.sum ?? 0) + r.sum;
    if (r.sumsq !== null) b.sumsq = (b.sumsq ?? 0) + r.sumsq;
    if (r.min !== null) b.min = b.min === null ? r.min : Math.min(b.min, r.min);
    if (r.max !== null) b.max = b.max === null ? r.max : Math.max(b.max, r.max);
  }
}

/** Per-minute partial aggregates of instance rows (grouped in memory: one upsert row per minute). */
export function rollupRows(rows: InstanceInsert[]): RollupInsert[] {
  const out = new Map<string, RollupInsert>();
  for (const r of rows) {
    const minute = Math.floor(r.observed_at.getTime() / MINUTE) * MINUTE;
    const key = rollupKey({ ...r, bucket: new Date(minute) });
    let b = out.get(key);
    if (!b) {
      b = {
        tenant: r.tenant,
        entity_id: r.entity_id,
        attr: r.attr,
        dataset_id: r.dataset_id,
        bucket: new Date(minute),
        attr_type: r.attr_type,
        n: 0,
        n_num: 0,
        sum: null,
        sumsq: null,
        min: null,
        max: null,
      };
      out.set(key, b);
    }
    b.n++;
    const v = r.value_num;
    if (v !== null && Number.isFinite(v)) {
      b.n_num++;
      b.sum = (b.sum ?? 0) + v;
      b.sumsq = (b.sumsq ?? 0) + v * v;
      b.min = b.min === null ? v : Math.min(b.min, v);
      b.max = b.max === null ? v : Math.max(b.max, v);
    }
  }
  return [...out.values()];
}

interface PeriodRow {
  entity_id: string;
  attr: string;
  dataset_id: string;
  attr_type: string;
  bucket: number;
  totalCount: number;
  distinctCount: number | null;
  sum: number | null;
  avg: number | null;
  min: number | null;
  max: number | null;
  stddev: number | null;
  sumsq: number | null;
}

function num(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

export class TemporalStore {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  get #db(): Kysely<ContextLiveTables> {
    return this.#store.db.withTables<ContextLiveTables>() as unknown as Kysely<ContextLiveTables>;
  }

  /** Per-minute rollup deltas not yet written (see flushRollups). */
  #pending = new Map<string, RollupInsert>();

  /**
   * Records a batch of changes: their attribute instances and the entities' current types and keys, in one
   * transaction. The per-minute rollups are gathered in memory and written by `flushRollups` (every few
   * seconds, and before every aggregation), so that each minute is written once per flush instead of once
   * per batch.
   */
  async record(changes: RecordedChange[]): Promise<number> {
    if (changes.length === 0) return 0;
    const latest = new Map<string, RecordedChange>();
    const rows: InstanceInsert[] = [];
    for (const c of changes) {
      latest.set(`${c.change.tenant}\u0000${c.change.entityId}`, c);
      for (const r of instanceRows(c)) rows.push(r);
    }
    const entities: ContextLiveTables['context_live_temporal_entity'][] = [];
    for (const c of latest.values()) {
      const deleted = c.kind === 'deleted';
      entities.push({
        tenant: c.change.tenant,
        entity_id: c.change.entityId,
        entity_types: c.change.entityType,
        owner_org: c.change.ownerOrg,
        read_keys: c.change.readKeys,
        created_at: new Date(c.at),
        modified_at: new Date(c.at),
        deleted_at: deleted ? new Date(c.at) : null,
      });
    }
    await this.#store.transaction(async (trx) => {
      const db = trx.withTables<ContextLiveTables>() as unknown as Kysely<ContextLiveTables>;
      // One statement with array parameters (unnest): the statement stays small however many rows.
      for (let i = 0; i < rows.length; i += 10_000) {
        const part = rows.slice(i, i + 10_000);
        const col = <T>(f: (r: InstanceInsert) => T) => part.map(f);
        await sql`insert into context_live_attr_instance (tenant, entity_id, attr, dataset_id, instance_id, attr_type,
            observed_at, modified_at, value_num, value_text, instance)
          select * from unnest(${col((r) => r.tenant)}::text[], ${col((r) => r.entity_id)}::text[],
            ${col((r) => r.attr)}::text[], ${col((r) => r.dataset_id)}::text[], ${col((r) => r.instance_id)}::text[],
            ${col((r) => r.attr_type)}::text[], ${col((r) => r.observed_at.toISOString())}::timestamptz[],
            ${col((r) => r.modified_at.toISOString())}::timestamptz[], ${col((r) => r.value_num)}::float8[],
            ${col((r) => r.value_text)}::text[], ${col((r) => r.instance as string | null)}::jsonb[])`.execute(
          trx,
        );
      }
      if (entities.length > 0) {
        await db
          .insertInto('context_live_temporal_entity')
          .values(entities)
          // Rewrite only what changed: most changes leave types, keys and owner as they were.
          .onConflict((oc) =>
            oc
              .columns(['tenant', 'entity_id'])
              .doUpdateSet((eb) => ({
                entity_types: eb.ref('excluded.entity_types'),
                owner_org: eb.ref('excluded.owner_org'),
                read_keys: eb.ref('excluded.read_keys'),
                modified_at: eb.ref('excluded.modified_at'),
                deleted_at: eb.ref('excluded.deleted_at'),
              }))
              .where(
                sql<boolean>`(context_live_temporal_entity.entity_types, context_live_temporal_entity.read_keys,
                  context_live_temporal_entity.owner_org, context_live_temporal_entity.deleted_at is null)
                  is distinct from (excluded.entity_types, excluded.read_keys, excluded.owner_org,
                  excluded.deleted_at is null)`,
              ),
          )
          .execute();
      }
    });
    mergeRollups(this.#pending, rollupRows(rows));
    return rows.length;
  }

  /** Writes the gathered per-minute rollup deltas (additive upserts: several instances may write). */
  async flushRollups(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    const all = [...batch.values()];
    try {
      for (let i = 0; i < all.length; i += 10_000) {
        const part = all.slice(i, i + 10_000);
        const col = <T>(f: (r: RollupInsert) => T) => part.map(f);
        await sql`insert into context_live_attr_rollup as r (tenant, entity_id, attr, dataset_id, bucket, attr_type,
            n, n_num, sum, sumsq, min, max)
          select * from unnest(${col((r) => r.tenant)}::text[], ${col((r) => r.entity_id)}::text[],
            ${col((r) => r.attr)}::text[], ${col((r) => r.dataset_id)}::text[],
            ${col((r) => r.bucket.toISOString())}::timestamptz[], ${col((r) => r.attr_type)}::text[],
            ${col((r) => r.n)}::bigint[], ${col((r) => r.n_num)}::bigint[], ${col((r) => r.sum)}::float8[],
            ${col((r) => r.sumsq)}::float8[], ${col((r) => r.min)}::float8[], ${col((r) => r.max)}::float8[])
          on conflict (tenant, entity_id, attr, dataset_id, bucket) do update set
            n = r.n + excluded.n,
            n_num = r.n_num + excluded.n_num,
            sum = coalesce(r.sum, 0) + coalesce(excluded.sum, 0),
            sumsq = coalesce(r.sumsq, 0) + coalesce(excluded.sumsq, 0),
            min = least(r.min, excluded.min),
            max = greatest(r.max, excluded.max)`.execute(this.#store.db);
        for (const r of part) batch.delete(rollupKey(r));
      }
    } catch (e) {
      // Keep what was not written for the next flush.
      mergeRollups(this.#pending, [...batch.values()]);
      throw e;
    }
  }

  /**
   * Recomputes the rollups of the minutes from `since` on from the instances (after a restart: deltas
   * that were gathered but not flushed are lost with the process). Only for a single instance: other
   * running instances' unflushed deltas would be counted twice.
   */
  async rebuildRollups(since: Date): Promise<void> {
    await this.flushRollups();
    const from = new Date(Math.floor(since.getTime() / MINUTE) * MINUTE);
    await this.#store.transaction(async (trx) => {
      await sql`delete from context_live_attr_rollup where bucket >= ${from}`.execute(trx);
      await sql`insert into context_live_attr_rollup (tenant, entity_id, attr, dataset_id, bucket, attr_type,
          n, n_num, sum, sumsq, min, max)
        select tenant, entity_id, attr, dataset_id, date_trunc('minute', observed_at) as bucket, min(attr_type),
          count(*), count(value_num), sum(value_num), sum(value_num * value_num), min(value_num), max(value_num)
        from context_live_attr_instance where observed_at >= ${from}
        group by tenant, entity_id, attr, dataset_id, bucket`.execute(trx);
    });
  }

  /** The current read keys of entities (for delivery-time checks of retried notifications). */
  async currentReadKeys(tenant: string, ids: string[]): Promise<Map<string, string[]>> {
    if (ids.length === 0) return new Map();
    const rows = await this.#db
      .selectFrom('context_live_temporal_entity')
      .select(['entity_id', 'read_keys'])
      .where('tenant', '=', tenant)
      .where('entity_id', 'in', ids)
      .execute();
    return new Map(rows.map((r) => [r.entity_id, r.read_keys]));
  }

  /**
   * Entities with history that the reader may see, in id order. An idPattern runs over the visible ids
   * only (its literal prefix, if any, narrows them in SQL after visibility), at most `maxScan` of them.
   */
  async selectEntities(
    sel: TemporalSelection,
    maxScan = 200_000,
  ): Promise<Array<{ id: string; types: string[] }>> {
    const visible = sql<boolean>`read_keys && ${sql.val(sel.readKeys)}::text[]`;
    let q = this.#db
      .selectFrom('context_live_temporal_entity')
      .select(['entity_id', 'entity_types'])
      .where('tenant', '=', sel.tenant)
      .where(visible);
    if (sel.ids && sel.ids.length > 0) q = q.where('entity_id', 'in', sel.ids);
    if (sel.types && sel.types.length > 0) {
      q = q.where(sql<boolean>`entity_types && ${sql.val(sel.types)}::text[]`);
    }
    const pattern = sel.idPattern;
    if (!pattern) {
      const rows = await q.orderBy('entity_id').limit(sel.limit).offset(sel.offset).execute();
      return rows.map((r) => ({ id: r.entity_id, types: r.entity_types }));
    }
    if (pattern.literalPrefix) {
      const like = likePrefixPattern(pattern.literalPrefix);
      q = q.where(sql<boolean>`case when ${visible} then entity_id like ${like} else false end`);
    }
    const rows = await q
      .orderBy('entity_id')
      .limit(maxScan + 1)
      .execute();
    const budget = new QueryBudget({ maxScan, maxEvaluationMs: 10_000 });
    if (rows.length > maxScan) budget.chargeRows(rows.length);
    const kept = await budget.filter(rows, (r) => pattern.test(r.entity_id));
    return kept
      .slice(sel.offset, sel.offset + sel.limit)
      .map((r) => ({ id: r.entity_id, types: r.entity_types }));
  }

  #timeFilter(tq: TemporalQuery) {
    const col = tq.timeproperty === 'observedAt' ? 'observed_at' : 'modified_at';
    return {
      col,
      from: tq.timerel === 'after' || tq.timerel === 'between' ? tq.timeAt : undefined,
      to: tq.timerel === 'before' ? tq.timeAt : tq.endTimeAt,
    };
  }

  /** The instances of the selected entities' attributes, oldest first (lastN: the newest N per attribute). */
  async instances(
    tenant: string,
    entityIds: string[],
    attrs: string[] | undefined,
    tq: TemporalQuery,
  ): Promise<Map<string, AttrInstance[]>> {
    const out = new Map<string, AttrInstance[]>();
    if (entityIds.length === 0) return out;
    const { col, from, to } = this.#timeFilter(tq);
    const c = sql.ref(col);
    const attrFilter = attrs && attrs.length > 0 ? sql`and attr = any(${sql.val(attrs)}::text[])` : sql``;
    const fromFilter = from ? sql`and ${c} >= ${from}` : sql``;
    const toFilter = to ? sql`and ${c} < ${to}` : sql``;
    const base = sql`select entity_id, attr, dataset_id, instance_id, attr_type, observed_at, modified_at, instance, value_num,
        row_number() over (partition by entity_id, attr, dataset_id order by ${c} desc, instance_id desc) as rn
      from context_live_attr_instance
      where tenant = ${tenant} and entity_id = any(${sql.val(entityIds)}::text[]) ${attrFilter} ${fromFilter} ${toFilter}`;
    const lastN = tq.lastN ? sql`where rn <= ${tq.lastN}` : sql``;
    const res = await sql<{
      entity_id: string;
      attr: string;
      dataset_id: string;
      instance_id: string;
      attr_type: string;
      observed_at: Date;
      modified_at: Date;
      instance: unknown;
      value_num: number | null;
    }>`select * from (${base}) x ${lastN} order by entity_id, attr, dataset_id, ${c}, instance_id`.execute(
      this.#store.db,
    );
    for (const r of res.rows) {
      let list = out.get(r.entity_id);
      if (!list) {
        list = [];
        out.set(r.entity_id, list);
      }
      list.push({
        attr: r.attr,
        datasetId: r.dataset_id,
        instanceId: r.instance_id,
        type: r.attr_type,
        observedAt: new Date(r.observed_at).toISOString(),
        modifiedAt: new Date(r.modified_at).toISOString(),
        instance: (r.instance === null
          ? { type: r.attr_type, value: r.value_num, observedAt: new Date(r.observed_at).toISOString() }
          : typeof r.instance === 'string'
            ? JSON.parse(r.instance)
            : r.instance) as Record<string, unknown>,
      });
    }
    return out;
  }

  /**
   * Aggregates the selected attributes per period of `aggrPeriodSeconds` (0: the whole range), starting at
   * timeAt, or at the minute of the oldest instance when there is none (clause 4.5.19).
   *
   * Ranges and periods in whole minutes over observedAt are answered from the per-minute rollups (1,440
   * rows for a day of 1-second observations); distinctCount, modifiedAt and unaligned ranges read the
   * instances.
   */
  async aggregate(
    tenant: string,
    entityIds: string[],
    attrs: string[] | undefined,
    tq: TemporalQuery,
  ): Promise<Map<string, AggregateValue[]>> {
    const out = new Map<string, AggregateValue[]>();
    const methods = tq.aggrMethods;
    if (entityIds.length === 0 || !methods) return out;
    await this.flushRollups();
    const { col, from, to } = this.#timeFilter(tq);
    const observed = col === 'observed_at';
    const c = sql.ref(col);
    const attrFilter = attrs && attrs.length > 0 ? sql`and attr = any(${sql.val(attrs)}::text[])` : sql``;
    const series = sql`tenant = ${tenant} and entity_id = any(${sql.val(entityIds)}::text[]) ${attrFilter}`;
    let origin = from;
    let end = to;
    if (!origin || !end) {
      const fromMinute = from ? new Date(Math.floor(from.getTime() / MINUTE) * MINUTE) : undefined;
      const b = observed
        ? await sql<{ lo: Date | null; hi: Date | null }>`select min(bucket) as lo, max(bucket) as hi
            from context_live_attr_rollup where ${series}
            ${fromMinute ? sql`and bucket >= ${fromMinute}` : sql``} ${to ? sql`and bucket < ${to}` : sql``}`.execute(
            this.#store.db,
          )
        : await sql<{ lo: Date | null; hi: Date | null }>`select min(${c}) as lo, max(${c}) as hi
            from context_live_attr_instance where ${series}
            ${from ? sql`and ${c} >= ${from}` : sql``} ${to ? sql`and ${c} < ${to}` : sql``}`.execute(
            this.#store.db,
          );
      const lo = b.rows[0]?.lo;
      const hi = b.rows[0]?.hi;
      if (!lo || !hi) return out;
      origin ??= new Date(lo);
      end ??= new Date(new Date(hi).getTime() + (observed ? MINUTE : 1));
    }
    const whole = !tq.aggrPeriodSeconds;
    const period = whole ? Math.max(1, (end.getTime() - origin.getTime()) / 1000) : tq.aggrPeriodSeconds!;
    const aligned = (d: Date) => d.getTime() % MINUTE === 0;
    const useRollups =
      observed && !methods.includes('distinctCount') && aligned(origin) && aligned(end) && period % 60 === 0;
    const rows = useRollups
      ? await this.#aggregateRollups(series, origin, end, period)
      : await this.#aggregateInstances(series, c, origin, end, period);
    const byKey = new Map<string, AggregateValue[]>();
    for (const r of rows) {
      const start = new Date(origin.getTime() + r.bucket * period * 1000);
      const stop = whole ? end : new Date(origin.getTime() + (r.bucket + 1) * period * 1000);
      const key = `${r.entity_id}\u0000${r.attr}\u0000${r.dataset_id}`;
      let list = byKey.get(key);
      if (!list) {
        list = methods.map((m) => ({
          attr: r.attr,
          datasetId: r.dataset_id,
          type: r.attr_type,
          method: m,
          values: [],
        }));
        byKey.set(key, list);
        let perEntity = out.get(r.entity_id);
        if (!perEntity) {
          perEntity = [];
          out.set(r.entity_id, perEntity);
        }
        perEntity.push(...list);
      }
      for (const a of list) {
        const v = r[a.method];
        a.values.push([
          v === null || v === undefined ? null : Number(v),
          start.toISOString(),
          stop.toISOString(),
        ]);
      }
    }
    return out;
  }

  async #aggregateInstances(
    series: RawBuilder<unknown>,
    c: RawBuilder<unknown>,
    origin: Date,
    end: Date,
    period: number,
  ): Promise<PeriodRow[]> {
    const res = await sql<Record<string, string | number | null>>`select entity_id, attr, dataset_id,
        min(attr_type) as attr_type,
        floor(extract(epoch from (${c} - ${origin}::timestamptz)) / ${period})::bigint as bucket,
        count(*) as total_count,
        count(distinct coalesce(value_text, value_num::text)) as distinct_count,
        sum(value_num) as sum, avg(value_num) as avg, min(value_num) as min, max(value_num) as max,
        coalesce(stddev_samp(value_num), case when count(value_num) = 1 then 0 end) as stddev,
        sum(value_num * value_num) as sumsq
      from context_live_attr_instance where ${series} and ${c} >= ${origin} and ${c} < ${end}
      group by entity_id, attr, dataset_id, bucket
      order by entity_id, attr, dataset_id, bucket`.execute(this.#store.db);
    return res.rows.map((r) => ({
      entity_id: String(r.entity_id),
      attr: String(r.attr),
      dataset_id: String(r.dataset_id),
      attr_type: String(r.attr_type),
      bucket: Number(r.bucket),
      totalCount: Number(r.total_count),
      distinctCount: Number(r.distinct_count),
      sum: num(r.sum),
      avg: num(r.avg),
      min: num(r.min),
      max: num(r.max),
      stddev: num(r.stddev),
      sumsq: num(r.sumsq),
    }));
  }

  async #aggregateRollups(
    series: RawBuilder<unknown>,
    origin: Date,
    end: Date,
    period: number,
  ): Promise<PeriodRow[]> {
    const res = await sql<Record<string, string | number | null>>`select entity_id, attr, dataset_id,
        min(attr_type) as attr_type,
        floor(extract(epoch from (bucket - ${origin}::timestamptz)) / ${period})::bigint as bucket_no,
        sum(n) as n, sum(n_num) as n_num, sum(sum) as sum, sum(sumsq) as sumsq, min(min) as min, max(max) as max
      from context_live_attr_rollup where ${series} and bucket >= ${origin} and bucket < ${end}
      group by entity_id, attr, dataset_id, bucket_no
      order by entity_id, attr, dataset_id, bucket_no`.execute(this.#store.db);
    return res.rows.map((r) => {
      const n = Number(r.n_num);
      const sum = num(r.sum);
      const sumsq = num(r.sumsq);
      let stddev: number | null = null;
      if (n === 1) stddev = 0;
      else if (n > 1 && sum !== null && sumsq !== null)
        stddev = Math.sqrt(Math.max(0, (sumsq - (sum * sum) / n) / (n - 1)));
      return {
        entity_id: String(r.entity_id),
        attr: String(r.attr),
        dataset_id: String(r.dataset_id),
        attr_type: String(r.attr_type),
        bucket: Number(r.bucket_no),
        totalCount: Number(r.n),
        distinctCount: null,
        sum: n > 0 ? sum : null,
        avg: n > 0 && sum !== null ? sum / n : null,
        min: num(r.min),
        max: num(r.max),
        stddev,
        sumsq: n > 0 ? sumsq : null,
      };
    });
  }

  /** Deletes one entity's history (DELETE /temporal/entities/{id}). */
  async deleteEntity(tenant: string, entityId: string): Promise<boolean> {
    await this.flushRollups();
    await this.#db
      .deleteFrom('context_live_attr_instance')
      .where('tenant', '=', tenant)
      .where('entity_id', '=', entityId)
      .execute();
    await this.#db
      .deleteFrom('context_live_attr_rollup')
      .where('tenant', '=', tenant)
      .where('entity_id', '=', entityId)
      .execute();
    const r = await this.#db
      .deleteFrom('context_live_temporal_entity')
      .where('tenant', '=', tenant)
      .where('entity_id', '=', entityId)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async setRetention(tenant: string, entityType: string, seconds: number | null): Promise<void> {
    if (seconds === null) {
      await this.#db
        .deleteFrom('context_live_retention')
        .where('tenant', '=', tenant)
        .where('entity_type', '=', entityType)
        .execute();
      return;
    }
    await this.#db
      .insertInto('context_live_retention')
      .values({ tenant, entity_type: entityType, retention_seconds: Math.round(seconds) })
      .onConflict((oc) =>
        oc.columns(['tenant', 'entity_type']).doUpdateSet({ retention_seconds: Math.round(seconds) }),
      )
      .execute();
  }

  async listRetention(tenant: string): Promise<Array<{ entityType: string; seconds: number }>> {
    const rows = await this.#db
      .selectFrom('context_live_retention')
      .select(['entity_type', 'retention_seconds'])
      .where('tenant', '=', tenant)
      .orderBy('entity_type')
      .execute();
    return rows.map((r) => ({ entityType: r.entity_type, seconds: r.retention_seconds }));
  }

  /**
   * Deletes instances older than their entity type's retention; entities of no configured type keep
   * `defaultSeconds` (undefined: forever). An entity of several configured types keeps the longest.
   */
  async prune(now: Date, defaultSeconds?: number): Promise<number> {
    await this.flushRollups();
    // Rollup minutes go when the whole minute is past the cutoff (`bucket + 1 min <= cutoff`).
    const typeCutoff = sql`${now}::timestamptz - make_interval(secs => (
          select max(r.retention_seconds) from context_live_retention r
          where r.tenant = e.tenant and r.entity_type = any(e.entity_types)))`;
    const byType = await sql`delete from context_live_attr_instance i
      using context_live_temporal_entity e
      where e.tenant = i.tenant and e.entity_id = i.entity_id
        and i.observed_at < ${typeCutoff}`.execute(this.#store.db);
    await sql`delete from context_live_attr_rollup i
      using context_live_temporal_entity e
      where e.tenant = i.tenant and e.entity_id = i.entity_id
        and i.bucket + interval '1 minute' <= ${typeCutoff}`.execute(this.#store.db);
    let n = Number(byType.numAffectedRows ?? 0n);
    if (defaultSeconds !== undefined) {
      const cutoff = new Date(now.getTime() - defaultSeconds * 1000);
      const untyped = sql`not exists (
          select 1 from context_live_temporal_entity e join context_live_retention r
            on r.tenant = e.tenant and r.entity_type = any(e.entity_types)
          where e.tenant = i.tenant and e.entity_id = i.entity_id)`;
      const rest = await sql`delete from context_live_attr_instance i
        where i.observed_at < ${cutoff} and ${untyped}`.execute(this.#store.db);
      await sql`delete from context_live_attr_rollup i
        where i.bucket + interval '1 minute' <= ${cutoff} and ${untyped}`.execute(this.#store.db);
      n += Number(rest.numAffectedRows ?? 0n);
    }
    return n;
  }
}
