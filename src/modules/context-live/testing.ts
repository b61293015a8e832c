/**
 * Test helpers of the module (also used by the API plugin's tests): a real local HTTP receiver of
 * notifications, and entity change events as the core publishes them.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Marking } from '../access/marking.ts';
import { objectReadKeys } from '../access/marking.ts';
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
    req.on('end', () => {
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
    tenant: opts.tenant ?? 'default',
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

const CORE_TERMS: Record<string, string> = {
  location: 'https://uri.etsi.org/ngsi-ld/location',
  observationSpace: 'https://uri.etsi.org/ngsi-ld/observationSpace',
  operationSpace: 'https://uri.etsi.org/ngsi-ld/operationSpace',
  name: 'https://uri.etsi.org/ngsi-ld/name',
  description: 'https://uri.etsi.org/ngsi-ld/description',
};

/**
 * An LdContextPort for tests that need no JSON-LD processing: the core context's @vocab (terms expand
 * under the default context) and its geo terms, plus the term definitions of inline context objects.
 * Contexts given as URLs add nothing.
 */
export function vocabLdContext(): import('./ports.ts').LdContextPort {
  return {
    async resolve(context) {
      const terms: Record<string, string> = { ...CORE_TERMS };
      const list = context === undefined ? [] : Array.isArray(context) ? context : [context];
      for (const c of list) {
        if (typeof c !== 'object') continue;
        for (const [k, v] of Object.entries(c)) if (typeof v === 'string') terms[k] = v;
      }
      const reverse = new Map(Object.entries(terms).map(([k, v]) => [v, k]));
      return {
        expandTerm: (t) => terms[t] ?? (t.includes(':') ? t : `${DEFAULT_VOCAB}${t}`),
        compactIri: (iri) =>
          reverse.get(iri) ?? (iri.startsWith(DEFAULT_VOCAB) ? iri.slice(DEFAULT_VOCAB.length) : iri),
      };
    },
  };
}
