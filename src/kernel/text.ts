/**
 * Text that every store and client can take: PostgreSQL refuses NUL (U+0000) in `text` and `jsonb`, and a
 * lone UTF-16 surrogate has no UTF-8 encoding. Input is checked with `isStorableText` at the edge; text
 * that must be kept whatever it holds (a refused message in the dead-letter store) goes through
 * `toStorableText`.
 */

const NUL = '\u0000';
// Without the `u` flag a regular expression sees UTF-16 code units, so it can find unpaired surrogates.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** True when the string holds no NUL character and no unpaired surrogate. */
export function isStorableText(s: string): boolean {
  return !s.includes(NUL) && !LONE_SURROGATE.test(s);
}

/** The string with every NUL and unpaired surrogate replaced by U+FFFD (the replacement character). */
export function toStorableText(s: string): string {
  return isStorableText(s) ? s : s.replaceAll(NUL, '\ufffd').replace(LONE_SURROGATES, '\ufffd');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes as UTF-8 text (a leading byte order mark dropped), or undefined when they are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}
