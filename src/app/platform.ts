/**
 * The composition root: the only place that picks adapters (embedded or server preset) and wires the
 * modules and API surfaces together.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createEventBus, type EventBusAdapter } from '../adapters/bus/index.ts';
import { startMqttRuntime } from '../adapters/mqtt/index.ts';
import { createStore } from '../adapters/storage/index.ts';
import { detectionApi } from '../api/detection/index.ts';
import type { Principal } from '../api/http/principal.ts';
import { buildServer } from '../api/http/server.ts';
import { ngsiLdErrorHandler, ngsiLdPlugin } from '../api/ngsi-ld/index.ts';
import { ngsiLdLivePlugin } from '../api/ngsi-ld-live/index.ts';
import { platformApi } from '../api/platform/index.ts';
import { routingApi } from '../api/routing/index.ts';
import { streamApi } from '../api/stream/index.ts';
import { AppError } from '../kernel/errors.ts';
import {
  AccessService,
  type Authenticator,
  accessMigrations,
  bootstrapAccess,
  createAuthenticator,
  LiveSessions,
  type OrgKind,
  type Role,
} from '../modules/access/index.ts';
import {
  AuditChainer,
  type AuditChainVerdict,
  auditMigrations,
  verifyAuditChain,
} from '../modules/audit/index.ts';
import { ContextResolver, ContextService, contextMigrations } from '../modules/context/index.ts';
import {
  type ContextLive,
  contextLiveMigrations,
  createContextLive,
  createCoreQueryPort,
} from '../modules/context-live/index.ts';
import {
  AlertService,
  DetectionService,
  DryRunService,
  detectionLiveMigrations,
  type EngineFactory,
  RuleService,
  type RuleValidator,
} from '../modules/detection-live/index.ts';
import { EgressPolicy } from '../modules/egress/index.ts';
import { type EventMap, eventsMigrations, TransactionalOutbox } from '../modules/events/index.ts';
import { ReportService } from '../modules/reports/index.ts';
import { followContextInputs, RoutingService, routingLiveMigrations } from '../modules/routing-live/index.ts';
import {
  parseMarking,
  SharingGate,
  type SharingGateOptions,
  sharingMigrations,
} from '../modules/sharing/index.ts';
import type { Store } from '../ports/store.ts';
import type { Config } from './config.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { defaultDetection } from './detection-engine.ts';
import { vehiclesVisibleTo } from './dispatch-units.ts';
import { bridgePrincipal, ingestPrincipal } from './ingest-principals.ts';
import { createLogger } from './logger.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const VERSION: string = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

export const MIGRATIONS = {
  ...accessMigrations,
  ...sharingMigrations,
  ...auditMigrations,
  ...contextMigrations,
  ...contextLiveMigrations,
  ...routingLiveMigrations,
  ...detectionLiveMigrations,
  ...eventsMigrations,
};

/** Store, bus and modules, without HTTP: what the CLI commands and the server share. */
export interface Core {
  config: Config;
  log: Logger;
  store: Store;
  bus: EventBusAdapter;
  /** Domain events: written in the transaction of each change, relayed to the bus after the commit. */
  events: TransactionalOutbox<EventMap>;
  access: AccessService;
  gate: SharingGate;
  reports: ReportService;
  authenticator: Authenticator;
  contexts: ContextResolver;
  context: ContextService;
  /** Where the platform may connect on a user's behalf (notifications; remote @contexts use its deny-list). */
  egress: EgressPolicy;
  /** Detection rules (marked objects, versioned) and the Alert entities rules raise. */
  rules: RuleService;
  alerts: AlertService;
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

export interface CoreOptions {
  /** How long an organisation's access facts are cached (default 5 s); changes announced on the bus drop them at once. */
  accessFactsTtlMs?: number;
  /** How often open streams and MQTT connections are checked again without an event (default 10 s). */
  sessionRecheckMs?: number;
  /**
   * Makes the sharing gate (default `new SharingGate(o)`). Tests plant a deliberately broken gate here to prove
   * that the randomized reference-model test catches it; nothing else should pass one.
   */
  makeGate?: (o: SharingGateOptions) => SharingGate;
  /**
   * The detection engine's rule language and evaluator (default: src/modules/detection through
   * detection-engine.ts). Tests of the platform side pass a minimal engine here.
   */
  detection?: DetectionEngineParts;
  /** Detection's partitions and lease length (default: the configuration's). */
  detectionPartitions?: number;
  detectionLeaseMs?: number;
}

/** What the platform takes from a detection engine: its rule validator and a way to make engines. */
export interface DetectionEngineParts {
  validate: RuleValidator;
  engine: EngineFactory;
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
  const events = new TransactionalOutbox<EventMap>({
    store,
    bus,
    onError: (message, err, details) => log.error({ err, ...details }, message),
  });
  // Rows another instance committed but never relayed (it died, or its bus was down) are taken over here.
  events.start();
  // Audit records are written unchained with their writes and linked into the hash chain here.
  const chainer = new AuditChainer(store, {
    onError: (err) => log.error({ err }, 'chaining audit records failed; retried on the next tick'),
  });
  const access = new AccessService({
    store,
    events: events.emitter(config.instanceId),
    ...(opts.accessFactsTtlMs !== undefined ? { factsTtlMs: opts.accessFactsTtlMs } : {}),
  });
  const gateOptions: SharingGateOptions = { store, directory: access };
  const gate = opts.makeGate ? opts.makeGate(gateOptions) : new SharingGate(gateOptions);
  const reports = new ReportService(gate, events.emitter(config.instanceId));
  const authenticator = createAuthenticator({
    service: access,
    jwtSecret: config.jwtSecret,
    tokenTtlSeconds: config.jwtTtlSeconds,
    oidc: config.oidc,
  });
  const egress = new EgressPolicy({ allow: config.egressAllow, deny: config.egressDeny });
  const contexts = new ContextResolver({
    ...(config.contextMap ? { contextMapFile: config.contextMap } : {}),
    remote: config.contextAllow ? egress.withAllow(config.contextAllow) : undefined,
  });
  const context = new ContextService({
    store,
    gate,
    events: events.emitter('context'),
    bus,
    resolver: contexts,
  });
  const detectionParts = opts.detection ?? defaultDetection();
  const rules = new RuleService({
    gate,
    validate: detectionParts.validate,
    events: events.emitter(config.instanceId),
  });
  const alerts = new AlertService({ store, gate, context });
  const s = store;
  const b = bus;
  const cli: CoreCommands = {
    async addOrg(input) {
      const org = await access.orgs.createOrg(null, {
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
      await access.accounts.createUser(null, {
        username: input.username,
        orgId: input.orgId,
        roles: input.roles as Role[],
        password: input.password ?? generated,
        displayName: input.displayName,
      });
      return generated ? { generatedPassword: generated } : {};
    },
    async createToken(input) {
      const created = await access.accounts.createServiceAccountToken(null, {
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
    events,
    access,
    gate,
    reports,
    authenticator,
    contexts,
    context,
    egress,
    rules,
    alerts,
    cli,
    async close() {
      await context.close().catch((e) => log.error({ err: e }, 'closing the context service failed'));
      await events.stop().catch((e) => log.error({ err: e }, 'stopping the event outbox failed'));
      await chainer.stop().catch((e) => log.error({ err: e }, 'chaining the last audit records failed'));
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
  /** Runs the enabled rules over entity changes (its share of the rule partitions) and raises alerts. */
  detection: DetectionService;
  /** The connections this instance keeps open (SSE streams, MQTT clients), watched until their session ends. */
  sessions: LiveSessions;
  routing: RoutingService;
  live: ContextLive;
  /** The embedded MQTT broker's port, when it runs. */
  mqttPort: number | undefined;
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
  const { log, store, bus, access, gate, reports, authenticator, context, contexts, egress, rules, alerts } =
    core;
  const detectionParts = opts.detection ?? defaultDetection();
  let ready = true;
  let server: FastifyInstance;
  let lastProgress = 0;
  let live: ContextLive | undefined;
  let mqtt: Awaited<ReturnType<typeof startMqttRuntime>> | undefined;
  let detection: DetectionService | undefined;
  // Streams and MQTT connections end when their session does: token revoked, account disabled, password changed.
  const sessions = new LiveSessions({
    authenticate: (header, o) => authenticator.authenticate(header, o),
    ...(opts.sessionRecheckMs !== undefined ? { recheckMs: opts.sessionRecheckMs } : {}),
  });
  const routing = new RoutingService({
    store,
    bus,
    events: core.events.emitter(config.instanceId),
    gate,
    source: config.roads,
    dataDir: config.dataDir,
    onProgress: (p) => {
      if (p.fraction - lastProgress >= 0.1 || p.fraction === 1) {
        lastProgress = p.fraction;
        log.info({ phase: p.phase, percent: Math.round(p.fraction * 100) }, `road network: ${p.message}`);
      }
    },
    onError: (err) => log.error({ err }, 'the road network failed to load; routing is unavailable'),
  });
  try {
    log.info(
      {
        egress: egress.describe(),
        remoteContexts: config.contextAllow
          ? config.contextAllow.entries.map((e) => e.text).join(', ')
          : 'off',
      },
      'egress policy',
    );
    const boot = await bootstrapAccess(access, { adminPassword: config.adminPassword });
    // Another instance's change to organisations or communities drops this instance's cached facts at once.
    await access.listenForChanges(bus);
    await sessions.listen(bus);
    await routing.start();
    mqtt = await startMqttRuntime({
      port: config.mqttPort === 0 ? false : config.mqttPort,
      host: config.host,
      mqttUrl: config.mqttUrl,
      egress,
      // Sensors and gateways connect with an API token as the password (any username); the connection is a
      // live session: it ends when the token is revoked or the account disabled.
      authenticate: async (_username, password, connection) => {
        if (!password) return null;
        const authorization = `Bearer ${password}`;
        let principal: Principal;
        try {
          principal = await authenticator.authenticate(authorization);
        } catch {
          return null;
        }
        const session = sessions.open({
          authorization,
          principal,
          ended: (why) => connection.disconnect(`${why.code}: ${why.message}`),
        });
        return {
          principal: ingestPrincipal(principal),
          valid: () => session.valid(),
          close: () => session.close(),
        };
      },
      bridgePrincipal: config.mqttUrl ? await bridgePrincipal(access) : undefined,
      onError: (message, err) => log.error({ err }, message),
    });
    live = createContextLive({
      store,
      events: core.events.emitter('context-live'),
      ld: contexts,
      query: createCoreQueryPort(contexts),
      writer: context,
      entityReader: context,
      contexts: context,
      senders: [mqtt.sender],
      egress,
      ...(config.historyRetentionDays
        ? { defaultRetentionSeconds: config.historyRetentionDays * 86_400 }
        : {}),
      temporalMaxInstances: config.temporalMaxInstances,
      gate,
      // A subscription's creator disabled (or gone): its subscriptions pause until it is enabled again.
      accounts: {
        isActive: async (userId) => {
          try {
            return !(await access.account(userId)).disabled;
          } catch (e) {
            if (e instanceof AppError && e.code === 'ACCESS_USER_NOT_FOUND') return false;
            throw e;
          }
        },
      },
      // Per-minute rollups of the last minutes are rebuilt at start only where one instance owns them.
      ...(bus.kind === 'memory' ? { rebuildRollupsMinutes: 10 } : {}),
      onError: (message, err) => log.error({ err }, message),
    });
    // Consumer groups subscribe before the instance takes work.
    await live.start(bus);
    const ingestion = live.ingestion;
    if (ingestion) await mqtt.start((m) => ingestion.ingest({ source: 'mqtt', ...m }));
    // Rules over entity changes: this instance's share of the rule partitions, each its own consumer group.
    detection = new DetectionService({
      store,
      bus,
      gate,
      rules,
      alerts,
      engine: detectionParts.engine,
      instanceId: config.instanceId,
      partitions: opts.detectionPartitions ?? config.detectionPartitions,
      leaseMs: opts.detectionLeaseMs ?? config.detectionLeaseMs,
      onError: (message, err) => log.error({ err }, message),
    });
    await detection.start();
    const temporal = live.temporal;
    const dryRun = new DryRunService({ rules, history: temporal, gate, engine: detectionParts.engine });
    if (config.roads) {
      // Closures and slow-downs from Alert, RoadAccident and TrafficFlowObserved entities.
      await followContextInputs(bus, routing, (err, event) =>
        log.warn({ err, eventId: event.id }, 'an entity could not be applied to the road network'),
      );
    }
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
      surfaces: [
        { name: 'platform', plugin: platformApi, options: { access, gate, reports, authenticator } },
        {
          name: 'ngsi-ld',
          plugin: ngsiLdPlugin,
          options: { service: context, bodyLimit: config.bodyLimit },
          prefix: '/ngsi-ld/v1',
          errors: NGSI_LD_ERRORS,
        },
        {
          name: 'ngsi-ld-live',
          plugin: ngsiLdLivePlugin,
          options: { live, bodyLimit: config.bodyLimit },
          errors: NGSI_LD_ERRORS,
        },
        {
          name: 'stream',
          plugin: streamApi,
          options: { bus, gate, sessions },
        },
        { name: 'detection', plugin: detectionApi, options: { rules, alerts, dryRun } },
        {
          name: 'routing',
          plugin: routingApi,
          options: { routing, unitSource: (p: Principal) => vehiclesVisibleTo(context, contexts, p) },
        },
      ],
      webRoot: join(ROOT, 'web/dist'),
    });
    await server.ready();
    let closing: Promise<void> | undefined;
    return {
      ...core,
      server,
      sessions,
      routing,
      live,
      detection,
      mqttPort: mqtt.broker?.port,
      generatedAdminPassword: boot.generatedPassword,
      async listen() {
        return server.listen({ port: config.port, host: config.host });
      },
      shutdown() {
        closing ??= (async () => {
          ready = false;
          await server.close();
          await mqtt?.close();
          sessions.close();
          // Rules' state checkpointed and partitions given back before the bus and the store close.
          await detection?.stop();
          await live?.stop();
          await routing.stop();
          await core.close();
        })();
        return closing;
      },
    };
  } catch (e) {
    sessions.close();
    await mqtt?.close().catch(() => {});
    await detection?.stop().catch(() => {});
    await live?.stop().catch(() => {});
    await routing.stop();
    await core.close();
    throw e;
  }
}

/** NGSI-LD ProblemDetails for /ngsi-ld/v1 and the ingestion endpoint, errors before routing included. */
const NGSI_LD_ERRORS = {
  prefixes: ['/ngsi-ld/', '/ingest/'],
  handler: ngsiLdErrorHandler,
  mediaType: 'application/json',
};
