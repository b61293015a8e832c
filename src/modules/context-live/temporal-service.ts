/**
 * The temporal API's use cases (clause 5.7.3, 5.7.4): the history of entities' attributes in the
 * normalized, simplified (temporalValues) and aggregated temporal representations (clause 4.5.8, 4.5.9,
 * 4.5.19), limited to what the reader's read keys allow.
 */
import type { Clock } from '../../kernel/clock.ts';
import { AppError } from '../../kernel/errors.ts';
import { compileUserPattern, renderAttributeValue } from '../context/index.ts';
import type { ActiveLdContext, JsonLdContext, LdContextPort } from './ports.ts';
import { parseTemporalQuery, type TemporalQuery } from './temporal-query.ts';
import type { AggregateValue, AttrInstance, TemporalStore } from './temporal-store.ts';

export interface TemporalRequest {
  ids?: string[];
  /** Compacted type names, as the client sent them. */
  types?: string[];
  idPattern?: string;
  attrs?: string[];
  limit?: number;
  offset?: number;
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

export class TemporalService {
  readonly #store: TemporalStore;
  readonly #ld: LdContextPort;
  readonly #clock: Clock;
  readonly #defaultRetentionSeconds: number | undefined;

  constructor(deps: {
    store: TemporalStore;
    ld: LdContextPort;
    clock: Clock;
    defaultRetentionSeconds?: number;
  }) {
    this.#store = deps.store;
    this.#ld = deps.ld;
    this.#clock = deps.clock;
    this.#defaultRetentionSeconds = deps.defaultRetentionSeconds;
  }

  async query(
    tenant: string,
    readKeys: string[],
    req: TemporalRequest,
    context: JsonLdContext | undefined,
  ): Promise<Array<Record<string, unknown>>> {
    const tq = parseTemporalQuery(req.params);
    const ac = await this.#ld.resolve(context);
    const idPattern =
      req.idPattern === undefined
        ? undefined
        : compileUserPattern(
            req.idPattern,
            (why) => new AppError('CONTEXT_LIVE_TEMPORAL_QUERY_INVALID', `idPattern: ${why}`),
          );
    const attrs = req.attrs?.map((a) => ac.expandTerm(a));
    const entities = await this.#store.selectEntities({
      tenant,
      readKeys,
      ...(req.ids ? { ids: req.ids } : {}),
      ...(req.types ? { types: req.types.map((t) => ac.expandTerm(t)) } : {}),
      ...(idPattern ? { idPattern } : {}),
      ...(attrs ? { attrs } : {}),
      limit: Math.min(req.limit ?? 20, 1000),
      offset: req.offset ?? 0,
    });
    const ids = entities.map((e) => e.id);
    if (tq.representation === 'aggregatedValues') {
      const aggs = await this.#store.aggregate(tenant, ids, attrs, tq);
      return entities.map((e) => this.#aggregated(e, aggs.get(e.id) ?? [], ac));
    }
    const inst = await this.#store.instances(tenant, ids, attrs, tq);
    return entities.map((e) => this.#temporal(e, inst.get(e.id) ?? [], tq, ac));
  }

  async getEntity(
    tenant: string,
    readKeys: string[],
    id: string,
    req: Omit<TemporalRequest, 'ids'>,
    context: JsonLdContext | undefined,
  ): Promise<Record<string, unknown>> {
    const [e] = await this.query(tenant, readKeys, { ...req, ids: [id], limit: 1, offset: 0 }, context);
    if (!e) throw new AppError('CONTEXT_LIVE_TEMPORAL_ENTITY_NOT_FOUND', `no history of entity ${id}`);
    return e;
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
    e: { id: string; types: string[] },
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

  #aggregated(e: { id: string; types: string[] }, aggs: AggregateValue[], ac: ActiveLdContext) {
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

  /** Sets (seconds) or clears (null) the history retention of an entity type (a term or IRI). */
  async setRetention(
    tenant: string,
    entityType: string,
    seconds: number | null,
    context?: JsonLdContext,
  ): Promise<void> {
    // The store keeps whole seconds in an integer column: 1 s to about 63 years.
    if (seconds !== null && (!Number.isFinite(seconds) || seconds < 1 || seconds > MAX_RETENTION_SECONDS)) {
      throw new AppError(
        'CONTEXT_LIVE_TEMPORAL_QUERY_INVALID',
        `retention must be a number of seconds from 1 to ${MAX_RETENTION_SECONDS}`,
      );
    }
    const ac = await this.#ld.resolve(context);
    const iri = ac.expandTerm(entityType);
    // The entity type is a key of the retention table's index (as in the entity model: 512 bytes at most).
    if (Buffer.byteLength(iri) > 512)
      throw new AppError('CONTEXT_LIVE_TEMPORAL_QUERY_INVALID', 'the entity type is longer than 512 bytes');
    await this.#store.setRetention(tenant, iri, seconds);
  }

  listRetention(tenant: string): Promise<Array<{ entityType: string; seconds: number }>> {
    return this.#store.listRetention(tenant);
  }

  /** Deletes history past its retention; returns how many instances went. */
  prune(): Promise<number> {
    return this.#store.prune(this.#clock.now(), this.#defaultRetentionSeconds);
  }
}
