import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from './error-codes.ts';
import { AppError } from './errors.ts';

const doc = readFileSync(join(import.meta.dirname, '../../docs/errors.md'), 'utf8');
const documented = new Map<string, string>();
for (const line of doc.split('\n')) {
  const m = /^\|\s*`?([A-Z][A-Z0-9_]+)`?\s*\|\s*([a-z_]+)\s*\|/.exec(line);
  if (m?.[1] && m[2]) documented.set(m[1], m[2]);
}

describe('error catalogue', () => {
  it('documents every code in docs/errors.md with its kind', () => {
    const missing = Object.keys(ERROR_CODES).filter((c) => !documented.has(c));
    expect(missing).toEqual([]);
    const wrongKind = Object.entries(ERROR_CODES)
      .filter(([c, e]) => documented.get(c) !== e.kind)
      .map(([c, e]) => `${c}: code says ${e.kind}, docs say ${documented.get(c)}`);
    expect(wrongKind).toEqual([]);
  });

  it('documents no code that does not exist', () => {
    const stale = [...documented.keys()].filter((c) => !(c in ERROR_CODES));
    expect(stale).toEqual([]);
  });

  it('prefixes every code with its module', () => {
    for (const code of Object.keys(ERROR_CODES)) expect(code).toMatch(/^[A-Z]+(?:_[A-Z0-9]+)+$/);
  });

  it('gives an AppError the kind and the default title of its code', () => {
    const e = new AppError('ACCESS_INVALID_TLP');
    expect(e.kind).toBe('invalid');
    expect(e.message).toBe('Invalid TLP label');
    expect(new AppError('ACCESS_INVALID_TLP', 'nope').message).toBe('nope');
  });
});
