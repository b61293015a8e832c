/**
 * Temporal entities as clients provide them (clause 4.5.8 temporal representation; 5.6.11 create or update,
 * 5.6.12 add attributes, 5.6.14 modify an instance): an id and type, and per attribute its instances — an
 * array of attributes in normalized form (one object is one instance), each with its own observedAt and
 * datasetId. Parsed into the expanded form the history keeps, with the entity model's own checks (names,
 * attribute types, values, DateTimes); the broker names every instance (`instanceId`) itself.
 */
import { AppError } from '../../kernel/errors.ts';
import {
  checkAttributeName,
  checkEntityId,
  checkExpandedName,
  ENTITY_MEMBERS,
  type ExpandedAttribute,
  expandTypes,
  MARKING_TERM,
  parseAttribute,
  parseScope,
} from '../context/index.ts';

/** One instance provided for an attribute (expanded name). */
export interface ProvidedInstance {
  attr: string;
  instance: ExpandedAttribute;
}

export interface ParsedTemporalEntity {
  /** Absent in a fragment (add attributes) that does not name it. */
  id?: string;
  /** Expanded types; empty in a fragment that names none. */
  types: string[];
  /** The scopes given (clause 4.18), when the payload names them. */
  scope?: string[];
  /** The raw value of the reserved `marking` Property, when the client set one. */
  marking?: unknown;
  instances: ProvidedInstance[];
  /** The attributes named (expanded), for the audit record. */
  attributes: string[];
}

/** Most instances one request provides (the body limit bounds them too). */
export const MAX_PROVIDED_INSTANCES = 10_000;

function invalid(detail: string): never {
  throw new AppError('CONTEXT_INVALID_ENTITY', detail);
}

/** The reserved marking Property, normalized or concise (as on entities). */
function markingValue(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if (o.type === 'Property' || 'value' in o) return o.value;
  }
  return v;
}

/** One attribute instance in normalized form (an object), expanded. */
export function parseInstance(
  name: string,
  raw: unknown,
  expand: (term: string) => string,
): ExpandedAttribute {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    invalid(`an instance of attribute "${name}" must be an attribute object (normalized form)`);
  }
  const parsed = parseAttribute(name, raw, expand, 0);
  if (Array.isArray(parsed)) invalid(`an instance of attribute "${name}" must be one attribute object`);
  // The instance is kept in a timestamp column: years 1 to 9999.
  const year = parsed.observedAt === undefined ? 1 : new Date(parsed.observedAt).getUTCFullYear();
  if (year < 1 || year > 9999) invalid(`observedAt of "${name}" is not between the years 1 and 9999`);
  return parsed;
}

/**
 * Parses a temporal entity (create or update: `requireIdAndType`) or a fragment of one (add attributes).
 * `@context` must already have been taken out of the body.
 */
export function parseTemporalEntity(
  body: unknown,
  expand: (term: string) => string,
  opts: { requireIdAndType: boolean },
): ParsedTemporalEntity {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    invalid('a temporal entity must be a JSON object');
  }
  const raw = body as Record<string, unknown>;
  const out: ParsedTemporalEntity = { types: [], instances: [], attributes: [] };
  const idRaw = raw.id ?? raw['@id'];
  const typeRaw = raw.type ?? raw['@type'];
  if (opts.requireIdAndType) {
    out.id = checkEntityId(idRaw);
    if (typeRaw === undefined) invalid('the entity type is missing');
  } else if (idRaw !== undefined) {
    out.id = checkEntityId(idRaw);
  }
  if (typeRaw !== undefined) out.types = expandTypes(typeRaw, expand);
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'id' || key === '@id' || key === 'type' || key === '@type') continue;
    if (key === '@context') invalid('@context must be removed before parsing');
    // System members are the broker's, not history.
    if (key === 'createdAt' || key === 'modifiedAt' || key === 'deletedAt') continue;
    // The scope is the temporal entity's (what scopeQ selects it by), not an attribute with instances.
    if (key === 'scope') {
      out.scope = parseScope(value);
      continue;
    }
    if (key === MARKING_TERM) {
      out.marking = markingValue(value);
      continue;
    }
    checkAttributeName(key);
    const iri = checkExpandedName(expand(key), 'attribute');
    if (ENTITY_MEMBERS.has(iri)) invalid(`"${key}" is not a valid attribute name`);
    const list = Array.isArray(value) ? value : [value];
    for (const item of list) out.instances.push({ attr: iri, instance: parseInstance(key, item, expand) });
    out.attributes.push(iri);
  }
  if (out.instances.length > MAX_PROVIDED_INSTANCES) {
    throw new AppError(
      'CONTEXT_BATCH_TOO_LARGE',
      `a request provides at most ${MAX_PROVIDED_INSTANCES} instances (got ${out.instances.length})`,
    );
  }
  return out;
}
