/**
 * The attribute value index (decision record 0007): one row in `context_entity_value` per scalar that a `q`
 * comparison on a top-level attribute can meet — for each attribute and each of its instances, the
 * comparable value as query-language.ts sees it (`attributeValue`: value, object, the languageMap's strings,
 * json, vocab, valueList, objectList), arrays flattened and typed literals unwrapped, exactly as
 * `compareTarget` walks them. Numbers and booleans (1 / 0) are kept in `num` (kinds `n`, `b`); strings in
 * `str` (kind `s`; longer than MAX_INDEXED_STRING: `str` null) with `num` = `Date.parse(str)`, the time a
 * date-time comparison meets. Other leaves (objects, null) have no row: no comparison matches them.
 *
 * Each row also carries its entity's read keys and types, so that a query's visibility and type are tested on
 * the rows the index finds, without a visit to the entity's row for each. The rows are written in the
 * entity's own transaction, so the index is never behind the entities, on any instance. Only the attributes
 * whose leaves changed are rewritten (all of them when the read keys or types changed).
 */
import { sql } from 'kysely';
import type { AnyDb } from '../../ports/store.ts';
import { type ExpandedEntity, instancesOf } from './entity-model.ts';
import type { EntityRecord } from './entity-repository.ts';
import { attributeValue, unwrapTyped } from './query-language.ts';

/** Longest string (UTF-16 units) kept in `str`: index keys stay far below PostgreSQL's 2,704 bytes. */
export const MAX_INDEXED_STRING = 256;

export interface ValueLeaf {
  kind: 'n' | 's' | 'b';
  num: number | null;
  str: string | null;
}

/** The leaves of one attribute member (one instance or a multi-attribute array). */
export function attributeLeaves(member: unknown): ValueLeaf[] {
  const out: ValueLeaf[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) visit(x);
      return;
    }
    const s = unwrapTyped(v);
    if (typeof s === 'number') out.push({ kind: 'n', num: s, str: null });
    else if (typeof s === 'boolean') out.push({ kind: 'b', num: s ? 1 : 0, str: null });
    else if (typeof s === 'string') {
      const t = Date.parse(s);
      out.push({
        kind: 's',
        num: Number.isNaN(t) ? null : t,
        str: s.length <= MAX_INDEXED_STRING ? s : null,
      });
    }
  };
  if (member === null || typeof member !== 'object') return out;
  for (const inst of instancesOf(member)) {
    const v = attributeValue(inst);
    if (v !== undefined) visit(v);
  }
  return out;
}

function sameLeaves(a: ValueLeaf[], b: ValueLeaf[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    return x.kind === y.kind && Object.is(x.num, y.num) && x.str === y.str;
  });
}

class ValueRows {
  readonly ids: string[] = [];
  readonly attrs: string[] = [];
  readonly kinds: string[] = [];
  readonly nums: (number | null)[] = [];
  readonly strs: (string | null)[] = [];
  /** The entity's read keys and types, copied onto its rows. */
  readonly entities = new Map<string, { id: string; read_keys: string[]; types: string[] }>();

  add(rec: { id: string; readKeys: string[]; types: string[] }, attr: string, leaves: ValueLeaf[]): void {
    if (leaves.length === 0) return;
    if (!this.entities.has(rec.id)) {
      this.entities.set(rec.id, { id: rec.id, read_keys: rec.readKeys, types: rec.types });
    }
    for (const l of leaves) {
      this.ids.push(rec.id);
      this.attrs.push(attr);
      this.kinds.push(l.kind);
      this.nums.push(l.num);
      this.strs.push(l.str);
    }
  }
}

const CHUNK = 5000;

const sameList = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Brings the value rows of written entities up to date: `before` holds the rows as they were (absent for
 * new entities). Every row carries its entity's read keys and types (copies, like context_entity's of the
 * gate's): when they change, all the entity's rows are rewritten. Otherwise attribute members the write did
 * not replace are the same objects as before (entity-patch.ts, `clone`) and are skipped without a look; the
 * others are rewritten when their leaves differ.
 */
export async function writeAttributeValues(
  db: AnyDb,
  tenant: string,
  writes: readonly EntityRecord[],
  before: ReadonlyMap<string, EntityRecord>,
): Promise<void> {
  const delIds: string[] = [];
  const delAttrs: string[] = [];
  const rewritten: string[] = [];
  const rows = new ValueRows();
  for (const w of writes) {
    const was = before.get(w.id);
    const rec = { id: w.id, readKeys: w.readKeys, types: w.entity.type };
    if (!was || !sameList(was.readKeys, w.readKeys) || !sameList(was.entity.type, w.entity.type)) {
      if (was) rewritten.push(w.id);
      for (const [name, member] of Object.entries(w.entity)) rows.add(rec, name, attributeLeaves(member));
      continue;
    }
    const old = was.entity;
    const names = new Set([...Object.keys(w.entity), ...Object.keys(old)]);
    for (const name of names) {
      const next = w.entity[name];
      const prev = old[name];
      if (prev === next) continue;
      const prevLeaves = attributeLeaves(prev);
      const nextLeaves = attributeLeaves(next);
      if (sameLeaves(prevLeaves, nextLeaves)) continue;
      if (prevLeaves.length > 0) {
        delIds.push(w.id);
        delAttrs.push(name);
      }
      rows.add(rec, name, nextLeaves);
    }
  }
  await deleteAttributeValues(db, tenant, rewritten);
  for (let i = 0; i < delIds.length; i += CHUNK) {
    await sql`delete from context_entity_value v
      using unnest(${sql.val(delIds.slice(i, i + CHUNK))}::text[], ${sql.val(delAttrs.slice(i, i + CHUNK))}::text[]) as d(entity_id, attr)
      where v.tenant = ${tenant} and v.entity_id = d.entity_id and v.attr = d.attr`.execute(db);
  }
  await insertRows(db, tenant, rows);
}

async function insertRows(db: AnyDb, tenant: string, rows: ValueRows): Promise<void> {
  for (let i = 0; i < rows.ids.length; i += CHUNK) {
    const part = <T>(a: T[]) => sql.val(a.slice(i, i + CHUNK));
    const entities = [...new Set(rows.ids.slice(i, i + CHUNK))].map((id) => rows.entities.get(id));
    await sql`insert into context_entity_value (tenant, entity_id, attr, kind, num, str, read_keys, types)
      select ${tenant}, d.entity_id, d.attr, d.kind, d.num, d.str, x.read_keys, x.types
      from unnest(${part(rows.ids)}::text[], ${part(rows.attrs)}::text[], ${part(rows.kinds)}::text[],
        ${part(rows.nums)}::float8[], ${part(rows.strs)}::text[]) as d(entity_id, attr, kind, num, str)
      join jsonb_to_recordset(${JSON.stringify(entities)}::jsonb) as x(id text, read_keys text[], types text[])
        on x.id = d.entity_id`.execute(db);
  }
}

export async function deleteAttributeValues(db: AnyDb, tenant: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`delete from context_entity_value where tenant = ${tenant} and entity_id = any(${sql.val(ids)}::text[])`.execute(
    db,
  );
}

/** Writes the value rows of every entity of the store (the migration that creates the table). */
export async function backfillAttributeValues(db: AnyDb): Promise<void> {
  let after: { tenant: string; id: string } | undefined;
  for (;;) {
    const from = after ? sql`where (tenant, id) > (${after.tenant}, ${after.id})` : sql``;
    const r = await sql<{
      tenant: string;
      id: string;
      entity: ExpandedEntity | string;
      read_keys: string[];
    }>`select tenant, id, entity, read_keys from context_entity ${from} order by tenant, id limit 1000`.execute(
      db,
    );
    if (r.rows.length === 0) return;
    const rows = new Map<string, ValueRows>();
    for (const x of r.rows) {
      const entity = typeof x.entity === 'string' ? (JSON.parse(x.entity) as ExpandedEntity) : x.entity;
      const t = rows.get(x.tenant) ?? new ValueRows();
      rows.set(x.tenant, t);
      const rec = { id: x.id, readKeys: x.read_keys, types: entity.type };
      for (const [name, member] of Object.entries(entity)) t.add(rec, name, attributeLeaves(member));
    }
    for (const [tenant, t] of rows) await insertRows(db, tenant, t);
    const last = r.rows[r.rows.length - 1]!;
    after = { tenant: last.tenant, id: last.id };
  }
}
