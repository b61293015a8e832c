/**
 * The Query payload of POST /temporal/entityOperations/query (clause 6.24; data types 5.2.23 Query and
 * 5.2.21 TemporalQuery) as the selection and parameters GET /temporal/entities takes, so that both go the
 * same way through the temporal service. Members of the wrong JSON type are 400 BadRequestData; the values
 * themselves (timerel, dates, lastN, aggregation, q, geo-query, scopeQ) are checked where the GET's are,
 * and members the GET takes as query parameters (pick, omit, datasetId) are handed on as those.
 */
import { AppError } from '../../kernel/errors.ts';
import type { TemporalRequest } from '../../modules/context-live/index.ts';

/** A temporal query without its page. */
export type TemporalQueryInput = Omit<TemporalRequest, 'limit' | 'offset'>;

/** A Query payload read: the selection, and pick/omit/datasetId as the GET's parameters of those names. */
export interface TemporalQueryPayload {
  selection: TemporalQueryInput;
  projection: { pick?: string; omit?: string; datasetId?: string };
}

const QUERY_MEMBERS = new Set([
  'type',
  'entities',
  'attrs',
  'q',
  'geoQ',
  'csf',
  'scopeQ',
  'temporalQ',
  'lang',
  'pick',
  'omit',
  'datasetId',
  'local',
]);

/** TemporalQuery members and the query parameter each one stands for. */
const TEMPORAL_MEMBERS = [
  'timerel',
  'timeAt',
  'endTimeAt',
  'timeproperty',
  'lastN',
  'aggrMethods',
  'aggrPeriodDuration',
] as const;

function bad(message: string): AppError {
  return new AppError('CONTEXT_LIVE_TEMPORAL_QUERY_INVALID', message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stringMember(o: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw bad(`${where}${key} must be a string`);
  return v;
}

export function temporalQueryPayload(body: unknown): TemporalQueryPayload {
  if (!isObject(body)) throw new AppError('CONTEXT_INVALID_JSON', 'the payload must be a JSON object');
  if (body.type !== 'Query') throw bad('the payload must be a Query (type "Query")');
  const unknown = Object.keys(body).filter((k) => !QUERY_MEMBERS.has(k));
  if (unknown.length > 0) throw bad(`unknown Query member ${unknown.join(', ')}`);
  const params: Record<string, string | undefined> = {};
  const out: TemporalQueryInput = { params };

  if (body.entities !== undefined) {
    if (!Array.isArray(body.entities) || !body.entities.every(isObject))
      throw bad('entities must be a list of {type, id, idPattern} objects');
    const types: string[] = [];
    const ids: string[] = [];
    const patterns: string[] = [];
    for (const e of body.entities) {
      const type = stringMember(e, 'type', 'entities[].');
      const id = stringMember(e, 'id', 'entities[].');
      const idPattern = stringMember(e, 'idPattern', 'entities[].');
      if (type !== undefined)
        types.push(
          ...type
            .split(',')
            .map((t) => t.trim())
            .filter(Boolean),
        );
      if (id !== undefined) ids.push(id);
      if (idPattern !== undefined) patterns.push(idPattern);
    }
    if (types.length > 0) out.types = [...new Set(types)];
    if (ids.length > 0) out.ids = [...new Set(ids)];
    // Several patterns are one: an id matches when it matches any of them.
    if (patterns.length === 1) out.idPattern = patterns[0] as string;
    else if (patterns.length > 1) out.idPattern = patterns.map((p) => `(?:${p})`).join('|');
  }
  if (body.attrs !== undefined) {
    if (!Array.isArray(body.attrs) || !body.attrs.every((a) => typeof a === 'string'))
      throw bad('attrs must be a list of attribute names');
    if (body.attrs.length > 0) out.attrs = body.attrs as string[];
  }
  for (const key of ['q', 'scopeQ', 'csf'] as const) {
    const v = stringMember(body, key, '');
    if (v !== undefined) params[key] = v;
  }
  if (body.geoQ !== undefined) {
    const g = body.geoQ;
    if (!isObject(g)) throw bad('geoQ must be a GeoQuery object');
    const georel = stringMember(g, 'georel', 'geoQ.');
    const geometry = stringMember(g, 'geometry', 'geoQ.');
    const geoproperty = stringMember(g, 'geoproperty', 'geoQ.');
    // Coordinates are a JSON array in a payload, the same array as text in a query string.
    const coordinates =
      g.coordinates === undefined
        ? undefined
        : typeof g.coordinates === 'string'
          ? g.coordinates
          : Array.isArray(g.coordinates)
            ? JSON.stringify(g.coordinates)
            : undefined;
    if (g.coordinates !== undefined && coordinates === undefined)
      throw bad('geoQ.coordinates must be an array of coordinates');
    if (georel !== undefined) params.georel = georel;
    if (geometry !== undefined) params.geometry = geometry;
    if (coordinates !== undefined) params.coordinates = coordinates;
    if (geoproperty !== undefined) params.geoproperty = geoproperty;
  }
  if (body.temporalQ !== undefined) {
    const t = body.temporalQ;
    if (!isObject(t)) throw bad('temporalQ must be a TemporalQuery object');
    const unknownT = Object.keys(t).filter((k) => !(TEMPORAL_MEMBERS as readonly string[]).includes(k));
    if (unknownT.length > 0) throw bad(`unknown TemporalQuery member ${unknownT.join(', ')}`);
    for (const key of ['timerel', 'timeAt', 'endTimeAt', 'timeproperty', 'aggrPeriodDuration'] as const) {
      const v = stringMember(t, key, 'temporalQ.');
      if (v !== undefined) params[key] = v;
    }
    if (t.lastN !== undefined) {
      if (typeof t.lastN !== 'number') throw bad('temporalQ.lastN must be a positive integer');
      params.lastN = String(t.lastN);
    }
    // A comma-separated string (Table 5.2.21-1) or, as clients also send it, an array of strings.
    const m = t.aggrMethods;
    if (m !== undefined) {
      if (typeof m === 'string') params.aggrMethods = m;
      else if (Array.isArray(m) && m.length > 0 && m.every((x) => typeof x === 'string'))
        params.aggrMethods = m.join(',');
      else throw bad('temporalQ.aggrMethods must be a comma-separated string or a list of strings');
    }
  }
  // Handed on as the GET's query parameters of the same names, so both answer alike.
  const projection: TemporalQueryPayload['projection'] = {};
  for (const key of ['pick', 'omit', 'datasetId'] as const) {
    const v = body[key];
    if (v === undefined) continue;
    let text: string;
    if (typeof v === 'string') text = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) text = v.join(',');
    else throw bad(`${key} must be a list of strings`);
    projection[key] = text;
  }
  // Not implemented on temporal reads: refused, never ignored (the GET does not define it).
  if (body.lang !== undefined)
    throw new AppError('CONTEXT_LIVE_UNSUPPORTED', 'lang is not supported on temporal queries');
  return { selection: out, projection };
}
