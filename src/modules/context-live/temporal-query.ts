/**
 * The temporal query parameters of the NGSI-LD API (clause 4.11 temporal query language, clause 6.18/6.19
 * query parameters, clause 4.5.19 aggregated temporal representation), validated.
 */
import { AppError } from '../../kernel/errors.ts';

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
  // Filters this broker does not apply to history are refused, never ignored: an unfiltered answer to a
  // filtered question would be wrong.
  for (const name of ['q', 'scopeQ', 'georel', 'geometry', 'coordinates', 'geoproperty', 'csf']) {
    if (params[name] !== undefined) {
      throw new AppError(
        'CONTEXT_LIVE_UNSUPPORTED',
        `${name} is not supported on temporal queries here; filter by type, id, idPattern and attrs`,
      );
    }
  }
  const q: TemporalQuery = { timeproperty: 'observedAt', representation: 'normalized' };
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
  const opts = new Set(
    [...(params.options ?? '').split(','), params.format ?? ''].filter((x) => x.length > 0),
  );
  if (opts.has('temporalValues')) q.representation = 'temporalValues';
  if (opts.has('aggregatedValues')) q.representation = 'aggregatedValues';
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
