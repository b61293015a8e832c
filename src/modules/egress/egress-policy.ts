/**
 * The egress policy: where the platform may connect on a user's behalf (notification endpoints, remote
 * @contexts). One decision for a destination, in this order:
 *
 * 1. always refused: a scheme the platform does not connect with (file:, data:, javascript:, gopher: …),
 *    a cloud metadata host name, and any address that is link-local, a metadata service, unspecified
 *    (0.0.0.0, ::), multicast or broadcast — whatever the lists say;
 * 2. the deny-list: a scheme, a host name, or a range or class holding any of the host's addresses;
 * 3. the allow-list: the scheme must be listed when schemes are listed; the host name must be listed, or
 *    every address must lie in a listed range or class. Without destination entries the allow-list is
 *    `public, private`: loopback (the platform's own host) and reserved ranges stay closed.
 *
 * A host name is resolved once per connection and every answer checked; the connection then goes to the
 * checked address (pinnedLookup), so a DNS answer that changes between check and connect (rebinding)
 * cannot reach a refused address.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import { AppError } from '../../kernel/errors.ts';
import {
  type Address,
  type AddressClass,
  ALWAYS_REFUSED,
  classify,
  inRange,
  METADATA_HOSTS,
  parseAddress,
} from './address-class.ts';
import {
  defaultAllowList,
  type EgressEntry,
  type EgressList,
  hostMatches,
  NETWORK_SCHEMES,
  normaliseHost,
} from './egress-rules.ts';

/** Resolves a host name to its addresses (all of them, as text). */
export type HostResolver = (host: string) => Promise<string[]>;

export interface EgressPolicyOptions {
  /** Absent: `public, private` (see defaultAllowList). */
  allow?: EgressList | undefined;
  deny?: EgressList | undefined;
  /** Default: the system resolver (getaddrinfo, every address). Tests inject their own. */
  resolver?: HostResolver;
  /**
   * How long a host's answer is reused, in ms (default 5000; 0: resolve every time). Only checked answers
   * lead to connections, so a cached answer cannot open a refused address; it only spares the resolver one
   * query per notification to a busy receiver.
   */
  resolveCacheMs?: number;
}

const CACHED_HOSTS = 1024;

/** A destination that passed the policy, with the one address to connect to. */
export interface CheckedDestination {
  url: URL;
  host: string;
  address: string;
  family: 4 | 6;
}

const systemResolver: HostResolver = async (host) =>
  (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** A URL fit for a message: no user name or password. */
function shown(url: URL): string {
  if (!url.username && !url.password) return url.href;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

/** The list's name, with the entries of `kinds` when the name does not say them already. */
function listText(list: EgressList, kinds: EgressEntry['kind'][]): string {
  if (list.implicit) return list.name;
  const entries = list.entries
    .filter((e) => kinds.includes(e.kind))
    .map((e) => e.text)
    .join(', ');
  return `${list.name} (${entries})`;
}

export class EgressPolicy {
  readonly #allow: EgressList;
  readonly #deny: EgressList;
  readonly #resolver: HostResolver;
  readonly #cacheMs: number;
  readonly #cache = new Map<string, { addresses: Address[]; until: number }>();

  constructor(opts: EgressPolicyOptions = {}) {
    const allow = opts.allow ?? defaultAllowList('the egress allow-list');
    const hasDestinations = allow.entries.some((e) => e.kind !== 'scheme');
    this.#allow = hasDestinations
      ? allow
      : {
          name: allow.name,
          entries: [...allow.entries, ...defaultAllowList(allow.name).entries],
        };
    this.#deny = opts.deny ?? { name: 'the egress deny-list', entries: [] };
    this.#resolver = opts.resolver ?? systemResolver;
    this.#cacheMs = opts.resolveCacheMs ?? 5000;
  }

  /** The same deny-list and resolver with another allow-list (remote @contexts have their own). */
  withAllow(allow: EgressList): EgressPolicy {
    return new EgressPolicy({
      allow,
      deny: this.#deny,
      resolver: this.#resolver,
      resolveCacheMs: this.#cacheMs,
    });
  }

  /** A short description for the start-up log. */
  describe(): string {
    const d = this.#deny.entries.map((e) => e.text).join(', ') || 'nothing';
    return `allow ${this.#allow.entries.map((e) => e.text).join(', ')}; deny ${d}`;
  }

  /**
   * Checks what can be known without resolving: scheme, host name, literal address. Throws
   * EGRESS_DESTINATION_REFUSED naming the rule. A host name that only its addresses can decide passes.
   */
  checkUrl(target: string | URL): URL {
    const url = toUrl(target);
    const scheme = url.protocol.slice(0, -1).toLowerCase();
    if (!NETWORK_SCHEMES.includes(scheme)) {
      refuse(url, `scheme ${scheme}: is not a network scheme the platform connects with: always refused`);
    }
    const host = hostOf(url);
    const literal = parseAddress(host);
    this.#checkName(url, host, literal !== undefined);
    if (literal) this.#checkAddresses(url, host, [literal]);
    else if (!this.#nameAllowed(host) && !this.#hasAddressEntries()) {
      refuse(url, `host ${host} is not in ${listText(this.#allow, ['host'])}`);
    }
    return url;
  }

  /**
   * Checks a destination given to the platform (a subscription's endpoint): what checkUrl checks, then the
   * addresses the host resolves to now. A host that does not resolve yet passes: delivery checks again.
   */
  async vet(target: string | URL, timeoutMs = 2000): Promise<void> {
    const url = this.checkUrl(target);
    const host = hostOf(url);
    if (parseAddress(host)) return;
    let addresses: Address[];
    try {
      addresses = await this.#lookup(host, timeoutMs);
    } catch {
      return;
    }
    this.#checkAddresses(url, host, addresses);
  }

  /**
   * Resolves the host once, checks every address and answers the first: connect to it and nowhere else
   * (pinnedLookup). Throws EGRESS_DESTINATION_REFUSED, or an Error when the host does not resolve.
   */
  async resolve(target: string | URL, timeoutMs = 5000): Promise<CheckedDestination> {
    const url = this.checkUrl(target);
    const host = hostOf(url);
    const literal = parseAddress(host);
    const addresses = literal ? [literal] : await this.#lookup(host, timeoutMs);
    this.#checkAddresses(url, host, addresses);
    const first = addresses[0] as Address;
    return { url, host, address: first.toString(), family: first.kind() === 'ipv4' ? 4 : 6 };
  }

  async #lookup(host: string, timeoutMs: number): Promise<Address[]> {
    const hit = this.#cache.get(host);
    if (hit && hit.until > Date.now()) return hit.addresses;
    const addresses = await this.#query(host, timeoutMs);
    if (this.#cacheMs > 0) {
      this.#cache.delete(host);
      if (this.#cache.size >= CACHED_HOSTS) {
        const oldest = this.#cache.keys().next().value;
        if (oldest !== undefined) this.#cache.delete(oldest);
      }
      this.#cache.set(host, { addresses, until: Date.now() + this.#cacheMs });
    }
    return addresses;
  }

  async #query(host: string, timeoutMs: number): Promise<Address[]> {
    let timer: NodeJS.Timeout | undefined;
    const answers = await Promise.race([
      this.#resolver(host),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${host} did not resolve within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    const addresses = answers.map((a) => parseAddress(a));
    if (addresses.length === 0 || addresses.some((a) => a === undefined)) {
      throw new Error(`${host} did not resolve to an address`);
    }
    return addresses as Address[];
  }

  #nameAllowed(host: string): boolean {
    return this.#allow.entries.some((e) => e.kind === 'any' || (e.kind === 'host' && hostMatches(e, host)));
  }

  #hasAddressEntries(): boolean {
    return this.#allow.entries.some((e) => e.kind === 'range' || e.kind === 'class');
  }

  #checkName(url: URL, host: string, literal: boolean): void {
    const scheme = url.protocol.slice(0, -1).toLowerCase();
    if (METADATA_HOSTS.has(host)) refuse(url, `${host} is a cloud metadata service: always refused`);
    for (const e of this.#deny.entries) {
      if (e.kind === 'scheme' && e.scheme === scheme)
        refuse(url, matched(this.#deny, e, `scheme ${scheme}:`));
      if (e.kind === 'any') refuse(url, matched(this.#deny, e, `host ${host}`));
      if (e.kind === 'host' && !literal && hostMatches(e, host)) {
        refuse(url, matched(this.#deny, e, `host ${host}`));
      }
    }
    const schemes = this.#allow.entries.filter((e) => e.kind === 'scheme');
    if (schemes.length > 0 && !schemes.some((e) => e.scheme === scheme)) {
      refuse(url, `scheme ${scheme}: is not in ${listText(this.#allow, ['scheme'])}`);
    }
  }

  #checkAddresses(url: URL, host: string, addresses: Address[]): void {
    const byName = this.#nameAllowed(host);
    for (const a of addresses) {
      const cls = classify(a);
      const what = `address ${a.toString()} (${cls})${parseAddress(host) ? '' : ` of ${host}`}`;
      if (ALWAYS_REFUSED.has(cls)) refuse(url, `${what} is always refused`);
      const denied = this.#deny.entries.find((e) => addressMatches(e, a, cls));
      if (denied) refuse(url, matched(this.#deny, denied, what));
      if (byName) continue;
      if (!this.#allow.entries.some((e) => addressMatches(e, a, cls))) {
        refuse(url, `${what} is not in ${listText(this.#allow, ['host', 'range', 'class', 'any'])}`);
      }
    }
  }
}

function addressMatches(e: EgressEntry, a: Address, cls: AddressClass): boolean {
  if (e.kind === 'class') return e.cls === cls;
  if (e.kind === 'range') return inRange(a, e.range);
  return false;
}

function matched(list: EgressList, e: EgressEntry, what: string): string {
  return `${what} matches ${list.name} entry "${e.text}"`;
}

function refuse(url: URL, reason: string): never {
  throw new AppError(
    'EGRESS_DESTINATION_REFUSED',
    `${shown(url)} is refused by the egress policy: ${reason}`,
    {
      url: shown(url),
      reason,
    },
  );
}

function toUrl(target: string | URL): URL {
  if (target instanceof URL) return target;
  try {
    return new URL(target);
  } catch {
    throw new AppError('EGRESS_DESTINATION_REFUSED', `"${target.slice(0, 200)}" is not a URL`, {
      reason: 'not a URL',
    });
  }
}

function hostOf(url: URL): string {
  const h = url.hostname;
  if (!h) refuse(url, 'it names no host');
  return normaliseHost(h.startsWith('[') ? h.slice(1, -1) : h);
}

/**
 * A `lookup` for node:net, node:http and node:tls that answers the checked address whatever the name:
 * the connection goes where the policy looked, not where a second DNS answer would send it.
 */
export function pinnedLookup(d: Pick<CheckedDestination, 'address' | 'family'>): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address: d.address, family: d.family }]);
    else callback(null, d.address, d.family);
  };
}
