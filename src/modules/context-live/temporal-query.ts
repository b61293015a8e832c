/**
 * The temporal query parameters of the NGSI-LD API (clause 4.11 temporal query language, clause 6.18/6.19
 * query parameters, clause 4.5.19 aggregated temporal representation), validated.
 */
import { AppError } from '../../kernel/errors.ts';
import { parseScopeQuery, type ScopeNode } from '../context/index.ts';

export const AGGR_METHODS = [
  'totalCount',
  'distinctCount',
  'sum',
  'avg',
  'min',
  'max',
  'stddev',
  'sumsq',
] as const;
export type AggrMethod = (typeof AGGR_METHODS)[number];

export type TemporalRepresentation = 'normalized' | 'temporalValues' | 'aggregatedValues';

/** The values `format` and `options` take on temporal requests (clause 6.3.7, 6.3.12, 6.18.3.2). */
const FORMATS = ['normalized', 'temporalValues', 'simplified', 'aggregatedValues'] as const;
const OPTIONS = new Set<string>([...FORMATS, 'sysAttrs']);

export interface TemporalQuery {
  timerel?: 'before' | 'after' | 'between';
  timeAt?: Date;
  endTimeAt?: Date;
  timeproperty: 'observedAt' | 'modifiedAt' | 'createdAt';
  lastN?: number;
  representation: TemporalRepresentation;
  aggrMethods?: AggrMethod[];
  /** Seconds; 0 is the whole time range. */
  aggrPeriodSeconds?: number;
  aggrPeriodDuration?: string;
  /** The filters on values (clause 4.9) and places (clause 4.10) the instances shown must meet. */
  q?: string;
  geo?: { georel: string; geometry?: string; coordinates?: string; geoproperty?: string };
  /** The scope query (clause 4.19) the entity's or temporal entity's scopes must meet. */
  scope?: ScopeNode;
}

function bad(message: string): AppError {
  return new AppError('CONTEXT_LIVE_TEMPORAL_QUERY_INVALID', message);
}

function dateParam(v: string | undefined, name: string): Date | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(v) || Number.isNaN(t)) throw bad(`${name} must be a DateTime (ISO 8601)`);
  return new Date(t);
}

/**
 * Parses an ISO 8601 duration (P[n]Y[n]M[n]DT[n]H[n]M[n]S or P[n]W) into seconds. Years are 365 days and
 * months 30 days: aggregation periods are fixed lengths.
 */
export function parseDuration(s: string): number {
  const m =
    /^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(
      s,
    );
  if (!m || s === 'P' || s.endsWith('T')) throw bad(`aggrPeriodDuration "${s}" is not an ISO 8601 duration`);
  const n = (i: number) => Number(m[i] ?? 0);
  return (
    n(1) * 365 * 86400 + n(2) * 30 * 86400 + n(3) * 7 * 86400 + n(4) * 86400 + n(5) * 3600 + n(6) * 60 + n(7)
  );
}

/** Validates the temporal parameters of a request's query string. */
export function parseTemporalQuery(params: Record<string, string | undefined>): TemporalQuery {
  // A filter this broker does not apply is refused, never ignored: an unfiltered answer to a filtered
  // question would be wrong. Context source filters have no sources to filter here.
  if (params.csf !== undefined) {
    throw new AppError(
      'CONTEXT_LIVE_UNSUPPORTED',
      'csf is not supported: no context source registrations (filter by type, id, idPattern, attrs, q, scopeQ and geo-query)',
    );
  }
  const q: TemporalQuery = { timeproperty: 'observedAt', representation: 'normalized' };
  if (params.scopeQ !== undefined) q.scope = parseScopeQuery(params.scopeQ);
  // Entities are answered in id order; the standard lets a query order by nothing else.
  if (params.orderBy !== undefined && params.orderBy !== 'id') {
    throw bad('orderBy may only name the entity member id');
  }
  if (params.q !== undefined) q.q = params.q;
  const { georel, geometry, coordinates, geoproperty } = params;
  if (georel !== undefined || geometry !== undefined || coordinates !== undefined) {
    if (georel === undefined) throw bad('a geo-query needs georel');
    q.geo = {
      georel,
      ...(geometry !== undefined ? { geometry } : {}),
      ...(coordinates !== undefined ? { coordinates } : {}),
      ...(geoproperty !== undefined ? { geoproperty } : {}),
    };
  } else if (geoproperty !== undefined) {
    throw bad('geoproperty needs a geo-query (georel, geometry, coordinates)');
  }
  const timerel = params.timerel;
  if (timerel !== undefined) {
    if (timerel !== 'before' && timerel !== 'after' && timerel !== 'between') {
      throw bad('timerel must be before, after or between');
    }
    q.timerel = timerel;
    const timeAt = dateParam(params.timeAt ?? params.time, 'timeAt');
    if (!timeAt) throw bad('timerel needs timeAt');
    q.timeAt = timeAt;
    if (timerel === 'between') {
      const end = dateParam(params.endTimeAt ?? params.endTime, 'endTimeAt');
      if (!end) throw bad('timerel=between needs endTimeAt');
      if (end.getTime() <= timeAt.getTime()) throw bad('endTimeAt must be after timeAt');
      q.endTimeAt = end;
    }
  } else if (params.timeAt !== undefined || params.endTimeAt !== undefined) {
    throw bad('timeAt and endTimeAt need timerel');
  }
  const tp = params.timeproperty;
  if (tp !== undefined) {
    if (tp !== 'observedAt' && tp !== 'modifiedAt' && tp !== 'createdAt') {
      throw bad('timeproperty must be observedAt, modifiedAt or createdAt');
    }
    q.timeproperty = tp;
  }
  if (params.lastN !== undefined) {
    const n = Number(params.lastN);
    if (!Number.isInteger(n) || n < 1) throw bad('lastN must be a positive integer');
    q.lastN = n;
  }
  const options = (params.options ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o.length > 0);
  for (const o of options) {
    if (!OPTIONS.has(o)) throw bad(`options "${o}" is not one of ${[...OPTIONS].join(', ')}`);
  }
  const format = params.format;
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) {
    throw bad(`format "${format}" is not one of ${FORMATS.join(', ')}`);
  }
  // The format parameter wins over options (clause 6.3.7); simplified is temporalValues' other name.
  const named = format ?? options.find((o) => o !== 'sysAttrs' && o !== 'normalized') ?? 'normalized';
  if (format === undefined && options.filter((o) => o !== 'sysAttrs' && o !== 'normalized').length > 1) {
    throw bad('options names more than one temporal representation');
  }
  if (named === 'temporalValues' || named === 'simplified') q.representation = 'temporalValues';
  if (named === 'aggregatedValues') q.representation = 'aggregatedValues';
  if (q.representation === 'aggregatedValues' || params.aggrMethods !== undefined) {
    if (!params.aggrMethods) throw bad('aggregatedValues needs aggrMethods');
    const methods = params.aggrMethods.split(',').map((m) => m.trim());
    for (const m of methods) {
      if (!(AGGR_METHODS as readonly string[]).includes(m)) {
        throw bad(`aggrMethods "${m}" is not one of ${AGGR_METHODS.join(', ')}`);
      }
    }
    q.representation = 'aggregatedValues';
    q.aggrMethods = [...new Set(methods)] as AggrMethod[];
    q.aggrPeriodDuration = params.aggrPeriodDuration ?? 'PT0S';
    q.aggrPeriodSeconds = parseDuration(q.aggrPeriodDuration);
  }
  return q;
}
