/**
 * The rows of temporal entities provided through the temporal API (clause 5.6.11–5.6.16): the incarnation
 * row (kind 'temporal') with the marking and read keys the sharing gate gave, its segments, its instances
 * and their per-minute rollups, kept exact on every write (provided history can change in the past, so its
 * rollups are recomputed from the instances of the minutes a write touched).
 */
import { createHash } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { newId } from '../../kernel/ids.ts';
import type { AnyDb } from '../../ports/store.ts';
import type { CurrentObject, Marking } from '../sharing/index.ts';
import type { ContextLiveTables } from './tables.ts';
import type { ProvidedInstance } from './temporal-payload.ts';
import { isPlainNumber, mainValue, rollupRows, TEMPORAL_ENTITY_KIND } from './temporal-store.ts';

export { TEMPORAL_ENTITY_KIND };

type InstanceInsert = ContextLiveTables['context_live_attr_instance'];

/** A temporal entity as stored, locked by the write that reads it. */
export interface TemporalObject {
  id: string;
  tenant: string;
  incarnation: string;
  types: string[];
  /** Its scopes (clause 4.18): what scopeQ selects it by. */
  scopes: string[];
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
  readKeys: string[];
}

/** The scopes column of a temporal entity (null: none). */
function scopesValue(o: TemporalObject) {
  return o.scopes.length > 0 ? sql`${sql.val(o.scopes)}::text[]` : sql`null`;
}

/** What the gate decides a change of a temporal entity on. */
export function currentOf(o: TemporalObject): CurrentObject & { readKeys: string[] } {
  return {
    id: o.id,
    scope: o.tenant,
    ownerOrg: o.ownerOrg,
    createdBy: o.createdBy,
    marking: o.marking,
    readKeys: o.readKeys,
  };
}

/** One stored instance (the JSON of the attribute, rebuilt for plain numbers). */
export interface StoredInstance {
  attr: string;
  datasetId: string;
  seg: string;
  instanceId: string;
  observedAt: Date;
  instance: Record<string, unknown>;
}

/** The series minute a write touched: its rollup is recomputed. */
interface Touched {
  attr: string;
  dataset_id: string;
  seg: string;
  observed_at: Date;
}

const MINUTE = 60_000;

/** A double column as read (drivers may give text for very large values). */
function num(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

/** The row of a provided instance (`instanceId` kept when an instance is modified). */
export function providedRow(
  tenant: string,
  entityId: string,
  seg: string,
  p: ProvidedInstance,
  now: Date,
  instanceId = `urn:ngsi-ld:attribute:instance:${newId()}`,
): InstanceInsert {
  const inst = p.instance as Record<string, unknown>;
  const observed = typeof inst.observedAt === 'string' ? new Date(inst.observedAt) : now;
  const value = mainValue(inst);
  return {
    tenant,
    entity_id: entityId,
    attr: p.attr,
    dataset_id: typeof inst.datasetId === 'string' ? inst.datasetId : '',
    seg,
    instance_id: instanceId,
    attr_type: typeof inst.type === 'string' ? inst.type : 'Property',
    observed_at: observed,
    modified_at: now,
    value_num: typeof value === 'number' ? value : typeof value === 'boolean' ? (value ? 1 : 0) : null,
    value_text: typeof value === 'string' ? value : value === undefined ? null : JSON.stringify(value),
    instance: isPlainNumber(inst) ? null : JSON.stringify(inst),
  };
}

export class TemporalProvisionStore {
  #db(trx: AnyDb): Kysely<ContextLiveTables> {
    return trx.withTables<ContextLiveTables>() as unknown as Kysely<ContextLiveTables>;
  }

  /** The live temporal entity of this id with its registry facts, locked; undefined when there is none. */
  async locked(trx: AnyDb, tenant: string, id: string): Promise<TemporalObject | undefined> {
    const res = await sql<{
      incarnation: string;
      entity_types: string[];
      scopes: string[] | null;
      owner_org: string;
      created_by: string;
      tlp: string;
      pap: string | null;
      audience: unknown;
      read_keys: string[];
    }>`select e.incarnation, e.entity_types, e.scopes, s.owner_org, s.created_by, s.tlp, s.pap, s.audience, s.read_keys
      from context_live_temporal_entity e
      join shared_object s on s.kind = ${TEMPORAL_ENTITY_KIND} and s.scope = e.tenant and s.id = e.entity_id
        and s.incarnation = e.incarnation
      where e.tenant = ${tenant} and e.entity_id = ${id} and e.kind = 'temporal' and e.deleted_at is null
      for update of e`.execute(trx);
    const r = res.rows[0];
    if (!r) return undefined;
    const marking = {
      tlp: r.tlp,
      audience: typeof r.audience === 'string' ? JSON.parse(r.audience) : r.audience,
    } as Marking;
    if (r.pap) marking.pap = r.pap as NonNullable<Marking['pap']>;
    return {
      id,
      tenant,
      incarnation: r.incarnation,
      types: r.entity_types,
      scopes: r.scopes ?? [],
      ownerOrg: r.owner_org,
      createdBy: r.created_by,
      marking,
      readKeys: r.read_keys,
    };
  }

  async insertObject(trx: AnyDb, o: TemporalObject, now: Date): Promise<void> {
    await sql`insert into context_live_temporal_entity (tenant, entity_id, incarnation, entity_types, scopes,
        owner_org, marking, read_keys, created_at, modified_at, deleted_at, kind)
      values (${o.tenant}, ${o.id}, ${o.incarnation}, ${sql.val(o.types)}::text[], ${scopesValue(o)}, ${o.ownerOrg},
        ${JSON.stringify(o.marking)}::jsonb, ${sql.val(o.readKeys)}::text[], ${now}, ${now}, null, 'temporal')`.execute(
      trx,
    );
  }

  /** Types, marking and read keys after a change (the gate's), and the time of the change. */
  async updateObject(trx: AnyDb, o: TemporalObject, now: Date): Promise<void> {
    await sql`update context_live_temporal_entity set entity_types = ${sql.val(o.types)}::text[],
        scopes = ${scopesValue(o)}, marking = ${JSON.stringify(o.marking)}::jsonb, read_keys = ${sql.val(o.readKeys)}::text[],
        modified_at = greatest(modified_at, ${now})
      where tenant = ${o.tenant} and entity_id = ${o.id} and incarnation = ${o.incarnation}`.execute(trx);
  }

  /** The segment of the object's history under its marking now (created when new). */
  async segment(trx: AnyDb, o: TemporalObject): Promise<string> {
    const m = o.marking;
    const seg = createHash('sha256')
      .update(
        `${o.tenant}\u0000${o.id}\u0000${o.incarnation}\u0000${m.tlp}\u0000${m.pap ?? ''}\u0000${o.ownerOrg}\u0000${o.readKeys.join(',')}`,
      )
      .digest('hex')
      .slice(0, 20);
    await sql`insert into context_live_temporal_segment (tenant, entity_id, seg, incarnation, owner_org, marking,
        read_keys)
      values (${o.tenant}, ${o.id}, ${seg}, ${o.incarnation}, ${o.ownerOrg}, ${JSON.stringify(m)}::jsonb,
        ${sql.val(o.readKeys)}::text[])
      on conflict do nothing`.execute(trx);
    return seg;
  }

  async insertInstances(trx: AnyDb, o: TemporalObject, rows: InstanceInsert[]): Promise<void> {
    for (let i = 0; i < rows.length; i += 2000) {
      await this.#db(trx)
        .insertInto('context_live_attr_instance')
        .values(rows.slice(i, i + 2000))
        .execute();
    }
    await this.#refreshRollups(trx, o, rows);
  }

  /** One instance of the object's attribute, locked; undefined when it has no such instance. */
  async instance(
    trx: AnyDb,
    o: TemporalObject,
    attr: string,
    instanceId: string,
  ): Promise<StoredInstance | undefined> {
    const res = await sql<{
      attr: string;
      dataset_id: string;
      seg: string;
      instance_id: string;
      attr_type: string;
      observed_at: Date;
      value_num: number | null;
      instance: unknown;
    }>`select i.attr, i.dataset_id, i.seg, i.instance_id, i.attr_type, i.observed_at, i.value_num, i.instance
      from context_live_attr_instance i
      join context_live_temporal_segment s on s.tenant = i.tenant and s.entity_id = i.entity_id and s.seg = i.seg
      where i.tenant = ${o.tenant} and i.entity_id = ${o.id} and i.instance_id = ${instanceId}
        and i.attr = ${attr} and s.incarnation = ${o.incarnation}
      for update of i`.execute(trx);
    const r = res.rows[0];
    if (!r) return undefined;
    const observedAt = new Date(r.observed_at);
    const instance = (
      r.instance === null
        ? { type: r.attr_type, value: r.value_num, observedAt: observedAt.toISOString() }
        : typeof r.instance === 'string'
          ? JSON.parse(r.instance)
          : r.instance
    ) as Record<string, unknown>;
    return {
      attr: r.attr,
      datasetId: r.dataset_id,
      seg: r.seg,
      instanceId: r.instance_id,
      observedAt,
      instance,
    };
  }

  /** Replaces one instance (same id, same segment), keeping its rollups exact. */
  async replaceInstance(trx: AnyDb, o: TemporalObject, before: StoredInstance, row: InstanceInsert) {
    await sql`update context_live_attr_instance set dataset_id = ${row.dataset_id}, attr_type = ${row.attr_type},
        observed_at = ${row.observed_at}, modified_at = ${row.modified_at}, value_num = ${row.value_num},
        value_text = ${row.value_text}, instance = ${row.instance as string | null}::jsonb
      where tenant = ${o.tenant} and entity_id = ${o.id} and instance_id = ${before.instanceId}
        and seg = ${before.seg}`.execute(trx);
    await this.#refreshRollups(trx, o, [
      { attr: before.attr, dataset_id: before.datasetId, seg: before.seg, observed_at: before.observedAt },
      row,
    ]);
  }

  /**
   * Deletes instances of one attribute of the object: those of one datasetId ('' the default), all of them
   * (`datasetId` undefined), or one instance. Returns how many went.
   */
  async deleteInstances(
    trx: AnyDb,
    o: TemporalObject,
    attr: string,
    which: { datasetId?: string; instanceId?: string },
  ): Promise<number> {
    const ds = which.datasetId === undefined ? sql`` : sql`and i.dataset_id = ${which.datasetId}`;
    const one = which.instanceId === undefined ? sql`` : sql`and i.instance_id = ${which.instanceId}`;
    const res =
      await sql<Touched>`delete from context_live_attr_instance i using context_live_temporal_segment s
      where s.tenant = i.tenant and s.entity_id = i.entity_id and s.seg = i.seg and s.incarnation = ${o.incarnation}
        and i.tenant = ${o.tenant} and i.entity_id = ${o.id} and i.attr = ${attr} ${ds} ${one}
      returning i.attr, i.dataset_id, i.seg, i.observed_at`.execute(trx);
    await this.#refreshRollups(trx, o, res.rows);
    return res.rows.length;
  }

  /** Deletes the object's rows: instances, rollups, segments and its incarnation. */
  async deleteObject(trx: AnyDb, o: TemporalObject): Promise<void> {
    for (const table of ['context_live_attr_instance', 'context_live_attr_rollup']) {
      await sql`delete from ${sql.table(table)} i using context_live_temporal_segment s
        where s.tenant = i.tenant and s.entity_id = i.entity_id and s.seg = i.seg
          and s.incarnation = ${o.incarnation} and i.tenant = ${o.tenant} and i.entity_id = ${o.id}`.execute(
        trx,
      );
    }
    await sql`delete from context_live_temporal_segment
      where tenant = ${o.tenant} and entity_id = ${o.id} and incarnation = ${o.incarnation}`.execute(trx);
    await sql`delete from context_live_temporal_entity
      where tenant = ${o.tenant} and entity_id = ${o.id} and incarnation = ${o.incarnation}`.execute(trx);
  }

  /** Recomputes the rollups of the minutes of these series from their instances (in the write's transaction). */
  async #refreshRollups(trx: AnyDb, o: TemporalObject, touched: Touched[]): Promise<void> {
    const keys = new Map<string, { attr: string; ds: string; seg: string; bucket: string }>();
    for (const t of touched) {
      const bucket = new Date(Math.floor(new Date(t.observed_at).getTime() / MINUTE) * MINUTE).toISOString();
      keys.set(`${t.attr}\u0000${t.dataset_id}\u0000${t.seg}\u0000${bucket}`, {
        attr: t.attr,
        ds: t.dataset_id,
        seg: t.seg,
        bucket,
      });
    }
    const all = [...keys.values()];
    for (let i = 0; i < all.length; i += 5000) {
      const part = all.slice(i, i + 5000);
      const x = sql`unnest(${part.map((k) => k.attr)}::text[], ${part.map((k) => k.ds)}::text[],
        ${part.map((k) => k.seg)}::text[], ${part.map((k) => k.bucket)}::timestamptz[])
        as x(attr, dataset_id, seg, bucket)`;
      await sql`delete from context_live_attr_rollup r using ${x}
        where r.tenant = ${o.tenant} and r.entity_id = ${o.id} and r.attr = x.attr
          and r.dataset_id = x.dataset_id and r.seg = x.seg and r.bucket = x.bucket`.execute(trx);
      // Summed in memory as the recorder does: values near the largest double overflow to Infinity there,
      // where SQL's float arithmetic would refuse the write.
      const minutes = await sql<InstanceInsert>`select i.tenant, i.entity_id, i.attr, i.dataset_id, i.seg,
          i.observed_at, i.attr_type, i.value_num
        from context_live_attr_instance i join ${x}
          on i.attr = x.attr and i.dataset_id = x.dataset_id and i.seg = x.seg
            and i.observed_at >= x.bucket and i.observed_at < x.bucket + interval '1 minute'
        where i.tenant = ${o.tenant} and i.entity_id = ${o.id}`.execute(trx);
      const rollups = rollupRows(
        minutes.rows.map((r) => ({
          ...r,
          observed_at: new Date(r.observed_at),
          value_num: num(r.value_num),
        })),
      );
      for (let j = 0; j < rollups.length; j += 2000) {
        await this.#db(trx)
          .insertInto('context_live_attr_rollup')
          .values(rollups.slice(j, j + 2000))
          .execute();
      }
    }
  }
}
