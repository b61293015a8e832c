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
  parseEntity,
  stampAttribute,
} from './entity-model.ts';
import { type EntityRecord, geoFingerprint } from './entity-repository.ts';
import { asAppError, isPlainObject } from './entity-view.ts';
import type { ActiveContext } from './json-ld-context.ts';
import type { BatchError, BatchItem, UpdateResult } from './write-plan.ts';

const NULL_URI = 'urn:ngsi-ld:null';

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
): AppliedAttributes {
  const out: AppliedAttributes = { updated: [], notUpdated: [], createdNames: [], deletedNames: [] };
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
      out.updated.push(name);
    }
  }
  if (out.updated.length > 0) rec.entity.modifiedAt = now;
  return out;
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
): { entity: ExpandedEntity; marking?: unknown } {
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
  const p = parseEntity(raw, ctx.expandTerm, { requireIdAndType: false });
  return p.marking === undefined ? { entity: p.entity } : { entity: p.entity, marking: p.marking };
}

/**
 * Validates a merge payload once and returns the function that merges it into a record (in place):
 * attributes merged member by member (members a fragment leaves out keep their values),
 * `urn:ngsi-ld:null` deletes an attribute, types are added, scope replaced.
 */
export function prepareMerge(body: unknown, ctx: ActiveContext, id: string) {
  const nulls = extractNulls(body, ctx);
  const fragment = parseFragment(nulls.body, ctx, id);
  const apply = (rec: EntityRecord, now: string): AppliedAttributes => {
    const raw = { ...(nulls.body as Record<string, unknown>) };
    for (const [k, v] of Object.entries(raw)) {
      const current = rec.entity[ctx.expandTerm(k)];
      if (!current || Array.isArray(current) || !isPlainObject(v)) continue;
      raw[k] = { ...shellOf(current as ExpandedAttribute, v), ...v };
    }
    const merged = parseFragment(raw, ctx, id);
    const r = applyAttributes(rec, merged.entity, now, 'merge', {});
    for (const name of nulls.deleted) {
      if (name in rec.entity) {
        delete rec.entity[name];
        r.updated.push(name);
        r.deletedNames.push(name);
      }
    }
    const types = [...new Set([...rec.entity.type, ...fragment.entity.type])];
    if (types.length !== rec.entity.type.length || fragment.entity.scope) {
      rec.entity.type = types;
      if (fragment.entity.scope) rec.entity.scope = fragment.entity.scope;
      rec.entity.modifiedAt = now;
      r.entityChanged = true;
    }
    return r;
  };
  return Object.assign(apply, { fragment });
}

/** Members equal to urn:ngsi-ld:null in a merge mean "delete this attribute". */
function extractNulls(body: unknown, ctx: ActiveContext): { body: unknown; deleted: string[] } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { body, deleted: [] };
  const out: Record<string, unknown> = {};
  const deleted: string[] = [];
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    const isNull =
      v === NULL_URI ||
      (v !== null &&
        typeof v === 'object' &&
        ((v as Record<string, unknown>).value === NULL_URI ||
          (v as Record<string, unknown>).object === NULL_URI));
    if (isNull && k !== 'id' && k !== 'type') deleted.push(ctx.expandTerm(k));
    else out[k] = v;
  }
  return { body: out, deleted };
}

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
