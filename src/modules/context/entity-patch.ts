/**
 * How NGSI-LD payloads change an entity, as pure functions over records: parsing fragments and batches,
 * appending, updating and merging attributes (urn:ngsi-ld:null deletes), stamping createdAt/modifiedAt.
 * The write planner decides who may apply them; these only compute the entity that results.
 */
import { AppError } from '../../kernel/errors.ts';
import {
  attributeNamesOf,
  checkEntityId,
  type ExpandedAttribute,
  type ExpandedEntity,
  instancesOf,
  isNullAttribute,
  MARKING_TERM,
  NGSI_LD_NULL,
  type NullDeletion,
  parseEntity,
  stampAttribute,
} from './entity-model.ts';
import { type EntityRecord, geoFingerprint } from './entity-repository.ts';
import { asAppError, isPlainObject } from './entity-view.ts';
import { isGeometryLike } from './geometry.ts';
import type { ActiveContext } from './json-ld-context.ts';
import { CORE_ATTRIBUTE_MEMBERS } from './query-language.ts';
import type { BatchError, BatchItem, UpdateResult } from './write-plan.ts';

export interface ParsedItem {
  entity: ExpandedEntity;
  /** The reserved `marking` property as given (the gate validates it). */
  marking?: unknown;
}

/** Parses every entity of a batch; the ones that fail go to the error list (their id as given). */
export function parseBatch(
  items: BatchItem[],
  requireType = true,
): { parsed: ParsedItem[]; errors: BatchError[] } {
  const parsed: ParsedItem[] = [];
  const errors: BatchError[] = [];
  for (const item of items) {
    const body = item.body;
    const rawId =
      body && typeof body === 'object' && !Array.isArray(body)
        ? (body as Record<string, unknown>).id
        : undefined;
    try {
      const p = parseEntity(body, item.ctx.expandTerm, { requireIdAndType: requireType });
      if (!p.entity.id) throw new AppError('CONTEXT_INVALID_ENTITY', 'the entity id is missing');
      const out: ParsedItem = { entity: p.entity };
      if (p.marking !== undefined) out.marking = p.marking;
      parsed.push(out);
    } catch (e) {
      errors.push({ entityId: typeof rawId === 'string' ? rawId : '', error: asAppError(e) });
    }
  }
  return { parsed, errors };
}

export interface AppliedAttributes extends UpdateResult {
  createdNames: string[];
  /** Attributes of which an instance was deleted (the attribute may keep other instances). */
  deletedNames: string[];
  /** The entity's types or scope changed. */
  entityChanged?: boolean;
}

const VALUE_MEMBERS = ['value', 'object', 'languageMap', 'json', 'vocab', 'valueList', 'objectList'];

/**
 * What a fragment merged over an attribute leaves as it is: the type, and the value when the fragment
 * gives neither (a fragment with only `observedAt` keeps the value).
 */
export function shellOf(old: ExpandedAttribute, fragment: Record<string, unknown>): Record<string, unknown> {
  const gives = fragment.type !== undefined || VALUE_MEMBERS.some((k) => k in fragment);
  if (gives) return fragment.type === undefined && old.type !== 'Property' ? { type: old.type } : {};
  const shell: Record<string, unknown> = { type: old.type };
  for (const k of VALUE_MEMBERS) if (k in old) shell[k] = old[k];
  return shell;
}

/** Applies a fragment's attributes to a record (in place). */
export function applyAttributes(
  rec: EntityRecord,
  fragment: ExpandedEntity,
  now: string,
  mode: 'append' | 'update' | 'merge',
  opts: { noOverwrite?: boolean },
  deletions: readonly NullDeletion[] = [],
): AppliedAttributes {
  const out: AppliedAttributes = { updated: [], notUpdated: [], createdNames: [], deletedNames: [] };
  for (const d of deletions) {
    if (deleteInstance(rec, d)) {
      if (!out.updated.includes(d.name)) out.updated.push(d.name);
      if (!out.deletedNames.includes(d.name)) out.deletedNames.push(d.name);
    } else if (mode === 'update') {
      out.notUpdated.push({
        attributeName: d.name,
        reason: d.datasetId
          ? `no instance with datasetId ${d.datasetId}`
          : 'the entity has no such attribute',
      });
    }
  }
  for (const name of attributeNamesOf(fragment)) {
    const incoming = instancesOf(fragment[name]);
    const current = instancesOf(rec.entity[name]);
    const next = [...current];
    let touched = false;
    for (const inst of incoming) {
      const idx = next.findIndex((c) => (c.datasetId ?? '') === (inst.datasetId ?? ''));
      if (idx >= 0) {
        if (opts.noOverwrite) {
          out.notUpdated.push({ attributeName: name, reason: 'the attribute exists and noOverwrite is set' });
          continue;
        }
        const old = next[idx]!;
        next[idx] =
          mode === 'merge'
            ? { ...old, ...stampMembers(inst, now), createdAt: old.createdAt ?? now, modifiedAt: now }
            : stampAttribute(inst, now, old.createdAt);
        touched = true;
      } else if (mode === 'update') {
        out.notUpdated.push({
          attributeName: name,
          reason: inst.datasetId
            ? `no instance with datasetId ${inst.datasetId}`
            : 'the entity has no such attribute',
        });
      } else {
        next.push(stampAttribute(inst, now, undefined));
        touched = true;
      }
    }
    if (touched) {
      if (current.length === 0) out.createdNames.push(name);
      rec.entity[name] = next.length === 1 ? next[0] : next;
      if (!out.updated.includes(name)) out.updated.push(name);
    }
  }
  // Types given are added (clause 4.16); scope given replaces the entity's, or, with noOverwrite, is added
  // to it (clause 4.18); an empty scope (the NGSI-LD Null in a merge) removes it.
  const types = [...new Set([...rec.entity.type, ...fragment.type])];
  if (types.length !== rec.entity.type.length) {
    rec.entity.type = types;
    out.entityChanged = true;
  }
  if (fragment.scope) {
    const scope =
      mode === 'append' && opts.noOverwrite
        ? [...new Set([...(rec.entity.scope ?? []), ...fragment.scope])]
        : fragment.scope;
    if (JSON.stringify(scope) !== JSON.stringify(rec.entity.scope ?? [])) {
      if (scope.length === 0) delete rec.entity.scope;
      else rec.entity.scope = scope;
      out.entityChanged = true;
    }
  }
  if (out.updated.length > 0 || out.entityChanged) rec.entity.modifiedAt = now;
  return out;
}

/** Deletes the instance an NGSI-LD Null names (its datasetId, or the default one); false when there is none. */
export function deleteInstance(rec: EntityRecord, d: NullDeletion): boolean {
  const instances = instancesOf(rec.entity[d.name]);
  const keep = instances.filter((i) => (i.datasetId ?? '') !== (d.datasetId ?? ''));
  if (keep.length === instances.length) return false;
  if (keep.length === 0) delete rec.entity[d.name];
  else rec.entity[d.name] = keep.length === 1 ? keep[0] : keep;
  return true;
}

const ATTRIBUTE_VALUE_MEMBERS = [
  'type',
  'value',
  'object',
  'languageMap',
  'json',
  'vocab',
  'valueList',
  'objectList',
];

/**
 * Merge-patch of one attribute fragment over the instance it names (clauses 5.5.8 and 5.5.12): members
 * that are the NGSI-LD Null (sub-attributes, `unitCode`, `observedAt`) are taken out of the fragment and
 * named in `removed` (raw names); a JSON object value (Property value, JsonProperty json) is merged into the
 * stored one key by key and a LanguageProperty's languageMap language by language, the NGSI-LD Null
 * removing a key.
 */
export function mergeMembers(
  old: ExpandedAttribute | undefined,
  given: Record<string, unknown>,
): { fragment: Record<string, unknown>; removed: string[] } {
  // Over an existing attribute a fragment gives members; otherwise an object without any attribute member
  // is a concise compound value.
  const isAttribute =
    old !== undefined || ATTRIBUTE_VALUE_MEMBERS.some((k) => k in given) || isGeometryLike(given);
  const fragment: Record<string, unknown> = isAttribute ? { ...given } : { value: given };
  const removed: string[] = [];
  for (const [m, x] of Object.entries(fragment)) {
    if (ATTRIBUTE_VALUE_MEMBERS.includes(m) || m === 'datasetId') continue;
    if (isNullAttribute(x)) {
      delete fragment[m];
      removed.push(m);
    }
  }
  const mergeable = (v: unknown) => isPlainObject(v) && !isGeometryLike(v);
  if (mergeable(fragment.value) && (fragment.type ?? old?.type ?? 'Property') === 'Property') {
    fragment.value = mergePatch(old?.type === 'Property' ? old.value : undefined, fragment.value);
  }
  if (mergeable(fragment.json)) {
    fragment.json = mergePatch(old?.type === 'JsonProperty' ? old.json : undefined, fragment.json);
  }
  if (isPlainObject(fragment.languageMap)) {
    const merged: Record<string, unknown> = {
      ...(old?.type === 'LanguageProperty' && isPlainObject(old.languageMap) ? old.languageMap : {}),
    };
    for (const [lang, text] of Object.entries(fragment.languageMap)) {
      if (text === NGSI_LD_NULL) delete merged[lang];
      else merged[lang] = text;
    }
    fragment.languageMap = merged;
  }
  return { fragment, removed };
}

/** RFC 7396 merge-patch of JSON values, with the NGSI-LD Null (not JSON null) removing a key. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === NGSI_LD_NULL) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Takes members out of an attribute instance (a copy replaces it: instances are shared with the original). */
export function removeMembers(
  rec: EntityRecord,
  name: string,
  datasetId: string | undefined,
  members: readonly string[],
  now: string,
): boolean {
  const instances = [...instancesOf(rec.entity[name])];
  const idx = instances.findIndex((i) => (i.datasetId ?? '') === (datasetId ?? ''));
  if (idx < 0) return false;
  const copy: ExpandedAttribute = { ...instances[idx]! };
  let changed = false;
  for (const m of members) {
    if (m in copy) {
      delete copy[m];
      changed = true;
    }
  }
  if (!changed) return false;
  copy.modifiedAt = now;
  instances[idx] = copy;
  rec.entity[name] = instances.length === 1 ? instances[0] : instances;
  return true;
}

export function stampValue(v: unknown, now: string): unknown {
  return Array.isArray(v)
    ? v.map((a) => stampAttribute(a as ExpandedAttribute, now, undefined))
    : stampAttribute(v as ExpandedAttribute, now, undefined);
}

export function stampMembers(members: Record<string, unknown>, now: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(members)) {
    out[k] =
      v !== null && typeof v === 'object' && !Array.isArray(v) && 'type' in v && k.includes(':')
        ? stampValue(v, now)
        : v;
  }
  return out;
}

export function parseFragment(
  body: unknown,
  ctx: ActiveContext,
  id: string,
  nulls: 'delete' | 'reject' = 'reject',
): { entity: ExpandedEntity; marking?: unknown; deletions?: NullDeletion[] } {
  checkEntityId(id);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('CONTEXT_INVALID_ENTITY', 'the request body must be a JSON object of attributes');
  }
  const raw = body as Record<string, unknown>;
  const bodyId = raw.id ?? raw['@id'];
  if (bodyId !== undefined && bodyId !== id) {
    throw new AppError(
      'CONTEXT_INVALID_REQUEST',
      `the id in the body (${String(bodyId)}) differs from the id in the path`,
    );
  }
  return parseEntity(raw, ctx.expandTerm, { requireIdAndType: false, nulls });
}

/**
 * Validates a merge payload once and returns the function that merges it into a record (in place), as
 * clause 5.5.12 says: attributes merged member by member (members a fragment leaves out keep their values,
 * JSON object values and language maps merged key by key), an attribute that is the NGSI-LD Null deletes
 * the instance its datasetId names, a member that is the NGSI-LD Null is removed, types are added, scope
 * replaced.
 */
export function prepareMerge(body: unknown, ctx: ActiveContext, id: string) {
  const fragment = parseFragment(withoutNullMembers(body), ctx, id, 'delete');
  const apply = (rec: EntityRecord, now: string): AppliedAttributes => {
    const raw = { ...(body as Record<string, unknown>) };
    const removals: { name: string; datasetId: string | undefined; members: string[] }[] = [];
    for (const [k, v] of Object.entries(raw)) {
      if (NOT_ATTRIBUTES.has(k) || !isPlainObject(v) || isNullAttribute(v)) continue;
      const name = ctx.expandTerm(k);
      const datasetId = typeof v.datasetId === 'string' ? v.datasetId : undefined;
      const old = instancesOf(rec.entity[name]).find((i) => (i.datasetId ?? '') === (datasetId ?? ''));
      const m = mergeMembers(old, v);
      raw[k] = old ? { ...shellOf(old, m.fragment), ...m.fragment } : m.fragment;
      if (old && m.removed.length > 0) {
        const members = m.removed.map((r) => (CORE_ATTRIBUTE_MEMBERS.has(r) ? r : ctx.expandTerm(r)));
        removals.push({ name, datasetId, members });
      }
    }
    const merged = parseFragment(raw, ctx, id, 'delete');
    const r = applyAttributes(rec, merged.entity, now, 'merge', {}, merged.deletions);
    for (const rm of removals) {
      if (removeMembers(rec, rm.name, rm.datasetId, rm.members, now) && !r.updated.includes(rm.name)) {
        r.updated.push(rm.name);
        rec.entity.modifiedAt = now;
      }
    }
    return r;
  };
  return Object.assign(apply, { fragment });
}

/** The payload with the members that are the NGSI-LD Null taken out of its attributes (to validate it). */
function withoutNullMembers(body: unknown): unknown {
  if (!isPlainObject(body)) return body;
  const out: Record<string, unknown> = { ...body };
  for (const [k, v] of Object.entries(body)) {
    if (NOT_ATTRIBUTES.has(k) || !isPlainObject(v) || isNullAttribute(v)) continue;
    const attr: Record<string, unknown> = { ...v };
    for (const [m, x] of Object.entries(v)) {
      if (!ATTRIBUTE_VALUE_MEMBERS.includes(m) && m !== 'datasetId' && isNullAttribute(x)) delete attr[m];
    }
    out[k] = attr;
  }
  return out;
}

/** Members of an entity payload that are not attributes. */
const NOT_ATTRIBUTES = new Set([
  'id',
  '@id',
  'type',
  '@type',
  'scope',
  '@context',
  'createdAt',
  'modifiedAt',
  'deletedAt',
  MARKING_TERM,
]);

export function withId(body: unknown, id: string): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const raw = body as Record<string, unknown>;
  if (raw.id !== undefined && raw.id !== id) {
    throw new AppError(
      'CONTEXT_INVALID_REQUEST',
      `the id in the body (${String(raw.id)}) differs from the id in the path`,
    );
  }
  return { ...raw, id };
}

/**
 * A copy to plan changes on. Shallow: changes replace attribute members (never mutate attribute objects
 * or instance arrays in place), so untouched attributes stay shared — which also tells cheaply whether
 * GeoProperties changed.
 */
export function clone(rec: EntityRecord): EntityRecord {
  return { ...rec, entity: { ...rec.entity, type: [...rec.entity.type] } };
}

/** Whether GeoProperty values differ (shared attribute objects are unchanged by construction). */
export function geoChangedBetween(before: ExpandedEntity, after: ExpandedEntity): boolean {
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = before[k];
    const b = after[k];
    if (a === b) continue;
    const isGeo = (v: unknown) =>
      instancesOf(v).some((i) => i !== null && typeof i === 'object' && i.type === 'GeoProperty');
    if (isGeo(a) || isGeo(b)) return geoFingerprint(before) !== geoFingerprint(after);
  }
  return false;
}
