/**
 * Validates an untrusted rule document into a `Rule`, collecting every error with its exact place (a JSON
 * pointer such as `/window/seconds`) and reason. Unknown fields are refused, every number is bounded
 * (RULE_LIMITS), polygons are checked (closed rings of at least four positions, WGS 84 ranges, no
 * self-intersecting ring) and id patterns are compiled the way every user pattern is (RE2).
 */

import { AppError } from '../../kernel/errors.ts';
import { compileUserPattern } from '../context/index.ts';
import { ringSelfIntersects } from './geo.ts';
import {
  CATEGORIES,
  type Condition,
  DOMAINS,
  FRUIN_LEVELS,
  type GeoPolygon,
  type Match,
  RULE_KINDS,
  RULE_LIMITS,
  type Rule,
  type RuleKind,
  SEVERITIES,
} from './rule-language.ts';

export interface RuleError {
  /** JSON pointer to the field at fault ('' for the document itself). */
  path: string;
  reason: string;
}

export type RuleValidation = { ok: true; rule: Rule } | { ok: false; errors: RuleError[] };

type Obj = Record<string, unknown>;

const COMMON_FIELDS = ['name', 'description', 'kind', 'enabled', 'severity', 'category', 'dedup'];

const KIND_FIELDS: Record<RuleKind, string[]> = {
  threshold: ['match', 'above', 'below', 'hysteresis', 'forSeconds'],
  rate: ['match', 'window', 'riseBy', 'fallBy'],
  anomaly: [
    'match',
    'method',
    'window',
    'threshold',
    'warmup',
    'direction',
    'minDeviation',
    'seasonality',
    'utcOffsetMinutes',
  ],
  silence: ['match', 'expectedIntervalSeconds', 'graceSeconds'],
  geofence: ['match', 'area', 'trigger', 'dwellSeconds'],
  crowdDensity: ['match', 'measure', 'areaSquareMetres', 'capacity', 'raiseAt', 'standard', 'forSeconds'],
  flowImbalance: ['match', 'inAttribute', 'outAttribute', 'groupBy', 'window', 'ratio', 'minIn'],
  sequence: ['steps', 'window', 'by'],
  count: ['match', 'where', 'count', 'window', 'by', 'radiusMetres'],
  correlation: ['signals', 'window', 'minDomains', 'near'],
};

/** One JSON pointer segment (RFC 6901). */
function seg(key: string | number): string {
  return `/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/** What `required` answers for a missing field (already reported): the checks below pass over it. */
const MISSING = Symbol('missing');

class Checker {
  readonly errors: RuleError[] = [];

  fail(path: string, reason: string): undefined {
    if (this.errors.length < 100) this.errors.push({ path, reason });
    return undefined;
  }

  /** An object with only `allowed` fields (the others are reported). */
  object(v: unknown, path: string, allowed: readonly string[]): Obj | undefined {
    if (v === MISSING) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return this.fail(path, 'must be an object');
    const o = v as Obj;
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.fail(path + seg(k), `unknown field (allowed: ${allowed.join(', ')})`);
    }
    return o;
  }

  required(o: Obj, key: string, path: string): unknown {
    if (!Object.hasOwn(o, key) || o[key] === undefined) {
      this.fail(path + seg(key), 'is required');
      return MISSING;
    }
    return o[key];
  }

  string(v: unknown, path: string, max: number, min = 1): string | undefined {
    if (v === MISSING) return undefined;
    if (typeof v !== 'string') return this.fail(path, 'must be a string');
    if (v.length < min)
      return this.fail(path, min === 1 ? 'must not be empty' : `needs at least ${min} characters`);
    if (v.length > max) return this.fail(path, `must be at most ${max} characters`);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
    if (/[\u0000-\u001f\u007f]/.test(v)) return this.fail(path, 'must not contain control characters');
    return v;
  }

  number(
    v: unknown,
    path: string,
    min: number,
    max: number,
    opts: { integer?: boolean; exclusiveMin?: boolean } = {},
  ) {
    if (v === MISSING) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.fail(path, 'must be a finite number');
    if (opts.integer && !Number.isInteger(v)) return this.fail(path, 'must be an integer');
    if (opts.exclusiveMin ? v <= min : v < min) {
      return this.fail(path, `must be ${opts.exclusiveMin ? 'greater than' : 'at least'} ${min}`);
    }
    if (v > max) return this.fail(path, `must be at most ${max}`);
    return v;
  }

  boolean(v: unknown, path: string): boolean | undefined {
    if (v === MISSING) return undefined;
    if (typeof v !== 'boolean') return this.fail(path, 'must be true or false');
    return v;
  }

  oneOf<T extends string>(v: unknown, path: string, values: readonly T[]): T | undefined {
    if (v === MISSING) return undefined;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      return this.fail(path, `must be one of ${values.join(', ')}`);
    }
    return v as T;
  }

  array(v: unknown, path: string, min: number, max: number): unknown[] | undefined {
    if (v === MISSING) return undefined;
    if (!Array.isArray(v)) return this.fail(path, 'must be an array');
    if (v.length < min) return this.fail(path, `needs at least ${min} item${min === 1 ? '' : 's'}`);
    if (v.length > max) return this.fail(path, `must have at most ${max} items`);
    return v;
  }
}

/** Validates a rule document. Never throws on bad input: every error is returned with its path. */
export function validateRule(doc: unknown): RuleValidation {
  const c = new Checker();
  const o = c.object(doc, '', [...COMMON_FIELDS, ...Object.values(KIND_FIELDS).flat()]);
  if (!o) return { ok: false, errors: c.errors };
  const kind = c.oneOf(c.required(o, 'kind', ''), '/kind', RULE_KINDS);
  if (kind) {
    // Fields of other kinds are unknown here: say so with the kind's own list.
    const allowed = [...COMMON_FIELDS, ...KIND_FIELDS[kind]];
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k) && [...COMMON_FIELDS, ...Object.values(KIND_FIELDS).flat()].includes(k)) {
        c.fail(seg(k), `unknown field for a ${kind} rule (allowed: ${allowed.join(', ')})`);
      }
    }
  }
  c.string(c.required(o, 'name', ''), '/name', RULE_LIMITS.nameLength);
  if (o.description !== undefined) c.string(o.description, '/description', RULE_LIMITS.descriptionLength, 0);
  if (o.enabled !== undefined) c.boolean(o.enabled, '/enabled');
  c.oneOf(c.required(o, 'severity', ''), '/severity', SEVERITIES);
  c.oneOf(c.required(o, 'category', ''), '/category', CATEGORIES);
  if (o.dedup !== undefined) {
    const d = c.object(o.dedup, '/dedup', ['seconds']);
    if (d) c.number(c.required(d, 'seconds', '/dedup'), '/dedup/seconds', 0, RULE_LIMITS.windowSeconds);
  }
  if (kind) KIND_CHECKS[kind](c, o);
  return c.errors.length > 0
    ? { ok: false, errors: c.errors }
    : { ok: true, rule: structuredClone(doc) as Rule };
}

const seconds = (c: Checker, o: Obj, key: string, path = '', min = 0) =>
  o[key] === undefined ? undefined : c.number(o[key], path + seg(key), min, RULE_LIMITS.windowSeconds);

function checkWindow(c: Checker, o: Obj, path = ''): void {
  const w = c.object(c.required(o, 'window', path), `${path}/window`, ['seconds']);
  if (w)
    c.number(
      c.required(w, 'seconds', `${path}/window`),
      `${path}/window/seconds`,
      1,
      RULE_LIMITS.windowSeconds,
    );
}

function checkTerm(c: Checker, v: unknown, path: string): string | undefined {
  return c.string(v, path, RULE_LIMITS.termLength);
}

function checkMatch(
  c: Checker,
  v: unknown,
  path: string,
  attribute: 'required' | 'optional' | 'none',
): Match | undefined {
  const allowed =
    attribute === 'none' ? ['types', 'idPattern', 'tenant'] : ['types', 'idPattern', 'attribute', 'tenant'];
  const m = c.object(v, path, allowed);
  if (!m) return undefined;
  const types = c.array(c.required(m, 'types', path), `${path}/types`, 1, RULE_LIMITS.types);
  for (const [i, t] of (types ?? []).entries()) checkTerm(c, t, `${path}/types/${i}`);
  if (m.idPattern !== undefined) {
    const p = c.string(m.idPattern, `${path}/idPattern`, RULE_LIMITS.idPatternLength);
    if (p !== undefined) {
      try {
        compileUserPattern(p, (why) => new AppError('PLATFORM_BAD_REQUEST', why));
      } catch (e) {
        c.fail(`${path}/idPattern`, e instanceof Error ? e.message : 'is not a valid pattern');
      }
    }
  }
  if (attribute === 'required') checkTerm(c, c.required(m, 'attribute', path), `${path}/attribute`);
  else if (m.attribute !== undefined) checkTerm(c, m.attribute, `${path}/attribute`);
  if (m.tenant !== undefined) c.string(m.tenant, `${path}/tenant`, 200, 0);
  return m as unknown as Match;
}

function isScalar(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

function checkCondition(c: Checker, v: unknown, path: string): Condition | undefined {
  const w = c.object(v, path, ['equals', 'notEquals', 'in', 'above', 'below']);
  if (!w) return undefined;
  if (Object.keys(w).length === 0) c.fail(path, 'needs at least one of equals, notEquals, in, above, below');
  for (const k of ['equals', 'notEquals'] as const) {
    if (w[k] !== undefined && !isScalar(w[k])) c.fail(path + seg(k), 'must be a string, number or boolean');
    if (typeof w[k] === 'string') c.string(w[k], path + seg(k), RULE_LIMITS.termLength, 0);
  }
  if (w.in !== undefined) {
    const list = c.array(w.in, `${path}/in`, 1, RULE_LIMITS.inValues);
    list?.forEach((x, i) => {
      if (!isScalar(x)) c.fail(`${path}/in/${i}`, 'must be a string, number or boolean');
      else if (typeof x === 'string') c.string(x, `${path}/in/${i}`, RULE_LIMITS.termLength, 0);
    });
  }
  for (const k of ['above', 'below'] as const) {
    if (w[k] !== undefined) c.number(w[k], path + seg(k), -Number.MAX_VALUE, Number.MAX_VALUE);
  }
  return w as Condition;
}

function checkPolygon(c: Checker, v: unknown, path: string): GeoPolygon | undefined {
  const g = c.object(v, path, ['type', 'coordinates']);
  if (!g) return undefined;
  const type = c.oneOf(c.required(g, 'type', path), `${path}/type`, ['Polygon', 'MultiPolygon'] as const);
  const coords = c.required(g, 'coordinates', path);
  if (!type || coords === undefined) return undefined;
  let positions = 0;
  const ring = (r: unknown, rp: string) => {
    const list = c.array(r, rp, 4, RULE_LIMITS.polygonPositions);
    if (!list) return;
    positions += list.length;
    let valid = true;
    list.forEach((p, i) => {
      const pp = `${rp}/${i}`;
      if (
        !Array.isArray(p) ||
        p.length < 2 ||
        p.length > 3 ||
        !p.every((n) => typeof n === 'number' && Number.isFinite(n))
      ) {
        valid = false;
        c.fail(pp, 'a position is [longitude, latitude] (optionally altitude) in numbers');
        return;
      }
      if (p[0] < -180 || p[0] > 180) {
        valid = false;
        c.fail(`${pp}/0`, 'longitude must be within -180..180');
      }
      if (p[1] < -90 || p[1] > 90) {
        valid = false;
        c.fail(`${pp}/1`, 'latitude must be within -90..90');
      }
    });
    if (!valid) return;
    const pts = list as number[][];
    const a = pts[0]!;
    const b = pts[pts.length - 1]!;
    if (a[0] !== b[0] || a[1] !== b[1])
      return c.fail(rp, 'a linear ring must be closed (last position = first)');
    if (pts.length <= 2_000 && ringSelfIntersects(pts)) c.fail(rp, 'the ring intersects itself');
  };
  const polygon = (rings: unknown, pp: string) => {
    const list = c.array(rings, pp, 1, RULE_LIMITS.polygonRings);
    for (const [i, r] of (list ?? []).entries()) ring(r, `${pp}/${i}`);
  };
  if (type === 'Polygon') polygon(coords, `${path}/coordinates`);
  else {
    const list = c.array(coords, `${path}/coordinates`, 1, RULE_LIMITS.polygonRings);
    for (const [i, p] of (list ?? []).entries()) polygon(p, `${path}/coordinates/${i}`);
  }
  if (positions > RULE_LIMITS.polygonPositions) {
    c.fail(`${path}/coordinates`, `at most ${RULE_LIMITS.polygonPositions} positions in all`);
  }
  return g as unknown as GeoPolygon;
}

const BIG = 1e15;

const KIND_CHECKS: Record<RuleKind, (c: Checker, o: Obj) => void> = {
  threshold(c, o) {
    checkMatch(c, c.required(o, 'match', ''), '/match', 'required');
    const above = o.above === undefined ? undefined : c.number(o.above, '/above', -BIG, BIG);
    const below = o.below === undefined ? undefined : c.number(o.below, '/below', -BIG, BIG);
    if (o.above === undefined && o.below === undefined)
      c.fail('', 'a threshold rule needs above, below or both');
    if (above !== undefined && below !== undefined && below >= above) {
      c.fail('/below', 'must be less than above (the rule fires outside [below, above])');
    }
    if (o.hysteresis !== undefined) c.number(o.hysteresis, '/hysteresis', 0, BIG);
    seconds(c, o, 'forSeconds');
  },
  rate(c, o) {
    checkMatch(c, c.required(o, 'match', ''), '/match', 'required');
    checkWindow(c, o);
    if (o.riseBy === undefined && o.fallBy === undefined)
      c.fail('', 'a rate rule needs riseBy, fallBy or both');
    if (o.riseBy !== undefined) c.number(o.riseBy, '/riseBy', 0, BIG, { exclusiveMin: true });
    if (o.fallBy !== undefined) c.number(o.fallBy, '/fallBy', 0, BIG, { exclusiveMin: true });
  },
  anomaly(c, o) {
    checkMatch(c, c.required(o, 'match', ''), '/match', 'required');
    c.oneOf(c.required(o, 'method', ''), '/method', ['robustZ', 'ewma'] as const);
    const w = c.object(c.required(o, 'window', ''), '/window', ['samples']);
    const samples = w
      ? c.number(
          c.required(w, 'samples', '/window'),
          '/window/samples',
          RULE_LIMITS.anomalyMinSamples,
          RULE_LIMITS.anomalySamples,
          {
            integer: true,
          },
        )
      : undefined;
    c.number(c.required(o, 'threshold', ''), '/threshold', 0, 1000, { exclusiveMin: true });
    if (o.warmup !== undefined) {
      c.number(o.warmup, '/warmup', 2, samples ?? RULE_LIMITS.anomalySamples, { integer: true });
    }
    if (o.direction !== undefined) c.oneOf(o.direction, '/direction', ['both', 'above', 'below'] as const);
    if (o.minDeviation !== undefined) c.number(o.minDeviation, '/minDeviation', 0, BIG);
    if (o.seasonality !== undefined) c.oneOf(o.seasonality, '/seasonality', ['none', 'hourOfDay'] as const);
    if (o.utcOffsetMinutes !== undefined)
      c.number(o.utcOffsetMinutes, '/utcOffsetMinutes', -720, 840, { integer: true });
  },
  silence(c, o) {
    checkMatch(c, c.required(o, 'match', ''), '/match', 'optional');
    c.number(
      c.required(o, 'expectedIntervalSeconds', ''),
      '/expectedIntervalSeconds',
      1,
      RULE_LIMITS.windowSeconds,
    );
    seconds(c, o, 'graceSeconds');
  },
  geofence(c, o) {
    checkMatch(c, c.required(o, 'match', ''), '/match', 'optional');
    const area = c.object(c.required(o, 'area', ''), '/area', ['polygon', 'entityId', 'attribute']);
    if (area) {
      if ((area.polygon === undefined) === (area.entityId === undefined)) {
        c.fail('/area', 'needs either polygon or entityId');
      } else if (area.polygon !== undefined) {
        checkPolygon(c, area.polygon, '/area/polygon');
        if (area.attribute !== undefined) c.fail('/area/attribute', 'only with entityId');
      } else {
        checkTerm(c, area.entityId, '/area/entityId');
        if (area.attribute !== undefined) checkTerm(c, area.attribute, '/area/attribute');
      }
    }
    const trigger = c.oneOf(c.required(o, 'trigger', ''), '/trigger', ['enter', 'leave', 'dwell'] as const);
    if (trigger === 'dwell') {
      c.number(c.required(o, 'dwellSeconds', ''), '/dwellSeconds', 1, RULE_LIMITS.windowSeconds);
    } else if (trigger && o.dwellSeconds !== undefined) c.fail('/dwellSeconds', 'only with trigger dwell');
  },
  crowdDensity(c, o) {
    checkMatch(c, c.required(o, 'match', ''), '/match', 'required');
    const measure = c.oneOf(c.required(o, 'measure', ''), '/measure', ['count', 'density'] as const);
    if (o.areaSquareMetres !== undefined)
      c.number(o.areaSquareMetres, '/areaSquareMetres', 0, 1e9, { exclusiveMin: true });
    else if (measure === 'count') c.fail('/areaSquareMetres', 'is required to turn a count into a density');
    if (o.capacity !== undefined) c.number(o.capacity, '/capacity', 1, 1e9);
    const at = c.object(c.required(o, 'raiseAt', ''), '/raiseAt', ['level', 'capacityRatio']);
    if (at) {
      if (at.level === undefined && at.capacityRatio === undefined)
        c.fail('/raiseAt', 'needs level, capacityRatio or both');
      if (at.level !== undefined) c.oneOf(at.level, '/raiseAt/level', FRUIN_LEVELS.slice(1));
      if (at.capacityRatio !== undefined) {
        c.number(at.capacityRatio, '/raiseAt/capacityRatio', 0, 10, { exclusiveMin: true });
        if (o.capacity === undefined) c.fail('/capacity', 'is required with raiseAt.capacityRatio');
        if (measure === 'density' && o.areaSquareMetres === undefined) {
          c.fail('/areaSquareMetres', 'is required to compare a density with a capacity');
        }
      }
    }
    if (o.standard !== undefined) c.oneOf(o.standard, '/standard', ['walkway', 'queueing'] as const);
    seconds(c, o, 'forSeconds');
  },
  flowImbalance(c, o) {
    checkMatch(c, c.required(o, 'match', ''), '/match', 'none');
    checkTerm(c, c.required(o, 'inAttribute', ''), '/inAttribute');
    checkTerm(c, c.required(o, 'outAttribute', ''), '/outAttribute');
    if (o.inAttribute === o.outAttribute && typeof o.inAttribute === 'string') {
      c.fail('/outAttribute', 'must differ from inAttribute');
    }
    if (o.groupBy !== undefined) {
      const g = c.object(o.groupBy, '/groupBy', ['relationship']);
      if (g) checkTerm(c, c.required(g, 'relationship', '/groupBy'), '/groupBy/relationship');
    }
    checkWindow(c, o);
    c.number(c.required(o, 'ratio', ''), '/ratio', 1, RULE_LIMITS.flowRatio, { exclusiveMin: true });
    c.number(c.required(o, 'minIn', ''), '/minIn', 1, 1e9);
  },
  sequence(c, o) {
    const steps = c.array(c.required(o, 'steps', ''), '/steps', 2, RULE_LIMITS.sequenceSteps);
    steps?.forEach((s, i) => {
      const p = `/steps/${i}`;
      const step = c.object(s, p, ['match', 'where', 'count']);
      if (!step) return;
      checkMatch(c, c.required(step, 'match', p), `${p}/match`, 'required');
      if (step.where !== undefined) checkCondition(c, step.where, `${p}/where`);
      if (step.count !== undefined)
        c.number(step.count, `${p}/count`, 1, RULE_LIMITS.stepCount, { integer: true });
    });
    checkWindow(c, o);
    if (o.by !== undefined) c.oneOf(o.by, '/by', ['entity', 'any'] as const);
  },
  count(c, o) {
    checkMatch(c, c.required(o, 'match', ''), '/match', 'required');
    if (o.where !== undefined) checkCondition(c, o.where, '/where');
    c.number(c.required(o, 'count', ''), '/count', 1, RULE_LIMITS.count, { integer: true });
    checkWindow(c, o);
    const by = o.by === undefined ? undefined : c.oneOf(o.by, '/by', ['entity', 'any'] as const);
    if (o.radiusMetres !== undefined) {
      c.number(o.radiusMetres, '/radiusMetres', 1, RULE_LIMITS.radiusMetres);
      if (by === 'entity') c.fail('/by', 'a radius counts across entities: by must be any');
    }
  },
  correlation(c, o) {
    const signals = c.array(c.required(o, 'signals', ''), '/signals', 2, RULE_LIMITS.correlationSignals);
    const domains = new Set<string>();
    signals?.forEach((s, i) => {
      const p = `/signals/${i}`;
      const sig = c.object(s, p, ['domain', 'match', 'where']);
      if (!sig) return;
      const d = c.oneOf(c.required(sig, 'domain', p), `${p}/domain`, DOMAINS);
      if (d) domains.add(d);
      checkMatch(c, c.required(sig, 'match', p), `${p}/match`, 'required');
      if (sig.where !== undefined) checkCondition(c, sig.where, `${p}/where`);
    });
    checkWindow(c, o);
    const minDomains =
      o.minDomains === undefined
        ? 2
        : c.number(o.minDomains, '/minDomains', 2, DOMAINS.length, { integer: true });
    if (signals && minDomains !== undefined && domains.size < minDomains && domains.size > 0) {
      c.fail('/signals', `the signals name ${domains.size} domain(s), fewer than minDomains (${minDomains})`);
    }
    const near = c.object(c.required(o, 'near', ''), '/near', ['radiusMetres', 'relationships', 'maxHops']);
    if (near) {
      if (near.radiusMetres === undefined && near.relationships === undefined) {
        c.fail('/near', 'needs radiusMetres, relationships or both');
      }
      if (near.radiusMetres !== undefined)
        c.number(near.radiusMetres, '/near/radiusMetres', 1, RULE_LIMITS.radiusMetres);
      if (near.relationships !== undefined) {
        const rels = c.array(near.relationships, '/near/relationships', 1, RULE_LIMITS.relationships);
        for (const [i, r] of (rels ?? []).entries()) checkTerm(c, r, `/near/relationships/${i}`);
        c.number(c.required(near, 'maxHops', '/near'), '/near/maxHops', 1, RULE_LIMITS.hops, {
          integer: true,
        });
      } else if (near.maxHops !== undefined) c.fail('/near/maxHops', 'only with relationships');
    }
  },
};
