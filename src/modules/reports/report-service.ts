/**
 * Reports: security information reports (title, body, category, optional GeoJSON point, marking), the
 * platform's own kind of shared object. Every decision is the sharing gate's: visibility is its SQL filter,
 * writes are its `create`/`update`/`remove` in the report's transaction (registry row and audit record with
 * it), reads from outside the owner organisation of AMBER, AMBER+STRICT and RED reports are its disclosures.
 */
import { AppError } from '../../kernel/errors.ts';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { EventOutbox } from '../../ports/event-outbox.ts';
import type { AnyDb } from '../../ports/store.ts';
import type { Marking, Tlp } from '../sharing/marking.ts';
import type { SharedObjectTables } from '../sharing/shared-object-registry.ts';
import type { GatePrincipal, SharingGate } from '../sharing/sharing-gate.ts';

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
 * The data of an event about a marked object (`report.created|updated|deleted`): enough for a live stream to
 * decide, with the one policy, who is told — nothing of the object's content.
 */
export interface ObjectChangeEvent {
  kind: string;
  id: string;
  ownerOrg: string;
  /** Who may see the object now ([] once deleted). */
  readKeys: string[];
  /** Who could see it before the change ([] when created). */
  previousReadKeys: string[];
  /** The object's marking after the change (before it, once deleted). */
  marking: Marking;
  /**
   * The marking before the change, when there was one: a live stream tells a reader who lost sight of the
   * object under the label it saw, never under the new one (absent: taken to be `marking`).
   */
  previousMarking?: Marking;
}

type ReportTables = SharedObjectTables & {
  report: {
    id: string;
    title: string;
    body: string;
    category: string;
    location: unknown;
    created_at: Date;
    updated_at: Date;
  };
};

type Row = ReportTables['report'] &
  Pick<
    SharedObjectTables['shared_object'],
    'owner_org' | 'created_by' | 'tlp' | 'pap' | 'audience' | 'read_keys'
  >;

/** The events this module emits (its part of the platform's event map, src/modules/events/event-map.ts). */
export type ReportEvents = {
  [REPORT_CREATED]: ObjectChangeEvent;
  [REPORT_UPDATED]: ObjectChangeEvent;
  [REPORT_DELETED]: ObjectChangeEvent;
};

export class ReportService {
  readonly #gate: SharingGate;
  readonly #events: EventOutbox<ReportEvents> | undefined;

  /** `events`: where changes are announced, in their transaction (none: not announced). */
  constructor(gate: SharingGate, events?: EventOutbox<ReportEvents>) {
    this.#gate = gate;
    this.#events = events;
    gate.defineKind(REPORT_KIND, {
      label: 'report',
      load: async (ref) => {
        const row = await this.#select(gate.store.db).where('r.id', '=', ref.id).executeTakeFirst();
        return row ? reportFromRow(row) : null;
      },
    });
  }

  #select(db: AnyDb) {
    return db
      .withTables<ReportTables>()
      .selectFrom('report as r')
      .innerJoin('shared_object as s', (j) =>
        j.onRef('s.id', '=', 'r.id').on('s.kind', '=', REPORT_KIND).on('s.scope', '=', ''),
      )
      .select([
        'r.id',
        'r.title',
        'r.body',
        'r.category',
        'r.location',
        'r.created_at',
        'r.updated_at',
        's.owner_org',
        's.created_by',
        's.tlp',
        's.pap',
        's.audience',
        's.read_keys',
      ]);
  }

  async create(principal: GatePrincipal, input: ReportInput): Promise<Report> {
    checkLocation(input.location);
    const id = newTimeOrderedId(this.#gate.clock.now().getTime());
    const now = this.#gate.clock.now();
    await this.#gate.store.transaction(async (trx) => {
      await this.#gate.create(trx, principal, {
        kind: REPORT_KIND,
        id,
        marking: input.marking,
        details: { category: input.category },
      });
      await trx
        .withTables<ReportTables>()
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
      await this.#changed(trx, REPORT_CREATED, await this.#mustGet(trx, id), undefined);
    });
    return this.#mustGet(this.#gate.store.db, id);
  }

  /** One report, or ACCESS_OBJECT_NOT_FOUND when it does not exist or the principal may not see it. */
  async get(principal: GatePrincipal, id: string): Promise<Report> {
    const row = await this.#visible(principal).where('r.id', '=', id).executeTakeFirst();
    if (!row) throw this.#gate.notFound(REPORT_KIND, id);
    const report = reportFromRow(row);
    await this.#gate.recordDisclosures(principal, REPORT_KIND, [report]);
    return report;
  }

  async list(principal: GatePrincipal, q: ReportQuery = {}): Promise<Report[]> {
    let query = this.#visible(principal);
    if (q.before) query = query.where('r.id', '<', q.before);
    if (q.category) query = query.where('r.category', '=', q.category);
    if (q.ownerOrg) query = query.where('s.owner_org', '=', q.ownerOrg);
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    const rows = await query.orderBy('r.id', 'desc').limit(limit).execute();
    const reports = rows.map(reportFromRow);
    await this.#gate.recordDisclosures(principal, REPORT_KIND, reports);
    return reports;
  }

  async update(principal: GatePrincipal, id: string, patch: ReportPatch): Promise<Report> {
    checkLocation(patch.location);
    let previous: Report | undefined;
    await this.#gate.store.transaction(async (trx) => {
      const current = (await this.#locked(trx, id)) ?? this.#absent(id);
      previous = current;
      const set: Partial<ReportTables['report']> = { updated_at: this.#gate.clock.now() };
      const fields: string[] = [];
      for (const k of ['title', 'body', 'category'] as const) {
        const v = patch[k];
        if (v !== undefined && v !== current[k]) {
          set[k] = v;
          fields.push(k);
        }
      }
      if (
        patch.location !== undefined &&
        JSON.stringify(patch.location) !== JSON.stringify(current.location)
      ) {
        set.location = patch.location ? JSON.stringify(patch.location) : null;
        fields.push('location');
      }
      await this.#gate.update(trx, principal, {
        kind: REPORT_KIND,
        current,
        marking: patch.marking,
        fields,
      });
      await trx.withTables<ReportTables>().updateTable('report').set(set).where('id', '=', id).execute();
      await this.#changed(trx, REPORT_UPDATED, await this.#mustGet(trx, id), previous);
    });
    return this.#mustGet(this.#gate.store.db, id);
  }

  async remove(principal: GatePrincipal, id: string): Promise<void> {
    await this.#gate.store.transaction(async (trx) => {
      const current = await this.#locked(trx, id);
      await this.#gate.remove(trx, principal, { kind: REPORT_KIND, current: current ?? this.#absent(id) });
      await trx.withTables<ReportTables>().deleteFrom('report').where('id', '=', id).execute();
      if (current) await this.#changed(trx, REPORT_DELETED, undefined, current);
    });
  }

  /** A missing report, to the gate: invisible to everyone, so a write answers exactly as for an invisible one. */
  #absent(id: string): Report {
    return {
      id,
      title: '',
      body: '',
      category: '',
      location: null,
      marking: { tlp: 'RED', audience: { orgs: [], communities: [], users: [] } },
      ownerOrg: '',
      createdBy: '',
      createdAt: '',
      updatedAt: '',
    };
  }

  /**
   * Tells live streams that a report changed: its id and who may see it now and before (read keys), never its
   * content — a stream client reads the report through the API, under the policy.
   */
  async #changed(
    trx: AnyDb,
    type: keyof ReportEvents,
    now: Report | undefined,
    before: Report | undefined,
  ): Promise<void> {
    const r = (now ?? before) as Report;
    await this.#events?.emit(trx, type, {
      kind: REPORT_KIND,
      id: r.id,
      ownerOrg: r.ownerOrg,
      readKeys: now ? this.#gate.keysOf(now) : [],
      previousReadKeys: before ? this.#gate.keysOf(before) : [],
      marking: r.marking,
      ...(before ? { previousMarking: before.marking } : {}),
    });
  }

  #visible(principal: GatePrincipal) {
    return this.#select(this.#gate.store.db).where(this.#gate.visibleWhere(principal, 's.read_keys'));
  }

  /** The report's row, locked for the write (undefined when absent: the gate answers as for invisible). */
  async #locked(trx: AnyDb, id: string): Promise<Report | undefined> {
    const row = await this.#select(trx).where('r.id', '=', id).forUpdate().executeTakeFirst();
    return row ? reportFromRow(row) : undefined;
  }

  async #mustGet(db: AnyDb, id: string): Promise<Report> {
    const row = await this.#select(db).where('r.id', '=', id).executeTakeFirst();
    if (!row) throw this.#gate.notFound(REPORT_KIND, id);
    return reportFromRow(row);
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
