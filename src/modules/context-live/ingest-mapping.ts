/**
 * The IoT ingestion topic scheme and payload mapping (docs/iot-ingestion.md).
 *
 *   safecity/v1/{tenant}/measurements/{entityType}/{deviceId}   plain measurements of one device
 *   safecity/v1/{tenant}/entities                                NGSI-LD entity fragments
 *
 * The HTTP ingestion endpoint takes the same payloads at the same paths below /ingest.
 */
import { AppError } from '../../kernel/errors.ts';
import { parseJsonSafely } from '../../kernel/safe-json.ts';
import { decodeUtf8 } from '../../kernel/text.ts';
import type { EntityFragment, JsonLdContext } from './ports.ts';

export const TOPIC_ROOT = 'safecity/v1';
export const MAX_PAYLOAD_BYTES = 256 * 1024;
export const MAX_ITEMS_PER_MESSAGE = 1000;

export type IngestTarget =
  | { kind: 'measurements'; tenant: string; entityType: string; deviceId: string }
  | { kind: 'entities'; tenant: string };

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/;
const TENANT = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const TYPE = /^[A-Za-z][A-Za-z0-9_]{0,127}$/;
const ATTR = /^[A-Za-z_][A-Za-z0-9_.:#/-]{0,255}$/;
const TIME_KEYS = ['observedAt', 'ts', 'timestamp', 'dateObserved'];
const GEO_TYPES = new Set([
  'Point',
  'MultiPoint',
  'LineString',
  'MultiLineString',
  'Polygon',
  'MultiPolygon',
]);
const ATTR_TYPES = new Set([
  'Property',
  'Relationship',
  'GeoProperty',
  'LanguageProperty',
  'ListProperty',
  'ListRelationship',
  'JsonProperty',
  'VocabProperty',
]);

export function invalid(reason: string): AppError {
  return new AppError('CONTEXT_LIVE_INGEST_INVALID', reason);
}

/** Parses a topic of the scheme; throws CONTEXT_LIVE_INGEST_INVALID saying what is wrong. */
export function parseTopic(topic: string): IngestTarget {
  const parts = topic.split('/');
  if (parts[0] !== 'safecity' || parts[1] !== 'v1')
    throw invalid(`topic "${topic}" is not under ${TOPIC_ROOT}/`);
  const tenant = parts[2] ?? '';
  if (!TENANT.test(tenant)) throw invalid(`topic "${topic}": "${tenant}" is not a tenant name`);
  return parseTarget(topic, parts, tenant === DEFAULT_TENANT_SEGMENT ? '' : tenant);
}

/** The topic segment that names the default tenant (whose NGSI-LD name is the empty string). */
export const DEFAULT_TENANT_SEGMENT = 'default';

function parseTarget(topic: string, parts: string[], tenant: string): IngestTarget {
  if (parts[3] === 'entities' && parts.length === 4) return { kind: 'entities', tenant };
  if (parts[3] === 'measurements' && parts.length === 6) {
    const entityType = parts[4]!;
    const deviceId = parts[5]!;
    if (!TYPE.test(entityType)) throw invalid(`topic "${topic}": "${entityType}" is not an entity type name`);
    if (!SEGMENT.test(deviceId)) throw invalid(`topic "${topic}": "${deviceId}" is not a device id`);
    return { kind: 'measurements', tenant, entityType, deviceId };
  }
  throw invalid(
    `topic "${topic}" is neither ${TOPIC_ROOT}/{tenant}/measurements/{type}/{id} nor .../entities`,
  );
}

export function entityIdFor(entityType: string, deviceId: string): string {
  return deviceId.startsWith('urn:') ? deviceId : `urn:ngsi-ld:${entityType}:${deviceId}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function timeOf(v: unknown, what: string): string {
  if (typeof v === 'number' && Number.isFinite(v)) {
    // Epoch seconds or milliseconds.
    return new Date(v < 1e11 ? v * 1000 : v).toISOString();
  }
  if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v))) {
    return new Date(v).toISOString();
  }
  throw invalid(`${what} is not a DateTime (ISO 8601) or an epoch time`);
}

function isGeometry(v: unknown): boolean {
  return isObject(v) && typeof v.type === 'string' && GEO_TYPES.has(v.type) && Array.isArray(v.coordinates);
}

/** Maps one plain measurement value to an NGSI-LD attribute. */
function toAttribute(name: string, v: unknown, observedAt: string | undefined): Record<string, unknown> {
  let attr: Record<string, unknown>;
  if (isObject(v) && typeof v.type === 'string' && ATTR_TYPES.has(v.type)) {
    attr = { ...v };
  } else if (isGeometry(v)) {
    attr = { type: 'GeoProperty', value: v };
  } else if (isObject(v) && ('value' in v || 'object' in v)) {
    attr = { type: 'object' in v ? 'Relationship' : 'Property', ...v };
  } else if (/^ref[A-Z]/.test(name) && typeof v === 'string' && v.startsWith('urn:')) {
    // Smart Data Models name relationships refSomething.
    attr = { type: 'Relationship', object: v };
  } else if (v === null || v === undefined) {
    throw invalid(`measurement "${name}" has no value`);
  } else {
    attr = { type: 'Property', value: v };
  }
  if (attr.observedAt !== undefined) attr.observedAt = timeOf(attr.observedAt, `${name}.observedAt`);
  else if (observedAt) attr.observedAt = observedAt;
  return attr;
}

/** Plain measurements (an object, or an array of them) of one device into entity fragments. */
export function mapMeasurements(entityType: string, deviceId: string, payload: unknown): EntityFragment[] {
  const list = Array.isArray(payload) ? payload : [payload];
  if (list.length === 0) throw invalid('the message holds no measurement');
  if (list.length > MAX_ITEMS_PER_MESSAGE)
    throw invalid(`more than ${MAX_ITEMS_PER_MESSAGE} measurements in one message`);
  const id = entityIdFor(entityType, deviceId);
  return list.map((m, i) => {
    const where = list.length > 1 ? `measurement ${i}` : 'the measurement';
    if (!isObject(m)) throw invalid(`${where} is not a JSON object`);
    let observedAt: string | undefined;
    for (const k of TIME_KEYS) {
      if (m[k] !== undefined) {
        observedAt = timeOf(m[k], `${where}: ${k}`);
        break;
      }
    }
    const fragment: EntityFragment = { id, type: entityType };
    let n = 0;
    for (const [name, v] of Object.entries(m)) {
      if (TIME_KEYS.includes(name) || name === 'id' || name === 'type') continue;
      if (!ATTR.test(name)) throw invalid(`${where}: "${name}" is not a valid attribute name`);
      fragment[name] = toAttribute(name, v, observedAt);
      n++;
    }
    if (n === 0) throw invalid(`${where} has no attribute`);
    return fragment;
  });
}

/** NGSI-LD entity fragments (an entity, or an array of them) as they are, checked for shape. */
export function mapEntities(payload: unknown): {
  fragments: EntityFragment[];
  context: JsonLdContext | undefined;
} {
  const list = Array.isArray(payload) ? payload : [payload];
  if (list.length === 0) throw invalid('the message holds no entity');
  if (list.length > MAX_ITEMS_PER_MESSAGE)
    throw invalid(`more than ${MAX_ITEMS_PER_MESSAGE} entities in one message`);
  let context: JsonLdContext | undefined;
  const fragments = list.map((e, i) => {
    const where = list.length > 1 ? `entity ${i}` : 'the entity';
    if (!isObject(e)) throw invalid(`${where} is not a JSON object`);
    if (typeof e.id !== 'string' || !/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(e.id))
      throw invalid(`${where} has no URI id`);
    if (typeof e.type !== 'string' || e.type.length === 0) throw invalid(`${where} has no type`);
    const { '@context': ctx, ...rest } = e;
    if (ctx !== undefined) {
      if (context !== undefined && JSON.stringify(context) !== JSON.stringify(ctx)) {
        throw invalid('all entities of one message must share one @context');
      }
      context = ctx as JsonLdContext;
    }
    let n = 0;
    for (const [name, v] of Object.entries(rest)) {
      if (name === 'id' || name === 'type' || name === 'scope') continue;
      if (!ATTR.test(name)) throw invalid(`${where}: "${name}" is not a valid attribute name`);
      if (v === null || v === undefined) throw invalid(`${where}: attribute "${name}" has no value`);
      n++;
    }
    if (n === 0) throw invalid(`${where} has no attribute`);
    return rest as EntityFragment;
  });
  return { fragments, context };
}

/**
 * Parses a raw message body; throws CONTEXT_LIVE_INGEST_INVALID. A message is UTF-8 JSON (a UTF-16 one is
 * refused, not stored with its NUL bytes), nested at most MAX_JSON_DEPTH deep, without NUL characters,
 * lone surrogates, out-of-range numbers or `__proto__` keys (kernel/safe-json.ts).
 */
export function parsePayload(raw: Buffer | string): unknown {
  const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
  if (size === 0) throw invalid('the message is empty');
  if (size > MAX_PAYLOAD_BYTES) throw invalid(`the message is larger than ${MAX_PAYLOAD_BYTES} bytes`);
  const text = typeof raw === 'string' ? raw : decodeUtf8(raw);
  if (text === undefined) throw invalid('the message is not UTF-8 text (send JSON in UTF-8)');
  const r = parseJsonSafely(text);
  if (r.ok) return r.value;
  if (r.problem.kind === 'syntax') throw invalid('the message is not JSON');
  throw invalid(`the message is refused: ${r.problem.message}`);
}
