/**
 * The temporal API's use cases (clause 5.7.3, 5.7.4): the history of entities' attributes in the
 * normalized, simplified (temporalValues) and aggregated temporal representations (clause 4.5.8, 4.5.9,
 * 4.5.19), limited to what the sharing gate lets the reader see: the entity's current incarnation under
 * its marking now, and each instance under the marking it was recorded with. Every answer comes with the
 * label of what it holds (`marking`, for the `SafeCity-Marking` header).
 *
 * Retention: an organisation keeps the history of its entities of a type as long as its administrators say
 * (a rule is the organisation's marked object at the gate: created, changed and removed by its `admin`
 * only, audited); entities no rule names keep the platform's default.
 */
import { sql } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import {
  compileUserPattern,
  type ExpandedEntity,
  matchesGeoQuery,
  matchesQuery,
  matchesScopeQuery,
  parseGeoQuery,
  parseQuery,
  renderAttributeValue,
} from '../context/index.ts';
import { type GatePrincipal, type Marking, markingLabel } from '../sharing/index.ts';
import type { ActiveLdContext, JsonLdContext, LdContextPort, LiveGate } from './ports.ts';
import { parseTemporalQuery, type TemporalQuery } from './temporal-query.ts';
import {
  type AggregateValue,
  type AttrInstance,
  type HistoryEntity,
  type HistorySegment,
  pageOfIds,
  RETENTION_KIND,
  type ReplayObservation,
  retentionRuleId,
  type TemporalStore,
} from './temporal-store.ts';

/** A retention rule is seen by its organisation's users only. */
const RETENTION_MARKING: Marking = {
  tlp: 'AMBER+STRICT',
  audience: { orgs: [], communities: [], users: [] },
};

/** A temporal answer and the label of what it holds (undefined when it holds nothing). */
export interface TemporalAnswer<T> {
  value: T;
  marking: string | undefined;
  /**
   * Set when instances were left out (more than the broker answers per attribute): the `Content-Range` of
   * a 206 answer, `date-time <from>-<to>/<lastN or *>` (clause 6.3.10).
   */
  range?: string;
  /** Whether entities follow this page (queries: the pagination links of clause 5.5.9). */
  more?: boolean;
  /** How many entities the query selects, when it asked (clause 6.3.13). */
  count?: number;
}

export interface TemporalRequest {
  ids?: string[];
  /** Compacted type names, as the client sent them. */
  types?: string[];
  idPattern?: string;
  attrs?: string[];
  /**
   * Members to show (`pick`) or leave out (`omit`), clause 4.21: `id`, `type` and attribute names as the
   * client sent them. The caller has checked them (no `attrs` beside them, no member in both).
   */
  pick?: string[];
  omit?: string[];
  limit?: number;
  offset?: number;
  /** Count the entities selected (clause 6.3.13: the answer's `count`). */
  count?: boolean;
  /** The raw query parameters (timerel, timeAt, endTimeAt, lastN, options, format, aggrMethods, ...). */
  params: Record<string, string | undefined>;
}

const VALUE_KEYS: Record<string, [string, string]> = {
  Relationship: ['object', 'objects'],
  ListRelationship: ['objectList', 'objectLists'],
  LanguageProperty: ['languageMap', 'languageMaps'],
  VocabProperty: ['vocab', 'vocabs'],
  JsonProperty: ['json', 'jsons'],
  ListProperty: ['valueList', 'valueLists'],
};

const MAX_RETENTION_SECONDS = 2_000_000_000;

/** Most instances of one attribute in one answer, unless configured (the rest: pagination by time). */
export const DEFAULT_MAX_INSTANCES = 10_000;
/** Most ids a q or geo filter is evaluated over (their history in the time window is read). */
const MAX_FILTERED_IDS = 10_000;

/** An id's history as answered: from its entity, its temporal entity or both (types joined). */
interface IdHistory {
  id: string;
  types: string[];
}

/** The q and geo-query of a temporal query, compiled: a test of an id's history in the window. */
function compileFilter(tq: TemporalQuery, ac: ActiveLdContext): ((e: ExpandedEntity) => boolean) | undefined {
  const tests: Array<(e: ExpandedEntity) => boolean> = [];
  const expand = (t: string) => ac.expandTerm(t);
  if (tq.q !== undefined) {
    const ast = parseQuery(tq.q, expand);
    tests.push((e) => matchesQuery(e, ast));
  }
  if (tq.geo) {
    const g = parseGeoQuery(tq.geo, expand);
    tests.push((e) => matchesGeoQuery(e, g));
  }
  return tests.length === 0 ? undefined : (e) => tests.every((t) => t(e));
}

/** An id's history in the window as one entity whose attributes hold every instance (each one may match). */
function asEntity(e: IdHistory, instances: AttrInstance[]): ExpandedEntity {
  const out = Object.create(null) as ExpandedEntity;
  out.id = e.id;
  out.type = e.types;
  for (const i of instances) {
    const list = (out[i.attr] as unknown[] | undefined) ?? [];
    list.push(
      i.datasetId && i.instance.datasetId === undefined
        ? { ...i.instance, datasetId: i.datasetId }
        : i.instance,
    );
    out[i.attr] = list;
  }
  return out;
}

/**
 * Leaves out what is past the most instances of one attribute an answer holds, by time for every attribute
 * alike (clause 6.3.10): oldest first, the answer ends where the first attribute reached the limit; with
 * lastN, newest first, it begins there. Returns the Content-Range of what is kept, or undefined when
 * nothing was left out.
 */
function paginate(inst: Map<string, AttrInstance[]>, limit: number, tq: TemporalQuery): string | undefined {
  const newest = tq.lastN !== undefined;
  const time = (i: AttrInstance) =>
    Date.parse(tq.timeproperty === 'observedAt' ? i.observedAt : i.modifiedAt);
  const seriesOf = (list: AttrInstance[]) => {
    const series = new Map<string, AttrInstance[]>();
    for (const i of list) {
      const key = `${i.attr}\u0000${i.datasetId}`;
      const s = series.get(key);
      if (s) s.push(i);
      else series.set(key, [i]);
    }
    return series;
  };
  let cut: number | undefined;
  for (const list of inst.values()) {
    for (const s of seriesOf(list).values()) {
      if (s.length <= limit) continue;
      const t = time(newest ? (s[s.length - limit] as AttrInstance) : (s[limit - 1] as AttrInstance));
      cut = cut === undefined ? t : newest ? Math.max(cut, t) : Math.min(cut, t);
    }
  }
  if (cut === undefined) return undefined;
  const edge = cut;
  let first: number | undefined;
  let last: number | undefined;
  for (const [id, list] of inst) {
    const kept: AttrInstance[] = [];
    for (const s of seriesOf(list).values()) {
      const inRange = s.filter((i) => (newest ? time(i) >= edge : time(i) <= edge));
      kept.push(...(newest ? inRange.slice(-limit) : inRange.slice(0, limit)));
    }
    for (const i of kept) {
      const t = time(i);
      if (first === undefined || t < first) first = t;
      if (last === undefined || t > last) last = t;
    }
    inst.set(id, kept);
  }
  const iso = (ms: number) => new Date(ms).toISOString();
  if (newest) {
    const from = tq.timerel === 'between' ? tq.endTimeAt : tq.timerel === 'before' ? tq.timeAt : undefined;
    return `date-time ${iso(from?.getTime() ?? last ?? edge)}-${iso(edge)}/${tq.lastN}`;
  }
  const from = tq.timerel === 'after' || tq.timerel === 'between' ? tq.timeAt : undefined;
  return `date-time ${iso(from?.getTime() ?? first ?? edge)}-${iso(edge)}/*`;
}

/**
 * `pick` and `omit` of a temporal request (clause 4.21) over its answer: `id` and `type` are members like the
 * attributes (answer keys are compacted with the same context as the names); an entity left without
 * members is left out of the answer (a retrieval of it is then 404).
 */
function projectionOf(
  req: Pick<TemporalRequest, 'pick' | 'omit'>,
  ac: ActiveLdContext,
): { pickedAttributes: string[] | undefined; apply: <T extends Record<string, unknown>>(es: T[]) => T[] } {
  if (!req.pick && !req.omit) return { pickedAttributes: undefined, apply: (es) => es };
  const core = new Set(['id', 'type']);
  const key = (m: string) => (core.has(m) ? m : ac.compactIri(ac.expandTerm(m)));
  const pick = req.pick ? new Set(req.pick.map(key)) : undefined;
  const omit = new Set(req.omit?.map(key) ?? []);
  const pickedAttributes = req.pick?.filter((m) => !core.has(m));
  return {
    // Only the attributes picked are read; with none (pick=id), every one is and none is shown.
    pickedAttributes: pickedAttributes && pickedAttributes.length > 0 ? pickedAttributes : undefined,
    apply: (es) =>
      es.filter((e) => {
        for (const k of Object.keys(e)) if ((pick && !pick.has(k)) || omit.has(k)) delete e[k];
        return Object.keys(e).length > 0;
      }),
  };
}

/** The incarnations of each id (they come in id order) as one answer entity each. */
function byId(incarnations: HistoryEntity[]): IdHistory[] {
  const out: IdHistory[] = [];
  for (const i of incarnations) {
    const last = out[out.length - 1];
    if (last && last.id === i.id) last.types = [...new Set([...last.types, ...i.types])];
    else out.push({ id: i.id, types: i.types });
  }
  return out;
}

export class TemporalService {
  readonly #store: TemporalStore;
  readonly #gate: LiveGate;
  readonly #ld: LdContextPort;
  readonly #clock: Clock;
  readonly #defaultRetentionSeconds: number | undefined;
  readonly #maxInstances: number;

  constructor(deps: {
    store: TemporalStore;
    gate: LiveGate;
    ld: LdContextPort;
    clock: Clock;
    defaultRetentionSeconds?: number;
    /** Most instances of one attribute in one answer (default 10,000). */
    maxInstances?: number;
  }) {
    this.#maxInstances = deps.maxInstances ?? DEFAULT_MAX_INSTANCES;
    this.#store = deps.store;
    this.#gate = deps.gate;
    this.#ld = deps.ld;
    this.#clock = deps.clock;
    this.#defaultRetentionSeconds = deps.defaultRetentionSeconds;
    deps.gate.defineKind(RETENTION_KIND, {
      label: 'history retention rule',
      createRoles: ['admin'],
      writeRoles: ['admin'],
    });
  }

  /**
   * Replays the history that every one of `readers` may see (a dry-run: a rule's owner organisation and the
   * user asking) in observation order, a window at a time; see TemporalStore.replay. `types` and `attrs` are
   * expanded names.
   */
  replay(
    tenant: string,
    readers: ReadonlyArray<Pick<GatePrincipal, 'readKeys'>>,
    q: { from: Date; to: Date; types?: string[]; attrs?: string[]; windowMs?: number; limit: number },
  ): AsyncGenerator<ReplayObservation[]> {
    if (readers.length === 0) throw new Error('a replay needs a reader');
    return this.#store.replay({
      tenant,
      visible: (column) =>
        sql<boolean>`(${sql.join(
          readers.map((r) => this.#gate.visibleWhere(r, column)),
          sql` and `,
        )})`,
      ...q,
    });
  }

  /** `principal` null: an anonymous reader (TLP:CLEAR only). */
  async query(
    tenant: string,
    principal: Pick<GatePrincipal, 'readKeys'> | null,
    req: TemporalRequest,
    context: JsonLdContext | undefined,
  ): Promise<TemporalAnswer<Array<Record<string, unknown>>>> {
    const tq = parseTemporalQuery(req.params);
    const ac = await this.#ld.resolve(context);
    const idPattern =
      req.idPattern === undefined
        ? undefined
        : compileUserPattern(
            req.idPattern,
            (why) => new AppError('CONTEXT_LIVE_TEMPORAL_QUERY_INVALID', `idPattern: ${why}`),
          );
    const projection = projectionOf(req, ac);
    const attrs = (req.attrs ?? projection.pickedAttributes)?.map((a) => ac.expandTerm(a));
    const filter = compileFilter(tq, ac);
    const visible = (column: string) => this.#gate.visibleWhere(principal, column);
    const selection = {
      tenant,
      visible,
      ...(req.ids ? { ids: req.ids } : {}),
      ...(req.types ? { types: req.types.map((t) => ac.expandTerm(t)) } : {}),
      ...(idPattern ? { idPattern } : {}),
    };
    const page = { limit: Math.min(req.limit ?? 20, 1000), offset: req.offset ?? 0 };
    let incarnations: HistoryEntity[];
    let segments: HistorySegment[];
    let more: boolean;
    let count: number | undefined;
    if (!filter && !tq.scope && !req.count) {
      // One id more than the page tells whether another page follows.
      const probe = await this.#store.selectEntities({
        ...selection,
        page: { limit: page.limit + 1, offset: page.offset },
      });
      incarnations = pageOfIds(probe, { limit: page.limit, offset: 0 });
      more = new Set(probe.map((e) => e.id)).size > page.limit;
      segments = await this.#store.segments(tenant, incarnations, visible);
    } else {
      // scopeQ holds for an id when the scopes of its entity or of its temporal entity (the ones the reader
      // may see) meet it; q and geo-queries hold when instances in the time window meet them (clause
      // 5.7.4.4): every visible id is tested, then the matches are paged (and counted). A count alone reads
      // the visible ids the selection names (at most the store's scan budget).
      let all = await this.#store.selectEntities(
        selection,
        filter || tq.scope ? MAX_FILTERED_IDS : undefined,
      );
      const scope = tq.scope;
      if (scope) {
        const inScope = new Set(
          all.filter((e) => matchesScopeQuery({ scope: e.scopes }, scope)).map((e) => e.id),
        );
        all = all.filter((e) => inScope.has(e.id));
      }
      let allSegments: HistorySegment[] | undefined;
      let matching: Set<string>;
      if (filter) {
        allSegments = await this.#store.segments(tenant, all, visible);
        const window: TemporalQuery = { ...tq, representation: 'normalized' };
        delete window.lastN;
        const history = await this.#store.instances(
          tenant,
          [...new Set(all.map((e) => e.id))],
          allSegments.map((g) => g.seg),
          undefined,
          window,
          undefined,
        );
        matching = new Set(
          byId(all)
            .filter((e) => filter(asEntity(e, history.get(e.id) ?? [])))
            .map((e) => e.id),
        );
      } else {
        matching = new Set(all.map((e) => e.id));
      }
      incarnations = pageOfIds(
        all.filter((e) => matching.has(e.id)),
        page,
      );
      more = matching.size > page.offset + page.limit;
      if (req.count) count = matching.size;
      const shown = new Set(incarnations.map((e) => e.id));
      segments = allSegments
        ? allSegments.filter((g) => shown.has(g.entityId))
        : await this.#store.segments(tenant, incarnations, visible);
    }
    const entities = byId(incarnations);
    const ids = entities.map((e) => e.id);
    const segs = segments.map((s) => s.seg);
    // The label of the answer: the markings now of what it shows (entities, temporal entities) and every
    // marking their history shown was recorded under — the tightest of them all.
    const marking = markingLabel([...incarnations, ...segments]);
    if (tq.representation === 'aggregatedValues') {
      const aggs = await this.#store.aggregate(tenant, ids, segs, attrs, tq);
      const value = entities.map((e) => this.#aggregated(e, aggs.get(e.id) ?? [], ac));
      return { value: projection.apply(value), marking, more, ...(count !== undefined ? { count } : {}) };
    }
    // One more than the broker answers per attribute tells whether instances were left out.
    const max = this.#maxInstances;
    const perSeries =
      tq.lastN !== undefined
        ? { n: Math.min(tq.lastN, max + 1), newest: true }
        : { n: max + 1, newest: false };
    const inst = await this.#store.instances(tenant, ids, segs, attrs, tq, perSeries);
    const range = paginate(inst, max, tq);
    const value = projection.apply(entities.map((e) => this.#temporal(e, inst.get(e.id) ?? [], tq, ac)));
    return {
      value,
      marking,
      ...(range ? { range } : {}),
      more,
      ...(count !== undefined ? { count } : {}),
    };
  }

  async getEntity(
    tenant: string,
    principal: Pick<GatePrincipal, 'readKeys'> | null,
    id: string,
    req: Omit<TemporalRequest, 'ids'>,
    context: JsonLdContext | undefined,
  ): Promise<TemporalAnswer<Record<string, unknown>>> {
    const answer = await this.query(tenant, principal, { ...req, ids: [id], limit: 1, offset: 0 }, context);
    const [e] = answer.value;
    // No visible history, or nothing of it left by pick and omit (ETSI tests 020_23).
    if (!e) throw new AppError('CONTEXT_LIVE_TEMPORAL_ENTITY_NOT_FOUND', `no history of entity ${id}`);
    return answer.range
      ? { value: e, marking: answer.marking, range: answer.range }
      : { value: e, marking: answer.marking };
  }

  /**
   * The answer's entity, keyed by attribute names that users chose: without a prototype, so that an
   * attribute named `constructor` or `toString` is read back as absent, not as Object's own function.
   */
  #head(e: { id: string; types: string[] }, ac: ActiveLdContext): Record<string, unknown> {
    const types = e.types.map((t) => ac.compactIri(t));
    const out: Record<string, unknown> = Object.create(null);
    out.id = e.id;
    out.type = types.length === 1 ? types[0] : types;
    return out;
  }

  #temporal(
    e: IdHistory,
    instances: AttrInstance[],
    tq: TemporalQuery,
    ac: ActiveLdContext,
  ): Record<string, unknown> {
    const out = this.#head(e, ac);
    if (tq.representation === 'temporalValues') {
      const series = new Map<string, Record<string, unknown>>();
      for (const i of instances) {
        const name = ac.compactIri(i.attr);
        const key = `${name}\u0000${i.datasetId}`;
        const [single, plural] = VALUE_KEYS[i.type] ?? ['value', 'values'];
        let s = series.get(key);
        if (!s) {
          s = { type: i.type, [plural]: [] };
          if (i.datasetId) s.datasetId = i.datasetId;
          series.set(key, s);
          const prev = out[name];
          out[name] = prev === undefined ? s : Array.isArray(prev) ? [...prev, s] : [prev, s];
        }
        const time = tq.timeproperty === 'observedAt' ? i.observedAt : i.modifiedAt;
        (s[plural] as unknown[]).push([i.instance[single], time]);
      }
      return out;
    }
    for (const i of instances) {
      const name = ac.compactIri(i.attr);
      const inst = renderAttributeValue(i.instance, ac, { format: 'normalized', sysAttrs: true }) as Record<
        string,
        unknown
      >;
      inst.instanceId = i.instanceId;
      if (inst.observedAt === undefined) inst.observedAt = i.observedAt;
      const list = (out[name] as unknown[] | undefined) ?? [];
      list.push(inst);
      out[name] = list;
    }
    return out;
  }

  #aggregated(e: IdHistory, aggs: AggregateValue[], ac: ActiveLdContext) {
    const out = this.#head(e, ac);
    const series = new Map<string, Record<string, unknown>>();
    for (const a of aggs) {
      const name = ac.compactIri(a.attr);
      const key = `${name}\u0000${a.datasetId}`;
      let s = series.get(key);
      if (!s) {
        s = { type: a.type };
        if (a.datasetId) s.datasetId = a.datasetId;
        series.set(key, s);
        const prev = out[name];
        out[name] = prev === undefined ? s : Array.isArray(prev) ? [...prev, s] : [prev, s];
      }
      s[a.method] = a.values;
    }
    return out;
  }

  /**
   * Sets (seconds) or clears (null) how long the principal's organisation keeps the history of its
   * entities of a type (a term or IRI). Only the organisation's administrators may: the gate decides and
   * audits, in the transaction of the rule.
   */
  async setRetention(
    principal: GatePrincipal,
    tenant: string,
    entityType: string,
    seconds: number | null,
    context?: JsonLdContext,
  ): Promise<void> {
    this.#gate.checkCreate(principal, RETENTION_KIND);
    // The store keeps whole seconds in an integer column: 1 s to about 63 years.
    if (seconds !== null && (!Number.isFinite(seconds) || seconds < 1 || seconds > MAX_RETENTION_SECONDS)) {
      throw new AppError(
        'CONTEXT_LIVE_TEMPORAL_QUERY_INVALID',
        `retention must be a number of seconds from 1 to ${MAX_RETENTION_SECONDS}`,
      );
    }
    const type = (await this.#ld.resolve(context)).expandTerm(entityType);
    // The entity type is a key of the retention table's index (as in the entity model: 512 bytes at most).
    if (Buffer.byteLength(type) > 512)
      throw new AppError('CONTEXT_LIVE_TEMPORAL_QUERY_INVALID', 'the entity type is longer than 512 bytes');
    const owner = principal.orgId;
    await this.#gate.store.transaction(async (trx) => {
      const current = await this.#store.lockedRetention(trx, tenant, owner, type);
      if (seconds === null) {
        if (!current) return;
        await this.#gate.remove(trx, principal, { kind: RETENTION_KIND, current: current.object });
      } else if (current) {
        if (current.seconds === Math.round(seconds)) return;
        await this.#gate.update(trx, principal, {
          kind: RETENTION_KIND,
          current: current.object,
          fields: ['seconds'],
        });
      } else {
        await this.#gate.create(trx, principal, {
          kind: RETENTION_KIND,
          scope: tenant,
          id: retentionRuleId(owner, type),
          marking: RETENTION_MARKING,
          details: { entityType: type },
        });
      }
      await this.#store.setRetention(trx, tenant, owner, type, seconds);
    });
  }

  /** The retention rules of the principal's organisation in a tenant. */
  async listRetention(
    principal: GatePrincipal,
    tenant: string,
  ): Promise<Array<{ entityType: string; seconds: number }>> {
    const rules = await this.#store.listRetention(tenant, (column) =>
      this.#gate.visibleWhere(principal, column),
    );
    return rules
      .filter((r) => r.ownerOrg === principal.orgId)
      .map((r) => ({ entityType: r.entityType, seconds: r.seconds }));
  }

  /** The history kept for entities no rule names (the platform's setting), in seconds; undefined: forever. */
  get defaultRetentionSeconds(): number | undefined {
    return this.#defaultRetentionSeconds;
  }

  /** Rules set before they were organisations' objects get their registry row, as the platform's act. */
  async registerUnregistered(): Promise<number> {
    const legacy = await this.#store.unregisteredRetention();
    if (legacy.length === 0) return 0;
    await this.#gate.store.transaction((trx) =>
      this.#gate.recordDerived(
        trx,
        legacy.map((r) => ({
          kind: RETENTION_KIND,
          scope: r.tenant,
          id: retentionRuleId(r.ownerOrg, r.entityType),
          ownerOrg: r.ownerOrg,
          createdBy: '',
          marking: RETENTION_MARKING,
        })),
        { registered: 'existing retention rule' },
      ),
    );
    return legacy.length;
  }

  /** Deletes history past its retention; returns how many instances went. */
  prune(): Promise<number> {
    return this.#store.prune(this.#clock.now(), this.#defaultRetentionSeconds);
  }
}
