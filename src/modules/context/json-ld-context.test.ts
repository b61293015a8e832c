import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppError } from '../../kernel/errors.ts';
import { EgressPolicy, type HostResolver, parseEgressList } from '../egress/index.ts';
import { CORE_CONTEXT_DOCUMENT, CORE_CONTEXT_URL, CORE_CONTEXT_URLS } from './core-context.ts';
import { ContextResolver, readContextMap } from './json-ld-context.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const NGSI_LD = resolve(REPO_ROOT, process.env.SAFECITY_SHARED_DATA ?? '../shared/data', 'standards/ngsi-ld');
const MAP = process.env.SAFECITY_CONTEXT_MAP ?? resolve(NGSI_LD, 'CONTEXT-URLS.txt');

/** Remote fetching as SAFECITY_CONTEXT_ALLOW=`hosts` (and SAFECITY_EGRESS_DENY=`deny`) would set it. */
function remote(hosts: string, opts: { deny?: string; resolver?: HostResolver } = {}): EgressPolicy {
  const list = (name: string, raw: string | undefined, allowing: boolean) =>
    parseEgressList(name, raw, { allowing, schemes: !allowing }).list;
  return new EgressPolicy({
    deny: list('SAFECITY_EGRESS_DENY', opts.deny, false),
    ...(opts.resolver ? { resolver: opts.resolver } : {}),
  }).withAllow(list('SAFECITY_CONTEXT_ALLOW', hosts, true));
}

async function rejects(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    return e as AppError;
  }
  throw new Error('expected a rejection');
}

describe('JSON-LD contexts', () => {
  let server: Server;
  let base = '';
  let hits = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++;
      if (req.url === '/slow') return; // never answers
      if (req.url === '/ctx') {
        res.setHeader('content-type', 'application/ld+json');
        res.end(JSON.stringify({ '@context': { speed: 'https://example.org/vocab/speed' } }));
        return;
      }
      if (req.url === '/huge') {
        res.setHeader('content-type', 'application/ld+json');
        res.write(`{"@context": {"a": "${'x'.repeat(4096)}`);
        return; // keeps the connection open: the reader must stop at the limit, not wait for the end
      }
      if (req.url === '/to-metadata') {
        res.statusCode = 302;
        res.setHeader('location', 'http://169.254.169.254/latest/meta-data/');
        res.end();
        return;
      }
      if (req.url === '/not-a-context') {
        res.end('{"hello": 1}');
        return;
      }
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('builds in the published v1.8 core context', () => {
    const published = JSON.parse(
      readFileSync(resolve(NGSI_LD, 'core-context/ngsi-ld-core-context-v1.8.jsonld'), 'utf8'),
    );
    expect(CORE_CONTEXT_DOCUMENT).toEqual(published);
  });

  it('expands and compacts core terms without the network', async () => {
    const r = new ContextResolver();
    const core = await r.resolve(CORE_CONTEXT_URL);
    expect(core.expandTerm('location')).toBe('https://uri.etsi.org/ngsi-ld/location');
    expect(core.expandTerm('observationSpace')).toBe('https://uri.etsi.org/ngsi-ld/observationSpace');
    expect(core.expandTerm('speed')).toBe('https://uri.etsi.org/ngsi-ld/default-context/speed');
    expect(core.expandTerm('https://x.org/a')).toBe('https://x.org/a');
    expect(core.compactIri('https://uri.etsi.org/ngsi-ld/default-context/speed')).toBe('speed');
    expect(core.compactIri('https://x.org/a')).toBe('https://x.org/a');
    expect(core.echo).toBe(CORE_CONTEXT_URL);
  });

  it('loads contexts from the offline URL map, <X> wildcards included', async () => {
    const entries = readContextMap(MAP);
    expect(entries.length).toBeGreaterThan(5);
    const r = new ContextResolver({ contextMapFile: MAP });
    const weather = await r.resolve('https://smart-data-models.github.io/dataModel.Weather/context.jsonld');
    expect(weather.expandTerm('WeatherObserved')).toBe(
      'https://smartdatamodels.org/dataModel.Weather/WeatherObserved',
    );
    const suite = await r.resolve(
      'https://forge.etsi.org/rep/cim/ngsi-ld-test-suite/-/raw/develop/resources/jsonld-contexts/ngsi-ld-test-suite-compound.jsonld',
    );
    expect(suite.expandTerm('Building')).toMatch(/^https?:\/\//);
    // Core terms cannot be redefined by user contexts: the core is applied last.
    const inline = await r.resolve([
      { location: 'https://example.org/myLocation', name: 'https://example.org/name' },
    ]);
    expect([inline.expandTerm('location'), inline.expandTerm('name')]).toEqual([
      'https://uri.etsi.org/ngsi-ld/location',
      'https://example.org/name',
    ]);
  });

  it('fetches a remote context once and caches it', async () => {
    const r = new ContextResolver({ timeoutMs: 2000, remote: remote('127.0.0.1') });
    hits = 0;
    const a = await r.resolve(`${base}/ctx`);
    const b = await r.resolve([`${base}/ctx`, { x: 'https://example.org/x' }]);
    expect([a.expandTerm('speed'), b.expandTerm('speed'), b.expandTerm('x')]).toEqual([
      'https://example.org/vocab/speed',
      'https://example.org/vocab/speed',
      'https://example.org/x',
    ]);
    expect(hits).toBe(1);
  });

  it('fails fast with LdContextNotAvailable on timeouts, errors and non-contexts', async () => {
    const r = new ContextResolver({ timeoutMs: 200, remote: remote('127.0.0.1') });
    const started = Date.now();
    const slow = await rejects(r.resolve(`${base}/slow`));
    expect([slow.code, Date.now() - started < 2000]).toEqual(['CONTEXT_LDCONTEXT_NOT_AVAILABLE', true]);
    expect(slow.message).toMatch(/no answer within 200 ms/);
    expect((await rejects(r.resolve(`${base}/missing`))).code).toBe('CONTEXT_LDCONTEXT_NOT_AVAILABLE');
    expect((await rejects(r.resolve(`${base}/not-a-context`))).code).toBe('CONTEXT_LDCONTEXT_NOT_AVAILABLE');
    const small = new ContextResolver({ timeoutMs: 2000, maxContextBytes: 1024, remote: remote('*') });
    const started2 = Date.now();
    const huge = await rejects(small.resolve(`${base}/huge`));
    expect([huge.code, huge.message, Date.now() - started2 < 1500]).toEqual([
      'CONTEXT_LDCONTEXT_NOT_AVAILABLE',
      `@context ${base}/huge cannot be retrieved: larger than 1024 bytes`,
      true,
    ]);
  });

  it('answers every published core context URL (v1.3 to v1.8 and the alias) offline with the built-in core', async () => {
    const r = new ContextResolver();
    const versions = CORE_CONTEXT_URLS.map((u) => /core-context(-v[\d.]+)?\.jsonld$/.exec(u)?.[1] ?? '');
    expect(versions.sort()).toEqual(['', '-v1.3', '-v1.4', '-v1.5', '-v1.6', '-v1.7', '-v1.8']);
    const core = await r.core();
    for (const url of CORE_CONTEXT_URLS) {
      expect(await r.resolve(url)).toBe(core);
      expect(await r.resolve([url, { x: 'https://example.org/x' }]).then((a) => a.expandTerm('x'))).toBe(
        'https://example.org/x',
      );
    }
  });

  it('fetches no remote context by default, and says how to allow one (gap 8)', async () => {
    const r = new ContextResolver();
    hits = 0;
    const refused = await rejects(r.resolve(`${base}/ctx`));
    expect([refused.code, hits]).toEqual(['CONTEXT_LDCONTEXT_NOT_AVAILABLE', 0]);
    expect(refused.message).toBe(
      `@context ${base}/ctx is not built in, not hosted here and not in the offline map, and remote @context fetching is off: to use it, name its host in SAFECITY_CONTEXT_ALLOW, map the URL to a file in SAFECITY_CONTEXT_MAP, or host the context here (POST /ngsi-ld/v1/jsonldContexts)`,
    );
  });

  it('fetches only from the hosts SAFECITY_CONTEXT_ALLOW names, and never from link-local or metadata addresses', async () => {
    hits = 0;
    const elsewhere = new ContextResolver({ remote: remote('contexts.city.example') });
    const notListed = await rejects(elsewhere.resolve(`${base}/ctx`));
    expect([notListed.code, hits]).toEqual(['CONTEXT_LDCONTEXT_NOT_AVAILABLE', 0]);
    expect(notListed.message).toContain(
      'address 127.0.0.1 (loopback) is not in SAFECITY_CONTEXT_ALLOW (contexts.city.example)',
    );
    // Allowed by name, but the name answers a metadata address: refused before any connection.
    const rebound = new ContextResolver({
      remote: remote('contexts.city.example', { resolver: async () => ['169.254.169.254'] }),
    });
    const metadata = await rejects(rebound.resolve('http://contexts.city.example/ctx.jsonld'));
    expect(metadata.message).toContain(
      'address 169.254.169.254 (cloud metadata) of contexts.city.example is always refused',
    );
    const any = new ContextResolver({ remote: remote('*', { deny: 'evil.example' }) });
    expect((await rejects(any.resolve('http://[fe80::1]/ctx'))).message).toContain(
      '(link-local) is always refused',
    );
    expect((await rejects(any.resolve('http://evil.example/ctx'))).message).toContain(
      'host evil.example matches SAFECITY_EGRESS_DENY entry "evil.example"',
    );
    // Each redirect is checked like the first request.
    const redirected = await rejects(any.resolve(`${base}/to-metadata`));
    expect(redirected.message).toContain('169.254.169.254');
    expect(hits).toBe(1);
    expect((await any.resolve(`${base}/ctx`)).expandTerm('speed')).toBe('https://example.org/vocab/speed');
  });

  it('rejects invalid JSON-LD contexts with a detail', async () => {
    const r = new ContextResolver();
    expect((await rejects(r.resolve({ a: { '@id': 5 } }))).code).toBe('CONTEXT_INVALID_JSONLD');
    expect((await rejects(r.resolve('relative/ctx.jsonld'))).code).toBe('CONTEXT_INVALID_JSONLD');
    expect((await rejects(r.resolve([42] as never))).code).toBe('CONTEXT_INVALID_JSONLD');
  });
});
