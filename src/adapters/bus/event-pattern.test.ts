import { describe, expect, it } from 'vitest';
import { isValidEventType, matchesPattern, normalizePatterns, patternContains } from './event-pattern.ts';

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
});
