import { describe, expect, it } from 'vitest';
import {
  coveringPattern,
  isValidEventType,
  matchesPattern,
  normalizePatterns,
  patternContains,
} from './event-pattern.ts';

describe('event patterns', () => {
  it('matches like NATS subjects with a trailing wildcard', () => {
    expect(matchesPattern('entity.updated', 'entity.updated')).toBe(true);
    expect(matchesPattern('entity.*', 'entity.updated')).toBe(true);
    expect(matchesPattern('entity.*', 'entity.updated.x')).toBe(false);
    expect(matchesPattern('entity.*', 'entity')).toBe(false);
    expect(matchesPattern('entity.>', 'entity.updated.x')).toBe(true);
    expect(matchesPattern('entity.>', 'entity')).toBe(false);
    expect(matchesPattern('>', 'a')).toBe(true);
    expect(matchesPattern('*', 'a.b')).toBe(false);
  });

  it('knows when one pattern contains another', () => {
    expect(patternContains('a.>', 'a.*')).toBe(true);
    expect(patternContains('a.>', 'a.b.>')).toBe(true);
    expect(patternContains('a.*', 'a.b')).toBe(true);
    expect(patternContains('a.*', 'a.>')).toBe(false);
    expect(patternContains('a.b', 'a.*')).toBe(false);
    expect(patternContains('a.>', 'a')).toBe(false);
    expect(patternContains('>', 'x.y.z')).toBe(true);
  });

  it('normalises to sorted, disjoint patterns and rejects wildcards that are not last', () => {
    expect(normalizePatterns(['b.x', 'a.*', 'a.b', 'a.*', 'c.>', 'c.d.*'])).toEqual(['a.*', 'b.x', 'c.>']);
    expect(() => normalizePatterns(['a.*.c'])).toThrow(
      expect.objectContaining({ code: 'BUS_INVALID_SUBSCRIPTION' }),
    );
    expect(() => normalizePatterns([])).toThrow(
      expect.objectContaining({ code: 'BUS_INVALID_SUBSCRIPTION' }),
    );
    expect(isValidEventType('access.org.created')).toBe(true);
    expect(isValidEventType('access.*')).toBe(false);
    expect(isValidEventType('a.')).toBe(false);
  });

  it('finds the narrowest pattern covering several', () => {
    expect(coveringPattern(['context.entity.created', 'context.entity.deleted'])).toBe('context.entity.*');
    expect(coveringPattern(['context.entity.created', 'context.entity.attrs.updated'])).toBe(
      'context.entity.>',
    );
    expect(coveringPattern(['a.b', 'a.b.c'])).toBe('a.>');
    expect(coveringPattern(['a.*', 'a.b.c'])).toBe('a.>');
    expect(coveringPattern(['a.x', 'b.y'])).toBe('>');
    expect(coveringPattern(['a', 'b'])).toBe('*');
    expect(coveringPattern(['a.>', 'a.b'])).toBe('a.>');
    for (const set of [
      ['a.b', 'a.b.c'],
      ['a.*', 'a.b.c'],
      ['x.y.z', 'x.>'],
      ['p.q', 'p.r'],
    ]) {
      const cover = coveringPattern(set);
      for (const p of set) expect(patternContains(cover, p)).toBe(true);
    }
  });
});
