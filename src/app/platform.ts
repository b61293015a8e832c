/**
 * The composition root: the only place that picks adapters (embedded or server preset) and wires the
 * modules and API surfaces together.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createEventBus, type EventBusAdapter } from '../adapters/bus/index.ts';
import { createStore } from '../adapters/storage/index.ts';
import { buildServer } from '../api/http/server.ts';
import { platformApi } from '../api/platform/index.ts';
import { AppError } from '../kernel/errors.ts';
import {
  AccessService,
  type Authenticator,
  accessMigrations,
  bootstrapAccess,
  createAuthenticator,
  type OrgKind,
  parseMarking,
  ReportService,
  type Role,
} from '../modules/access/index.ts';
import { type AuditChainVerdict, auditMigrations, verifyAuditChain } from '../modules/audit/index.ts';
import type { Store } from '../ports/store.ts';
import type { Config } from './config.ts';
import { createLogger } from './logger.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const VERSION: string = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

export const MIGRATIONS = { ...accessMigrations, ...auditMigrations };

/** Store, bus and modules, without HTTP: what the CLI commands and the server share. */
export interface Core {
  config: Config;
  log: Logger;
  store: Store;
  bus: EventBusAdapter;
  access: AccessService;
  reports: ReportService;
  authenticator: Authenticator;
  cli: CoreCommands;
  close(): Promise<void>;
}

export interface CoreCommands {
  addOrg(input: {
    id: string;
    name: string;
    kind: string;
    tlp: string;
  }): Promise<{ id: string; kind: string }>;
  addUser(input: {
    username: string;
    orgId: string;
    roles: string[];
    password?: string;
    displayName?: string;
  }): Promise<{ generatedPassword?: string }>;
  createToken(input: {
    orgId: string;
    name: string;
    roles: string[];
    expiresInSeconds?: number;
  }): Promise<{ id: string; username: string; secret: string }>;
  verifyAudit(): Promise<AuditChainVerdict>;
}

/**
 * PGlite is one process's database: a second process on the same folder would corrupt it. The lock file
 * names the owner; a stale lock (dead process) is taken over.
 */
function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, 'safecity.lock');
  if (existsSync(lock)) {
    const pid = Number(readFileSync(lock, 'utf8').trim());
    let alive = false;
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch {
        alive = false;
      }
    }
    if (alive) {
      throw new AppError(
        'STORE_UNAVAILABLE',
        `the embedded database in ${dir} is in use by process ${pid}: stop it first, or use the API, or run with DATABASE_URL`,
      );
    }
  }
  writeFileSync(lock, String(process.pid));
  return () => {
    try {
      if (readFileSync(lock, 'utf8').trim() === String(process.pid)) rmSync(lock);
    } catch {
      // already gone
    }
  };
}

export interface CoreOptions {
  /** How long an organisation's access facts are cached (default 5 s); changes announced on the bus drop them at once. */
  accessFactsTtlMs?: number;
}

export async function openCore(
  config: Config,
  log: Logger = createLogger({ level: config.logLevel, instanceId: config.instanceId }),
  opts: CoreOptions = {},
): Promise<Core> {
  const unlock = config.databaseUrl ? () => {} : lockDataDir(config.dataDir);
  let store: Store | undefined;
  let bus: EventBusAdapter | undefined;
  try {
    store = await createStore(
      {
        databaseUrl: config.databaseUrl,
        dataDir: join(config.dataDir, 'pglite'),
        poolSize: config.databasePoolSize,
      },
      MIGRATIONS,
    );
    const applied = await store.migrate();
    if (applied.length > 0) log.info({ migrations: applied.map((m) => m.name) }, 'migrations applied');
    bus = await createEventBus({
      natsUrl: config.natsUrl,
      natsStream: config.natsStream,
      subjectPrefix: config.natsSubjectPrefix,
      source: config.instanceId,
      logger: {
        warn: (details, message) => log.warn(details, message),
        error: (details, message) => log.error(details, message),
      },
    });
  } catch (e) {
    await store?.close().catch(() => {});
    unlock();
    throw e;
  }
  const access = new AccessService({
    store,
    bus,
    source: config.instanceId,
    ...(opts.accessFactsTtlMs !== undefined ? { factsTtlMs: opts.accessFactsTtlMs } : {}),
  });
  const reports = new ReportService(access);
  const authenticator = createAuthenticator({
    service: access,
    jwtSecret: config.jwtSecret,
    tokenTtlSeconds: config.jwtTtlSeconds,
    oidc: config.oidc,
  });
  const s = store;
  const b = bus;
  const cli: CoreCommands = {
    async addOrg(input) {
      const org = await access.createOrg(null, {
        id: input.id,
        name: input.name,
        kind: input.kind as OrgKind,
        defaultMarking: parseMarking({ tlp: input.tlp }),
      });
      return { id: org.id, kind: org.kind };
    },
    async addUser(input) {
      const generated = input.password
        ? undefined
        : (await import('../modules/access/credentials.ts')).generatePassword();
      await access.createUser(null, {
        username: input.username,
        orgId: input.orgId,
        roles: input.roles as Role[],
        password: input.password ?? generated,
        displayName: input.displayName,
      });
      return generated ? { generatedPassword: generated } : {};
    },
    async createToken(input) {
      const created = await access.createServiceAccountToken(null, {
        orgId: input.orgId,
        name: input.name,
        roles: input.roles as Role[],
        expiresAt: input.expiresInSeconds ? new Date(Date.now() + input.expiresInSeconds * 1000) : undefined,
      });
      return { id: created.token.id, username: created.serviceAccount.username, secret: created.secret };
    },
    verifyAudit: () => verifyAuditChain(s),
  };
  return {
    config,
    log,
    store: s,
    bus: b,
    access,
    reports,
    authenticator,
    cli,
    async close() {
      await b.close().catch((e) => log.error({ err: e }, 'closing the bus failed'));
      await s.close().catch((e) => log.error({ err: e }, 'closing the store failed'));
      unlock();
    },
  };
}

/** Runs `fn` with the core open, and closes it whatever happens (CLI commands). */
export async function withCore<T>(config: Config, fn: (core: Core) => Promise<T>): Promise<T> {
  const core = await openCore(
    config,
    createLogger({ level: 'warn', instanceId: config.instanceId, destination: process.stderr }),
  );
  try {
    return await fn(core);
  } finally {
    await core.close();
  }
}

export interface Platform extends Core {
  server: FastifyInstance;
  /** The admin password generated on this first start, if one was (print it once). */
  generatedAdminPassword: string | undefined;
  /** Starts listening on config.host:config.port; resolves with the address. */
  listen(): Promise<string>;
  /** Graceful stop: readiness fails, requests and events in flight finish, then everything closes. */
  shutdown(): Promise<void>;
}

export async function createPlatform(
  config: Config,
  opts: { log?: Logger } & CoreOptions = {},
): Promise<Platform> {
  const core = await openCore(config, opts.log, opts);
  const { log, store, bus, access, reports, authenticator } = core;
  let ready = true;
  let server: FastifyInstance;
  try {
    const boot = await bootstrapAccess(access, { adminPassword: config.adminPassword });
    // Another instance's change to organisations or communities drops this instance's cached facts at once.
    await access.listenForChanges(bus);
    server = await buildServer({
      logger: log,
      bodyLimit: config.bodyLimit,
      instanceId: config.instanceId,
      version: VERSION,
      authenticate: (header) => authenticator.authenticate(header),
      healthChecks: [
        { name: 'store', check: () => store.ping() },
        { name: 'bus', check: () => bus.ping() },
      ],
      isReady: () => ready,
      surfaces: [{ name: 'platform', plugin: platformApi, options: { access, reports, authenticator } }],
      webRoot: join(ROOT, 'web/dist'),
    });
    await server.ready();
    let closing: Promise<void> | undefined;
    return {
      ...core,
      server,
      generatedAdminPassword: boot.generatedPassword,
      async listen() {
        return server.listen({ port: config.port, host: config.host });
      },
      shutdown() {
        closing ??= (async () => {
          ready = false;
          await server.close();
          await core.close();
        })();
        return closing;
      },
    };
  } catch (e) {
    await core.close();
    throw e;
  }
}

/** `safecity serve`: start, print the first admin's password once, stop gracefully on SIGTERM/SIGINT. */
export async function servePlatform(config: Config): Promise<void> {
  const platform = await createPlatform(config);
  const { log } = platform;
  if (platform.generatedAdminPassword) {
    // Printed once, on the console only, never into the structured log.
    process.stdout.write(
      `\n  First start: administrator "admin" created with password:  ${platform.generatedAdminPassword}\n  Change it after logging in (POST /api/auth/password). Set SAFECITY_ADMIN_PASSWORD to choose it.\n\n`,
    );
  }
  const address = await platform.listen();
  log.info(
    {
      address,
      store: platform.store.kind,
      bus: platform.bus.kind,
      dataDir: config.databaseUrl ? undefined : config.dataDir,
    },
    `SafeCity Hub ${VERSION} listening on ${address} (store: ${platform.store.kind}, bus: ${platform.bus.kind})`,
  );
  let signals = 0;
  const stop = (signal: string) => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'shutting down: finishing work in flight');
    const timer = setTimeout(() => {
      log.error({ graceMs: config.shutdownGraceMs }, 'shutdown grace period over: exiting');
      process.exit(1);
    }, config.shutdownGraceMs);
    timer.unref();
    platform
      .shutdown()
      .then(() => {
        log.info('stopped');
        process.exit(0);
      })
      .catch((e) => {
        log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** `safecity roads import`: import an extract into the data folder's routing cache. */
export async function importRoads(config: Config, source: string, out: (s: string) => void): Promise<void> {
  void config;
  void source;
  out('routing is not wired yet');
}
