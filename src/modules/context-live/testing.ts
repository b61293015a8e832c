/**
 * Test helpers of the module (also used by the API plugin's and the benchmarks' tests): a real local HTTP
 * receiver of notifications, entity change events as the core publishes them, and a small world of
 * organisations and accounts behind a real sharing gate.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Migration } from 'kysely/migration';
import type { EventBus } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import {
  type AccessEvents,
  AccessService,
  accessMigrations,
  type Principal,
  type User,
} from '../access/index.ts';
import { auditMigrations } from '../audit/index.ts';
import { ContextResolver, DEFAULT_TENANT } from '../context/index.ts';
import { EgressPolicy, type HostResolver, parseEgressList } from '../egress/index.ts';
import { eventsMigrations, TransactionalOutbox } from '../events/index.ts';
import { type Marking, SharingGate, sharingMigrations } from '../sharing/index.ts';
// The test plays the NGSI-LD core, which computes the read keys its events carry.
import { objectReadKeys } from '../sharing/marking.ts';
import type { LiveEntityChange } from './entity-change-event.ts';
import { contextLiveMigrations } from './migrations.ts';
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
    incarnation?: string;
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
    ...(opts.incarnation !== undefined ? { incarnation: opts.incarnation } : {}),
  };
}

/** The migrations of a store for this module with its gate: access, sharing, audit, events, context-live. */
export const LIVE_TEST_MIGRATIONS: Record<string, Migration> = {
  ...accessMigrations,
  ...sharingMigrations,
  ...auditMigrations,
  ...eventsMigrations,
  ...contextLiveMigrations,
};

/** Organisations of the test world and the accounts of each (`<org>-<role>`). */
export const WORLD_ORGS = ['org-a', 'org-b', 'org-c'] as const;
export const WORLD_ROLES = ['admin', 'operator', 'analyst', 'responder', 'viewer'] as const;

export interface LiveTestWorld {
  access: AccessService;
  gate: SharingGate;
  /** Accounts by username (`org-a-operator`, …, and service accounts created by `serviceAccount`). */
  users: Map<string, User>;
  /** The principal of an account as the authentication hook would make it now. */
  as(username: string): Promise<Principal>;
}

/**
 * Creates the world (organisations org-a, org-b, org-c of default marking TLP:GREEN; an account of every
 * role in each) on a store opened with LIVE_TEST_MIGRATIONS. With `bus`, account changes are announced on
 * it through the transactional outbox (`access.user.changed`, `access.token.revoked`).
 */
export async function openLiveWorld(store: Store, opts: { bus?: EventBus } = {}): Promise<LiveTestWorld> {
  // Account changes reach the bus as on the platform: written with the change, relayed after its commit.
  const events = opts.bus
    ? new TransactionalOutbox<AccessEvents>({ store, bus: opts.bus }).emitter<AccessEvents>('access')
    : undefined;
  const access = new AccessService({ store, events });
  const gate = new SharingGate({ store, directory: access });
  const users = new Map<string, User>();
  // Organisations and accounts another helper made already (benchmarks' stores) are taken as they are.
  const existing = (code: string) => (e: unknown) => {
    if ((e as { code?: string })?.code !== code) throw e;
  };
  for (const org of WORLD_ORGS) {
    await access.orgs
      .createOrg(null, {
        id: org,
        name: org,
        kind: 'other',
        defaultMarking: { tlp: 'GREEN', audience: { orgs: [], communities: [], users: [] } },
      })
      .catch(existing('ACCESS_ORG_EXISTS'));
    for (const role of WORLD_ROLES) {
      const username = `${org}-${role}`;
      await access.accounts
        .createUser(null, { username, orgId: org, roles: [role] })
        .catch(existing('ACCESS_USER_EXISTS'));
      users.set(username, await access.accounts.getUser(username));
    }
  }
  return {
    access,
    gate,
    users,
    async as(username) {
      const user = users.get(username) ?? (await access.accounts.getUser(username));
      return access.principalFor(await access.accounts.getUser(user.id));
    },
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
