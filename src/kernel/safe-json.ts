/**
 * JSON from outside, parsed with bounds: nesting depth is checked by a scan of the text before
 * `JSON.parse` (so a 20,000-deep document never reaches a recursive parser, validator or serializer), and
 * the parsed value is walked once to refuse what no store or module should see: NUL characters and lone
 * surrogates in strings and keys, numbers out of the double range (`1e999` parses as Infinity), and the
 * key `__proto__` (which turns into a prototype as soon as any code copies the object by assignment).
 */
import { isStorableText } from './text.ts';

/** Arrays and objects nested deeper than this are refused (GeoJSON MultiPolygon coordinates are 4 deep). */
export const MAX_JSON_DEPTH = 64;

export type JsonProblemKind = 'syntax' | 'too_deep' | 'text' | 'number' | 'key';

export interface JsonProblem {
  kind: JsonProblemKind;
  message: string;
}

export type JsonResult = { ok: true; value: unknown } | { ok: false; problem: JsonProblem };

/** True when arrays and objects in the JSON text nest at most `max` deep (strings are skipped). */
export function jsonDepthWithin(text: string, max: number): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // A string: jump to its closing quote, over escapes.
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    } else if (c === 91 || c === 123) {
      if (++depth > max) return false;
    } else if (c === 93 || c === 125) depth--;
  }
  return true;
}

function pointer(path: (string | number)[]): string {
  return path.length === 0
    ? '(the document)'
    : `/${path.map((p) => String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`;
}

function check(value: unknown, path: (string | number)[]): JsonProblem | undefined {
  if (typeof value === 'string') {
    if (!isStorableText(value)) {
      return {
        kind: 'text',
        message: `the string at ${pointer(path)} holds a NUL character or a lone UTF-16 surrogate`,
      };
    }
    return undefined;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      return { kind: 'number', message: `the number at ${pointer(path)} is out of range` };
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      const p = check(value[i], path);
      path.pop();
      if (p) return p;
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (key === '__proto__')
      return { kind: 'key', message: `the key "__proto__" at ${pointer(path)} is not allowed` };
    if (!isStorableText(key)) {
      return {
        kind: 'text',
        message: `a key at ${pointer(path)} holds a NUL character or a lone UTF-16 surrogate`,
      };
    }
    path.push(key);
    const p = check((value as Record<string, unknown>)[key], path);
    path.pop();
    if (p) return p;
  }
  return undefined;
}

/** Parses JSON text within the bounds above; never throws. */
export function parseJsonSafely(text: string, maxDepth: number = MAX_JSON_DEPTH): JsonResult {
  if (!jsonDepthWithin(text, maxDepth)) {
    return {
      ok: false,
      problem: { kind: 'too_deep', message: `arrays and objects nest deeper than ${maxDepth} levels` },
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, problem: { kind: 'syntax', message: `not valid JSON: ${(e as Error).message}` } };
  }
  const problem = check(value, []);
  return problem ? { ok: false, problem } : { ok: true, value };
}
