/**
 * The entity model inside the platform: "expanded normalized" NGSI-LD.
 *
 * - `id` is the entity id (a URI), `type` the list of entity types as expanded IRIs, `scope` optional.
 * - Every other member is an attribute keyed by its expanded IRI; its value is one attribute object or,
 *   for multi-attributes (several datasetIds), an array of them.
 * - An attribute object is normalized NGSI-LD: `type` (Property, Relationship, GeoProperty,
 *   LanguageProperty, ...), `value` / `object` / `languageMap` / ..., optional `observedAt`, `unitCode`,
 *   `datasetId`, system `createdAt` / `modifiedAt`, and sub-attributes keyed by expanded IRIs.
 *   NGSI-LD core members (see CORE_ATTRIBUTE_MEMBERS) keep their short names; values (including
 *   compound JSON values) are kept exactly as the client sent them.
 */
import { AppError } from '../../kernel/errors.ts';
import { isGeometryLike, validateGeometry } from './geometry.ts';
import { CORE_ATTRIBUTE_MEMBERS } from './query-language.ts';

export const ATTRIBUTE_TYPES = [
  'Property',
  'Relationship',
  'GeoProperty',
  'LanguageProperty',
  'ListProperty',
  'ListRelationship',
  'JsonProperty',
  'VocabProperty',
] as const;
export type AttributeType = (typeof ATTRIBUTE_TYPES)[number];

export interface ExpandedAttribute {
  type: AttributeType;
  value?: unknown;
  object?: unknown;
  languageMap?: unknown;
  observedAt?: string;
  unitCode?: string;
  datasetId?: string;
  createdAt?: string;
  modifiedAt?: string;
  [member: string]: unknown;
}

export interface ExpandedEntity {
  id: string;
  type: string[];
  scope?: string[];
  createdAt?: string;
  modifiedAt?: string;
  [attribute: string]: unknown;
}

/** Members of an entity that are not attributes (in the expanded normalized form). */
export const ENTITY_MEMBERS = new Set(['id', 'type', 'scope', 'createdAt', 'modifiedAt', 'deletedAt']);

/** The reserved Property through which clients set a marking (see entity-marking in the service). */
export const MARKING_TERM = 'marking';

/** The default tenant (no NGSILD-Tenant header). */
export const DEFAULT_TENANT = '';

export const MAX_ATTRIBUTE_DEPTH = 8;

/**
 * The NGSI-LD Null (clause 4.5.x): in an update, a merge or a partial attribute update it deletes the
 * attribute instance (or the member, or the key) it stands for; it is never stored as a value.
 */
export const NGSI_LD_NULL = 'urn:ngsi-ld:null';

const VALUE_MEMBERS_OF_NULL = ['value', 'object', 'json', 'vocab', 'valueList', 'objectList'] as const;

/**
 * Whether an attribute as given (normalized, concise or keyValues) is the NGSI-LD Null: the bare string,
 * or an attribute whose value member is it (`languageMap: {"@none": "urn:ngsi-ld:null"}` for a
 * LanguageProperty).
 */
export function isNullAttribute(v: unknown): boolean {
  if (v === NGSI_LD_NULL) return true;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  for (const k of VALUE_MEMBERS_OF_NULL) if (o[k] === NGSI_LD_NULL) return true;
  const lm = o.languageMap;
  if (lm === NGSI_LD_NULL) return true;
  if (lm !== null && typeof lm === 'object' && !Array.isArray(lm)) {
    const keys = Object.keys(lm);
    return (
      keys.length === 1 && keys[0] === '@none' && (lm as Record<string, unknown>)['@none'] === NGSI_LD_NULL
    );
  }
  return false;
}

/** An attribute instance an NGSI-LD Null deletes: the attribute (expanded) and its datasetId. */
export interface NullDeletion {
  name: string;
  datasetId?: string;
}

/**
 * Lengths in UTF-8 bytes. Ids, types and attribute names are keys of B-tree indexes (several in one row,
 * with the tenant), whose rows PostgreSQL caps at 2,704 bytes: 256 (tenant) + 1,024 (id) + 512 (attribute)
 * + 512 (datasetId) stays under it.
 */
export const MAX_ID_BYTES = 1024;
export const MAX_NAME_BYTES = 512;

export type TermExpander = (term: string) => string;

const URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>"{}|\\^`]+$/;
const NAME_FORBIDDEN_RE = /[\s<>"'=;()\\]/;
const DATETIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const SCOPE_RE = /^\/[^\s/;|()#+]+(\/[^\s/;|()#+]+)*$/;

function invalid(detail: string): never {
  throw new AppError('CONTEXT_INVALID_ENTITY', detail);
}

export function isUri(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 2048 && URI_RE.test(v);
}

/** A name or id for an error message: long ones are cut. */
function shown(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}… (${s.length} characters)` : s;
}

function tooLong(s: string, bytes: number): boolean {
  return s.length > bytes || Buffer.byteLength(s) > bytes;
}

export function checkEntityId(id: unknown): string {
  if (typeof id !== 'string' || id === '') invalid('the entity id is missing');
  if (tooLong(id, MAX_ID_BYTES)) invalid(`the entity id "${shown(id)}" is longer than ${MAX_ID_BYTES} bytes`);
  if (!isUri(id)) invalid(`the entity id "${shown(id)}" is not a URI`);
  return id;
}

export function checkAttributeName(name: string): void {
  // `__proto__` would become an object's prototype wherever an attribute is copied by assignment.
  if (name === '' || name === '__proto__' || tooLong(name, MAX_NAME_BYTES) || NAME_FORBIDDEN_RE.test(name)) {
    invalid(`"${shown(name)}" is not a valid attribute name`);
  }
}

/** An expanded name (type or attribute IRI) within the index bounds. */
export function checkExpandedName(iri: string, what: string): string {
  if (tooLong(iri, MAX_NAME_BYTES)) invalid(`${what} "${shown(iri)}" is longer than ${MAX_NAME_BYTES} bytes`);
  return iri;
}

/** Expands the `type` member of an entity (string or list) to IRIs. */
export function expandTypes(raw: unknown, expand: TermExpander): string[] {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) invalid('the entity type is missing');
  return [
    ...new Set(
      list.map((t) => {
        if (typeof t !== 'string' || t === '' || t === '__proto__' || NAME_FORBIDDEN_RE.test(t)) {
          invalid(
            `entity type ${JSON.stringify(typeof t === 'string' ? shown(t) : t)} is not a valid type name`,
          );
        }
        if (tooLong(t, MAX_NAME_BYTES))
          invalid(`entity type "${shown(t)}" is longer than ${MAX_NAME_BYTES} bytes`);
        return checkExpandedName(expand(t), 'entity type');
      }),
    ),
  ];
}

export function parseScope(raw: unknown): string[] {
  const list = Array.isArray(raw) ? raw : [raw];
  for (const s of list) {
    if (typeof s !== 'string' || tooLong(s, MAX_NAME_BYTES) || !SCOPE_RE.test(s))
      invalid(`scope ${JSON.stringify(typeof s === 'string' ? shown(s) : s)} is not like /City/Area`);
  }
  return [...new Set(list as string[])];
}

export interface ParsedEntity {
  entity: ExpandedEntity;
  /** The raw value of the reserved `marking` Property, when the client set one. */
  marking?: unknown;
  /** The instances NGSI-LD Nulls delete (only when the options allow them). */
  deletions?: NullDeletion[];
}

export interface ParseEntityOptions {
  /** Create and upsert need id and type; fragments (append, update) must not carry them. */
  requireIdAndType: boolean;
  /**
   * What an attribute that is the NGSI-LD Null means: `delete` (update, merge: the instance goes) or, by
   * default, an error (create, replace, append, upsert: there is nothing to delete).
   */
  nulls?: 'delete' | 'reject';
}

/**
 * Parses an entity from a request body (normalized or concise; keyValues values become Properties)
 * into the expanded normalized form. `@context` must already have been taken out of the body.
 */
export function parseEntity(body: unknown, expand: TermExpander, opts: ParseEntityOptions): ParsedEntity {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    invalid('an entity must be a JSON object');
  const raw = body as Record<string, unknown>;
  const idRaw = raw.id ?? raw['@id'];
  const typeRaw = raw.type ?? raw['@type'];
  let entity: ExpandedEntity;
  if (opts.requireIdAndType) {
    if (typeRaw === undefined) invalid('the entity type is missing');
    entity = { id: checkEntityId(idRaw), type: expandTypes(typeRaw, expand) };
  } else {
    entity = {
      id: idRaw === undefined ? '' : checkEntityId(idRaw),
      type: typeRaw === undefined ? [] : expandTypes(typeRaw, expand),
    };
  }
  let marking: unknown;
  const deletions: NullDeletion[] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'id' || key === '@id' || key === 'type' || key === '@type') continue;
    if (key === '@context') invalid('@context must be removed before parsing');
    if (key === 'createdAt' || key === 'modifiedAt' || key === 'deletedAt') continue; // system attributes: ignored
    if (key === 'scope') {
      if (value === NGSI_LD_NULL && opts.nulls === 'delete') entity.scope = [];
      else if (value !== null) entity.scope = parseScope(value);
      continue;
    }
    if (key === MARKING_TERM) {
      marking = markingValue(value);
      continue;
    }
    checkAttributeName(key);
    const iri = checkExpandedName(expand(key), 'attribute');
    if (ENTITY_MEMBERS.has(iri)) invalid(`"${key}" is not a valid attribute name`);
    // A list of attribute objects is a multi-attribute (one instance each); any other list is a value.
    const multi =
      Array.isArray(value) &&
      value.length > 0 &&
      value.every((v) => v !== null && typeof v === 'object' && !Array.isArray(v));
    const instances = multi ? (value as unknown[]) : [value];
    const nulls = instances.filter(isNullAttribute);
    if (nulls.length > 0) {
      if (opts.nulls !== 'delete') {
        invalid(`attribute "${key}" is the NGSI-LD Null: only an update or a merge deletes with it`);
      }
      for (const n of nulls) deletions.push(nullDeletion(key, iri, n));
      const rest = instances.filter((v) => !isNullAttribute(v));
      if (rest.length === 0) continue;
      entity[iri] = parseAttribute(key, rest.length === 1 ? rest[0] : rest, expand, 0);
      continue;
    }
    entity[iri] = parseAttribute(key, value, expand, 0);
  }
  const out: ParsedEntity = { entity };
  if (marking !== undefined) out.marking = marking;
  if (deletions.length > 0) out.deletions = deletions;
  return out;
}

function nullDeletion(key: string, iri: string, v: unknown): NullDeletion {
  const ds = v !== null && typeof v === 'object' ? (v as Record<string, unknown>).datasetId : undefined;
  if (ds === undefined) return { name: iri };
  if (!isUri(ds) || ds === NGSI_LD_NULL) invalid(`datasetId of "${key}" must be a URI`);
  return { name: iri, datasetId: ds };
}

/** The marking Property: `{type: Property, value: {tlp, pap, audience}}`, or concise `{tlp, ...}`. */
function markingValue(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if (o.type === 'Property' || 'value' in o) return o.value;
  }
  return v;
}

/** Parses one attribute (or a multi-attribute array) in normalized or concise form. */
export function parseAttribute(
  name: string,
  value: unknown,
  expand: TermExpander,
  depth: number,
): ExpandedAttribute | ExpandedAttribute[] {
  if (depth > MAX_ATTRIBUTE_DEPTH) invalid(`attribute "${name}" nests sub-attributes too deeply`);
  if (value === null || value === undefined) invalid(`attribute "${name}" has a null value`);
  if (Array.isArray(value) && value.length > 0 && value.every((v) => isAttributeObject(v))) {
    const instances = value.map((v) => parseOne(name, v, expand, depth));
    const ids = new Set<string>();
    for (const inst of instances) {
      const key = inst.datasetId ?? '@default';
      if (ids.has(key)) {
        invalid(
          `attribute "${name}" has two instances with the same datasetId (${inst.datasetId ?? 'default'})`,
        );
      }
      ids.add(key);
    }
    return instances.length === 1 ? instances[0]! : instances;
  }
  return parseOne(name, value, expand, depth);
}

function isAttributeObject(v: unknown): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return (
    (typeof o.type === 'string' && (ATTRIBUTE_TYPES as readonly string[]).includes(o.type)) ||
    'value' in o ||
    'object' in o ||
    'languageMap' in o
  );
}

function inferType(o: Record<string, unknown>): AttributeType | undefined {
  if (typeof o.type === 'string' && (ATTRIBUTE_TYPES as readonly string[]).includes(o.type)) {
    return o.type as AttributeType;
  }
  if (o.type !== undefined && ('value' in o || 'object' in o)) return undefined;
  if ('value' in o) return isGeometryLike(o.value) ? 'GeoProperty' : 'Property';
  if ('object' in o) return 'Relationship';
  if ('languageMap' in o) return 'LanguageProperty';
  if ('json' in o) return 'JsonProperty';
  if ('vocab' in o) return 'VocabProperty';
  if ('valueList' in o) return 'ListProperty';
  if ('objectList' in o) return 'ListRelationship';
  return undefined;
}

function parseOne(name: string, value: unknown, expand: TermExpander, depth: number): ExpandedAttribute {
  if (value === null || value === undefined) invalid(`attribute "${name}" has a null value`);
  if (typeof value !== 'object' || Array.isArray(value)) return { type: 'Property', value };
  const o = value as Record<string, unknown>;
  if (isGeometryLike(o)) {
    return { type: 'GeoProperty', value: validateGeometry(o, `attribute "${name}"`, { bounds: false }) };
  }
  const type = inferType(o);
  if (type === undefined) {
    if (typeof o.type === 'string' && ('value' in o || 'object' in o)) {
      invalid(`attribute "${name}" has type "${o.type}", which is not an NGSI-LD attribute type`);
    }
    // A compound value given in concise/keyValues form.
    return { type: 'Property', value: o };
  }
  const attr: ExpandedAttribute = { type };
  switch (type) {
    case 'Property':
      if (!('value' in o) || o.value === null) invalid(`Property "${name}" needs a non-null value`);
      attr.value = o.value;
      break;
    case 'GeoProperty':
      attr.value = validateGeometry(o.value, `GeoProperty "${name}"`, { bounds: false });
      break;
    case 'Relationship': {
      const obj = o.object;
      const ok = Array.isArray(obj) ? obj.length > 0 && obj.every(isUri) : isUri(obj);
      if (!ok) invalid(`Relationship "${name}" needs an object that is a URI (or a list of URIs)`);
      attr.object = obj;
      if (o.objectType !== undefined) attr.objectType = o.objectType;
      break;
    }
    case 'LanguageProperty': {
      const lm = o.languageMap;
      if (lm === null || typeof lm !== 'object' || Array.isArray(lm)) {
        invalid(`LanguageProperty "${name}" needs a languageMap object`);
      }
      for (const [lang, s] of Object.entries(lm as Record<string, unknown>)) {
        const okValue = typeof s === 'string' || (Array.isArray(s) && s.every((x) => typeof x === 'string'));
        if (!okValue || !/^([A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*|@none)$/.test(lang)) {
          invalid(`LanguageProperty "${name}": "${lang}" must map a language tag to a string`);
        }
      }
      attr.languageMap = lm;
      break;
    }
    case 'JsonProperty':
      if (!('json' in o)) invalid(`JsonProperty "${name}" needs a json member`);
      attr.json = o.json;
      break;
    case 'VocabProperty': {
      const v = o.vocab;
      const list = Array.isArray(v) ? v : [v];
      if (!list.every((x) => typeof x === 'string' && x !== ''))
        invalid(`VocabProperty "${name}" needs vocab terms`);
      attr.vocab = Array.isArray(v) ? v.map((x) => expand(x as string)) : expand(v as string);
      break;
    }
    case 'ListProperty':
      if (!Array.isArray(o.valueList)) invalid(`ListProperty "${name}" needs a valueList array`);
      attr.valueList = o.valueList;
      break;
    case 'ListRelationship':
      if (!Array.isArray(o.objectList)) invalid(`ListRelationship "${name}" needs an objectList array`);
      attr.objectList = o.objectList;
      break;
  }
  for (const [key, v] of Object.entries(o)) {
    if (key === 'type' || key === 'createdAt' || key === 'modifiedAt' || key === 'instanceId') continue;
    if (key === 'value' || key === 'object' || key === 'languageMap' || key === 'json' || key === 'vocab')
      continue;
    if (key === 'valueList' || key === 'objectList' || key === 'objectType') continue;
    if (key === '@context') invalid(`attribute "${name}" must not carry @context`);
    if (key === 'observedAt') {
      if (typeof v !== 'string' || !DATETIME_RE.test(v) || Number.isNaN(Date.parse(v))) {
        invalid(`observedAt of "${name}" must be a DateTime like 2024-05-01T10:00:00Z`);
      }
      attr.observedAt = v;
      continue;
    }
    if (isNullAttribute(v)) {
      invalid(`"${key}" of "${name}" is the NGSI-LD Null: only a merge removes a member with it`);
    }
    if (key === 'unitCode') {
      if (typeof v !== 'string' || v === '' || v.length > 64)
        invalid(`unitCode of "${name}" must be a string of at most 64 characters`);
      attr.unitCode = v;
      continue;
    }
    if (key === 'datasetId') {
      if (!isUri(v) || tooLong(v, MAX_NAME_BYTES))
        invalid(`datasetId of "${name}" must be a URI of at most ${MAX_NAME_BYTES} bytes`);
      attr.datasetId = v;
      continue;
    }
    if (key === 'lang' || key === 'deletedAt') continue;
    checkAttributeName(key);
    const iri = CORE_ATTRIBUTE_MEMBERS.has(key) ? key : checkExpandedName(expand(key), 'sub-attribute');
    attr[iri] = parseAttribute(key, v, expand, depth + 1);
  }
  return attr;
}

/** The instances of an attribute member (one object or a multi-attribute array). */
export function instancesOf(v: unknown): ExpandedAttribute[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]) as ExpandedAttribute[];
}

/** Attribute names (expanded) of an entity. */
export function attributeNamesOf(e: ExpandedEntity): string[] {
  return Object.keys(e).filter((k) => !ENTITY_MEMBERS.has(k));
}

/** Sets createdAt/modifiedAt on an attribute (and its sub-attributes) being written at `now`. */
export function stampAttribute(
  a: ExpandedAttribute,
  now: string,
  createdAt: string | undefined,
): ExpandedAttribute {
  const out: ExpandedAttribute = { ...a, createdAt: createdAt ?? now, modifiedAt: now };
  // Keys, not entries: IoT ingestion stamps ten attributes per message, nearly all without sub-attributes.
  for (const k of Object.keys(a)) {
    if (CORE_ATTRIBUTE_MEMBERS.has(k)) continue;
    const v = a[k];
    out[k] = Array.isArray(v)
      ? v.map((x) => stampAttribute(x as ExpandedAttribute, now, undefined))
      : stampAttribute(v as ExpandedAttribute, now, undefined);
  }
  return out;
}
