import { describe, expect, it } from 'vitest';
import { jsonDepthWithin, MAX_JSON_DEPTH, parseJsonSafely } from './safe-json.ts';

const nest = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

describe('parseJsonSafely: JSON from outside, within bounds', () => {
  it('parses what JSON.parse parses, when it is within the bounds', () => {
    const text = '{"a":[1,2.5,-3e2,{"b":"c"}],"d":null,"e":true,"f":"Fire 🔥","g":"\\ud83d\\udd25"}';
    expect(parseJsonSafely(text)).toEqual({ ok: true, value: JSON.parse(text) });
  });

  it('accepts 64 levels of nesting and refuses 65, before parsing', () => {
    expect(MAX_JSON_DEPTH).toBe(64);
    expect(parseJsonSafely(nest(64)).ok).toBe(true);
    expect(parseJsonSafely(nest(65))).toEqual({
      ok: false,
      problem: { kind: 'too_deep', message: 'arrays and objects nest deeper than 64 levels' },
    });
    // 20,000 deep: refused by the scan, whatever would overflow a recursive reader later.
    expect(parseJsonSafely(`${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`)).toMatchObject({
      ok: false,
      problem: { kind: 'too_deep' },
    });
  });

  it('counts brackets in strings as text, escaped quotes included', () => {
    expect(jsonDepthWithin(`["${'['.repeat(100)}"]`, 2)).toBe(true);
    expect(jsonDepthWithin(`["\\"${'{'.repeat(100)}"]`, 2)).toBe(true);
    expect(jsonDepthWithin(`["\\\\", [[1]]]`, 2)).toBe(false);
  });

  it('refuses NUL characters and lone surrogates in strings and keys, saying where', () => {
    expect(parseJsonSafely('{"a":["x","b\\u0000"]}')).toEqual({
      ok: false,
      problem: {
        kind: 'text',
        message: 'the string at /a/1 holds a NUL character or a lone UTF-16 surrogate',
      },
    });
    for (const s of ['"\\ud800"', '"\\udc00"', '"a\\udfff\\ud800b"', '"\\ud83d x"']) {
      expect(parseJsonSafely(s)).toMatchObject({ ok: false, problem: { kind: 'text' } });
    }
    expect(parseJsonSafely('{"k\\u0000":1}')).toMatchObject({ ok: false, problem: { kind: 'text' } });
  });

  it('refuses numbers out of the double range and the key __proto__', () => {
    expect(parseJsonSafely('{"after":1e999}')).toEqual({
      ok: false,
      problem: { kind: 'number', message: 'the number at /after is out of range' },
    });
    expect(parseJsonSafely('[-1e400]')).toMatchObject({ ok: false, problem: { kind: 'number' } });
    expect(parseJsonSafely('{"a":{"__proto__":{"admin":true}}}')).toEqual({
      ok: false,
      problem: { kind: 'key', message: 'the key "__proto__" at /a is not allowed' },
    });
    // Other names of Object.prototype's members are ordinary keys.
    expect(parseJsonSafely('{"constructor":1,"toString":2}')).toEqual({
      ok: true,
      value: { constructor: 1, toString: 2 },
    });
  });

  it('says what is wrong with malformed JSON, never throws', () => {
    for (const text of ['', '{', '{"a":1}x', 'NaN', "{'a':1}", '"\u0000"']) {
      const r = parseJsonSafely(text);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.problem.kind).toBe('syntax');
    }
  });
});
