/**
 * Event types and the patterns that select them. A type is dotted tokens (`entity.updated`); a pattern is
 * a type whose last token may be `*` (exactly one more token) or `>` (one or more tokens). These are NATS
 * subject rules restricted to a trailing wildcard, which keeps two useful properties: the same pattern
 * works as a NATS filter subject, and two patterns that overlap always contain one another, so removing
 * the contained ones leaves disjoint patterns (an event then matches at most one of them).
 */
import { AppError } from '../../kernel/errors.ts';

const TOKEN = /^[A-Za-z0-9_-]+$/;

export function isValidEventType(type: string): boolean {
  return type.length > 0 && type.length <= 255 && type.split('.').every((t) => TOKEN.test(t));
}

export function assertValidEventType(type: unknown): asserts type is string {
  if (typeof type !== 'string' || !isValidEventType(type)) {
    throw new AppError('BUS_INVALID_EVENT', `Invalid event type ${JSON.stringify(type)}`, { type });
  }
}

export function isValidPattern(pattern: string): boolean {
  if (pattern.length === 0 || pattern.length > 255) return false;
  const tokens = pattern.split('.');
  return tokens.every((t, i) => TOKEN.test(t) || (i === tokens.length - 1 && (t === '*' || t === '>')));
}

/** Whether `type` (no wildcards) matches `pattern`. */
export function matchesPattern(pattern: string, type: string): boolean {
  const p = pattern.split('.');
  const t = type.split('.');
  const last = p[p.length - 1];
  if (last === '>') return t.length >= p.length && p.slice(0, -1).every((tok, i) => tok === t[i]);
  if (t.length !== p.length) return false;
  return p.every((tok, i) => tok === '*' || tok === t[i]);
}

/** Whether every type matched by `inner` is also matched by `outer` (both valid patterns). */
export function patternContains(outer: string, inner: string): boolean {
  const o = outer.split('.');
  const i = inner.split('.');
  const oLast = o[o.length - 1];
  const iLast = i[i.length - 1];
  if (oLast === '>') {
    return i.length >= o.length && o.slice(0, -1).every((tok, k) => tok === i[k]);
  }
  if (i.length !== o.length || iLast === '>') return false;
  return o.every((tok, k) => tok === '*' || tok === i[k]);
}

/**
 * Validates patterns and drops those contained in another one; the result is sorted, free of
 * duplicates and pairwise disjoint.
 */
export function normalizePatterns(patterns: readonly string[]): string[] {
  if (patterns.length === 0) {
    throw new AppError('BUS_INVALID_SUBSCRIPTION', 'A subscription needs at least one event type pattern');
  }
  for (const p of patterns) {
    if (typeof p !== 'string' || !isValidPattern(p)) {
      throw new AppError(
        'BUS_INVALID_SUBSCRIPTION',
        `Invalid event type pattern ${JSON.stringify(p)}: dotted tokens, a wildcard (* or >) only last`,
        { pattern: p },
      );
    }
  }
  const unique = [...new Set(patterns)];
  return unique.filter((p) => !unique.some((q) => q !== p && patternContains(q, p))).sort();
}

/**
 * The narrowest single pattern that contains all the given (valid) patterns: their common literal
 * prefix followed by `*` when they all end one token after it without `>`, else by `>`. Used where one
 * filter must stand for several (NATS servers before 2.10 take one filter subject per consumer).
 */
export function coveringPattern(patterns: readonly string[]): string {
  const split = patterns.map((p) => p.split('.'));
  const minLength = Math.min(...split.map((t) => t.length));
  const prefix: string[] = [];
  for (let k = 0; k < minLength - 1; k++) {
    const token = split[0]?.[k];
    if (token === undefined || token === '*' || split.some((t) => t[k] !== token)) break;
    prefix.push(token);
  }
  const oneMore = split.every((t) => t.length === prefix.length + 1 && t[t.length - 1] !== '>');
  return [...prefix, oneMore ? '*' : '>'].join('.');
}
