/**
 * Compacts expanded normalized entities (the core's internal form) into a client's terms and the
 * NGSI-LD representations: normalized, keyValues (simplified) and concise (clause 4.5).
 */
import type { ActiveLdContext, EntityFormat, ExpandedEntity } from './ports.ts';

const CORE_MEMBERS = new Set([
  'type',
  'value',
  'object',
  'objectType',
  'languageMap',
  'vocab',
  'json',
  'valueList',
  'objectList',
  'observedAt',
  'unitCode',
  'datasetId',
  'createdAt',
  'modifiedAt',
  'deletedAt',
  'instanceId',
  'previousValue',
  'previousObject',
  'previousLanguageMap',
  'lang',
]);
const ENTITY_MEMBERS = new Set(['id', 'type', 'scope', 'createdAt', 'modifiedAt', 'deletedAt', '@context']);

function compactTypes(types: string | string[], ac: ActiveLdContext): string | string[] {
  const list = (Array.isArray(types) ? types : [types]).map((t) => ac.compactIri(t));
  return list.length === 1 ? (list[0] as string) : list;
}

function compactInstance(inst: unknown, ac: ActiveLdContext): unknown {
  if (typeof inst !== 'object' || inst === null || Array.isArray(inst)) return inst;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inst as Record<string, unknown>)) {
    if (CORE_MEMBERS.has(k)) out[k] = k === 'vocab' && typeof v === 'string' ? ac.compactIri(v) : v;
    else
      out[ac.compactIri(k)] = Array.isArray(v)
        ? v.map((x) => compactInstance(x, ac))
        : compactInstance(v, ac);
  }
  return out;
}

function keyValue(inst: unknown): unknown {
  if (typeof inst !== 'object' || inst === null) return inst;
  const o = inst as Record<string, unknown>;
  for (const k of ['value', 'object', 'languageMap', 'vocab', 'json', 'valueList', 'objectList']) {
    if (o[k] !== undefined) return o[k];
  }
  return undefined;
}

function concise(inst: unknown): unknown {
  if (typeof inst !== 'object' || inst === null || Array.isArray(inst)) return inst;
  const o = { ...(inst as Record<string, unknown>) };
  const t = o.type;
  if (t === 'Property' || t === 'Relationship' || t === 'GeoProperty' || t === 'LanguageProperty')
    delete o.type;
  for (const [k, v] of Object.entries(o)) {
    if (!CORE_MEMBERS.has(k)) o[k] = Array.isArray(v) ? v.map(concise) : concise(v);
  }
  const keys = Object.keys(o);
  if (
    t === 'Property' &&
    keys.length === 1 &&
    keys[0] === 'value' &&
    (typeof o.value !== 'object' || o.value === null)
  ) {
    return o.value;
  }
  return o;
}

export function compactEntity(
  entity: ExpandedEntity,
  ac: ActiveLdContext,
  format: EntityFormat,
): Record<string, unknown> {
  const out: Record<string, unknown> = { id: entity.id, type: compactTypes(entity.type, ac) };
  for (const [k, v] of Object.entries(entity)) {
    if (k === 'id' || k === 'type') continue;
    if (ENTITY_MEMBERS.has(k)) {
      out[k] = v;
      continue;
    }
    const name = ac.compactIri(k);
    const compacted = Array.isArray(v) ? v.map((x) => compactInstance(x, ac)) : compactInstance(v, ac);
    if (format === 'keyValues') {
      out[name] = Array.isArray(compacted) ? compacted.map(keyValue) : keyValue(compacted);
    } else if (format === 'concise') {
      out[name] = Array.isArray(compacted) ? compacted.map(concise) : concise(compacted);
    } else {
      out[name] = compacted;
    }
  }
  return out;
}

/** Compacts one attribute instance's sub-attribute names (temporal representation). */
export function compactAttributeInstance(
  inst: Record<string, unknown>,
  ac: ActiveLdContext,
): Record<string, unknown> {
  return compactInstance(inst, ac) as Record<string, unknown>;
}
