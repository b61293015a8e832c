/**
 * A Fastify app for NGSI-LD tests: PGlite store, in-process bus, the offline context map, the real sharing
 * gate over the real access directory, and a test hook that sets the principal from `x-test-user: user@org`
 * (its roles in `x-test-roles`, default operator; the tlp of the default marking in `x-test-default-tlp`).
 * The organisation of every test user is created on its first request. Tests only; the real app
 * authenticates with tokens.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { createMemoryBus } from '../../adapters/bus/index.ts';
import { openTestPgliteStore, openTestPostgresStore } from '../../adapters/storage/testing.ts';
import { ContextResolver, ContextService, type ContextServiceOptions } from '../../modules/context/index.ts';
import {
  CONTEXT_TEST_MIGRATIONS,
  openTestDirectory,
  type TestDirectory,
} from '../../modules/context/testing.ts';
import { TransactionalOutbox } from '../../modules/events/index.ts';
import { emptyAudience, normaliseTlp, principalReadKeys, type Role } from '../../modules/sharing/index.ts';
import type { EventBus, PlatformEvent } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { ROUTER_OPTIONS } from '../http/router-options.ts';
import { ngsiLdPlugin } from './ngsi-ld-plugin.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The shared data folder: SAFECITY_SHARED_DATA, default ../shared/data from the repo root. */
export const SHARED_DATA = resolve(REPO_ROOT, process.env.SAFECITY_SHARED_DATA ?? '../shared/data');
export const CONTEXT_MAP =
  process.env.SAFECITY_CONTEXT_MAP ?? resolve(SHARED_DATA, 'standards/ngsi-ld/CONTEXT-URLS.txt');

export interface TestApp {
  app: FastifyInstance;
  store: Store;
  bus: EventBus;
  service: ContextService;
  /** The access directory and the sharing gate behind the service. */
  directory: TestDirectory;
  events: PlatformEvent[];
  close(): Promise<void>;
}

export async function openTestApp(
  opts: {
    bodyLimit?: number;
    store?: 'pglite' | 'postgres';
    /** Budgets of the service (maxScan, queryTimeoutMs, maxJoined, maxPurge). */
    budgets?: Pick<ContextServiceOptions, 'maxScan' | 'queryTimeoutMs' | 'maxJoined' | 'maxPurge'>;
  } = {},
): Promise<TestApp> {
  const store =
    opts.store === 'postgres'
      ? await openTestPostgresStore(CONTEXT_TEST_MIGRATIONS)
      : await openTestPgliteStore(CONTEXT_TEST_MIGRATIONS);
  const directory = openTestDirectory(store);
  const bus = createMemoryBus();
  const events: PlatformEvent[] = [];
  await bus.subscribe({ types: ['context.>'], mode: 'broadcast' }, async (e) => {
    events.push(e);
  });
  const outbox = new TransactionalOutbox({ store, bus });
  const service = new ContextService({
    store,
    bus,
    events: outbox.emitter('context'),
    gate: directory.gate,
    resolver: new ContextResolver({ contextMapFile: CONTEXT_MAP, timeoutMs: 500 }),
    ...opts.budgets,
  });
  // As the platform's server: its router options (path segments up to MAX_PARAM_LENGTH, since a @context
  // URL names a cached context; a trailing slash ignored).
  const app = Fastify({ routerOptions: ROUTER_OPTIONS });
  app.addHook('onRequest', async (request) => {
    const who = request.headers['x-test-user'];
    if (typeof who !== 'string') return;
    const [userId = '', orgId = ''] = who.split('@');
    const tlp = normaliseTlp(request.headers['x-test-default-tlp'] ?? 'AMBER');
    const roles = String(request.headers['x-test-roles'] ?? 'operator').split(',') as Role[];
    await directory.addOrgs(orgId);
    request.principal = {
      userId,
      username: userId,
      orgId,
      roles,
      kind: 'user',
      readKeys: principalReadKeys({ userId, orgId, communities: [], patronOrgs: [] }),
      defaultMarking: { tlp, audience: emptyAudience() },
    };
  });
  await app.register(ngsiLdPlugin, {
    service,
    prefix: '/ngsi-ld/v1',
    ...(opts.bodyLimit ? { bodyLimit: opts.bodyLimit } : {}),
  });
  await app.ready();
  return {
    app,
    store,
    bus,
    service,
    directory,
    events,
    async close() {
      await app.close();
      await outbox.stop();
      await bus.close();
      await store.close();
    },
  };
}
