/**
 * What the engine reads: observations (one attribute value of one entity at one time, with the entity's
 * position, relationships and marking) and reports (citizens' or other domains' signals), and the pure
 * functions that derive them from the bus's entity change events and from reports.
 */
import type { Marking } from '../sharing/index.ts';
import type { GeoPoint } from './geo.ts';
import type { Domain } from './rule-language.ts';

/** The facts the visibility predicate needs about where an observation comes from. */
export interface Visibility {
  ownerOrg: string;
  readKeys: readonly string[];
  marking: Marking;
  createdBy?: string;
}

export interface Observation extends Visibility {
  tenant: string;
  entityId: string;
  entityTypes: readonly string[];
  attribute: string;
  value: unknown;
  /** Milliseconds since the epoch. */
  observedAt: number;
  /** The entity's position at the time, when it has one. */
  location?: GeoPoint;
  /**
   * The entity's Relationships: name → target entity ids (an empty object: it has none; absent: not
   * known from this observation, the relationship graph keeps what it knew).
   */
  relationships?: Readonly<Record<string, readonly string[]>>;
  /** Cyber, physical or social (correlation); reports carry theirs, entities take the rule's. */
  domain?: Domain;
  /** The entity was deleted: the engine forgets it (no value). */
  deleted?: boolean;
}

/** A report turned signal: a citizen's report, a CERT's, a social media burst. */
export interface ReportSignal extends Visibility {
  tenant?: string;
  id: string;
  /** What the report is about (its category), matched with `match.attribute: reportType`. */
  reportType: string;
  domain: Domain;
  observedAt: number;
  location?: GeoPoint;
  /** Entities the report is about (they link it to the relationship graph). */
  relatedEntities?: string[];
}

/** Entity type and attribute of report observations. */
export const REPORT_TYPE = 'Report';
export const REPORT_ATTRIBUTE = 'reportType';

export function observationFromReport(r: ReportSignal): Observation {
  const o: Observation = {
    tenant: r.tenant ?? '',
    entityId: r.id,
    entityTypes: [REPORT_TYPE],
    attribute: REPORT_ATTRIBUTE,
    value: r.reportType,
    observedAt: r.observedAt,
    domain: r.domain,
    ownerOrg: r.ownerOrg,
    readKeys: r.readKeys,
    marking: r.marking,
  };
  if (r.createdBy !== undefined) o.createdBy = r.createdBy;
  if (r.location) o.location = r.location;
  if (r.relatedEntities && r.relatedEntities.length > 0) o.relationships = { relatedTo: r.relatedEntities };
  return o;
}

/**
 * The part of an entity change event (`context.entity.*`, src/modules/context and context-live) that
 * observations are made of.
 */
export interface EntityChange {
  tenant: string;
  entityId: string;
  entityType: string[];
  entity: Record<string, unknown> | null;
  changedAttributes: string[];
  deletedAttributes?: string[];
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
  readKeys: string[];
  observedAt?: string;
}

const CORE = 'https://uri.etsi.org/ngsi-ld/';
const DEFAULT_CONTEXT = 'https://uri.etsi.org/ngsi-ld/default-context/';
const LOCATION = `${CORE}location`;
const NOT_ATTRIBUTES = new Set(['id', 'type', 'scope', 'createdAt', 'modifiedAt', 'deletedAt', '@context']);

/**
 * The short name rules use for an expanded IRI when nothing else is said: terms of the NGSI-LD core and
 * of the default context lose their prefix (`https://uri.etsi.org/ngsi-ld/default-context/temperature`
 * → `temperature`, `…/ngsi-ld/location` → `location`); other IRIs stay whole.
 */
export function defaultTermOf(iri: string): string {
  if (iri.startsWith(DEFAULT_CONTEXT)) return iri.slice(DEFAULT_CONTEXT.length);
  if (iri.startsWith(CORE) && !iri.includes('/', CORE.length)) return iri.slice(CORE.length);
  return iri;
}

export interface ObservationOptions {
  /** The name rules use for a type, attribute or relationship IRI (default: defaultTermOf). */
  term?: (iri: string) => string;
  /** The time of observations that carry none (no observedAt anywhere): the event's arrival. */
  receivedAt?: number;
}

/** The instance of an attribute an observation reads: the default one (no datasetId) or the first. */
function instanceOf(v: unknown): Record<string, unknown> | undefined {
  if (Array.isArray(v)) {
    const plain = v.find(
      (x) => x && typeof x === 'object' && (x as Record<string, unknown>).datasetId === undefined,
    );
    return (plain ?? v[0]) as Record<string, unknown> | undefined;
  }
  return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
}

function timeOf(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * The observations of one entity change: one per changed attribute still present (its value or, for a
 * Relationship, its object), at the attribute's observedAt (else the event's, else the entity's
 * modifiedAt, else `receivedAt`), with the entity's location and Relationships. A deletion is one
 * observation with `deleted: true`.
 */
export function observationsFromChange(e: EntityChange, opts: ObservationOptions = {}): Observation[] {
  const term = opts.term ?? defaultTermOf;
  const types = e.entityType.map(term);
  const base = {
    tenant: e.tenant,
    entityId: e.entityId,
    entityTypes: types,
    ownerOrg: e.ownerOrg,
    createdBy: e.createdBy,
    readKeys: e.readKeys,
    marking: e.marking,
  };
  const eventTime = timeOf(e.observedAt);
  const entity = e.entity;
  if (!entity) {
    return [
      { ...base, attribute: '', value: null, observedAt: eventTime ?? opts.receivedAt ?? 0, deleted: true },
    ];
  }
  const fallback = eventTime ?? timeOf(entity.modifiedAt) ?? opts.receivedAt ?? 0;
  let location: GeoPoint | undefined;
  const loc = instanceOf(entity[LOCATION] ?? entity.location);
  const lv = loc?.value as { type?: unknown; coordinates?: unknown } | undefined;
  if (lv && lv.type === 'Point' && Array.isArray(lv.coordinates)) location = lv as GeoPoint;
  // Always an object for an entity (empty: it has none), so that a relationship removed is forgotten.
  const relationships = Object.create(null) as Record<string, string[]>;
  for (const [k, v] of Object.entries(entity)) {
    if (NOT_ATTRIBUTES.has(k)) continue;
    const inst = instanceOf(v);
    if (inst?.type !== 'Relationship' && inst?.type !== 'ListRelationship') continue;
    const obj = inst.type === 'Relationship' ? inst.object : inst.objectList;
    const targets = (Array.isArray(obj) ? obj : [obj])
      .map((t) => (t && typeof t === 'object' ? (t as Record<string, unknown>).object : t))
      .filter((t): t is string => typeof t === 'string');
    if (targets.length > 0) relationships[term(k)] = targets;
  }
  const deleted = new Set(e.deletedAttributes ?? []);
  const out: Observation[] = [];
  for (const name of e.changedAttributes) {
    if (NOT_ATTRIBUTES.has(name) || !Object.hasOwn(entity, name)) continue;
    const inst = instanceOf(entity[name]);
    if (!inst) continue;
    if (deleted.has(name) && !Array.isArray(entity[name])) continue;
    const value =
      inst.type === 'Relationship'
        ? inst.object
        : inst.type === 'LanguageProperty'
          ? inst.languageMap
          : inst.type === 'ListProperty'
            ? inst.valueList
            : inst.type === 'JsonProperty'
              ? inst.json
              : inst.type === 'VocabProperty'
                ? inst.vocab
                : inst.value;
    const o: Observation = {
      ...base,
      attribute: term(name),
      value,
      observedAt: timeOf(inst.observedAt) ?? fallback,
    };
    if (location) o.location = location;
    o.relationships = relationships;
    out.push(o);
  }
  return out;
}
