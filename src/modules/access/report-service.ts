/**
 * Reports: security information reports (title, body, category, optional GeoJSON point, marking), the
 * platform's own kind of shared object. Visibility is the read-key filter in SQL; reads from outside the
 * owner organisation of AMBER, AMBER+STRICT and RED reports are audited as disclosures.
 */
import { sql } from 'kysely';
import { AppError } from '../../kernel/errors.ts';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { AnyDb } from '../../ports/store.ts';
import type { AuditEntry } from '../audit/index.ts';
import type { AccessService } from './access-service.ts';
import type { AccessTables } from './access-tables.ts';
import { actorOf, type Principal } from './access-types.ts';
import { type Marking, objectReadKeys, parseMarking, type Tlp } from './marking.ts';
import { canWrite, requireWriter } from './policy.ts';
import {
  registerSharedObject,
  removeSharedObject,
  type SharedObject,
  sharedObjectFromRow,
  updateSharedObjectMarking,
} from './shared-object-registry.ts';

export const REPORT_KIND = 'report';

export interface GeoPoint {
  type: 'Point';
  coordinates: [number, number] | [number, number, number];
}

export interface Report {
  id: string;
  title: string;
  body: string;
  category: string;
  location: GeoPoint | null;
  marking: Marking;
  ownerOrg: string;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

export interface ReportInput {
  title: string;
  body: string;
  category: string;
  location?: GeoPoint | null | undefined;
  marking?: unknown;
}

export interface ReportPatch {
  title?: string | undefined;
  body?: string | undefined;
  category?: string | undefined;
  location?: GeoPoint | null | undefined;
  marking?: unknown;
}

export interface ReportQuery {
  limit?: number | undefined;
  /** Reports older than this report id (ids are time-ordered): the next page. */
  before?: string | undefined;
  category?: string | undefined;
  ownerOrg?: string | undefined;
}

export const REPORT_CREATED = 'report.created';
export const REPORT_UPDATED = 'report.updated';
export const REPORT_DELETED = 'report.deleted';

/**
 * The data of an event about a marked object (`report.created|updated|deleted`): enough for a live stream
 * to decide, with the one policy, who is told — nothing of the object's content.
 */
export interface ObjectChangeEvent {
  kind: string;
  id: string;
  ownerOrg: string;
  /** Who may see the object now ([] once deleted). */
  readKeys: string[];
  /** Who could see it before the change ([] when created). */
  previousReadKeys: string[];
}

/** Labels whose reads from outside the owner organisation are recorded as disclosures. */
const DISCLOSED: readonly Tlp[] = ['AMBER', 'AMBER+STRICT', 'RED'];

type Row = AccessTables['report'] & Omit<AccessTables['shared_object'], 'id' | 'created_at' | 'updated_at'>;

/**
 * A user's repeated reads of the same object under the same label are one disclosure: recorded at the
 * first read, then again only after this window. Keeps the audit log (and its locked chain head) from
 * growing with every page refresh of a control-room screen.
 */
const DISCLOSURE_WINDOW_MS = 15 * 60_000;
const DISCLOSURE_MEMORY = 100_000;

export class ReportService {
  readonly #access: AccessService;
  readonly #recentDisclosures = new Map<string, number>();

  constructor(access: AccessService) {
    this.#access = access;
    access.registerObjectLoader(REPORT_KIND, async (id) => {
      const row = await this.#select(access.store.db).where('r.id', '=', id).executeTakeFirst();
      return row ? reportFromRow(row) : null;
    });
  }

  #select(db: AnyDb) {
    return db
      .withTables<AccessTables>()
      .selectFrom('report as r')
      .innerJoin('shared_object as s', 's.id', 'r.id')
      .select([
        'r.id',
        'r.title',
        'r.body',
        'r.category',
        'r.location',
        'r.created_at',
        'r.updated_at',
        's.kind',
        's.owner_org',
        's.created_by',
        's.tlp',
        's.pap',
        's.audience',
        's.read_keys',
      ]);
  }

  async create(principal: Principal, input: ReportInput): Promise<Report> {
    requireWriter(principal);
    checkLocation(input.location);
    const marking = await this.#access.validateMarking(
      input.marking === undefined ? principal.defaultMarking : parseMarking(input.marking),
    );
    const id = newTimeOrderedId(this.#access.clock.now().getTime());
    const now = this.#access.clock.now();
    await this.#access.store.transaction(async (trx) => {
      await registerSharedObject(
        trx,
        { id, kind: REPORT_KIND, ownerOrg: principal.orgId, createdBy: principal.userId, marking },
        this.#access.clock,
      );
      await trx
        .withTables<AccessTables>()
        .insertInto('report')
        .values({
          id,
          title: input.title,
          body: input.body,
          category: input.category,
          location: input.location ? JSON.stringify(input.location) : null,
          created_at: now,
          updated_at: now,
        })
        .execute();
      await this.#access.audit(trx, {
        ...this.#actor(principal),
        action: 'create',
        objectKind: REPORT_KIND,
        objectId: id,
        ownerOrg: principal.orgId,
        details: { title: input.title, category: input.category, marking },
      });
    });
    const report = await this.#mustGet(this.#access.store.db, id);
    await this.#announce(REPORT_CREATED, report, undefined);
    return report;
  }

  /** One report, or ACCESS_OBJECT_NOT_FOUND when it does not exist or the principal may not see it. */
  async get(principal: Principal, id: string): Promise<Report> {
    const row = await this.#visible(principal).where('r.id', '=', id).executeTakeFirst();
    if (!row) throw new AppError('ACCESS_OBJECT_NOT_FOUND', `no report ${id}`);
    const report = reportFromRow(row);
    await this.#recordDisclosures(principal, [report]);
    return report;
  }

  async list(principal: Principal, q: ReportQuery = {}): Promise<Report[]> {
    let query = this.#visible(principal);
    if (q.before) query = query.where('r.id', '<', q.before);
    if (q.category) query = query.where('r.category', '=', q.category);
    if (q.ownerOrg) query = query.where('s.owner_org', '=', q.ownerOrg);
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    const rows = await query.orderBy('r.id', 'desc').limit(limit).execute();
    const reports = rows.map(reportFromRow);
    await this.#recordDisclosures(principal, reports);
    return reports;
  }

  async update(principal: Principal, id: string, patch: ReportPatch): Promise<Report> {
    checkLocation(patch.location);
    const marking =
      patch.marking === undefined
        ? undefined
        : await this.#access.validateMarking(parseMarking(patch.marking));
    let previous: Report | undefined;
    await this.#access.store.transaction(async (trx) => {
      const current = await this.#writable(trx, principal, id);
      previous = current;
      const set: Partial<AccessTables['report']> = { updated_at: this.#access.clock.now() };
      const changed: Record<string, unknown> = {};
      for (const k of ['title', 'body', 'category'] as const) {
        const v = patch[k];
        if (v !== undefined && v !== current[k]) {
          set[k] = v;
          changed[k] = { from: current[k], to: v };
        }
      }
      if (patch.location !== undefined) {
        set.location = patch.location ? JSON.stringify(patch.location) : null;
        changed.location = { from: current.location, to: patch.location };
      }
      await trx.withTables<AccessTables>().updateTable('report').set(set).where('id', '=', id).execute();
      const entries: AuditEntry[] = [];
      if (Object.keys(changed).length > 0) {
        entries.push({
          ...this.#actor(principal),
          action: 'update',
          objectKind: REPORT_KIND,
          objectId: id,
          ownerOrg: current.ownerOrg,
          details: changed,
        });
      }
      if (marking && JSON.stringify(marking) !== JSON.stringify(current.marking)) {
        const { before, after } = await updateSharedObjectMarking(trx, id, marking, this.#access.clock);
        entries.push({
          ...this.#actor(principal),
          action: 'share',
          objectKind: REPORT_KIND,
          objectId: id,
          ownerOrg: current.ownerOrg,
          details: { from: before.marking, to: after.marking },
        });
      }
      await this.#access.audit(trx, entries);
    });
    const report = await this.#mustGet(this.#access.store.db, id);
    await this.#announce(REPORT_UPDATED, report, previous);
    return report;
  }

  async remove(principal: Principal, id: string): Promise<void> {
    let removed: Report | undefined;
    await this.#access.store.transaction(async (trx) => {
      const current = await this.#writable(trx, principal, id);
      removed = current;
      await trx.withTables<AccessTables>().deleteFrom('report').where('id', '=', id).execute();
      await removeSharedObject(trx, id);
      await this.#access.audit(trx, {
        ...this.#actor(principal),
        action: 'delete',
        objectKind: REPORT_KIND,
        objectId: id,
        ownerOrg: current.ownerOrg,
        details: { title: current.title, marking: current.marking },
      });
    });
    if (removed) await this.#announce(REPORT_DELETED, undefined, removed);
  }

  /**
   * Tells live streams that a report changed: its id and who may see it now and before (read keys), never
   * its content — a stream client reads the report through the API, under the policy.
   */
  async #announce(type: string, now: Report | undefined, before: Report | undefined): Promise<void> {
    const keys = (r: Report) =>
      objectReadKeys({ ownerOrg: r.ownerOrg, createdBy: r.createdBy, marking: r.marking });
    const r = (now ?? before) as Report;
    const data: ObjectChangeEvent = {
      kind: REPORT_KIND,
      id: r.id,
      ownerOrg: r.ownerOrg,
      readKeys: now ? keys(now) : [],
      previousReadKeys: before ? keys(before) : [],
    };
    await this.#access.publish(type, data);
  }

  /** The registry entry of a report the principal can see (for explain and the web app). */
  async sharedObject(principal: Principal, id: string): Promise<SharedObject> {
    const row = await this.#visible(principal).where('r.id', '=', id).executeTakeFirst();
    if (!row) throw new AppError('ACCESS_OBJECT_NOT_FOUND', `no report ${id}`);
    return sharedObjectFromRow({
      ...row,
      id: row.id,
      created_at: row.created_at,
      updated_at: row.updated_at,
    });
  }

  #visible(principal: Principal) {
    return this.#select(this.#access.store.db).where(
      sql<boolean>`s.read_keys && ${sql.val(principal.readKeys)}::text[]`,
    );
  }

  /** Locks the report for the write; invisible is not found, visible but not writable is denied. */
  async #writable(trx: AnyDb, principal: Principal, id: string): Promise<Report> {
    const row = await this.#select(trx)
      .where('r.id', '=', id)
      .where(sql<boolean>`s.read_keys && ${sql.val(principal.readKeys)}::text[]`)
      .forUpdate()
      .executeTakeFirst();
    if (!row) throw new AppError('ACCESS_OBJECT_NOT_FOUND', `no report ${id}`);
    const report = reportFromRow(row);
    if (!canWrite(principal, report)) {
      throw new AppError(
        'ACCESS_DENIED',
        principal.orgId !== report.ownerOrg
          ? `only writers of the owner organisation ${report.ownerOrg} change this report`
          : 'this account has no writing role (admin, operator, analyst)',
      );
    }
    return report;
  }

  async #mustGet(db: AnyDb, id: string): Promise<Report> {
    const row = await this.#select(db).where('r.id', '=', id).executeTakeFirst();
    if (!row) throw new AppError('ACCESS_OBJECT_NOT_FOUND', `no report ${id}`);
    return reportFromRow(row);
  }

  #actor(principal: Principal): { actorId: string; actorOrg: string } {
    const a = actorOf(principal);
    return { actorId: a?.userId ?? principal.userId, actorOrg: a?.orgId ?? principal.orgId };
  }

  async #recordDisclosures(principal: Principal, reports: Report[]): Promise<void> {
    const now = this.#access.clock.now().getTime();
    const disclosed = reports.filter((r) => {
      if (r.ownerOrg === principal.orgId || !DISCLOSED.includes(r.marking.tlp)) return false;
      const key = `${principal.userId}|${r.id}|${r.marking.tlp}`;
      const last = this.#recentDisclosures.get(key);
      if (last !== undefined && now - last < DISCLOSURE_WINDOW_MS) return false;
      this.#recentDisclosures.delete(key);
      this.#recentDisclosures.set(key, now);
      return true;
    });
    if (this.#recentDisclosures.size > DISCLOSURE_MEMORY) {
      // Oldest first (insertion order): forget the older half.
      let drop = this.#recentDisclosures.size / 2;
      for (const key of this.#recentDisclosures.keys()) {
        if (drop-- <= 0) break;
        this.#recentDisclosures.delete(key);
      }
    }
    if (disclosed.length === 0) return;
    await this.#access.store.transaction((trx) =>
      this.#access.audit(
        trx,
        disclosed.map((r) => ({
          ...this.#actor(principal),
          action: 'disclose' as const,
          objectKind: REPORT_KIND,
          objectId: r.id,
          ownerOrg: r.ownerOrg,
          details: { tlp: r.marking.tlp, username: principal.username },
        })),
      ),
    );
  }
}

function checkLocation(location: GeoPoint | null | undefined): void {
  if (location === undefined || location === null) return;
  const c = location.coordinates;
  const ok =
    location.type === 'Point' &&
    Array.isArray(c) &&
    (c.length === 2 || c.length === 3) &&
    c.every((x) => typeof x === 'number' && Number.isFinite(x)) &&
    Math.abs(c[0]) <= 180 &&
    Math.abs(c[1]) <= 90;
  if (!ok) {
    throw new AppError(
      'ACCESS_INVALID_INPUT',
      'location must be a GeoJSON Point [longitude, latitude] in WGS 84',
    );
  }
}

function reportFromRow(row: Row): Report {
  const marking: Marking = { tlp: row.tlp as Tlp, audience: row.audience as Marking['audience'] };
  if (row.pap) marking.pap = row.pap as Marking['pap'] & string;
  return {
    id: row.id,
    title: row.title,
    body: row.body,
    category: row.category,
    location: (row.location as GeoPoint | null) ?? null,
    marking,
    ownerOrg: row.owner_org,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
