/**
 * The one query-string reader of every surface (the router's `querystringParser`): HTML form decoding, as
 * browsers, Python `requests`, Java and most HTTP clients encode, and as the NGSI-LD reference brokers
 * (Orion-LD, Scorpio, Stellio) and the ETSI conformance tests expect: `+` is a space
 * (`q=name=="Eiffel+Tower"`, `coordinates=[13.3986,+52.5547]`) and a literal plus is `%2B`. Two places where
 * a literal `+` cannot mean a space are kept as they are:
 *
 * - `scopeQ`, where `+` is the one-level wildcard (`/Madrid/+`) and scopes hold no spaces;
 * - a time zone offset right after a time of day (`timeAt=2024-05-01T10:00:00+02:00`,
 *   `q=observedAt>2024-05-01T10:00+02:00`).
 *
 * A repeated parameter becomes an array (which the schemas refuse: parameters are given once). A malformed
 * percent-encoding never reaches this reader: the edge guard refuses it first.
 */

const OFFSET_PLUS =
  /(T\d{2}(?::|%3A)\d{2}(?:(?::|%3A)\d{2}(?:\.\d{1,9})?)?)\+(?=\d{2}(?:(?::|%3A)?\d{2})?)/gi;
/** Parameters whose `+` is never a space. */
const LITERAL_PLUS = new Set(['scopeQ']);

function decode(raw: string, plusIsSpace: boolean): string {
  const text = plusIsSpace ? raw.replace(OFFSET_PLUS, '$1%2B').replace(/\+/g, ' ') : raw;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export function parseQueryString(query: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decode(eq < 0 ? part : part.slice(0, eq), true);
    const value = decode(eq < 0 ? '' : part.slice(eq + 1), !LITERAL_PLUS.has(key));
    const seen = out[key];
    if (seen === undefined) out[key] = value;
    else out[key] = Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return out;
}
