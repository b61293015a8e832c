/**
 * Regular expressions written by users (`q` `~=` / `!~=`, `idPattern` in queries, subscriptions and
 * temporal queries) run here, and only here: in RE2 (re2js, a pure JavaScript port), whose matching time
 * is linear in the input, never in JavaScript's backtracking RegExp nor in the database's `~` (PGlite and
 * PostgreSQL would disagree with each other and with us, and a database regex cannot be bounded on PGlite).
 *
 * Syntax: RE2's (https://github.com/google/re2/wiki/Syntax): Perl-like classes, `(?i)` and other inline
 * flags, POSIX classes inside brackets (`[[:alpha:]]`); no back-references, no look-around, no
 * PostgreSQL-only escapes (`\m`, `\y`): those are refused with the reason. Matching is a search (the
 * pattern may match any part of the string); anchor with `^…$` for the whole value.
 *
 * Linear is not free: RE2's automaton may fall back to simulating every state of the program on every
 * character. `test` refuses (CONTEXT_QUERY_TOO_COMPLEX) a string so long that this worst case could hold
 * the event loop for more than a few tens of milliseconds, rather than hold it.
 */
import { RE2JS, RE2JSException } from 're2js';
import { AppError } from '../../kernel/errors.ts';

export const MAX_PATTERN_LENGTH = 256;
/** Most instructions of a compiled pattern (RE2's program). */
export const MAX_PATTERN_PROGRAM = 5_000;
/**
 * Most (program instructions × characters) one evaluation may cost: about 70 ms in the worst case measured
 * here (RE2's NFA simulation with every state alive, about 140 ns per instruction and character).
 */
export const MAX_MATCH_WORK = 500_000;
/**
 * Most work all the patterns of one query may do on one entity (twice one value's): an entity with many
 * long values cannot multiply the bound above. Per entity because queries give the event loop back
 * between entities, and subscriptions are matched one change at a time.
 */
export const MAX_ENTITY_MATCH_WORK = 1_000_000;

/** The work left to the patterns evaluated on one entity. */
export class MatchWork {
  remaining = MAX_ENTITY_MATCH_WORK;
}

export class UserPattern {
  readonly source: string;
  /** Longest string this pattern is matched against (longer: CONTEXT_QUERY_TOO_COMPLEX). */
  readonly maxInputLength: number;
  /** A literal every matching string starts with ('' when none is known): an SQL prefilter. */
  readonly literalPrefix: string;
  readonly #re: RE2JS;
  readonly #size: number;

  constructor(source: string, re: RE2JS) {
    this.source = source;
    this.#re = re;
    this.#size = Math.max(1, re.programSize());
    this.maxInputLength = Math.floor(MAX_MATCH_WORK / this.#size);
    this.literalPrefix = literalPrefixOf(source);
  }

  /** Whether the pattern matches some part of `s`; `work`, when given, is charged and bounded too. */
  test(s: string, work?: MatchWork): boolean {
    if (s.length > this.maxInputLength) {
      throw new AppError(
        'CONTEXT_QUERY_TOO_COMPLEX',
        `the pattern "${shorten(this.source)}" is too complex to match against a value of ${s.length} characters ` +
          `(at most ${this.maxInputLength} for this pattern); simplify the pattern or narrow the query`,
      );
    }
    if (work) {
      work.remaining -= this.#size * s.length;
      if (work.remaining < 0) {
        throw new AppError(
          'CONTEXT_QUERY_TOO_COMPLEX',
          `the patterns of the query would run over more text of one entity than allowed ` +
            `(${MAX_ENTITY_MATCH_WORK} instructions × characters); simplify them or narrow the query`,
        );
      }
    }
    return this.#re.test(s);
  }
}

/**
 * Compiles a user's pattern, or throws `invalid(why)` saying what is wrong (RE2's own message for syntax
 * it does not have, such as back-references or PostgreSQL's `\m`).
 */
export function compileUserPattern(source: string, invalid: (why: string) => AppError): UserPattern {
  if (typeof source !== 'string' || source === '') throw invalid('the pattern is empty');
  if (source.length > MAX_PATTERN_LENGTH) {
    throw invalid(`the pattern is longer than ${MAX_PATTERN_LENGTH} characters`);
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(source);
  } catch (e) {
    if (e instanceof RE2JSException) {
      throw invalid(
        `"${shorten(source)}" is not a regular expression this broker runs (RE2 syntax: no back-references, ` +
          `look-around or PostgreSQL-only escapes): ${e.message.replace(/^error parsing regexp: /, '')}`,
      );
    }
    throw e;
  }
  if (re.programSize() > MAX_PATTERN_PROGRAM) {
    throw invalid(
      `"${shorten(source)}" compiles to ${re.programSize()} instructions (at most ${MAX_PATTERN_PROGRAM}); ` +
        'use smaller repetition counts',
    );
  }
  return new UserPattern(source, re);
}

/** The LIKE pattern of strings starting with `literal` (`%`, `_` and the backslash escaped). */
export function likePrefixPattern(literal: string): string {
  return `${literal.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function shorten(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

const LITERAL_CHAR = /[A-Za-z0-9:_\-/#@%,;=~'"<>&!]/;

/**
 * The literal a pattern anchored with a leading `^` makes every match start with: the characters after
 * `^` up to the first that is not a plain literal, less the last one when a quantifier follows it. Empty
 * when unsure (no `^`, an alternation at top level, inline flags first). Conservative by design: it only
 * narrows an SQL prefilter, the pattern itself still decides.
 */
export function literalPrefixOf(source: string): string {
  if (!source.startsWith('^') || hasTopLevelAlternation(source)) return '';
  let out = '';
  let i = 1;
  while (i < source.length) {
    const c = source[i]!;
    let lit: string;
    let next: number;
    if (LITERAL_CHAR.test(c)) {
      lit = c;
      next = i + 1;
    } else if (c === '\\' && i + 1 < source.length && /[^A-Za-z0-9\s]/.test(source[i + 1]!)) {
      lit = source[i + 1]!;
      next = i + 2;
    } else break;
    const q = source[next];
    if (q === '*' || q === '?' || q === '{') break;
    out += lit;
    if (q === '+') break;
    i = next;
  }
  return out;
}

function hasTopLevelAlternation(source: string): boolean {
  let depth = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (c === '[') i = classEnd(source, i);
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return true;
  }
  return false;
}

/** The index of the `]` closing the class opened at `open` (POSIX `[:name:]` items included). */
function classEnd(source: string, open: number): number {
  let i = open + 1;
  if (source[i] === '^') i++;
  if (source[i] === ']') i++;
  while (i < source.length) {
    if (source[i] === '\\') i += 2;
    else if (source.startsWith('[:', i)) {
      const end = source.indexOf(':]', i + 2);
      i = end < 0 ? i + 1 : end + 2;
    } else if (source[i] === ']') return i;
    else i++;
  }
  return source.length;
}
