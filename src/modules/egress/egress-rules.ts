/**
 * The grammar of egress lists (SAFECITY_EGRESS_ALLOW, SAFECITY_EGRESS_DENY, SAFECITY_CONTEXT_ALLOW):
 *
 *   list   = entry *( "," entry )          spaces around entries are ignored
 *   entry  = scheme | "*" | class | range | host
 *   scheme = "http:" | "https:" | "mqtt:" | "mqtts:"
 *   class  = "public" | "private" | "loopback"
 *   range  = IPv4 or IPv6 address, with an optional "/prefix" (CIDR); "[v6]" is accepted
 *   host   = a DNS name ("receiver.city.example"), or "*." and a name for every name under it
 *
 * Each list is parsed once at start; every problem names the variable and the entry.
 */
import ipaddr from 'ipaddr.js';
import {
  type Address,
  type AddressClass,
  ALWAYS_REFUSED,
  classify,
  METADATA_HOSTS,
  parseAddress,
} from './address-class.ts';

/** The schemes the platform connects with; every other scheme (file:, data:, gopher: …) is refused. */
export const NETWORK_SCHEMES: readonly string[] = ['http', 'https', 'mqtt', 'mqtts'];

/** The address classes a list may name. */
export const LIST_CLASSES: readonly AddressClass[] = ['public', 'private', 'loopback'];

export type EgressEntry =
  | { kind: 'scheme'; scheme: string; text: string }
  | { kind: 'any'; text: string }
  | { kind: 'class'; cls: AddressClass; text: string }
  | { kind: 'range'; range: [Address, number]; text: string }
  | { kind: 'host'; name: string; subdomains: boolean; text: string };

export interface EgressList {
  /** How messages name the list, e.g. `SAFECITY_EGRESS_DENY`. */
  name: string;
  entries: EgressEntry[];
  /** The list in force because none was configured: its name already says what it holds. */
  implicit?: boolean;
}

const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const HOST_RE = new RegExp(`^(\\*\\.)?${LABEL}(?:\\.${LABEL})*$`);

/** Normalises a host name for comparison: lower case, no trailing dot. */
export function normaliseHost(host: string): string {
  const h = host.toLowerCase();
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

function parseRange(text: string): [Address, number] | undefined {
  const slash = text.lastIndexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const address = parseAddress(addressText);
  if (!address) return undefined;
  const max = address.kind() === 'ipv4' ? 32 : 128;
  if (slash < 0) return [address, max];
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  // An IPv6 prefix over an IPv4-mapped address is counted in IPv4 bits once the address is unmapped.
  const wasMapped = addressText.includes(':') && address.kind() === 'ipv4';
  if (wasMapped) return prefix >= 96 ? [address, prefix - 96] : undefined;
  return [address, prefix];
}

/** The first address of a range: where an always-refused class would show. */
function network(range: [Address, number]): Address {
  const [a, bits] = range;
  const bytes = a.toByteArray();
  const out = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    return keep === 0 ? 0 : b & (0xff << (8 - keep));
  });
  return ipaddr.fromByteArray(out);
}

/**
 * Parses one list. `allowing` says the list opens destinations, so an entry naming an always-refused
 * destination is a mistake worth stopping the start for; `schemes` says scheme entries make sense.
 */
export function parseEgressList(
  name: string,
  raw: string | undefined,
  opts: { allowing: boolean; schemes: boolean },
): { list: EgressList; problems: string[] } {
  const problems: string[] = [];
  const entries: EgressEntry[] = [];
  const texts = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const text of texts) {
    const lower = text.toLowerCase();
    const bad = (why: string) => problems.push(`${name}: entry "${text}" ${why}`);
    if (/^[a-z][a-z0-9+.-]*:$/.test(lower)) {
      const scheme = lower.slice(0, -1);
      if (!opts.schemes) bad('is a scheme; this list names hosts only');
      else if (!NETWORK_SCHEMES.includes(scheme)) {
        bad(
          `is not a scheme the platform connects with (${NETWORK_SCHEMES.map((s) => `${s}:`).join(', ')}); file:, data: and other schemes are always refused`,
        );
      } else entries.push({ kind: 'scheme', scheme, text });
      continue;
    }
    if (lower === '*') {
      entries.push({ kind: 'any', text });
      continue;
    }
    if ((LIST_CLASSES as readonly string[]).includes(lower)) {
      entries.push({ kind: 'class', cls: lower as AddressClass, text });
      continue;
    }
    if (lower.includes('://')) {
      bad(
        'is a URL: list its host and, if needed, its scheme as two entries (e.g. "https:, receiver.city.example")',
      );
      continue;
    }
    if (/^[0-9.]+(\/\d+)?$/.test(lower) || lower.includes(':')) {
      const range = parseRange(lower);
      if (!range) {
        bad('is not an IPv4 or IPv6 address or CIDR range (e.g. 10.20.0.0/16, 2001:db8::/32)');
        continue;
      }
      const cls = classify(network(range));
      if (opts.allowing && ALWAYS_REFUSED.has(cls) && range[1] >= (range[0].kind() === 'ipv4' ? 16 : 10)) {
        bad(`is ${cls} and always refused, whatever the allow-list says`);
        continue;
      }
      entries.push({ kind: 'range', range, text });
      continue;
    }
    const hostText = normaliseHost(lower);
    if (HOST_RE.test(hostText) && hostText.length <= 253) {
      const subdomains = hostText.startsWith('*.');
      const host = subdomains ? hostText.slice(2) : hostText;
      if (opts.allowing && METADATA_HOSTS.has(host)) {
        bad('is a cloud metadata service and always refused, whatever the allow-list says');
        continue;
      }
      entries.push({ kind: 'host', name: host, subdomains, text });
      continue;
    }
    bad(
      'is none of: a scheme (https:), * (any host), an address class (public, private, loopback), an IP address or CIDR range, a host name or *.domain',
    );
  }
  return { list: { name, entries }, problems };
}

/** The allow-list in force when none is configured: public and private networks, not loopback. */
export function defaultAllowList(name: string): EgressList {
  return {
    name: `${name} (unset: public, private)`,
    implicit: true,
    entries: [
      { kind: 'class', cls: 'public', text: 'public' },
      { kind: 'class', cls: 'private', text: 'private' },
    ],
  };
}

export function hostMatches(entry: { name: string; subdomains: boolean }, host: string): boolean {
  return entry.subdomains ? host.endsWith(`.${entry.name}`) : host === entry.name;
}
