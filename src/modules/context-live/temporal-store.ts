/**
 * The history of entities' attributes (the NGSI-LD temporal API's data), recorded from entity change
 * events, queried by time and aggregated in SQL, pruned by the retention each owner organisation sets per
 * entity type.
 *
 * History follows its source (decision record 0004):
 * - It belongs to one **incarnation** of an entity. Deleting the entity, or creating the id again (a newer
 *   incarnation supersedes an older one whose deletion has not arrived yet), closes the incarnation and
 *   deletes its history in the same transaction; a closed incarnation stays as a tombstone so that a late
 *   event of it (at-least-once delivery) never brings it back. Answers only ever show an id's newest
 *   incarnation.
 * - Every instance keeps the marking the entity had when it was recorded (its **segment**: incarnation and
 *   marking). A reader sees an instance when it may see both that marking and the entity's marking now, so
 *   re-marking an entity tighter hides its whole history at once, while widening it does not widen what was
 *   recorded under the tighter marking.
 * The visibility filters are the sharing gate's (`visible`, over a read-keys column).
 */
import { createHash } from 'node:crypto';
import { type Kysely, type RawBuilder, sql } from 'kysely';
import { newId } from '../../kernel/ids.ts';
import type { AnyDb, Store } from '../../ports/store.ts';
import { ENTITY_KIND, likePrefixPattern, QueryBudget, type UserPattern } from '../context/index.ts';
import type { CurrentObject, Marking, SharedObjectTables } from '../sharing/index.ts';
import type { CurrentEntity } from './delivery-engine.ts';
import {
  attributeNames,
  type ChangeKind,
  createdAtOf,
  incarnationOf,
  type LiveEntityChange,
} from './entity-change-event.ts';
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

/** Temporal entities are marked objects of this kind at the sharing gate (scope: the tenant). */
export const TEMPORAL_ENTITY_KIND = 'temporal_entity';

/** Retention rules are their organisation's objects at the sharing gate (only its admins set them). */
export const RETENTION_KIND = 'history_retention';

/** A rule's id at the gate: its organisation and entity type (scope: the tenant). */
export function retentionRuleId(ownerOrg: string, entityType: string): string {
  return `${ownerOrg} ${entityType}`;
}

/** The gate's visibility filter for one reader, over a read-keys column (`gate.visibleWhere`). */
export type Visible = (column: string) => RawBuilder<boolean>;

export interface TemporalSelection {
  tenant: string;
  visible: Visible;
  ids?: string[];
  /** Expanded types; an entity matches when one of its types is listed. */
  types?: string[];
  /** The idPattern, compiled for RE2: it runs in memory over the visible ids, never in SQL. */
  idPattern?: UserPattern;
  /** A page of ids (their incarnations of both kinds together); undefined: every id, up to the scan bound. */
  page?: { limit: number; offset: number };
}

/** Where history comes from: an entity's changes, or the temporal API (a temporal entity). */
export type HistoryKind = 'entity' | 'temporal';

/** An incarnation with history as a reader sees it: its types and marking now. */
export interface HistoryEntity {
  id: string;
  kind: HistoryKind;
  types: string[];
  /** The scopes of the entity or temporal entity now (what scopeQ tests). */
  scopes: string[];
  incarnation: string;
  ownerOrg: string;
  marking: Marking;
}

/** An entity's scopes as stored (null: none). */
function scopesOf(scope: unknown): string[] | null {
  if (!Array.isArray(scope) || scope.length === 0) return null;
  return scope.filter((s): s is string => typeof s === 'string');
}

/** Keeps the incarnations of the ids from `offset` on, `limit` ids (rows come in id order). */
export function pageOfIds<T extends { id: string }>(rows: T[], page: { limit: number; offset: number }): T[] {
  const out: T[] = [];
  let n = -1;
  let last: string | undefined;
  for (const r of rows) {
    if (r.id !== last) {
      n++;
      last = r.id;
    }
    if (n >= page.offset + page.limit) break;
    if (n >= page.offset) out.push(r);
  }
  return out;
}

/** A marking part of an entity's history was recorded under. */
export interface HistorySegment {
  entityId: string;
  seg: string;
  ownerOrg: string;
  marking: Marking;
}

/** One recorded attribute instance, as a replay gives it: what, of which entity, when, under which marking. */
export interface ReplayObservation {
  entityId: string;
  /** Expanded type IRIs of the entity. */
  entityTypes: string[];
  /** Expanded attribute name. */
  attr: string;
  datasetId: string;
  observedAt: string;
  /** The attribute instance (normalized, expanded), as recorded. */
  instance: Record<string, unknown>;
  /** The owner and marking the instance was recorded under. */
  ownerOrg: string;
  marking: Marking;
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

export function mainValue(inst: Record<string, unknown>): unknown {
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
export function isPlainNumber(inst: Record<string, unknown>): boolean {
  if (inst.type !== 'Property' || typeof inst.value !== 'number') return false;
  for (const k of Object.keys(inst)) if (!PLAIN_MEMBERS.has(k)) return false;
  return true;
}

/** The instance rows one change brings (created: all attributes; updated: those it changed). */
export function instanceRows(r: RecordedChange, seg: string): InstanceInsert[] {
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
        seg,
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
  seg: string;
  bucket: Date;
}): string {
  return `${r.tenant}\u0000${r.entity_id}\u0000${r.attr}\u0000${r.dataset_id}\u0000${r.seg}\u0000${r.bucket.getTime()}`;
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
        seg: r.seg,
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

/** A marking with its owner, as rows keep it (jsonb). */
function markingOf(v: unknown): Marking {
  return (typeof v === 'string' ? JSON.parse(v) : v) as Marking;
}

/**
 * What names the segment of an incarnation's history recorded under one marking: the label, PAP and owner
 * (what answers are labelled with) and the read keys (who reads it, audience included), in the event's order,
 * which the core computes the same way every time.
 */
function segmentKey(tenant: string, entityId: string, incarnation: string, c: LiveEntityChange): string {
  const m = c.marking;
  return `${tenant}\u0000${entityId}\u0000${incarnation}\u0000${m.tlp}\u0000${m.pap ?? ''}\u0000${c.ownerOrg}\u0000${c.readKeys.join(',')}`;
}

/** Segment ids remembered (hashing is most of the cost of recording a change, and most repeat a segment). */
const SEGMENT_IDS = 100_000;

/** The oldest time: an incarnation known only from its deletion never looks newer than another. */
const LONG_AGO = new Date(0);
/** Closed incarnations whose late stragglers pruning still looks for. */
const STRAGGLER_DAYS = 7;

interface IncarnationWrite {
  tenant: string;
  entityId: string;
  incarnation: string;
  types: string[];
  scopes: string[] | null;
  ownerOrg: string;
  marking: Marking;
  readKeys: string[];
  createdAt: Date;
  modifiedAt: Date;
  deletedAt: Date | null;
}

type SegmentInsert = ContextLiveTables['context_live_temporal_segment'];

interface Closed {
  tenant: string;
  entity_id: string;
  incarnation: string;
}

const triple = (t: string, e: string, i: string) => `${t}\u0000${e}\u0000${i}`;

/**
 * SQL: incarnation row `n` of an id is newer than row `o` — created later, or (created in the same
 * millisecond) after it in the order of incarnations, so that exactly one is the newest.
 */
function newerThan(n: string, o: string) {
  const c = (alias: string, col: string) => sql.ref(`${alias}.${col}`);
  return sql`(${c(n, 'created_at')} > ${c(o, 'created_at')} or (${c(n, 'created_at')} = ${c(o, 'created_at')}
    and ${c(n, 'incarnation')} > ${c(o, 'incarnation')}))`;
}

/**
 * SQL: the incarnation is still its object's at the sharing gate. The registry is the truth for the
 * incarnations it issued (UUIDs): an entity deleted, or deleted and created again, stops showing its history
 * the moment the deletion commits, before its event is recorded here. Incarnations the registry never issued
 * (history recorded before incarnations, derived from createdAt) are answered as recorded.
 */
function registered(alias: string) {
  const c = (col: string) => sql.ref(`${alias}.${col}`);
  return sql`(${c('incarnation')} !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    or exists (select 1 from shared_object r where r.kind = case when ${c('kind')} = 'temporal'
      then ${TEMPORAL_ENTITY_KIND} else ${ENTITY_KIND} end
      and r.scope = ${c('tenant')} and r.id = ${c('entity_id')} and r.incarnation = ${c('incarnation')}))`;
}

export class TemporalStore {
  readonly #store: Store;
  /** Per-minute rollup deltas not yet written (see flushRollups). */
  #pending = new Map<string, RollupInsert>();
  /** Segments known to be stored (they are never deleted while their incarnation lives). */
  readonly #knownSegments = new Set<string>();
  /** Segment ids by segment key: a stable hash, the same on every instance. */
  readonly #segmentIds = new Map<string, string>();

  constructor(store: Store) {
    this.#store = store;
  }

  get #db(): Kysely<ContextLiveTables> {
    return this.#store.db.withTables<ContextLiveTables>() as unknown as Kysely<ContextLiveTables>;
  }

  /**
   * Records a batch of changes in one transaction: each incarnation's current types and marking, the
   * incarnations the batch closes (deleted, or superseded by a newer one) with their history, the segments
   * and the attribute instances. The per-minute rollups are gathered in memory and written by
   * `flushRollups` (every few seconds, and before every aggregation), so that each minute is written once
   * per flush instead of once per batch.
   */
  async record(changes: RecordedChange[]): Promise<number> {
    if (changes.length === 0) return 0;
    const incarnations = new Map<string, IncarnationWrite>();
    const closes: Array<{ tenant: string; entityId: string; at: Date }> = [];
    const segments = new Map<string, SegmentInsert>();
    const tagged: Array<{ key: string; rows: InstanceInsert[] }> = [];
    let latest = LONG_AGO;
    for (const c of changes) {
      const { change } = c;
      const at = new Date(c.at);
      if (at > latest) latest = at;
      const incarnation = incarnationOf(change);
      if (incarnation === undefined) {
        closes.push({ tenant: change.tenant, entityId: change.entityId, at });
        continue;
      }
      const key = triple(change.tenant, change.entityId, incarnation);
      const created = createdAtOf(change.entity);
      const w = incarnations.get(key) ?? {
        tenant: change.tenant,
        entityId: change.entityId,
        incarnation,
        types: change.entityType,
        scopes: null,
        ownerOrg: change.ownerOrg,
        marking: change.marking,
        readKeys: change.readKeys,
        createdAt: created !== undefined ? new Date(created) : c.kind === 'deleted' ? LONG_AGO : at,
        modifiedAt: at,
        deletedAt: null,
      };
      if (created !== undefined && w.createdAt === LONG_AGO) w.createdAt = new Date(created);
      w.types = change.entityType;
      // The entity after the change (none on a deletion, which closes the incarnation).
      if (change.entity) w.scopes = scopesOf(change.entity.scope);
      w.ownerOrg = change.ownerOrg;
      w.marking = change.marking;
      w.readKeys = change.readKeys;
      if (at >= w.modifiedAt) w.modifiedAt = at;
      if (c.kind === 'deleted') w.deletedAt = at;
      incarnations.set(key, w);
      if (c.kind === 'deleted' || !change.entity) continue;
      const seg = this.#segmentOf(change.tenant, change.entityId, incarnation, change);
      const segKey = `${change.tenant}\u0000${change.entityId}\u0000${seg}`;
      if (!segments.has(segKey)) {
        segments.set(segKey, {
          tenant: change.tenant,
          entity_id: change.entityId,
          seg,
          incarnation,
          owner_org: change.ownerOrg,
          marking: JSON.stringify(change.marking),
          read_keys: change.readKeys,
        });
      }
      tagged.push({ key, rows: instanceRows(c, seg) });
    }
    let written: InstanceInsert[] = [];
    let purged = new Set<string>();
    await this.#store.transaction(async (trx) => {
      const closed: Closed[] = [];
      const fresh: Closed[] = [];
      const writes = [...incarnations.values()];
      for (let i = 0; i < writes.length; i += 1000) {
        const rows = await this.#upsertIncarnations(trx, writes.slice(i, i + 1000));
        for (const r of rows) {
          if (r.deleted_at !== null) closed.push(r);
          else if (r.inserted) fresh.push(r);
        }
      }
      if (closes.length > 0) {
        // A deletion without an incarnation closes whatever incarnation of the id was created before it.
        const res = await sql<Closed>`update context_live_temporal_entity o set deleted_at = x.at
          from unnest(${closes.map((c) => c.tenant)}::text[], ${closes.map((c) => c.entityId)}::text[],
            ${closes.map((c) => c.at.toISOString())}::timestamptz[]) as x(tenant, entity_id, at)
          where o.tenant = x.tenant and o.entity_id = x.entity_id and o.deleted_at is null and o.created_at <= x.at
            and o.kind = 'entity'
          returning o.tenant, o.entity_id, o.incarnation`.execute(trx);
        closed.push(...res.rows);
      }
      if (fresh.length > 0) {
        // A new incarnation supersedes the older ones of its id (their deletion may not have arrived yet),
        // and is itself superseded when a newer one is already known (this event is late).
        const res = await sql<Closed>`update context_live_temporal_entity o set deleted_at = ${latest}
          from unnest(${fresh.map((c) => c.tenant)}::text[], ${fresh.map((c) => c.entity_id)}::text[])
            as x(tenant, entity_id)
          where o.tenant = x.tenant and o.entity_id = x.entity_id and o.deleted_at is null and o.kind = 'entity'
            and exists (select 1 from context_live_temporal_entity n where n.tenant = o.tenant
              and n.entity_id = o.entity_id and n.kind = 'entity' and ${newerThan('n', 'o')})
          returning o.tenant, o.entity_id, o.incarnation`.execute(trx);
        closed.push(...res.rows);
      }
      const dead = await this.#closedAmong(trx, [...incarnations.values()]);
      for (const c of closed) dead.add(triple(c.tenant, c.entity_id, c.incarnation));
      written = tagged.filter((t) => !dead.has(t.key)).flatMap((t) => t.rows);
      const liveSegments = [...segments.entries()].filter(
        ([k, seg]) =>
          !this.#knownSegments.has(k) && !dead.has(triple(seg.tenant, seg.entity_id, seg.incarnation)),
      );
      for (let i = 0; i < liveSegments.length; i += 1000) {
        const part = liveSegments.slice(i, i + 1000).map(([, seg]) => seg);
        await sql`insert into context_live_temporal_segment (tenant, entity_id, seg, incarnation, owner_org, marking, read_keys)
          values ${sql.join(
            part.map(
              (g) =>
                sql`(${g.tenant}, ${g.entity_id}, ${g.seg}, ${g.incarnation}, ${g.owner_org}, ${g.marking}::jsonb, ${sql.val(g.read_keys)}::text[])`,
            ),
          )}
          on conflict do nothing`.execute(trx);
      }
      await this.#insertInstances(trx, written);
      purged = await this.#purge(trx, closed);
      // Known only once committed; a rollback forgets nothing that was not stored.
      for (const [k] of liveSegments) this.#knownSegments.add(k);
    });
    if (this.#knownSegments.size > 200_000) this.#knownSegments.clear();
    mergeRollups(this.#pending, rollupRows(written));
    if (purged.size > 0) {
      for (const [k, r] of this.#pending) if (purged.has(r.seg)) this.#pending.delete(k);
    }
    return written.length;
  }

  #segmentOf(tenant: string, entityId: string, incarnation: string, c: LiveEntityChange): string {
    const key = segmentKey(tenant, entityId, incarnation, c);
    let seg = this.#segmentIds.get(key);
    if (seg === undefined) {
      seg = createHash('sha256').update(key).digest('hex').slice(0, 20);
      if (this.#segmentIds.size >= SEGMENT_IDS) this.#segmentIds.clear();
      this.#segmentIds.set(key, seg);
    }
    return seg;
  }

  /**
   * Writes incarnations: new ones are inserted, live ones take the batch's types and marking when they
   * changed, deletions close them. A closed incarnation never changes again. Returns the rows it changed.
   */
  async #upsertIncarnations(
    trx: AnyDb,
    writes: IncarnationWrite[],
  ): Promise<Array<Closed & { deleted_at: Date | null; inserted: boolean }>> {
    if (writes.length === 0) return [];
    const values = sql.join(
      writes.map(
        (w) =>
          sql`(${w.tenant}, ${w.entityId}, ${w.incarnation}, ${sql.val(w.types)}::text[], ${sql.val(w.scopes)}::text[], ${w.ownerOrg},
            ${JSON.stringify(w.marking)}::jsonb, ${sql.val(w.readKeys)}::text[], ${w.createdAt}::timestamptz,
            ${w.modifiedAt}::timestamptz, ${w.deletedAt}::timestamptz)`,
      ),
    );
    const newer = sql`excluded.modified_at >= t.modified_at`;
    const res = await sql<Closed & { deleted_at: Date | null; inserted: boolean }>`insert into
        context_live_temporal_entity as t (tenant, entity_id, incarnation, entity_types, scopes, owner_org,
          marking, read_keys, created_at, modified_at, deleted_at)
      values ${values}
      on conflict (tenant, entity_id, incarnation) do update set
        entity_types = case when ${newer} then excluded.entity_types else t.entity_types end,
        scopes = case when ${newer} and excluded.deleted_at is null then excluded.scopes else t.scopes end,
        owner_org = case when ${newer} then excluded.owner_org else t.owner_org end,
        marking = case when ${newer} then excluded.marking else t.marking end,
        read_keys = case when ${newer} then excluded.read_keys else t.read_keys end,
        -- A deletion does not know when its incarnation was created: it keeps what the row says.
        created_at = case when excluded.deleted_at is null then least(t.created_at, excluded.created_at)
          else t.created_at end,
        modified_at = greatest(t.modified_at, excluded.modified_at),
        deleted_at = excluded.deleted_at
      -- Rewrite only what changed: most changes leave types, marking and owner as they were.
      where t.deleted_at is null and (excluded.deleted_at is not null or (${newer} and
        (t.entity_types, t.scopes, t.read_keys, t.owner_org, t.marking) is distinct from
        (excluded.entity_types, excluded.scopes, excluded.read_keys, excluded.owner_org, excluded.marking)))
      returning t.tenant, t.entity_id, t.incarnation, t.deleted_at, (t.xmax = 0) as inserted`.execute(trx);
    return res.rows;
  }

  /** Which of these incarnations are closed (their history is gone; a late event of them records nothing). */
  async #closedAmong(trx: AnyDb, writes: IncarnationWrite[]): Promise<Set<string>> {
    if (writes.length === 0) return new Set();
    const res = await sql<Closed>`select e.tenant, e.entity_id, e.incarnation
      from context_live_temporal_entity e
      join unnest(${writes.map((w) => w.tenant)}::text[], ${writes.map((w) => w.entityId)}::text[],
        ${writes.map((w) => w.incarnation)}::text[]) as x(tenant, entity_id, incarnation)
        on e.tenant = x.tenant and e.entity_id = x.entity_id and e.incarnation = x.incarnation
      where e.deleted_at is not null`.execute(trx);
    return new Set(res.rows.map((r) => triple(r.tenant, r.entity_id, r.incarnation)));
  }

  /** Deletes the history of closed incarnations; returns their segments (for the unwritten rollups). */
  async #purge(trx: AnyDb, closed: Closed[]): Promise<Set<string>> {
    if (closed.length === 0) return new Set();
    const segs = await sql<{
      tenant: string;
      entity_id: string;
      seg: string;
    }>`select s.tenant, s.entity_id, s.seg
      from context_live_temporal_segment s
      join unnest(${closed.map((c) => c.tenant)}::text[], ${closed.map((c) => c.entity_id)}::text[],
        ${closed.map((c) => c.incarnation)}::text[]) as x(tenant, entity_id, incarnation)
        on s.tenant = x.tenant and s.entity_id = x.entity_id and s.incarnation = x.incarnation`.execute(trx);
    if (segs.rows.length === 0) return new Set();
    const t = segs.rows.map((r) => r.tenant);
    const e = segs.rows.map((r) => r.entity_id);
    const g = segs.rows.map((r) => r.seg);
    for (const table of ['context_live_attr_instance', 'context_live_attr_rollup']) {
      await sql`delete from ${sql.table(table)} i
        using unnest(${t}::text[], ${e}::text[], ${g}::text[]) as x(tenant, entity_id, seg)
        where i.tenant = x.tenant and i.entity_id = x.entity_id and i.seg = x.seg`.execute(trx);
    }
    return new Set(g);
  }

  async #insertInstances(trx: AnyDb, rows: InstanceInsert[]) {
    // One statement with array parameters (unnest): the statement stays small however many rows.
    for (let i = 0; i < rows.length; i += 10_000) {
      const part = rows.slice(i, i + 10_000);
      const col = <T>(f: (r: InstanceInsert) => T) => part.map(f);
      await sql`insert into context_live_attr_instance (tenant, entity_id, attr, dataset_id, seg, instance_id,
          attr_type, observed_at, modified_at, value_num, value_text, instance)
        select * from unnest(${col((r) => r.tenant)}::text[], ${col((r) => r.entity_id)}::text[],
          ${col((r) => r.attr)}::text[], ${col((r) => r.dataset_id)}::text[], ${col((r) => r.seg)}::text[],
          ${col((r) => r.instance_id)}::text[], ${col((r) => r.attr_type)}::text[],
          ${col((r) => r.observed_at.toISOString())}::timestamptz[],
          ${col((r) => r.modified_at.toISOString())}::timestamptz[], ${col((r) => r.value_num)}::float8[],
          ${col((r) => r.value_text)}::text[], ${col((r) => r.instance as string | null)}::jsonb[])`.execute(
        trx,
      );
    }
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
        await sql`insert into context_live_attr_rollup as r (tenant, entity_id, attr, dataset_id, seg, bucket,
            attr_type, n, n_num, sum, sumsq, min, max)
          select * from unnest(${col((r) => r.tenant)}::text[], ${col((r) => r.entity_id)}::text[],
            ${col((r) => r.attr)}::text[], ${col((r) => r.dataset_id)}::text[], ${col((r) => r.seg)}::text[],
            ${col((r) => r.bucket.toISOString())}::timestamptz[], ${col((r) => r.attr_type)}::text[],
            ${col((r) => r.n)}::bigint[], ${col((r) => r.n_num)}::bigint[], ${col((r) => r.sum)}::float8[],
            ${col((r) => r.sumsq)}::float8[], ${col((r) => r.min)}::float8[], ${col((r) => r.max)}::float8[])
          on conflict (tenant, entity_id, attr, dataset_id, seg, bucket) do update set
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
      await sql`insert into context_live_attr_rollup (tenant, entity_id, attr, dataset_id, seg, bucket, attr_type,
          n, n_num, sum, sumsq, min, max)
        select tenant, entity_id, attr, dataset_id, seg, date_trunc('minute', observed_at) as bucket,
          min(attr_type), count(*), count(value_num), sum(value_num), sum(value_num * value_num),
          min(value_num), max(value_num)
        from context_live_attr_instance where observed_at >= ${from}
        group by tenant, entity_id, attr, dataset_id, seg, bucket`.execute(trx);
    });
  }

  /**
   * Entities as they are now, by id: the newest incarnation known (live or closed), with its marking. For
   * delivery-time checks of notifications.
   */
  async currentEntities(tenant: string, ids: string[]): Promise<Map<string, CurrentEntity>> {
    if (ids.length === 0) return new Map();
    const res = await sql<{
      entity_id: string;
      incarnation: string;
      owner_org: string;
      marking: unknown;
      read_keys: string[];
      deleted_at: Date | null;
    }>`select distinct on (entity_id) entity_id, incarnation, owner_org, marking, read_keys, deleted_at
      from context_live_temporal_entity
      where tenant = ${tenant} and entity_id = any(${sql.val(ids)}::text[]) and kind = 'entity'
      order by entity_id, created_at desc, incarnation desc`.execute(this.#store.db);
    return new Map(
      res.rows.map((r) => [
        r.entity_id,
        {
          incarnation: r.incarnation,
          ownerOrg: r.owner_org,
          marking: markingOf(r.marking),
          readKeys: r.read_keys,
          deleted: r.deleted_at !== null,
        },
      ]),
    );
  }

  /**
   * Incarnations with history that the reader may see now — of each id, the newest of each kind (the
   * entity's, the temporal entity's) — in id order. An idPattern runs over the visible ids only (its literal
   * prefix, if any, narrows them in SQL after visibility), at most `maxScan` of them; so does a selection
   * without a page (the caller filters further, then pages).
   */
  async selectEntities(sel: TemporalSelection, maxScan = 200_000): Promise<HistoryEntity[]> {
    const visible = sel.visible('e.read_keys');
    const ids =
      sel.ids && sel.ids.length > 0 ? sql`and e.entity_id = any(${sql.val(sel.ids)}::text[])` : sql``;
    const types =
      sel.types && sel.types.length > 0 ? sql`and e.entity_types && ${sql.val(sel.types)}::text[]` : sql``;
    const pattern = sel.idPattern;
    const prefix = pattern?.literalPrefix
      ? sql`and case when ${visible} then e.entity_id like ${likePrefixPattern(pattern.literalPrefix)} else false end`
      : sql``;
    const live = sql`select e.entity_id, e.kind, e.entity_types, e.scopes, e.incarnation, e.owner_org, e.marking
      from context_live_temporal_entity e
      where e.tenant = ${sel.tenant} and e.deleted_at is null and ${visible} ${ids} ${types} ${prefix}
        and not exists (select 1 from context_live_temporal_entity n where n.tenant = e.tenant
          and n.entity_id = e.entity_id and n.kind = e.kind and ${newerThan('n', 'e')})
        and ${registered('e')}`;
    type Row = {
      entity_id: string;
      kind: string;
      entity_types: string[];
      scopes: string[] | null;
      incarnation: string;
      owner_org: string;
      marking: unknown;
    };
    const scan = pattern !== undefined || sel.page === undefined;
    const res = scan
      ? await sql<Row>`${live} order by e.entity_id, e.kind limit ${maxScan + 1}`.execute(this.#store.db)
      : await sql<Row>`with live as (${live}),
          page as (select distinct entity_id from live order by entity_id
            limit ${sel.page!.limit} offset ${sel.page!.offset})
        select live.* from live join page using (entity_id) order by entity_id, kind`.execute(this.#store.db);
    let rows = res.rows;
    if (scan) {
      const budget = new QueryBudget({ maxScan, maxEvaluationMs: 10_000 });
      if (rows.length > maxScan) budget.chargeRows(rows.length);
      if (pattern) rows = await budget.filter(rows, (r) => pattern.test(r.entity_id));
    }
    const out = rows.map((r) => ({
      id: r.entity_id,
      kind: (r.kind === 'temporal' ? 'temporal' : 'entity') as HistoryKind,
      types: r.entity_types,
      scopes: r.scopes ?? [],
      incarnation: r.incarnation,
      ownerOrg: r.owner_org,
      marking: markingOf(r.marking),
    }));
    return scan && sel.page ? pageOfIds(out, sel.page) : out;
  }

  /**
   * The history a reader may see, in observation order (time, then instance id), one time window after the
   * other: the same visibility as a temporal query (the entity's marking now and each segment's marking),
   * the newest incarnation of each id. `attrs` (expanded names) narrows it to the attributes a rule reads,
   * so each window is read on the series index; `limit` bounds the rows read in all (one more tells the
   * caller it was cut) and `pageRows` those held in memory at a time.
   */
  async *replay(q: {
    tenant: string;
    visible: Visible;
    from: Date;
    to: Date;
    types?: string[] | undefined;
    attrs?: string[] | undefined;
    windowMs?: number | undefined;
    /** Most rows read in one statement (default 100,000): what a replay holds in memory at a time. */
    pageRows?: number | undefined;
    limit: number;
  }): AsyncGenerator<ReplayObservation[]> {
    const entities = await this.selectEntities({
      tenant: q.tenant,
      visible: q.visible,
      ...(q.types && q.types.length > 0 ? { types: q.types } : {}),
    });
    if (entities.length === 0) return;
    const segments = await this.segments(q.tenant, entities, q.visible);
    if (segments.length === 0) return;
    const types = new Map(entities.map((e) => [e.id, e.types]));
    const bySeg = new Map(segments.map((g) => [g.seg, g]));
    const ids = [...new Set(segments.map((g) => g.entityId))];
    const segs = segments.map((g) => g.seg);
    const attrFilter =
      q.attrs && q.attrs.length > 0 ? sql`and attr = any(${sql.val(q.attrs)}::text[])` : sql``;
    const step = Math.max(q.windowMs ?? 3_600_000, 1000);
    const pageRows = Math.max(q.pageRows ?? 100_000, 1);
    let left = q.limit + 1;
    for (let start = q.from.getTime(); start < q.to.getTime() && left > 0; start += step) {
      const end = new Date(Math.min(start + step, q.to.getTime()));
      // Within a window, pages of at most pageRows rows, each after the last one's (time, instance id).
      let after: { at: Date; id: string } | undefined;
      while (left > 0) {
        const take = Math.min(left, pageRows);
        const from = after
          ? sql`and (observed_at, instance_id) > (${after.at}, ${after.id})`
          : sql`and observed_at >= ${new Date(start)}`;
        const res = await sql<{
          entity_id: string;
          attr: string;
          dataset_id: string;
          seg: string;
          instance_id: string;
          attr_type: string;
          observed_at: Date;
          instance: unknown;
          value_num: number | null;
        }>`select entity_id, attr, dataset_id, seg, instance_id, attr_type, observed_at, instance, value_num
          from context_live_attr_instance
          where tenant = ${q.tenant} and entity_id = any(${sql.val(ids)}::text[])
            and seg = any(${sql.val(segs)}::text[]) ${attrFilter}
            ${from} and observed_at < ${end}
          order by observed_at, instance_id
          limit ${take}`.execute(this.#store.db);
        left -= res.rows.length;
        const last = res.rows.at(-1);
        if (!last) break;
        after = { at: new Date(last.observed_at), id: last.instance_id };
        yield res.rows.map((r) => {
          const g = bySeg.get(r.seg) as HistorySegment;
          const observedAt = new Date(r.observed_at).toISOString();
          const instance = (
            r.instance === null
              ? { type: r.attr_type, value: r.value_num, observedAt }
              : typeof r.instance === 'string'
                ? JSON.parse(r.instance)
                : r.instance
          ) as Record<string, unknown>;
          return {
            entityId: r.entity_id,
            entityTypes: types.get(r.entity_id) ?? [],
            attr: r.attr,
            datasetId: r.dataset_id,
            observedAt,
            instance,
            ownerOrg: g.ownerOrg,
            marking: g.marking,
          };
        });
        if (res.rows.length < take) break;
      }
    }
  }

  /** The segments of these incarnations' history that the reader may see. */
  async segments(tenant: string, entities: HistoryEntity[], visible: Visible): Promise<HistorySegment[]> {
    if (entities.length === 0) return [];
    const res = await sql<{ entity_id: string; seg: string; owner_org: string; marking: unknown }>`select
        s.entity_id, s.seg, s.owner_org, s.marking
      from context_live_temporal_segment s
      join unnest(${entities.map((e) => e.id)}::text[], ${entities.map((e) => e.incarnation)}::text[])
        as x(entity_id, incarnation) on s.entity_id = x.entity_id and s.incarnation = x.incarnation
      where s.tenant = ${tenant} and ${visible('s.read_keys')}`.execute(this.#store.db);
    return res.rows.map((r) => ({
      entityId: r.entity_id,
      seg: r.seg,
      ownerOrg: r.owner_org,
      marking: markingOf(r.marking),
    }));
  }

  #timeFilter(tq: TemporalQuery) {
    const col = tq.timeproperty === 'observedAt' ? 'observed_at' : 'modified_at';
    return {
      col,
      from: tq.timerel === 'after' || tq.timerel === 'between' ? tq.timeAt : undefined,
      to: tq.timerel === 'before' ? tq.timeAt : tq.endTimeAt,
    };
  }

  /**
   * The instances of the selected entities' attributes, oldest first. `perSeries` keeps at most `n` of each
   * attribute instance series (entity, attribute, datasetId): the oldest, or the newest (default: lastN's
   * newest N, else all).
   */
  async instances(
    tenant: string,
    entityIds: string[],
    segs: string[],
    attrs: string[] | undefined,
    tq: TemporalQuery,
    perSeries: { n: number; newest: boolean } | undefined = tq.lastN
      ? { n: tq.lastN, newest: true }
      : undefined,
  ): Promise<Map<string, AttrInstance[]>> {
    const out = new Map<string, AttrInstance[]>();
    if (entityIds.length === 0 || segs.length === 0) return out;
    const { col, from, to } = this.#timeFilter(tq);
    const c = sql.ref(col);
    const attrFilter = attrs && attrs.length > 0 ? sql`and attr = any(${sql.val(attrs)}::text[])` : sql``;
    const fromFilter = from ? sql`and ${c} >= ${from}` : sql``;
    const toFilter = to ? sql`and ${c} < ${to}` : sql``;
    const base = sql`select entity_id, attr, dataset_id, instance_id, attr_type, observed_at, modified_at, instance, value_num,
        row_number() over (partition by entity_id, attr, dataset_id
          order by ${perSeries?.newest === false ? sql`${c} asc, instance_id asc` : sql`${c} desc, instance_id desc`}) as rn
      from context_live_attr_instance
      where tenant = ${tenant} and entity_id = any(${sql.val(entityIds)}::text[])
        and seg = any(${sql.val(segs)}::text[]) ${attrFilter} ${fromFilter} ${toFilter}`;
    const lastN = perSeries ? sql`where rn <= ${perSeries.n}` : sql``;
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
    segs: string[],
    attrs: string[] | undefined,
    tq: TemporalQuery,
  ): Promise<Map<string, AggregateValue[]>> {
    const out = new Map<string, AggregateValue[]>();
    const methods = tq.aggrMethods;
    if (entityIds.length === 0 || segs.length === 0 || !methods) return out;
    await this.flushRollups();
    const { col, from, to } = this.#timeFilter(tq);
    const observed = col === 'observed_at';
    const c = sql.ref(col);
    const attrFilter = attrs && attrs.length > 0 ? sql`and attr = any(${sql.val(attrs)}::text[])` : sql``;
    const series = sql`tenant = ${tenant} and entity_id = any(${sql.val(entityIds)}::text[])
      and seg = any(${sql.val(segs)}::text[]) ${attrFilter}`;
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
    // Values near the largest double make SQL's float sums fail ("value out of range") where the rollups
    // (summed in memory) give Infinity: past these bounds a value counts as ±Infinity here too.
    const v = sql`case when abs(value_num) > 1e290 then sign(value_num) * 'Infinity'::float8 else value_num end`;
    const vq = sql`case when abs(value_num) > 1e145 then sign(value_num) * 'Infinity'::float8 else value_num end`;
    const res = await sql<Record<string, string | number | null>>`select entity_id, attr, dataset_id,
        min(attr_type) as attr_type,
        floor(extract(epoch from (${c} - ${origin}::timestamptz)) / ${period})::bigint as bucket,
        count(*) as total_count,
        count(distinct coalesce(value_text, value_num::text)) as distinct_count,
        sum(${v}) as sum, avg(${v}) as avg, min(value_num) as min, max(value_num) as max,
        coalesce(stddev_samp(${vq}), case when count(value_num) = 1 then 0 end) as stddev,
        sum(${vq} * ${vq}) as sumsq
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

  /**
   * An organisation's retention rule for a type, with its registry facts (the rule is a marked object of
   * the organisation at the gate), locked in `trx`; undefined when it has none.
   */
  async lockedRetention(
    trx: AnyDb,
    tenant: string,
    ownerOrg: string,
    entityType: string,
  ): Promise<{ seconds: number; object: CurrentObject & { readKeys: string[] } } | undefined> {
    const row = await this.#retention(trx)
      .select(['s.created_by', 's.tlp', 's.pap', 's.audience', 's.read_keys'])
      .where('r.tenant', '=', tenant)
      .where('r.owner_org', '=', ownerOrg)
      .where('r.entity_type', '=', entityType)
      .forUpdate()
      .executeTakeFirst();
    if (!row) return undefined;
    const marking = { tlp: row.tlp, audience: row.audience } as Marking;
    if (row.pap) marking.pap = row.pap as NonNullable<Marking['pap']>;
    return {
      seconds: row.retention_seconds,
      object: {
        id: retentionRuleId(ownerOrg, entityType),
        scope: tenant,
        ownerOrg,
        createdBy: row.created_by,
        marking,
        readKeys: row.read_keys,
      },
    };
  }

  #retention(db: AnyDb) {
    return (
      db.withTables<ContextLiveTables & SharedObjectTables>() as unknown as Kysely<
        ContextLiveTables & SharedObjectTables
      >
    )
      .selectFrom('context_live_retention as r')
      .innerJoin('shared_object as s', (j) =>
        j
          .on('s.kind', '=', RETENTION_KIND)
          .onRef('s.scope', '=', 'r.tenant')
          .on(sql<boolean>`s.id = r.owner_org || ' ' || r.entity_type`),
      )
      .select(['r.tenant', 'r.owner_org', 'r.entity_type', 'r.retention_seconds']);
  }

  /** Sets (seconds) or clears (null) how long an organisation keeps the history of its entities of a type. */
  async setRetention(
    trx: AnyDb,
    tenant: string,
    ownerOrg: string,
    entityType: string,
    seconds: number | null,
  ): Promise<void> {
    const t = trx.withTables<ContextLiveTables>() as unknown as Kysely<ContextLiveTables>;
    if (seconds === null) {
      await t
        .deleteFrom('context_live_retention')
        .where('tenant', '=', tenant)
        .where('owner_org', '=', ownerOrg)
        .where('entity_type', '=', entityType)
        .execute();
      return;
    }
    await t
      .insertInto('context_live_retention')
      .values({
        tenant,
        owner_org: ownerOrg,
        entity_type: entityType,
        retention_seconds: Math.round(seconds),
      })
      .onConflict((oc) =>
        oc
          .columns(['tenant', 'owner_org', 'entity_type'])
          .doUpdateSet({ retention_seconds: Math.round(seconds) }),
      )
      .execute();
  }

  /** The retention rules a reader may see (its organisation's), with their owner. */
  async listRetention(
    tenant: string,
    visible: Visible,
  ): Promise<Array<{ ownerOrg: string; entityType: string; seconds: number }>> {
    const rows = await this.#retention(this.#store.db)
      .where('r.tenant', '=', tenant)
      .where(visible('s.read_keys'))
      .orderBy('r.owner_org')
      .orderBy('r.entity_type')
      .execute();
    return rows.map((r) => ({
      ownerOrg: r.owner_org,
      entityType: r.entity_type,
      seconds: r.retention_seconds,
    }));
  }

  /** Rules without their registry row (set before rules were organisations' objects). */
  async unregisteredRetention(): Promise<Array<{ tenant: string; ownerOrg: string; entityType: string }>> {
    const res = await sql<{ tenant: string; owner_org: string; entity_type: string }>`select r.tenant,
        r.owner_org, r.entity_type
      from context_live_retention r
      left join shared_object s on s.kind = ${RETENTION_KIND} and s.scope = r.tenant
        and s.id = r.owner_org || ' ' || r.entity_type
      where s.id is null`.execute(this.#store.db);
    return res.rows.map((r) => ({ tenant: r.tenant, ownerOrg: r.owner_org, entityType: r.entity_type }));
  }

  /**
   * Deletes instances older than the retention their owner organisation set for their entity's type;
   * history of entities no rule names keeps `defaultSeconds` (undefined: forever). An entity of several
   * configured types keeps the longest. Also deletes what late events of closed incarnations left behind.
   */
  async prune(now: Date, defaultSeconds?: number): Promise<number> {
    await this.flushRollups();
    const db = this.#store.db;
    // Each instance through its segment to its incarnation, whose owner and types pick the rule.
    const via = sql`context_live_temporal_segment s, context_live_temporal_entity e`;
    const joined = (
      i: string,
    ) => sql`s.tenant = ${sql.ref(`${i}.tenant`)} and s.entity_id = ${sql.ref(`${i}.entity_id`)}
      and s.seg = ${sql.ref(`${i}.seg`)} and e.tenant = s.tenant and e.entity_id = s.entity_id
      and e.incarnation = s.incarnation`;
    const ruleSeconds = sql`(select max(r.retention_seconds) from context_live_retention r
      where r.tenant = e.tenant and r.owner_org = e.owner_org and r.entity_type = any(e.entity_types))`;
    const typeCutoff = sql`${now}::timestamptz - make_interval(secs => ${ruleSeconds})`;
    const byRule = await sql`delete from context_live_attr_instance i using ${via}
      where ${joined('i')} and i.observed_at < ${typeCutoff}`.execute(db);
    // Rollup minutes go when the whole minute is past the cutoff (`bucket + 1 min <= cutoff`).
    await sql`delete from context_live_attr_rollup i using ${via}
      where ${joined('i')} and i.bucket + interval '1 minute' <= ${typeCutoff}`.execute(db);
    let n = Number(byRule.numAffectedRows ?? 0n);
    if (defaultSeconds !== undefined) {
      const cutoff = new Date(now.getTime() - defaultSeconds * 1000);
      const unruled = (i: string) => sql`not exists (select 1 from ${via} where ${joined(i)}
        and ${ruleSeconds} is not null)`;
      const rest = await sql`delete from context_live_attr_instance i
        where i.observed_at < ${cutoff} and ${unruled('i')}`.execute(db);
      await sql`delete from context_live_attr_rollup i
        where i.bucket + interval '1 minute' <= ${cutoff} and ${unruled('i')}`.execute(db);
      n += Number(rest.numAffectedRows ?? 0n);
    }
    const since = new Date(now.getTime() - STRAGGLER_DAYS * 86_400_000);
    for (const table of ['context_live_attr_instance', 'context_live_attr_rollup']) {
      const late = await sql`delete from ${sql.table(table)} i using ${via}
        where ${joined('i')} and e.deleted_at is not null and e.deleted_at > ${since}`.execute(db);
      if (table === 'context_live_attr_instance') n += Number(late.numAffectedRows ?? 0n);
    }
    return n;
  }
}
