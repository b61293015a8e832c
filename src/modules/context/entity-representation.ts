/**
 * Renders entities from the expanded normalized form into what a client asked for: compacted with the
 * client's @context, in normalized, concise or keyValues (simplified) representation, optionally with
 * system attributes, a projection of attributes, a language, or as GeoJSON Features.
 */
import type { ExpandedAttribute, ExpandedEntity } from './entity-model.ts';
import { ENTITY_MEMBERS } from './entity-model.ts';
import { isGeometryLike } from './geometry.ts';
import type { ActiveContext, LdContext } from './json-ld-context.ts';
import { CORE_ATTRIBUTE_MEMBERS } from './query-language.ts';

export type EntityFormat = 'normalized' | 'concise' | 'keyValues';

export interface RenderOptions {
  format: EntityFormat;
  /** Include createdAt/modifiedAt (options=sysAttrs). */
  sysAttrs?: boolean;
  /** Only these attributes (expanded IRIs); all when undefined. */
  attrs?: Set<string> | undefined;
  /** Not these attributes (expanded IRIs; NGSI-LD `omit`). */
  omit?: Set<string> | undefined;
  /** Language for LanguageProperties (lang=...): the matching string becomes a Property value. */
  lang?: string | undefined;
  /** The marking to show as the reserved `marking` Property (with sysAttrs, or when asked in attrs). */
  marking?: unknown;
}

const SYS = new Set(['createdAt', 'modifiedAt', 'deletedAt']);

/** What a notification with `showChanges` tells of an attribute's value before the change (clause 5.2.12). */
const PREVIOUS_MEMBERS = new Set([
  'previousValue',
  'previousObject',
  'previousLanguageMap',
  'previousJson',
  'previousVocab',
  'previousValueList',
  'previousObjectList',
]);

export function renderEntity(
  e: ExpandedEntity,
  ctx: ActiveContext,
  opts: RenderOptions,
): Record<string, unknown> {
  const out: Record<string, unknown> = { id: e.id, type: compactTypes(e.type, ctx) };
  if (e.scope && e.scope.length > 0) out.scope = e.scope.length === 1 ? e.scope[0] : e.scope;
  for (const [key, raw] of Object.entries(e)) {
    if (ENTITY_MEMBERS.has(key)) continue;
    if (opts.attrs && !opts.attrs.has(key)) continue;
    if (opts.omit?.has(key)) continue;
    out[ctx.compactIri(key)] = renderAttributeValue(raw, ctx, opts);
  }
  if (opts.marking !== undefined && (opts.sysAttrs || opts.attrs?.has('marking'))) {
    out.marking = opts.format === 'keyValues' ? opts.marking : { type: 'Property', value: opts.marking };
  }
  if (opts.sysAttrs && opts.format !== 'keyValues') {
    if (e.createdAt) out.createdAt = e.createdAt;
    if (e.modifiedAt) out.modifiedAt = e.modifiedAt;
  }
  return out;
}

export function compactTypes(types: string[], ctx: ActiveContext): string | string[] {
  const list = types.map((t) => ctx.compactIri(t));
  return list.length === 1 ? list[0]! : list;
}

/** One attribute member (a single instance or a multi-attribute array). */
export function renderAttributeValue(raw: unknown, ctx: ActiveContext, opts: RenderOptions): unknown {
  if (Array.isArray(raw)) {
    if (raw.length === 1) return renderAttribute(raw[0] as ExpandedAttribute, ctx, opts);
    return raw.map((a) => {
      const r = renderAttribute(a as ExpandedAttribute, ctx, opts);
      // In a concise multi-attribute every instance stays an object, so that the list reads back as
      // instances rather than as one array value.
      const bare = r === null || typeof r !== 'object' || Array.isArray(r) || isGeometryLike(r);
      return opts.format === 'concise' && bare ? { value: r } : r;
    });
  }
  return renderAttribute(raw as ExpandedAttribute, ctx, opts);
}

function languageValue(
  lm: Record<string, unknown>,
  lang: string,
): { value: unknown; lang: string } | undefined {
  if (lang === '*') return undefined;
  const wanted = lang.split(',').map((l) => l.split(';')[0]!.trim());
  for (const w of wanted) {
    if (Object.hasOwn(lm, w)) return { value: lm[w], lang: w };
    const prefix = Object.keys(lm).find((k) => k.toLowerCase().startsWith(`${w.toLowerCase()}-`));
    if (prefix) return { value: lm[prefix], lang: prefix };
  }
  if (Object.hasOwn(lm, '@none')) return { value: lm['@none'], lang: '@none' };
  const first = Object.keys(lm)[0];
  return first === undefined ? undefined : { value: lm[first], lang: first };
}

export function renderAttribute(a: ExpandedAttribute, ctx: ActiveContext, opts: RenderOptions): unknown {
  let attr = a;
  if (a.type === 'LanguageProperty' && opts.lang && a.languageMap && typeof a.languageMap === 'object') {
    const lv = languageValue(a.languageMap as Record<string, unknown>, opts.lang);
    if (lv) {
      const { languageMap: _drop, ...rest } = a;
      attr = { ...rest, type: 'Property', value: lv.value, lang: lv.lang };
    }
  }
  if (opts.format === 'keyValues') return keyValue(attr, ctx);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attr)) {
    if (SYS.has(k)) {
      if (opts.sysAttrs) out[k] = v;
      continue;
    }
    if (k === 'vocab' || k === 'previousVocab') {
      out[k] = Array.isArray(v) ? v.map((x) => ctx.compactIri(x as string)) : ctx.compactIri(v as string);
      continue;
    }
    if (PREVIOUS_MEMBERS.has(k)) {
      out[k] = v;
      continue;
    }
    if (CORE_ATTRIBUTE_MEMBERS.has(k)) {
      out[k] = v;
      continue;
    }
    out[ctx.compactIri(k)] = renderAttributeValue(v, ctx, opts);
  }
  if (opts.format === 'concise') return concise(out);
  return out;
}

/** Concise: drop the type where the member tells it; a bare Property becomes its value. */
function concise(o: Record<string, unknown>): unknown {
  const { type, ...rest } = o;
  const keys = Object.keys(rest);
  if (type === 'Property') {
    const v = rest.value;
    const plainValue = v === null || typeof v !== 'object' || Array.isArray(v);
    if (keys.length === 1 && plainValue && !(Array.isArray(v) && v.some((x) => typeof x === 'object')))
      return v;
    return rest;
  }
  if (type === 'GeoProperty') {
    if (keys.length === 1 && isGeometryLike(rest.value)) return rest.value;
    return rest;
  }
  if (type === 'Relationship' || type === 'LanguageProperty' || type === 'ListProperty') return rest;
  if (type === 'ListRelationship' || type === 'JsonProperty' || type === 'VocabProperty') return rest;
  return o;
}

function keyValue(a: ExpandedAttribute, ctx: ActiveContext): unknown {
  switch (a.type) {
    case 'Relationship':
      return a.object;
    case 'LanguageProperty':
      return { languageMap: a.languageMap };
    case 'JsonProperty':
      return a.json;
    case 'VocabProperty':
      return Array.isArray(a.vocab)
        ? a.vocab.map((x) => ctx.compactIri(x as string))
        : ctx.compactIri(a.vocab as string);
    case 'ListProperty':
      return a.valueList;
    case 'ListRelationship':
      return a.objectList;
    default:
      return a.value;
  }
}

export interface GeoJsonOptions extends RenderOptions {
  /** The GeoProperty that becomes the Feature's geometry (expanded IRI; default location). */
  geometryProperty: string;
}

/** A GeoJSON Feature (application/geo+json): the geometry, and the entity in `properties`. */
export function renderFeature(
  e: ExpandedEntity,
  ctx: ActiveContext,
  opts: GeoJsonOptions,
): Record<string, unknown> {
  const body = renderEntity(e, ctx, opts);
  const { id, ...properties } = body;
  let geometry: unknown = null;
  const g = e[opts.geometryProperty];
  const first = (Array.isArray(g) ? g[0] : g) as ExpandedAttribute | undefined;
  if (first?.type === 'GeoProperty') geometry = first.value;
  return { id, type: 'Feature', geometry, properties };
}

export function renderFeatureCollection(
  entities: ExpandedEntity[],
  ctx: ActiveContext,
  opts: GeoJsonOptions,
  context?: LdContext,
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: 'FeatureCollection',
    features: entities.map((e) => renderFeature(e, ctx, opts)),
  };
  if (context !== undefined) out['@context'] = context;
  return out;
}
