/**
 * What kind of destination an IP address is, as the egress policy sees it. ipaddr.js does the parsing and
 * knows the special-purpose ranges; this file only groups them and adds the cloud metadata services.
 */
import ipaddr from 'ipaddr.js';

export type Address = ipaddr.IPv4 | ipaddr.IPv6;

export type AddressClass =
  | 'public'
  | 'private'
  | 'loopback'
  | 'reserved'
  | 'link-local'
  | 'cloud metadata'
  | 'unspecified'
  | 'multicast'
  | 'broadcast';

/** Classes no allow-list can open: they are never a notification receiver or a @context host. */
export const ALWAYS_REFUSED: ReadonlySet<AddressClass> = new Set<AddressClass>([
  'link-local',
  'cloud metadata',
  'unspecified',
  'multicast',
  'broadcast',
]);

/**
 * Instance metadata services reachable from a VM: AWS (IPv4, ECS task metadata, IPv6), GCP, Azure, OCI,
 * DigitalOcean (169.254.169.254), Alibaba Cloud, Oracle Cloud Classic, Azure WireServer, GCP IPv6.
 */
const METADATA_ADDRESSES: readonly Address[] = [
  '169.254.169.254',
  '169.254.170.2',
  '100.100.100.200',
  '192.0.0.192',
  '168.63.129.16',
  'fd00:ec2::254',
  'fd20:ce::254',
].map((a) => ipaddr.parse(a));

/** Host names of metadata services, refused before any resolution (their addresses are refused too). */
export const METADATA_HOSTS: ReadonlySet<string> = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'metadata.azure.internal',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.tencentyun.com',
  'metadata.platformequinix.com',
]);

/**
 * Parses an address as written in a URL host or a resolver answer ("[::1]" too). IPv4-mapped IPv6
 * (::ffff:a.b.c.d) becomes its IPv4 address; anything that is not a plain address is undefined.
 */
export function parseAddress(text: string): Address | undefined {
  const s = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  // ipaddr.js answers "not valid" by catching an exception: host names must not take that path.
  if (/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(s)) {
    return ipaddr.IPv4.isValidFourPartDecimal(s) ? ipaddr.IPv4.parse(s) : undefined;
  }
  if (s.includes(':') && ipaddr.IPv6.isValid(s)) return ipaddr.process(s);
  return undefined;
}

/**
 * The IPv4 address an IPv6 address stands for when the packet ends up there: NAT64 (64:ff9b::/96),
 * SIIT (::ffff:0:a.b.c.d), 6to4 (2002:AABB:CCDD::) and the old IPv4-compatible form (::a.b.c.d).
 */
function embeddedIPv4(a: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = a.parts;
  const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const range = a.range();
  if (range === 'rfc6052' || range === 'rfc6145') return v4(p[6] ?? 0, p[7] ?? 0);
  if (range === '6to4') return v4(p[1] ?? 0, p[2] ?? 0);
  if (p.slice(0, 6).every((x) => x === 0) && ((p[6] ?? 0) !== 0 || (p[7] ?? 0) > 1)) {
    return v4(p[6] ?? 0, p[7] ?? 0);
  }
  return undefined;
}

function isMetadata(a: Address): boolean {
  return METADATA_ADDRESSES.some((m) => m.kind() === a.kind() && m.toString() === a.toString());
}

export function classify(a: Address): AddressClass {
  if (a.kind() === 'ipv6') {
    const inner = embeddedIPv4(a as ipaddr.IPv6);
    if (inner) return classify(inner);
  }
  if (isMetadata(a)) return 'cloud metadata';
  const range = a.range();
  switch (range) {
    case 'unicast':
    case 'teredo':
      return 'public';
    case 'private':
    case 'carrierGradeNat':
    case 'uniqueLocal':
    case 'deprecatedSiteLocal' as string:
      return 'private';
    case 'loopback':
      return 'loopback';
    case 'linkLocal':
      return 'link-local';
    case 'unspecified':
      return 'unspecified';
    case 'multicast':
      return 'multicast';
    case 'broadcast':
      return 'broadcast';
    default:
      // Documentation, benchmarking, 240/4, AS112, ORCHID…: not a place a receiver lives.
      return 'reserved';
  }
}

/** True when `a` lies in `range` (same family). */
export function inRange(a: Address, range: [Address, number]): boolean {
  return a.kind() === range[0].kind() && a.match(range as [ipaddr.IPv4, number]);
}
