/**
 * Detection rules as marked objects of the sharing gate (kind `rule`): owned by an organisation, marked
 * (TLP, PAP, audience), every change decided and audited by the gate in the transaction that writes it.
 * Every change of a rule's document is kept as a new version (`detection_rule_version`); an old version is
 * restored by writing it again as the newest. Rules are validated by the detection engine's rule language
 * (injected: `validate`) before anything is written, so an invalid rule leaves nothing half-written.
 */
import type { Kysely } from 'kysely';
import { AppError, isAppError } from '../../kernel/errors.ts';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { EventOutbox } from '../../ports/event-outbox.ts';
import type { AnyDb } from '../../ports/store.ts';
import type { CurrentObject, GatePrincipal, Marking, SharingGate, Tlp } from '../sharing/index.ts';
import type { DetectionLiveTables } from './migrations.ts';

export const RULE_KIND = 'rule';

export const RULE_CREATED = 'detection.rule.created';
export const RULE_UPDATED = 'detection.rule.updated';
export const RULE_DELETED = 'detection.rule.deleted';

/**
 * The data of `detection.rule.*`: an object change as every marked object announces it (live streams decide
 * who is told with the gate), nothing of the rule's content. Other instances reload the rule from the store.
 */
export interface RuleChangeEvent {
  kind: typeof RULE_KIND;
  id: string;
  ownerOrg: string;
  readKeys: string[];
  previousReadKeys: string[];
  marking: Marking;
  previousMarking?: Marking;
  /** The rule's version after the change (before it, once deleted). */
  version: number;
}

/** The events this module emits (its part of the platform's event map). */
export type DetectionLiveEvents = {
  [RULE_CREATED]: RuleChangeEvent;
  [RULE_UPDATED]: RuleChangeEvent;
  [RULE_DELETED]: RuleChangeEvent;
};

/** One problem of a rule document: where (a JSON path such as `when.threshold.above`) and why. */
export interface RuleProblem {
  path: string;
  reason: string;
}

/** The rule language's validator (the detection engine's `validateRule`). */
export type RuleValidator = (
  doc: unknown,
) => { ok: true; rule: unknown } | { ok: false; errors: RuleProblem[] };

export interface RuleRecord {
  id: string;
  name: string;
  version: number;
  enabled: boolean;
  /** The rule document of the current version, as written. */
  rule: unknown;
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
  /** Why the engine suspended the rule (a limit exceeded, a failure at run time); null while it runs. */
  suspendedReason: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface RuleVersion {
  ruleId: string;
  version: number;
  rule: unknown;
  author: string;
  at: string;
  change: 'created' | 'updated' | 'restored';
  restoredFrom: number | null;
}

export interface RuleInput {
  rule: unknown;
  marking?: unknown;
  enabled?: boolean | undefined;
}

export interface RulePatch {
  rule?: unknown;
  marking?: unknown;
  enabled?: boolean | undefined;
}

export interface RuleQuery {
  enabled?: boolean | undefined;
  ownerOrg?: string | undefined;
  /** Rules older than this id (ids are time-ordered): the next page. */
  before?: string | undefined;
  limit?: number | undefined;
}

type Row = DetectionLiveTables['detection_rule'];
type Db = Kysely<DetectionLiveTables>;

export interface RuleServiceOptions {
  gate: SharingGate;
  validate: RuleValidator;
  events?: EventOutbox<DetectionLiveEvents> | undefined;
}

export class RuleService {
  readonly #gate: SharingGate;
  readonly #validate: RuleValidator;
  readonly #events: EventOutbox<DetectionLiveEvents> | undefined;

  constructor(o: RuleServiceOptions) {
    this.#gate = o.gate;
    this.#validate = o.validate;
    this.#events = o.events;
    this.#gate.defineKind(RULE_KIND, {
      label: 'rule',
      load: async (ref) => {
        const row = await this.#db()
          .selectFrom('detection_rule')
          .selectAll()
          .where('id', '=', ref.id)
          .executeTakeFirst();
        return row ? ruleFromRow(row) : null;
      },
    });
  }

  #db(db: AnyDb = this.#gate.store.db): Db {
    return db.withTables<DetectionLiveTables>();
  }

  /** Validates a rule document: the rule language's verdict, or DETECTION_RULE_INVALID with every problem. */
  check(doc: unknown): unknown {
    const verdict = this.#validate(doc);
    if (!verdict.ok) {
      const first = verdict.errors[0];
      throw new AppError(
        'DETECTION_RULE_INVALID',
        first
          ? `the rule is invalid: ${first.path || '(document)'}: ${first.reason}${verdict.errors.length > 1 ? ` (and ${verdict.errors.length - 1} more)` : ''}`
          : 'the rule is invalid',
        { errors: verdict.errors },
      );
    }
    return verdict.rule;
  }

  async create(p: GatePrincipal, input: RuleInput): Promise<RuleRecord> {
    // The role first: someone who may not write rules learns nothing about the document's validity.
    this.#gate.checkCreate(p, RULE_KIND);
    this.check(input.rule);
    const now = this.#gate.clock.now();
    const id = newTimeOrderedId(now.getTime());
    return this.#gate.store.transaction(async (trx) => {
      const r = await this.#gate.create(trx, p, {
        kind: RULE_KIND,
        id,
        marking: input.marking,
        details: { version: 1 },
      });
      const row: Row = {
        id,
        name: nameOf(input.rule, id),
        version: 1,
        enabled: input.enabled ?? true,
        body: input.rule,
        owner_org: r.ownerOrg,
        created_by: r.createdBy,
        tlp: r.marking.tlp,
        pap: r.marking.pap ?? null,
        audience: r.marking.audience,
        read_keys: r.readKeys,
        incarnation: r.incarnation,
        suspended_reason: null,
        created_at: now,
        updated_at: now,
      };
      await this.#db(trx)
        .insertInto('detection_rule')
        .values({ ...row, body: JSON.stringify(row.body), audience: JSON.stringify(row.audience) })
        .execute();
      await this.#addVersion(trx, id, 1, input.rule, p.userId, 'created', null);
      await this.#changed(trx, RULE_CREATED, row, undefined);
      return ruleFromRow(row);
    });
  }

  /** One rule, or DETECTION_RULE_NOT_FOUND when it does not exist or the principal may not see it. */
  async get(p: GatePrincipal, id: string): Promise<RuleRecord> {
    const row = await this.#visible(p).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(id);
    const rule = ruleFromRow(row);
    await this.#gate.recordDisclosures(p, RULE_KIND, [rule]);
    return rule;
  }

  async list(p: GatePrincipal, q: RuleQuery = {}): Promise<RuleRecord[]> {
    let query = this.#visible(p);
    if (q.enabled !== undefined) query = query.where('enabled', '=', q.enabled);
    if (q.ownerOrg) query = query.where('owner_org', '=', q.ownerOrg);
    if (q.before) query = query.where('id', '<', q.before);
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    const rules = (await query.orderBy('id', 'desc').limit(limit).execute()).map(ruleFromRow);
    await this.#gate.recordDisclosures(p, RULE_KIND, rules);
    return rules;
  }

  /**
   * Changes a rule: a new document is a new version; the marking and `enabled` are changed at the gate like
   * any object's (writers of the owner organisation who can see it; a TLP:RED rule's marking only by its
   * creator). A rule enabled again runs again (its suspension is lifted).
   */
  async update(p: GatePrincipal, id: string, patch: RulePatch): Promise<RuleRecord> {
    return this.#change(p, id, (current) => ({
      rule: patch.rule,
      marking: patch.marking,
      enabled: patch.enabled,
      change: 'updated' as const,
      restoredFrom: null,
      current,
    }));
  }

  async setEnabled(p: GatePrincipal, id: string, enabled: boolean): Promise<RuleRecord> {
    return this.update(p, id, { enabled });
  }

  /** Restores an old version: a new version with its document (the history keeps everything in between). */
  async restore(p: GatePrincipal, id: string, version: number): Promise<RuleRecord> {
    return this.#change(p, id, async (current, trx) => {
      const old = await this.#db(trx)
        .selectFrom('detection_rule_version')
        .selectAll()
        .where('rule_id', '=', id)
        .where('version', '=', version)
        .executeTakeFirst();
      if (!old) throw versionNotFound(id, version);
      return {
        rule: old?.body,
        marking: undefined,
        enabled: undefined,
        change: 'restored' as const,
        restoredFrom: version,
        current,
      };
    });
  }

  async #change(
    p: GatePrincipal,
    id: string,
    plan: (
      current: CurrentObject,
      trx: AnyDb,
    ) =>
      | Promise<{
          rule: unknown;
          marking: unknown;
          enabled: boolean | undefined;
          change: 'updated' | 'restored';
          restoredFrom: number | null;
          current: CurrentObject;
        }>
      | {
          rule: unknown;
          marking: unknown;
          enabled: boolean | undefined;
          change: 'updated' | 'restored';
          restoredFrom: number | null;
          current: CurrentObject;
        },
  ): Promise<RuleRecord> {
    return this.#gate.store.transaction(async (trx) => {
      const row = await this.#locked(trx, id);
      const current = row ? currentObject(row) : absent(id);
      // Visibility, role and owner before the document is looked at.
      try {
        this.#gate.checkChange(p, RULE_KIND, current);
      } catch (e) {
        throw ruleAbsent(e, id);
      }
      if (!row) throw notFound(id);
      const step = await plan(current, trx);
      const fields: string[] = [];
      const set: Partial<Row> = { updated_at: this.#gate.clock.now() };
      let version = row.version;
      if (step.rule !== undefined) {
        this.check(step.rule);
        if (step.change === 'restored' || canonical(step.rule) !== canonical(row.body)) {
          version = row.version + 1;
          set.version = version;
          set.body = JSON.stringify(step.rule);
          set.name = nameOf(step.rule, id);
          // A new document runs afresh: a suspension was about the old one.
          set.suspended_reason = null;
          fields.push('rule');
        }
      }
      if (step.enabled !== undefined && step.enabled !== row.enabled) {
        set.enabled = step.enabled;
        if (step.enabled) set.suspended_reason = null;
        fields.push('enabled');
      }
      const decided = await this.#gate.update(trx, p, {
        kind: RULE_KIND,
        current,
        marking: step.marking,
        fields,
      });
      if (decided.markingChanged) {
        set.tlp = decided.marking.tlp;
        set.pap = decided.marking.pap ?? null;
        set.audience = JSON.stringify(decided.marking.audience);
        set.read_keys = decided.readKeys;
      }
      await this.#db(trx).updateTable('detection_rule').set(set).where('id', '=', id).execute();
      if (version !== row.version) {
        await this.#addVersion(trx, id, version, step.rule, p.userId, step.change, step.restoredFrom);
      }
      const after = (await this.#locked(trx, id)) as Row;
      if (fields.length > 0 || decided.markingChanged) await this.#changed(trx, RULE_UPDATED, after, row);
      return ruleFromRow(after);
    });
  }

  async remove(p: GatePrincipal, id: string): Promise<void> {
    await this.#gate.store.transaction(async (trx) => {
      const row = await this.#locked(trx, id);
      try {
        await this.#gate.remove(trx, p, { kind: RULE_KIND, current: row ? currentObject(row) : absent(id) });
      } catch (e) {
        throw ruleAbsent(e, id);
      }
      if (!row) throw notFound(id);
      const db = this.#db(trx);
      await db.deleteFrom('detection_rule_version').where('rule_id', '=', id).execute();
      await db.deleteFrom('detection_rule').where('id', '=', id).execute();
      await this.#changed(trx, RULE_DELETED, undefined, row);
    });
  }

  /** Every version of a rule the principal may see, newest first. */
  async versions(p: GatePrincipal, id: string): Promise<RuleVersion[]> {
    await this.get(p, id);
    const rows = await this.#db()
      .selectFrom('detection_rule_version')
      .selectAll()
      .where('rule_id', '=', id)
      .orderBy('version', 'desc')
      .execute();
    return rows.map(versionFromRow);
  }

  async version(p: GatePrincipal, id: string, version: number): Promise<RuleVersion> {
    await this.get(p, id);
    const row = await this.#db()
      .selectFrom('detection_rule_version')
      .selectAll()
      .where('rule_id', '=', id)
      .where('version', '=', version)
      .executeTakeFirst();
    if (!row) throw versionNotFound(id, version);
    return versionFromRow(row);
  }

  // ------------------------------------------------------------------- the platform's own reads and acts

  /** Every enabled rule that is not suspended (what the engine runs), whoever owns it. */
  async running(): Promise<RuleRecord[]> {
    const rows = await this.#db()
      .selectFrom('detection_rule')
      .selectAll()
      .where('enabled', '=', true)
      .where('suspended_reason', 'is', null)
      .orderBy('id')
      .execute();
    return rows.map(ruleFromRow);
  }

  /** One rule whatever its marking (the engine's reload after an event), or undefined. */
  async load(id: string): Promise<RuleRecord | undefined> {
    const row = await this.#db()
      .selectFrom('detection_rule')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? ruleFromRow(row) : undefined;
  }

  /**
   * Suspends a rule the engine gave up on (a limit exceeded, a failure at run time), as the platform's act:
   * audited at the gate as an update of `suspendedReason`, announced so every instance stops running it.
   */
  async suspend(id: string, version: number, reason: string): Promise<void> {
    await this.#gate.store.transaction(async (trx) => {
      const row = await this.#locked(trx, id);
      if (!row || row.version !== version || row.suspended_reason !== null) return;
      await this.#db(trx)
        .updateTable('detection_rule')
        .set({ suspended_reason: reason.slice(0, 1000), updated_at: this.#gate.clock.now() })
        .where('id', '=', id)
        .execute();
      await this.#gate.recordUpdated(trx, null, RULE_KIND, [
        { id, ownerOrg: row.owner_org, fields: ['suspendedReason'] },
      ]);
      await this.#changed(trx, RULE_UPDATED, { ...row, suspended_reason: reason }, row);
    });
  }

  #visible(p: GatePrincipal) {
    return this.#db().selectFrom('detection_rule').selectAll().where(this.#gate.visibleWhere(p, 'read_keys'));
  }

  async #locked(trx: AnyDb, id: string): Promise<Row | undefined> {
    return this.#db(trx)
      .selectFrom('detection_rule')
      .selectAll()
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst();
  }

  async #addVersion(
    trx: AnyDb,
    id: string,
    version: number,
    body: unknown,
    author: string,
    change: RuleVersion['change'],
    restoredFrom: number | null,
  ): Promise<void> {
    await this.#db(trx)
      .insertInto('detection_rule_version')
      .values({
        rule_id: id,
        version,
        body: JSON.stringify(body),
        author,
        at: this.#gate.clock.now(),
        change,
        restored_from: restoredFrom,
      })
      .execute();
  }

  async #changed(
    trx: AnyDb,
    type: keyof DetectionLiveEvents,
    now: Row | undefined,
    before: Row | undefined,
  ): Promise<void> {
    const r = (now ?? before) as Row;
    await this.#events?.emit(trx, type, {
      kind: RULE_KIND,
      id: r.id,
      ownerOrg: r.owner_org,
      readKeys: now ? [...now.read_keys] : [],
      previousReadKeys: before ? [...before.read_keys] : [],
      marking: markingOf(r),
      ...(before ? { previousMarking: markingOf(before) } : {}),
      version: r.version,
    });
  }
}

/** The name a rule is listed under: its document's `name`, else its id. */
function nameOf(doc: unknown, id: string): string {
  const name = (doc as { name?: unknown } | null)?.name;
  return typeof name === 'string' && name.trim() !== '' ? name.trim().slice(0, 300) : id;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function markingOf(row: Pick<Row, 'tlp' | 'pap' | 'audience'>): Marking {
  const m: Marking = { tlp: row.tlp as Tlp, audience: row.audience as Marking['audience'] };
  if (row.pap) m.pap = row.pap as NonNullable<Marking['pap']>;
  return m;
}

function ruleFromRow(row: Row): RuleRecord {
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    enabled: row.enabled,
    rule: typeof row.body === 'string' ? JSON.parse(row.body) : row.body,
    ownerOrg: row.owner_org,
    createdBy: row.created_by,
    marking: markingOf(row),
    suspendedReason: row.suspended_reason,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

function versionFromRow(row: DetectionLiveTables['detection_rule_version']): RuleVersion {
  return {
    ruleId: row.rule_id,
    version: row.version,
    rule: typeof row.body === 'string' ? JSON.parse(row.body) : row.body,
    author: row.author,
    at: new Date(row.at).toISOString(),
    change: row.change,
    restoredFrom: row.restored_from,
  };
}

function currentObject(row: Row): CurrentObject {
  return { id: row.id, ownerOrg: row.owner_org, createdBy: row.created_by, marking: markingOf(row) };
}

/** A missing rule, to the gate: invisible to everyone, so a write answers exactly as for an invisible one. */
function absent(id: string): CurrentObject {
  return {
    id,
    ownerOrg: '',
    createdBy: '',
    marking: { tlp: 'RED', audience: { orgs: [], communities: [], users: [] } },
  };
}

export function notFound(id: string): AppError {
  return new AppError('DETECTION_RULE_NOT_FOUND', `no rule ${id}`);
}

function versionNotFound(id: string, version: number): AppError {
  return new AppError('DETECTION_RULE_VERSION_NOT_FOUND', `rule ${id} has no version ${version}`);
}

/** The gate's "absent" answer about a rule, in the rule's own words. */
export function ruleAbsent(e: unknown, id: string): unknown {
  return isAppError(e) && e.code === 'ACCESS_OBJECT_NOT_FOUND' ? notFound(id) : e;
}
