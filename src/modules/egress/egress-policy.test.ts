import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { AppError } from '../../kernel/errors.ts';
import { classify, parseAddress } from './address-class.ts';
import { EgressPolicy, type HostResolver, pinnedLookup } from './egress-policy.ts';
import { defaultAllowList, parseEgressList } from './egress-rules.ts';

const allowList = (raw: string) =>
  parseEgressList('SAFECITY_EGRESS_ALLOW', raw, { allowing: true, schemes: true });
const denyList = (raw: string) =>
  parseEgressList('SAFECITY_EGRESS_DENY', raw, { allowing: false, schemes: true });

function policy(allow?: string, deny?: string, resolver?: HostResolver): EgressPolicy {
  return new EgressPolicy({
    allow: allow === undefined ? defaultAllowList('SAFECITY_EGRESS_ALLOW') : allowList(allow).list,
    ...(deny === undefined ? {} : { deny: denyList(deny).list }),
    ...(resolver ? { resolver } : {}),
  });
}

/** The refusal reason of a static check, or 'ok'. */
function verdict(p: EgressPolicy, url: string): string {
  try {
    p.checkUrl(url);
    return 'ok';
  } catch (e) {
    const err = e as AppError;
    expect(err.code).toBe('EGRESS_DESTINATION_REFUSED');
    return String(err.details?.reason);
  }
}

async function resolved(p: EgressPolicy, url: string): Promise<string> {
  try {
    const d = await p.resolve(url);
    return `${d.address}/${d.family}`;
  } catch (e) {
    return (e as AppError).code === 'EGRESS_DESTINATION_REFUSED'
      ? String((e as AppError).details?.reason)
      : `error: ${(e as Error).message}`;
  }
}

describe('egress lists (grammar)', () => {
  it('reads schemes, *, classes, addresses, CIDRs and host names', () => {
    const { list, problems } = allowList(
      ' https: , MQTTS:, *.City.Example, receiver.police.example., 10.20.0.0/16, 2001:db8::/32, [::1], 192.0.2.7, public, private, loopback, *',
    );
    expect(problems).toEqual([]);
    expect(list.entries.map((e) => e.kind)).toEqual([
      'scheme',
      'scheme',
      'host',
      'host',
      'range',
      'range',
      'range',
      'range',
      'class',
      'class',
      'class',
      'any',
    ]);
    expect(list.entries[2]).toMatchObject({ name: 'city.example', subdomains: true });
    expect(list.entries[3]).toMatchObject({ name: 'receiver.police.example', subdomains: false });
  });

  it.each([
    ['file:', /"file:" is not a scheme the platform connects with .*always refused/],
    ['gopher:', /"gopher:" is not a scheme/],
    ['10.0.0.0/33', /not an IPv4 or IPv6 address or CIDR/],
    ['10.0.0', /not an IPv4 or IPv6 address or CIDR/],
    ['fd00::/200', /not an IPv4 or IPv6 address or CIDR/],
    ['under_score..example', /is none of/],
    ['http://receiver.example/', /is a URL: list its host and, if needed, its scheme as two entries/],
    ['169.254.169.254', /is cloud metadata and always refused, whatever the allow-list says/],
    ['169.254.0.0/16', /is link-local and always refused/],
    ['fe80::/10', /is link-local and always refused/],
    ['metadata.google.internal', /cloud metadata service and always refused/],
  ])('refuses %s in an allow-list with a message naming the entry', (entry, message) => {
    const { problems } = allowList(`https:, ${entry}`);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      new RegExp(`^SAFECITY_EGRESS_ALLOW: entry "${entry.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" `),
    );
    expect(problems[0]).toMatch(message);
  });

  it('lets a deny-list name what is refused anyway, and keeps host lists free of schemes', () => {
    expect(denyList('169.254.0.0/16, metadata.google.internal, http:').problems).toEqual([]);
    expect(
      parseEgressList('SAFECITY_CONTEXT_ALLOW', 'https:', { allowing: true, schemes: false }).problems,
    ).toEqual(['SAFECITY_CONTEXT_ALLOW: entry "https:" is a scheme; this list names hosts only']);
  });
});

describe('address classes', () => {
  it.each([
    ['8.8.8.8', 'public'],
    ['2a00:1450::1', 'public'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd12:3456::1', 'private'],
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['169.254.169.254', 'cloud metadata'],
    ['100.100.100.200', 'cloud metadata'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['::ffff:169.254.169.254', 'cloud metadata'],
    ['64:ff9b::a9fe:a9fe', 'cloud metadata'],
    ['2002:a9fe:a9fe::1', 'cloud metadata'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.2.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
  ])('%s is %s', (address, cls) => {
    const a = parseAddress(address);
    expect(a && classify(a)).toBe(cls);
  });
});

describe('the egress policy', () => {
  it('by default opens public and private networks, not loopback, and never the always-refused', () => {
    const p = policy();
    const cases: Array<[string, string]> = [
      ['https://receiver.city.example/n', 'ok'],
      ['http://8.8.8.8/n', 'ok'],
      ['http://10.1.2.3:8080/n', 'ok'],
      ['mqtt://[fd12::1]/t', 'ok'],
      [
        'http://127.0.0.1:8080/n',
        'address 127.0.0.1 (loopback) is not in SAFECITY_EGRESS_ALLOW (unset: public, private)',
      ],
      ['http://[::1]/n', 'address ::1 (loopback) is not in SAFECITY_EGRESS_ALLOW (unset: public, private)'],
      [
        'http://0x7f.1/n',
        'address 127.0.0.1 (loopback) is not in SAFECITY_EGRESS_ALLOW (unset: public, private)',
      ],
      [
        'http://169.254.169.254/latest/meta-data/',
        'address 169.254.169.254 (cloud metadata) is always refused',
      ],
      ['http://[::ffff:169.254.169.254]/', 'address 169.254.169.254 (cloud metadata) is always refused'],
      ['http://[64:ff9b::a9fe:a9fe]/', 'address 64:ff9b::a9fe:a9fe (cloud metadata) is always refused'],
      ['http://[fd00:ec2::254]/', 'address fd00:ec2::254 (cloud metadata) is always refused'],
      ['http://100.100.100.200/', 'address 100.100.100.200 (cloud metadata) is always refused'],
      ['http://169.254.10.10/', 'address 169.254.10.10 (link-local) is always refused'],
      ['http://[fe80::1]/', 'address fe80::1 (link-local) is always refused'],
      ['http://0.0.0.0:5432/', 'address 0.0.0.0 (unspecified) is always refused'],
      ['http://[::]/', 'address :: (unspecified) is always refused'],
      ['http://224.0.0.251/', 'address 224.0.0.251 (multicast) is always refused'],
      [
        'http://Metadata.Google.Internal./computeMetadata/v1/',
        'metadata.google.internal is a cloud metadata service: always refused',
      ],
      [
        'file:///etc/passwd',
        'scheme file: is not a network scheme the platform connects with: always refused',
      ],
      [
        'gopher://10.0.0.1:25/',
        'scheme gopher: is not a network scheme the platform connects with: always refused',
      ],
      [
        'data:text/plain,hi',
        'scheme data: is not a network scheme the platform connects with: always refused',
      ],
      [
        'javascript:alert(1)',
        'scheme javascript: is not a network scheme the platform connects with: always refused',
      ],
    ];
    expect(cases.map(([url]) => [url, verdict(p, url)])).toEqual(cases);
  });

  it('applies the allow-list: schemes, then host names or every address in a listed range', () => {
    const p = policy('https:, mqtts:, *.city.example, 10.20.0.0/16');
    const cases: Array<[string, string]> = [
      ['https://rx.city.example/n', 'ok'],
      ['https://a.b.city.example/n', 'ok'],
      ['mqtts://broker.city.example/t', 'ok'],
      ['http://rx.city.example/n', 'scheme http: is not in SAFECITY_EGRESS_ALLOW (https:, mqtts:)'],
      ['https://10.20.3.4/n', 'ok'],
      [
        'https://10.30.3.4/n',
        'address 10.30.3.4 (private) is not in SAFECITY_EGRESS_ALLOW (*.city.example, 10.20.0.0/16)',
      ],
      [
        'https://8.8.8.8/n',
        'address 8.8.8.8 (public) is not in SAFECITY_EGRESS_ALLOW (*.city.example, 10.20.0.0/16)',
      ],
      // Decided by its addresses once resolved.
      ['https://city.example/n', 'ok'],
    ];
    expect(cases.map(([url]) => [url, verdict(p, url)])).toEqual(cases);
    const namesOnly = policy('receiver.police.example');
    expect(verdict(namesOnly, 'https://other.example/n')).toBe(
      'host other.example is not in SAFECITY_EGRESS_ALLOW (receiver.police.example)',
    );
    expect(verdict(policy('https:'), 'https://127.0.0.1/')).toMatch(
      /\(loopback\) is not in SAFECITY_EGRESS_ALLOW/,
    );
  });

  it('applies the deny-list before the allow-list, naming the entry', () => {
    const p = policy('*', 'http:, 10.0.0.0/8, bad.example, *.internal.example, loopback');
    const cases: Array<[string, string]> = [
      ['http://rx.example/', 'scheme http: matches SAFECITY_EGRESS_DENY entry "http:"'],
      ['https://10.9.8.7/', 'address 10.9.8.7 (private) matches SAFECITY_EGRESS_DENY entry "10.0.0.0/8"'],
      ['https://BAD.example/', 'host bad.example matches SAFECITY_EGRESS_DENY entry "bad.example"'],
      [
        'https://db.internal.example/',
        'host db.internal.example matches SAFECITY_EGRESS_DENY entry "*.internal.example"',
      ],
      ['https://127.0.0.1/', 'address 127.0.0.1 (loopback) matches SAFECITY_EGRESS_DENY entry "loopback"'],
      ['https://internal.example/', 'ok'],
      ['https://192.0.2.1/', 'ok'],
      ['https://169.254.169.254/', 'address 169.254.169.254 (cloud metadata) is always refused'],
    ];
    expect(cases.map(([url]) => [url, verdict(p, url)])).toEqual(cases);
  });

  it('resolves once, checks every address and answers the first, to pin the connection to it', async () => {
    const answers: Record<string, string[]> = {
      'rx.city.example': ['10.20.0.5', '10.20.0.6'],
      'mixed.city.example': ['10.20.0.5', '127.0.0.1'],
      'v6.city.example': ['fd12::5'],
      'meta.city.example': ['169.254.169.254'],
    };
    const resolver: HostResolver = async (host) => {
      const a = answers[host];
      if (!a) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
      return a;
    };
    const p = policy('10.20.0.0/16, fd12::/16', undefined, resolver);
    expect(await resolved(p, 'https://rx.city.example/n')).toBe('10.20.0.5/4');
    expect(await resolved(p, 'https://v6.city.example/n')).toBe('fd12::5/6');
    expect(await resolved(p, 'https://mixed.city.example/n')).toBe(
      'address 127.0.0.1 (loopback) of mixed.city.example is not in SAFECITY_EGRESS_ALLOW (10.20.0.0/16, fd12::/16)',
    );
    expect(await resolved(p, 'https://meta.city.example/n')).toBe(
      'address 169.254.169.254 (cloud metadata) of meta.city.example is always refused',
    );
    expect(await resolved(p, 'https://nowhere.city.example/n')).toBe(
      'error: getaddrinfo ENOTFOUND nowhere.city.example',
    );
    // At create time a host that does not resolve yet passes; one that resolves is checked.
    await expect(p.vet('https://nowhere.city.example/n')).resolves.toBeUndefined();
    await expect(p.vet('https://meta.city.example/n')).rejects.toThrow(/always refused/);
    // localhost with the system resolver: loopback opened, one loopback address denied.
    const local = policy('loopback', '127.0.0.0/8');
    // (A system whose localhost answers ::1 only would pass: the deny entry names IPv4 loopback.)
    expect([
      'address 127.0.0.1 (loopback) of localhost matches SAFECITY_EGRESS_DENY entry "127.0.0.0/8"',
      '::1/6',
    ]).toContain(await resolved(local, 'http://localhost:9/'));
  });

  it('reuses a checked answer for a few seconds, and never a failure', async () => {
    let queries = 0;
    let answer: string[] | undefined;
    const resolver: HostResolver = async () => {
      queries++;
      if (!answer) throw new Error('SERVFAIL');
      return answer;
    };
    const p = new EgressPolicy({ resolver, resolveCacheMs: 60_000 });
    await expect(p.resolve('https://rx.city.example/')).rejects.toThrow('SERVFAIL');
    answer = ['10.1.1.1'];
    expect((await p.resolve('https://rx.city.example/')).address).toBe('10.1.1.1');
    answer = ['169.254.169.254'];
    expect((await p.resolve('https://rx.city.example/')).address).toBe('10.1.1.1');
    expect(queries).toBe(2);
    const uncached = new EgressPolicy({ resolver, resolveCacheMs: 0 });
    await expect(uncached.resolve('https://rx.city.example/')).rejects.toThrow(/always refused/);
    await expect(uncached.resolve('https://rx.city.example/')).rejects.toThrow(/always refused/);
    expect(queries).toBe(4);
  });

  it('connects to the checked address whatever the name would resolve to later', async () => {
    const server = http.createServer((_req, res) => res.end('pinned'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      // `.invalid` never resolves (RFC 6761): only the pinned address can have reached the server.
      const p = policy('loopback', undefined, async () => ['127.0.0.1']);
      const d = await p.resolve(`http://receiver.invalid:${port}/`);
      const body = await new Promise<string>((resolve, reject) => {
        http
          .get(d.url, { lookup: pinnedLookup(d), agent: false }, (res) => {
            let text = '';
            res.on('data', (c: Buffer) => {
              text += c.toString();
            });
            res.on('end', () => resolve(text));
          })
          .on('error', reject);
      });
      expect(body).toBe('pinned');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
