/**
 * Renders entities from the expanded normalized form into what a client asked for: compacted with the
 * client's @context, in normalized, concise or keyValues (simplified) representation, optionally with
 * system attributes, a projection of attributes, a language, or as GeoJSON Features.
 */
import type { ExpandedAttribute, ExpandedEntity } from './entity-model.ts';
import { ENTITY_MEMBERS } from './entity-model.ts';
import { isGeometryLike } from './geometry.ts';
import type { ActiveContext } from './json-ld-context.ts';
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
  /** The core members shown (`id`, `type`, `scope`), as `pick` and `omit` choose them; all when undefined. */
  core?: ReadonlySet<string> | undefined;
  /** Language for LanguageProperties (lang=...): the matching string becomes a Property value. */
  lang?: string | undefined;
  /** The marking to show as the reserved `marking` Property (with sysAttrs, or when asked in attrs). */
  marking?: unknown;
  /** Show `marking` (options=marking, a platform extension); never with sysAttrs alone (see below). */
  withMarking?: boolean;
  /**
   * Only the attribute instances with these datasetIds (`@none`: the default instance), NGSI-LD's
   * `datasetId` parameter; an attribute left without instances is not shown.
   */
  datasetIds?: Set<string> | undefined;
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
    const value = opts.datasetIds ? ofDatasets(raw, opts.datasetIds) : raw;
    if (value === undefined) continue;
    out[ctx.compactIri(key)] = renderAttributeValue(value, ctx, opts);
  }
  if (opts.marking !== undefined && (opts.withMarking || opts.attrs?.has('marking'))) {
    out.marking = opts.format === 'keyValues' ? opts.marking : { type: 'Property', value: opts.marking };
  }
  if (opts.sysAttrs && opts.format !== 'keyValues') {
    if (e.createdAt) out.createdAt = e.createdAt;
    if (e.modifiedAt) out.modifiedAt = e.modifiedAt;
  }
  if (opts.core) for (const m of ['id', 'type', 'scope']) if (!opts.core.has(m)) delete out[m];
  return out;
}

/** The instances of an attribute whose datasetId is listed (`@none`: no datasetId), or undefined if none. */
function ofDatasets(raw: unknown, datasetIds: Set<string>): unknown {
  const kept = (Array.isArray(raw) ? raw : [raw]).filter((i) => {
    const ds = (i as ExpandedAttribute | null)?.datasetId;
    return datasetIds.has(typeof ds === 'string' ? ds : '@none');
  });
  if (kept.length === 0) return undefined;
  return kept.length === 1 ? kept[0] : kept;
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

/**
 * The string of a languageMap for a `lang` parameter (clause 4.15): language ranges as in Accept-Language,
 * tried in order of their weight (`fr-CH,fr;q=0.9,*;q=0.5`); a range matches its tag and the tags it is a
 * prefix of; `*` matches any. With no match, the `@none` string, else the first one.
 */
function languageValue(
  lm: Record<string, unknown>,
  lang: string,
): { value: unknown; lang: string } | undefined {
  const keys = Object.keys(lm);
  if (keys.length === 0) return undefined;
  const ranges = lang
    .split(',')
    .map((part, i) => {
      const [tag = '', ...params] = part.split(';').map((x) => x.trim());
      const q = params.find((p) => p.startsWith('q='));
      const weight = q === undefined ? 1 : Number(q.slice(2));
      return { tag, weight: Number.isFinite(weight) ? weight : 0, i };
    })
    .filter((r) => r.tag !== '' && r.weight > 0)
    .sort((a, b) => b.weight - a.weight || a.i - b.i);
  const first = keys.find((k) => k !== '@none') ?? keys[0]!;
  for (const { tag } of ranges) {
    if (tag === '*') return { value: lm[first], lang: first };
    if (Object.hasOwn(lm, tag)) return { value: lm[tag], lang: tag };
    const prefixed = keys.find((k) => k.toLowerCase().startsWith(`${tag.toLowerCase()}-`));
    if (prefixed) return { value: lm[prefixed], lang: prefixed };
  }
  if (Object.hasOwn(lm, '@none')) return { value: lm['@none'], lang: '@none' };
  return { value: lm[first], lang: first };
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
  // The Feature's id is GeoJSON's own member: it stays whatever pick and omit do with the entity's.
  const { id: _id, ...properties } = body;
  const id = e.id;
  let geometry: unknown = null;
  const g = e[opts.geometryProperty];
  const first = (Array.isArray(g) ? g[0] : g) as ExpandedAttribute | undefined;
  if (first?.type === 'GeoProperty') geometry = first.value;
  return { id, type: 'Feature', geometry, properties };
}
