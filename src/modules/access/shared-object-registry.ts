/**
 * The registry of every marked object of the platform, whatever module owns it: one row per object with
 * its owner, creator, marking and read keys. The platform explains visibility and serves break-glass
 * reads from it; modules register their objects in the same transaction as the object's own write.
 */
import type { Clock } from '../../kernel/clock.ts';
import { systemClock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import type { AnyDb } from '../../ports/store.ts';
import type { AccessTables } from './access-tables.ts';
import { type Audience, type Marking, objectReadKeys, type Pap, type Tlp } from './marking.ts';

export interface SharedObject {
  id: string;
  kind: string;
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
  readKeys: string[];
  createdAt: string;
  updatedAt: string;
}

export interface SharedObjectInput {
  /** Globally unique (a UUID or a URN): the registry holds the objects of every module. */
  id: string;
  kind: string;
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
}

export async function registerSharedObject(
  trx: AnyDb,
  input: SharedObjectInput,
  clock: Clock = systemClock,
): Promise<SharedObject> {
  const now = clock.now();
  const readKeys = objectReadKeys(input);
  const row = {
    id: input.id,
    kind: input.kind,
    owner_org: input.ownerOrg,
    created_by: input.createdBy,
    tlp: input.marking.tlp,
    pap: input.marking.pap ?? null,
    audience: JSON.stringify(input.marking.audience),
    read_keys: readKeys,
    created_at: now,
    updated_at: now,
  };
  const inserted = await trx
    .withTables<AccessTables>()
    .insertInto('shared_object')
    .values(row)
    .onConflict((oc) => oc.column('id').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!inserted) throw new AppError('ACCESS_OBJECT_EXISTS', `object ${input.id} is already registered`);
  return { ...input, readKeys, createdAt: now.toISOString(), updatedAt: now.toISOString() };
}

/** Sets a new marking; returns the object before and after. Takes effect for every query at once. */
export async function updateSharedObjectMarking(
  trx: AnyDb,
  id: string,
  marking: Marking,
  clock: Clock = systemClock,
): Promise<{ before: SharedObject; after: SharedObject }> {
  const before = await getSharedObject(trx, id, { forUpdate: true });
  if (!before) throw new AppError('ACCESS_OBJECT_NOT_FOUND', `no object ${id}`);
  const now = clock.now();
  const readKeys = objectReadKeys({ ownerOrg: before.ownerOrg, createdBy: before.createdBy, marking });
  await trx
    .withTables<AccessTables>()
    .updateTable('shared_object')
    .set({
      tlp: marking.tlp,
      pap: marking.pap ?? null,
      audience: JSON.stringify(marking.audience),
      read_keys: readKeys,
      updated_at: now,
    })
    .where('id', '=', id)
    .execute();
  return { before, after: { ...before, marking, readKeys, updatedAt: now.toISOString() } };
}

export async function removeSharedObject(trx: AnyDb, id: string): Promise<boolean> {
  const r = await trx
    .withTables<AccessTables>()
    .deleteFrom('shared_object')
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function getSharedObject(
  db: AnyDb,
  id: string,
  opts: { forUpdate?: boolean } = {},
): Promise<SharedObject | undefined> {
  let q = db.withTables<AccessTables>().selectFrom('shared_object').selectAll().where('id', '=', id);
  if (opts.forUpdate) q = q.forUpdate();
  const row = await q.executeTakeFirst();
  return row ? sharedObjectFromRow(row) : undefined;
}

export function sharedObjectFromRow(row: AccessTables['shared_object']): SharedObject {
  const marking: Marking = { tlp: row.tlp as Tlp, audience: row.audience as Audience };
  if (row.pap) marking.pap = row.pap as Pap;
  return {
    id: row.id,
    kind: row.kind,
    ownerOrg: row.owner_org,
    createdBy: row.created_by,
    marking,
    readKeys: row.read_keys,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
