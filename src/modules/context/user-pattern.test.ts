import { describe, expect, it } from 'vitest';
import { AppError } from '../../kernel/errors.ts';
import { compileUserPattern, literalPrefixOf, MAX_MATCH_WORK } from './user-pattern.ts';

const invalid = (why: string) => new AppError('CONTEXT_INVALID_REQUEST', why);
const compile = (p: string) => compileUserPattern(p, invalid);

describe('user patterns (RE2)', () => {
  it('matches the catastrophic patterns of backtracking engines in linear time', () => {
    const value = 'x'.repeat(52);
    for (const p of ['.*.*.*.*.*.*.*.*.*!', '(x+x+)+y', '(x|xx)*y', '^(([a-z])+.)+[A-Z]([a-z])+$']) {
      const re = compile(p);
      const t = performance.now();
      for (let i = 0; i < 100; i++) re.test(value);
      expect(performance.now() - t, p).toBeLessThan(100);
    }
  });

  it('refuses PostgreSQL-only and backtracking-only syntax, saying why', () => {
    for (const [p, why] of [
      ['\\mGate', /invalid escape sequence: `\\m`/],
      ['Gate\\y', /invalid escape sequence/],
      ['(a)\\1', /invalid escape sequence: `\\1`/],
      ['(?=a)b', /unsupported Perl syntax/],
      ['(?<!a)b', /unsupported Perl syntax|invalid named capture/],
      ['[[:<:]]x', /invalid character class range/],
      ['a{1001}', /invalid repeat count/],
      ['(', /missing closing \)/],
      ['', /empty/],
      ['a'.repeat(257), /longer than 256/],
    ] as const) {
      let err: unknown;
      try {
        compile(p);
      } catch (e) {
        err = e;
      }
      expect(err, p).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('CONTEXT_INVALID_REQUEST');
      expect((err as AppError).message, p).toMatch(why);
    }
  });

  it('keeps what RE2 and POSIX share: bracket classes, inline flags, counted repetition', () => {
    expect(compile('^[[:alpha:]]+:[[:digit:]]{2}$').test('Sensor:42')).toBe(true);
    expect(compile('(?i)^urn:NGSI-LD:').test('urn:ngsi-ld:x')).toBe(true);
    expect(compile('Car:[0-4]').test('urn:ngsi-ld:Car:3:extra')).toBe(true);
    expect(compile('^Car:[0-4]$').test('urn:ngsi-ld:Car:3')).toBe(false);
  });

  it('refuses a value too long for the pattern rather than holding the event loop', () => {
    const re = compile('a[ab]{200}c');
    expect(re.maxInputLength).toBeLessThan(MAX_MATCH_WORK / 200);
    expect(() => re.test('ab'.repeat(re.maxInputLength))).toThrow(/too complex to match against a value/);
    // The bound keeps the worst case (every state of the automaton alive) short.
    const worst = 'ab'.repeat(Math.floor(re.maxInputLength / 2) - 1);
    const t = performance.now();
    re.test(`${worst}c`);
    expect(performance.now() - t).toBeLessThan(500);
    expect(compile('(?i)park').maxInputLength).toBe(83_333);
  });

  it('derives a literal prefix that every match starts with, or none when unsure', () => {
    expect(
      [
        '^urn:ngsi-ld:Car:',
        '^urn:ngsi-ld:Car:.*',
        '^urn:ngsi-ld:Car:(1|2)',
        '^a\\.b_c%',
        '^ab?c',
        '^ab*',
        '^ab+c',
        '^ab{2}',
        '^a|b',
        '(?i)^abc',
        'abc',
        '^(a|b)c',
        '^[ab]c',
        '^x[|]|',
      ].map(literalPrefixOf),
    ).toEqual([
      'urn:ngsi-ld:Car:',
      'urn:ngsi-ld:Car:',
      'urn:ngsi-ld:Car:',
      'a.b_c%',
      'a',
      'a',
      'ab',
      'a',
      '',
      '',
      '',
      '',
      '',
      '',
    ]);
  });

  it('never derives a prefix that a matching string lacks (seeded random patterns)', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const atoms = [
      'a',
      'b',
      ':',
      '\\.',
      '.',
      '[ab]',
      '(a|b)',
      'a?',
      'b*',
      'a+',
      '|',
      '(ab)?',
      'b{0,2}',
      '_',
      '%',
    ];
    const strings: string[] = [];
    for (let i = 0; i < 400; i++) {
      strings.push(Array.from({ length: rnd(8) }, () => 'ab:._%'[rnd(6)]).join(''));
    }
    let checked = 0;
    for (let i = 0; i < 400; i++) {
      const source = `^${Array.from({ length: 1 + rnd(6) }, () => atoms[rnd(atoms.length)]).join('')}`;
      let re: ReturnType<typeof compile>;
      try {
        re = compile(source);
      } catch {
        continue;
      }
      for (const s of strings) {
        if (re.test(s)) {
          expect(s.startsWith(re.literalPrefix), `${source} matches ${s}`).toBe(true);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });
});
