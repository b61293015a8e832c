/**
 * The registry of every marked object of the platform, whatever module owns it: one row per object with its
 * owner, creator, marking, read keys and incarnation. Only the sharing gate writes it, in the transaction of
 * the object's own write; explain, break-glass and the audit's owner come from here.
 *
 * An object is named by its kind, a scope (the NGSI-LD tenant for entities and subscriptions, '' otherwise)
 * and its id, so that two kinds (an entity and a subscription, say) may share an id without revealing each
 * other. Deleting an object and creating one with the same id starts a new incarnation: whatever was derived
 * from the old one (history, retries, closures) is tied to the old incarnation and never reaches the new
 * owner.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { AppError } from '../../kernel/errors.ts';
import type { AnyDb } from '../../ports/store.ts';
import { type Audience, type Marking, objectReadKeys, type Pap, type Tlp } from './marking.ts';

export type SharedObjectTables = {
  shared_object: {
    kind: string;
    scope: string;
    id: string;
    incarnation: string;
    owner_org: string;
    created_by: string;
    tlp: string;
    pap: string | null;
    audience: unknown;
    read_keys: string[];
    created_at: Date;
    updated_at: Date;
  };
};

export interface ObjectRef {
  kind: string;
  /** The NGSI-LD tenant for entities and subscriptions; '' (the default) otherwise. */
  scope?: string | undefined;
  id: string;
}

/** A reference with its scope spelled out. */
export interface FullRef {
  kind: string;
  scope: string;
  id: string;
}

export interface SharedObject {
  kind: string;
  scope: string;
  id: string;
  incarnation: string;
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
  readKeys: string[];
  createdAt: string;
  updatedAt: string;
}

export interface RegistryEntry {
  kind: string;
  scope: string;
  id: string;
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
}

/** Registers new objects; an object already registered (same kind, scope, id) is a conflict. */
export async function insertSharedObjects(
  trx: AnyDb,
  entries: RegistryEntry[],
  now: Date,
): Promise<SharedObject[]> {
  if (entries.length === 0) return [];
  const out = entries.map((e) => ({
    ...e,
    incarnation: randomUUID(),
    readKeys: objectReadKeys(e),
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  }));
  for (let i = 0; i < out.length; i += 500) {
    const chunk = out.slice(i, i + 500);
    const inserted = await trx
      .withTables<SharedObjectTables>()
      .insertInto('shared_object')
      .values(
        chunk.map((o) => ({
          kind: o.kind,
          scope: o.scope,
          id: o.id,
          incarnation: o.incarnation,
          owner_org: o.ownerOrg,
          created_by: o.createdBy,
          tlp: o.marking.tlp,
          pap: o.marking.pap ?? null,
          audience: JSON.stringify(o.marking.audience),
          read_keys: o.readKeys,
          created_at: now,
          updated_at: now,
        })),
      )
      .onConflict((oc) => oc.columns(['kind', 'scope', 'id']).doNothing())
      .returning('id')
      .execute();
    if (inserted.length !== chunk.length) {
      const got = new Set(inserted.map((r) => r.id));
      const taken = chunk.find((o) => !got.has(o.id));
      throw new AppError(
        'ACCESS_OBJECT_EXISTS',
        `${taken?.kind ?? 'object'} ${taken?.id ?? ''} already exists`,
      );
    }
  }
  return out;
}

export async function setSharedObjectMarking(
  trx: AnyDb,
  ref: FullRef,
  marking: Marking,
  readKeys: string[],
  now: Date,
): Promise<void> {
  await trx
    .withTables<SharedObjectTables>()
    .updateTable('shared_object')
    .set({
      tlp: marking.tlp,
      pap: marking.pap ?? null,
      audience: JSON.stringify(marking.audience),
      read_keys: readKeys,
      updated_at: now,
    })
    .where('kind', '=', ref.kind)
    .where('scope', '=', ref.scope)
    .where('id', '=', ref.id)
    .execute();
}

export async function deleteSharedObjects(
  trx: AnyDb,
  kind: string,
  scope: string,
  ids: string[],
): Promise<void> {
  if (ids.length === 0) return;
  await trx
    .withTables<SharedObjectTables>()
    .deleteFrom('shared_object')
    .where('kind', '=', kind)
    .where('scope', '=', scope)
    .where('id', 'in', ids)
    .execute();
}

export async function getSharedObject(
  db: AnyDb,
  ref: ObjectRef,
  opts: { forUpdate?: boolean } = {},
): Promise<SharedObject | undefined> {
  let q = db
    .withTables<SharedObjectTables>()
    .selectFrom('shared_object')
    .selectAll()
    .where('kind', '=', ref.kind)
    .where('scope', '=', ref.scope ?? '')
    .where('id', '=', ref.id);
  if (opts.forUpdate) q = q.forUpdate();
  const row = await q.executeTakeFirst();
  return row ? sharedObjectFromRow(row) : undefined;
}

/** The objects of any kind with this id (scope given or any), for explain when no kind is named. */
export async function findSharedObjects(db: AnyDb, id: string, scope?: string): Promise<SharedObject[]> {
  let q = db.withTables<SharedObjectTables>().selectFrom('shared_object').selectAll().where('id', '=', id);
  if (scope !== undefined) q = q.where('scope', '=', scope as string);
  const rows = await q.orderBy('kind').limit(20).execute();
  return rows.map(sharedObjectFromRow);
}

/** The incarnations of objects now registered (for side stores that check theirs are current). */
export async function currentIncarnations(
  db: AnyDb,
  kind: string,
  scope: string,
  ids: string[],
): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .withTables<SharedObjectTables>()
    .selectFrom('shared_object')
    .select(['id', 'incarnation'])
    .where('kind', '=', kind)
    .where('scope', '=', scope)
    .where(sql<boolean>`id = any(${sql.val(ids)}::text[])`)
    .execute();
  return new Map(rows.map((r) => [r.id, r.incarnation]));
}

export function sharedObjectFromRow(row: SharedObjectTables['shared_object']): SharedObject {
  const marking: Marking = { tlp: row.tlp as Tlp, audience: row.audience as Audience };
  if (row.pap) marking.pap = row.pap as Pap;
  return {
    kind: row.kind,
    scope: row.scope,
    id: row.id,
    incarnation: row.incarnation,
    ownerOrg: row.owner_org,
    createdBy: row.created_by,
    marking,
    readKeys: row.read_keys,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
