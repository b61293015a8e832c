/**
 * Test helpers of the module (also used by the API plugin's tests): a real local HTTP receiver of
 * notifications, and entity change events as the core publishes them.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Marking } from '../access/index.ts';
import { ContextResolver, DEFAULT_TENANT } from '../context/index.ts';
import { EgressPolicy, type HostResolver, parseEgressList } from '../egress/index.ts';
import { objectReadKeys } from '../sharing/marking.ts';
import type { LiveEntityChange } from './entity-change-event.ts';
import type { ExpandedEntity } from './ports.ts';

export interface ReceivedRequest {
  at: number;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface Receiver {
  url: string;
  received: ReceivedRequest[];
  /** The HTTP status the receiver answers with (200 by default; 503 plays a receiver that is down). */
  status: number;
  /** How long the receiver takes to answer, in ms (0 by default; plays a slow receiver). */
  delayMs: number;
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

/** A notification receiver on 127.0.0.1 (node:http), recording what it accepted. */
export async function startReceiver(): Promise<Receiver> {
  const received: ReceivedRequest[] = [];
  const r: Receiver = {
    url: '',
    received,
    status: 200,
    delayMs: 0,
    async waitFor(n, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      while (received.length < n) {
        if (Date.now() > end) throw new Error(`receiver got ${received.length} of ${n} notifications`);
        await new Promise((res) => setTimeout(res, 10));
      }
      return received;
    },
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      if (r.delayMs > 0) await new Promise((res) => setTimeout(res, r.delayMs));
      if (r.status >= 200 && r.status < 300) {
        received.push({
          at: Date.now(),
          path: req.url ?? '/',
          headers: req.headers,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
        });
      }
      res.statusCode = r.status;
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const { port } = server.address() as AddressInfo;
  r.url = `http://127.0.0.1:${port}/notify`;
  r.close = () =>
    new Promise<void>((res) => {
      server.closeAllConnections();
      server.close(() => res());
    });
  return r;
}

export const DEFAULT_VOCAB = 'https://uri.etsi.org/ngsi-ld/default-context/';

/** An entity change as the core publishes it, with read keys computed from the marking. */
export function entityChange(
  entity: ExpandedEntity,
  opts: {
    tenant?: string;
    changed?: string[];
    ownerOrg?: string;
    createdBy?: string;
    marking?: Marking;
    deleted?: boolean;
  } = {},
): LiveEntityChange {
  const ownerOrg = opts.ownerOrg ?? 'org-a';
  const createdBy = opts.createdBy ?? 'user-a';
  const marking: Marking = opts.marking ?? {
    tlp: 'GREEN',
    audience: { orgs: [], communities: [], users: [] },
  };
  const types = Array.isArray(entity.type) ? entity.type : [entity.type];
  return {
    tenant: opts.tenant ?? DEFAULT_TENANT,
    entityId: entity.id,
    entityType: types,
    entity: opts.deleted ? null : entity,
    changedAttributes:
      opts.changed ?? Object.keys(entity).filter((k) => k !== 'id' && k !== 'type' && !k.endsWith('At')),
    ownerOrg,
    createdBy,
    marking,
    readKeys: objectReadKeys({ ownerOrg, createdBy, marking }),
  };
}

/** The URL-to-file map of the shared NGSI-LD contexts (offline), from NGSI_LD_CONTEXT_MAP or ../shared/data. */
export function contextMapFile(): string {
  return (
    process.env.NGSI_LD_CONTEXT_MAP ??
    resolve(
      dirname(fileURLToPath(import.meta.url)),
      '../../../../shared/data/standards/ngsi-ld/CONTEXT-URLS.txt',
    )
  );
}

/** The core's real @context resolver, offline (no remote contexts). */
export function testLdContext(): ContextResolver {
  return new ContextResolver({ contextMapFile: contextMapFile() });
}

/**
 * The egress policy of tests whose receivers listen on 127.0.0.1: the default refuses loopback, so these
 * tests open it by name, as an operator would with SAFECITY_EGRESS_ALLOW=public,private,loopback.
 */
export function loopbackEgress(
  opts: { deny?: string; resolver?: HostResolver; resolveCacheMs?: number } = {},
): EgressPolicy {
  const allow = parseEgressList('SAFECITY_EGRESS_ALLOW', 'public,private,loopback', {
    allowing: true,
    schemes: true,
  }).list;
  const deny = parseEgressList('SAFECITY_EGRESS_DENY', opts.deny, { allowing: false, schemes: true }).list;
  return new EgressPolicy({
    allow,
    deny,
    ...(opts.resolver ? { resolver: opts.resolver } : {}),
    ...(opts.resolveCacheMs !== undefined ? { resolveCacheMs: opts.resolveCacheMs } : {}),
  });
}
