/**
 * Alerts are NGSI-LD `Alert` entities (Smart Data Models, dataModel.Alert) written through the context
 * module's writer, so the sharing gate decides and audits them like every entity and they reach
 * subscriptions, `/api/stream` and the web app as they are. Detection adds its own attributes: status,
 * dismissReason, sourceRule, ruleVersion, evidence, organisation, and the hand-off of a promotion.
 *
 * - Raised by a rule: owned by the rule's organisation, created on behalf of the rule's author, marked from
 *   its sources (alert-marking.ts). One cause is one alert: the entity id is derived from the rule and the
 *   engine's deduplication key, so a re-raised alert updates the same entity (new evidence, a new marking
 *   when the evidence changed it) instead of adding one; its status is kept.
 * - Acted on by people (acknowledge, dismiss, promote): an update of the entity as the caller, decided by the
 *   gate like any entity write — a writing role (admin, operator, analyst) of the alert's owner organisation
 *   who can see it (docs/detection.md, "Alerts"). The status moves forward only: new → acknowledged →
 *   dismissed | promoted; dismissed and promoted are final.
 */
import { createHash } from 'node:crypto';
import { AppError, isAppError } from '../../kernel/errors.ts';
import type { Store } from '../../ports/store.ts';
import type { ActiveContext, Caller, ContextService, EntityView, LdContext } from '../context/index.ts';
import type { GatePrincipal, Marking, SharingGate } from '../sharing/index.ts';
import { alertMarking, type MarkingSource } from './alert-marking.ts';
import type { DetectionLiveTables } from './migrations.ts';
import type { RuleRecord } from './rule-service.ts';

const SDM = 'https://smartdatamodels.org/dataModel.Alert/';
const OURS = 'https://safecity-hub.example/ns/detection#';

/** The @context alerts are written and answered with: Smart Data Models terms and detection's own. */
export const ALERT_CONTEXT: Record<string, string> = {
  Alert: `${SDM}Alert`,
  category: `${SDM}category`,
  subCategory: `${SDM}subCategory`,
  severity: `${SDM}severity`,
  alertSource: `${SDM}alertSource`,
  dateIssued: `${SDM}dateIssued`,
  validFrom: `${SDM}validFrom`,
  validTo: `${SDM}validTo`,
  description: 'https://uri.etsi.org/ngsi-ld/description',
  status: `${OURS}status`,
  dismissReason: `${OURS}dismissReason`,
  sourceRule: `${OURS}sourceRule`,
  ruleVersion: `${OURS}ruleVersion`,
  evidence: `${OURS}evidence`,
  organisation: `${OURS}organisation`,
  statusChangedBy: `${OURS}statusChangedBy`,
  statusChangedAt: `${OURS}statusChangedAt`,
  promotionNote: `${OURS}promotionNote`,
};
export const ALERT_TYPE = `${SDM}Alert`;

export const ALERT_STATUSES = ['new', 'acknowledged', 'dismissed', 'promoted'] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];
export const ALERT_SEVERITIES = ['informational', 'low', 'medium', 'high', 'critical'] as const;
export const ALERT_CATEGORIES = [
  'security',
  'fire',
  'crowd',
  'traffic',
  'health',
  'environment',
  'cyber',
  'infrastructure',
] as const;

/** One piece of evidence: what was observed, of which entity, when — and who owns it and how it is marked. */
export interface Evidence {
  entityId: string;
  entityType?: string | undefined;
  attribute?: string | undefined;
  value?: unknown;
  observedAt?: string | undefined;
  ownerOrg: string;
  marking: Marking;
}

/** What the engine asks of the alerts: raise (or re-raise) one cause's alert, or clear it. */
export interface AlertSignal {
  kind: 'raise' | 'update' | 'clear';
  rule: Pick<RuleRecord, 'id' | 'version' | 'name' | 'ownerOrg' | 'createdBy' | 'marking'>;
  /** The alert's key within the rule (the engine's, the same for the alert's whole life). */
  key: string;
  /** What the rule deduplicates on (an entity, a group, a cluster). */
  cause: string;
  at: string;
  severity: string;
  category: string;
  subCategory?: string | undefined;
  description?: string | undefined;
  /** GeoJSON geometry of the alert (usually the evidence's location). */
  location?: unknown;
  evidence: Evidence[];
  /** Sources the alert had beyond its evidence (dropped evidence): its marking never loosens. */
  sources?: { ownerOrg?: string | undefined; marking: Marking }[] | undefined;
}

/** An alert as /api/alerts answers it. */
export interface AlertRecord {
  id: string;
  category: string | null;
  subCategory: string | null;
  severity: string | null;
  alertSource: string | null;
  dateIssued: string | null;
  validTo: string | null;
  location: unknown;
  description: string | null;
  status: AlertStatus;
  dismissReason: string | null;
  sourceRule: string | null;
  ruleVersion: number | null;
  evidence: unknown[];
  organisation: string;
  statusChangedBy: string | null;
  statusChangedAt: string | null;
  promotionNote: string | null;
  ownerOrg: string;
  marking: Marking;
}

export interface AlertQuery {
  severity?: string | undefined;
  category?: string | undefined;
  status?: AlertStatus | undefined;
  organisation?: string | undefined;
  since?: string | undefined;
  limit?: number | undefined;
}

/** The principal of an API request: who, with what keys and default marking. */
export type AlertCaller = GatePrincipal & { defaultMarking: Marking };

export interface AlertServiceOptions {
  store: Store;
  gate: SharingGate;
  context: Pick<
    ContextService,
    'resolveContext' | 'getEntity' | 'queryEntities' | 'batchUpsert' | 'mergeEntity' | 'compactEntity'
  >;
}

/** The entity id of an alert: stable for the rule and key, opaque (the key may hold entity ids). */
export function alertIdFor(ruleId: string, key: string): string {
  const h = createHash('sha256').update(`${ruleId}\u0000${key}`).digest('hex').slice(0, 24);
  return `urn:ngsi-ld:Alert:safecity:${ruleId}:${h}`;
}

const TRANSITIONS: Record<AlertStatus, readonly AlertStatus[]> = {
  new: ['acknowledged', 'dismissed', 'promoted'],
  acknowledged: ['dismissed', 'promoted'],
  dismissed: [],
  promoted: [],
};

export class AlertService {
  readonly #o: AlertServiceOptions;
  #ctx: Promise<ActiveContext> | undefined;

  constructor(o: AlertServiceOptions) {
    this.#o = o;
  }

  #context(): Promise<ActiveContext> {
    this.#ctx ??= this.#o.context.resolveContext(ALERT_CONTEXT as LdContext);
    return this.#ctx;
  }

  /** The caller the platform writes a rule's alerts as: the rule's author, in its organisation, reading with its keys. */
  async #ruleCaller(rule: AlertSignal['rule'], marking: Marking): Promise<Caller> {
    const readKeys = [...(await this.#o.gate.orgReadKeys(rule.ownerOrg)), `user:${rule.createdBy}`];
    return {
      tenant: '',
      principal: { userId: rule.createdBy, orgId: rule.ownerOrg, roles: ['operator'] },
      readKeys,
      defaultMarking: marking,
    };
  }

  /**
   * The marking an alert of this rule gets from its evidence and earlier sources. A source whose owner is
   * not known counts as owned by nobody: only its audience is taken as its readers (tighter, never wider).
   */
  markingFor(
    rule: AlertSignal['rule'],
    evidence: readonly Evidence[],
    earlier: AlertSignal['sources'] = [],
  ): Marking {
    const sources: MarkingSource[] = [
      { ownerOrg: rule.ownerOrg, marking: rule.marking },
      ...evidence.map((e) => ({ ownerOrg: e.ownerOrg, marking: e.marking })),
      ...earlier.map((e) => ({ ownerOrg: e.ownerOrg ?? '', marking: e.marking })),
    ];
    return alertMarking(rule.ownerOrg, sources);
  }

  /**
   * Writes what a signal asks: a new alert, the same alert updated (status kept), or its validity ended.
   * Returns the alert's id.
   */
  async apply(signal: AlertSignal): Promise<string> {
    const ctx = await this.#context();
    const marking = this.markingFor(signal.rule, signal.evidence, signal.sources);
    const caller = await this.#ruleCaller(signal.rule, marking);
    const read = async (id: string): Promise<EntityView | undefined> => {
      try {
        return await this.#o.context.getEntity(caller, id);
      } catch (e) {
        if (isAppError(e) && e.code === 'CONTEXT_ENTITY_NOT_FOUND') return undefined;
        throw e;
      }
    };
    // One cause, one open alert: the cause's own id while its alert is open, whatever the engine's state
    // (a state restored from an older checkpoint raises the same cause again: it updates the open alert).
    // A cause that comes back after its alert was closed (cleared, dismissed, promoted) is a new alert, named
    // by the engine's key for it.
    const primary = alertIdFor(signal.rule.id, signal.cause);
    const secondary = alertIdFor(signal.rule.id, `${signal.cause}\u0000${signal.key}`);
    let id = primary;
    let existing = await read(secondary);
    if (existing) id = secondary;
    else {
      existing = await read(primary);
      if (existing && signal.kind === 'raise' && (await this.#closed(existing))) {
        id = secondary;
        existing = undefined;
      }
    }
    if (signal.kind === 'clear') {
      if (!existing) return id;
      await this.#write(caller, ctx, { id, type: 'Alert', validTo: dateTime(signal.at) });
      return id;
    }
    const body: Record<string, unknown> = {
      id,
      type: 'Alert',
      category: prop(signal.category),
      severity: prop(signal.severity),
      alertSource: prop(`urn:safecity:rule:${signal.rule.id}`),
      description: prop((signal.description ?? signal.rule.name).slice(0, 2000)),
      sourceRule: prop(signal.rule.id),
      ruleVersion: prop(signal.rule.version),
      organisation: prop(signal.rule.ownerOrg),
      evidence: prop(
        signal.evidence.map((e) => ({
          entityId: e.entityId,
          ...(e.entityType ? { entityType: e.entityType } : {}),
          ...(e.attribute ? { attribute: e.attribute } : {}),
          ...(e.value !== undefined ? { value: e.value } : {}),
          ...(e.observedAt ? { observedAt: e.observedAt } : {}),
        })),
      ),
      marking: { type: 'Property', value: marking },
    };
    if (signal.subCategory) body.subCategory = prop(signal.subCategory);
    if (signal.location) body.location = { type: 'GeoProperty', value: signal.location };
    if (!existing) {
      body.status = prop('new');
      body.dateIssued = dateTime(signal.at);
      body.validFrom = dateTime(signal.at);
    }
    await this.#write(caller, ctx, body);
    return id;
  }

  /** An alert is closed once its cause ended (validTo) or people closed it (dismissed, promoted). */
  async #closed(view: EntityView): Promise<boolean> {
    const a = await this.#record(view);
    return a.validTo !== null || a.status === 'dismissed' || a.status === 'promoted';
  }

  async #write(caller: Caller, ctx: ActiveContext, body: Record<string, unknown>): Promise<void> {
    const result = await this.#o.context.batchUpsert(caller, [{ body, ctx }], 'update');
    const failed = result.errors[0];
    if (failed) {
      throw new AppError(
        'DETECTION_ALERT_WRITE_FAILED',
        `the alert ${body.id} could not be written: ${failed.error.message}`,
      );
    }
  }

  // ------------------------------------------------------------------------------------------ people

  #caller(p: AlertCaller): Caller {
    return {
      tenant: '',
      principal: { userId: p.userId, orgId: p.orgId, roles: p.roles, username: p.username },
      readKeys: [...p.readKeys],
      defaultMarking: p.defaultMarking,
    };
  }

  async list(p: AlertCaller, q: AlertQuery = {}): Promise<AlertRecord[]> {
    const ctx = await this.#context();
    const terms: string[] = [];
    const text = (s: string) => JSON.stringify(s);
    if (q.severity) terms.push(`severity==${text(q.severity)}`);
    if (q.category) terms.push(`category==${text(q.category)}`);
    if (q.status) terms.push(`status==${text(q.status)}`);
    if (q.organisation) terms.push(`organisation==${text(q.organisation)}`);
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    const since = q.since ? Date.parse(q.since) : undefined;
    const answer = await this.#o.context.queryEntities(
      this.#caller(p),
      { type: 'Alert', ...(terms.length > 0 ? { q: terms.join(';') } : {}), limit: 1000 },
      ctx,
    );
    const alerts: AlertRecord[] = [];
    for (const view of answer.items) {
      const a = await this.#record(view);
      if (since !== undefined && !(a.dateIssued && Date.parse(a.dateIssued) >= since)) continue;
      alerts.push(a);
    }
    // Newest first.
    alerts.sort((x, y) => (y.dateIssued ?? '').localeCompare(x.dateIssued ?? '') || y.id.localeCompare(x.id));
    return alerts.slice(0, limit);
  }

  async get(p: AlertCaller, id: string): Promise<AlertRecord> {
    return this.#record(await this.#view(p, id));
  }

  async #view(p: AlertCaller, id: string): Promise<EntityView> {
    try {
      const view = await this.#o.context.getEntity(this.#caller(p), id);
      if (!typesOf(view.entity).includes(ALERT_TYPE)) throw alertNotFound(id);
      return view;
    } catch (e) {
      if (isAppError(e) && e.code === 'CONTEXT_ENTITY_NOT_FOUND') throw alertNotFound(id);
      throw e;
    }
  }

  acknowledge(p: AlertCaller, id: string): Promise<AlertRecord> {
    return this.#move(p, id, 'acknowledged', {});
  }

  dismiss(p: AlertCaller, id: string, reason: string): Promise<AlertRecord> {
    const why = reason.trim();
    if (why.length === 0) throw new AppError('DETECTION_INVALID_INPUT', 'dismissing an alert needs a reason');
    return this.#move(p, id, 'dismissed', { dismissReason: prop(why.slice(0, 2000)) });
  }

  /**
   * Promotes an alert: its status becomes `promoted` and a hand-off is recorded for the incidents module to
   * take (detection_alert_handoff). The entity is written in the context module's transaction and the
   * hand-off after it, so promoting is idempotent: promoting a promoted alert again (a client retrying after
   * a failure between the two) records the missing hand-off and answers the alert.
   */
  async promote(p: AlertCaller, id: string, note: string): Promise<AlertRecord> {
    const view = await this.#view(p, id);
    this.#o.gate.checkChange(p, 'entity', {
      id,
      scope: '',
      ownerOrg: view.ownerOrg,
      createdBy: view.createdBy,
      marking: view.marking,
    });
    const already = await this.#record(view);
    const record =
      already.status === 'promoted'
        ? already
        : await this.#move(p, id, 'promoted', note ? { promotionNote: prop(note.slice(0, 2000)) } : {});
    await this.#o.store.db
      .withTables<DetectionLiveTables>()
      .insertInto('detection_alert_handoff')
      .values({
        alert_id: id,
        tenant: '',
        owner_org: record.ownerOrg,
        promoted_by: p.userId,
        note: note.slice(0, 2000),
        at: new Date(record.statusChangedAt ?? Date.now()),
        taken_at: null,
      })
      .onConflict((oc) => oc.columns(['tenant', 'alert_id']).doNothing())
      .execute();
    return record;
  }

  async #move(
    p: AlertCaller,
    id: string,
    next: AlertStatus,
    extra: Record<string, unknown>,
  ): Promise<AlertRecord> {
    const view = await this.#view(p, id);
    // The gate decides first (visible, writing role, owner organisation): a caller who may not change the
    // alert learns nothing about its status.
    this.#o.gate.checkChange(p, 'entity', {
      id,
      scope: '',
      ownerOrg: view.ownerOrg,
      createdBy: view.createdBy,
      marking: view.marking,
    });
    const current = (await this.#record(view)).status;
    if (!TRANSITIONS[current].includes(next)) {
      throw new AppError(
        'DETECTION_ALERT_STATUS_CONFLICT',
        `an alert that is ${current} cannot become ${next}`,
        {
          status: current,
        },
      );
    }
    const ctx = await this.#context();
    const at = new Date().toISOString();
    await this.#o.context.mergeEntity(
      this.#caller(p),
      id,
      {
        status: prop(next),
        statusChangedBy: prop(p.username ?? p.userId),
        statusChangedAt: dateTime(at),
        ...extra,
      },
      ctx,
    );
    return this.get(p, id);
  }

  async #record(view: EntityView): Promise<AlertRecord> {
    const c = (await this.#o.context.compactEntity(
      view.entity as { id: string; type: string | string[] },
      ALERT_CONTEXT as LdContext,
      'keyValues',
    )) as Record<string, unknown>;
    const str = (k: string) => {
      const v = c[k];
      return typeof v === 'string'
        ? v
        : v && typeof v === 'object' && '@value' in v
          ? String((v as { '@value': unknown })['@value'])
          : null;
    };
    const status = str('status');
    const evidence = c.evidence;
    const version = c.ruleVersion;
    return {
      id: view.entity.id as string,
      category: str('category'),
      subCategory: str('subCategory'),
      severity: str('severity'),
      alertSource: str('alertSource'),
      dateIssued: str('dateIssued'),
      validTo: str('validTo'),
      location: c.location ?? null,
      description: str('description'),
      status: (ALERT_STATUSES as readonly string[]).includes(status ?? '') ? (status as AlertStatus) : 'new',
      dismissReason: str('dismissReason'),
      sourceRule: str('sourceRule'),
      ruleVersion: typeof version === 'number' ? version : null,
      evidence: Array.isArray(evidence) ? evidence : evidence ? [evidence] : [],
      organisation: str('organisation') ?? view.ownerOrg,
      statusChangedBy: str('statusChangedBy'),
      statusChangedAt: str('statusChangedAt'),
      promotionNote: str('promotionNote'),
      ownerOrg: view.ownerOrg,
      marking: view.marking,
    };
  }
}

function prop(value: unknown): { type: 'Property'; value: unknown } {
  return { type: 'Property', value };
}

function dateTime(iso: string): { type: 'Property'; value: { '@type': 'DateTime'; '@value': string } } {
  return { type: 'Property', value: { '@type': 'DateTime', '@value': iso } };
}

function typesOf(entity: { type?: unknown; '@type'?: unknown }): string[] {
  const t = entity.type ?? entity['@type'];
  return Array.isArray(t) ? (t as string[]) : typeof t === 'string' ? [t] : [];
}

export function alertNotFound(id: string): AppError {
  return new AppError('DETECTION_ALERT_NOT_FOUND', `no alert ${id}`);
}
