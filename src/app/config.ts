/**
 * Configuration: environment variables, optionally a JSON file (SAFECITY_CONFIG) under them, validated at
 * start. A bad value stops the start with a message that names the variable and says what to fix.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { AppError } from '../kernel/errors.ts';
import { defaultAllowList, type EgressList, parseEgressList } from '../modules/egress/index.ts';

export interface OidcConfig {
  issuer: string;
  jwksUrl: string;
  audience?: string;
  orgClaim: string;
  rolesClaim: string;
}

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  databasePoolSize: number;
  natsUrl: string | undefined;
  natsStream: string;
  natsSubjectPrefix: string;
  mqttUrl: string | undefined;
  mqttPort: number;
  bodyLimit: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  jwtSecret: string | undefined;
  jwtTtlSeconds: number;
  adminPassword: string | undefined;
  oidc: OidcConfig | undefined;
  roads: string | undefined;
  historyRetentionDays: number | undefined;
  /** Detection: rule partitions (the same on every instance) and how long a partition's lease lasts. */
  detectionPartitions: number;
  detectionLeaseMs: number;
  /** Most instances of one attribute a temporal answer holds (the rest: 206, pages by time). */
  temporalMaxInstances: number;
  contextMap: string | undefined;
  /** SAFECITY_EGRESS_ALLOW; when unset, the default list (public, private). */
  egressAllow: EgressList;
  /** SAFECITY_EGRESS_DENY (empty when unset). */
  egressDeny: EgressList;
  /** SAFECITY_CONTEXT_ALLOW; undefined: remote @context fetching is off. */
  contextAllow: EgressList | undefined;
  instanceId: string;
  shutdownGraceMs: number;
}

/** Each setting: the environment variable, the key in the optional JSON file, and what it means. */
export const SETTINGS = {
  PORT: { key: 'port', help: 'HTTP port of the web app and APIs (default 8080)' },
  HOST: { key: 'host', help: 'address to listen on (default 0.0.0.0)' },
  SAFECITY_DATA_DIR: { key: 'dataDir', help: 'folder for the embedded database and caches (default ./data)' },
  DATABASE_URL: {
    key: 'databaseUrl',
    help: 'PostgreSQL URL; unset: embedded PostgreSQL (PGlite) in the data folder',
  },
  DATABASE_POOL_SIZE: { key: 'databasePoolSize', help: 'PostgreSQL connections per instance (default 10)' },
  NATS_URL: { key: 'natsUrl', help: 'NATS JetStream URL; unset: in-process event bus' },
  NATS_STREAM: { key: 'natsStream', help: 'JetStream stream name (default SAFECITY_EVENTS)' },
  NATS_SUBJECT_PREFIX: {
    key: 'natsSubjectPrefix',
    help: 'first subject token of every event (default safecity)',
  },
  MQTT_URL: { key: 'mqttUrl', help: 'external MQTT broker to ingest from; unset: embedded broker' },
  SAFECITY_MQTT_PORT: {
    key: 'mqttPort',
    help: 'port of the embedded MQTT broker (default 1884; 0 disables it)',
  },
  SAFECITY_BODY_LIMIT: { key: 'bodyLimit', help: 'largest request body in bytes (default 1048576)' },
  LOG_LEVEL: { key: 'logLevel', help: 'fatal|error|warn|info|debug|trace|silent (default info)' },
  SAFECITY_JWT_SECRET: {
    key: 'jwtSecret',
    help: 'HS256 secret for session tokens, 32+ chars; unset: generated once and kept in the store',
  },
  SAFECITY_JWT_TTL: { key: 'jwtTtlSeconds', help: 'session token lifetime in seconds (default 3600)' },
  SAFECITY_ADMIN_PASSWORD: {
    key: 'adminPassword',
    help: 'password of the first admin, used on first start only',
  },
  SAFECITY_OIDC_ISSUER: { key: 'oidc.issuer', help: 'external OIDC issuer whose JWTs are accepted' },
  SAFECITY_OIDC_JWKS_URL: { key: 'oidc.jwksUrl', help: "the issuer's JWKS URL" },
  SAFECITY_OIDC_AUDIENCE: { key: 'oidc.audience', help: 'expected audience of external JWTs' },
  SAFECITY_OIDC_ORG_CLAIM: { key: 'oidc.orgClaim', help: 'claim naming the organisation (default org)' },
  SAFECITY_OIDC_ROLES_CLAIM: { key: 'oidc.rolesClaim', help: 'claim with the roles (default roles)' },
  SAFECITY_HISTORY_RETENTION_DAYS: {
    key: 'historyRetentionDays',
    help: 'days of NGSI-LD history kept where the owner organisation set no retention (default: all)',
  },
  SAFECITY_DETECTION_PARTITIONS: {
    key: 'detectionPartitions',
    help: 'partitions detection rules are split into; the same on every instance (default 8)',
  },
  SAFECITY_DETECTION_LEASE_MS: {
    key: 'detectionLeaseMs',
    help: "how long an instance holds a detection partition without renewing it: a dead instance's rules move after it (default 10000)",
  },
  SAFECITY_TEMPORAL_MAX_INSTANCES: {
    key: 'temporalMaxInstances',
    help: 'most instances of one attribute per NGSI-LD temporal answer; past it 206 and Content-Range (default 10000)',
  },
  SAFECITY_ROADS: {
    key: 'roads',
    help: 'road network (.osm.pbf path or URL) for routing; unset: routing off',
  },
  SAFECITY_CONTEXT_MAP: { key: 'contextMap', help: 'URL-to-file map of JSON-LD contexts for offline use' },
  SAFECITY_CONTEXT_ALLOW: {
    key: 'contextAllow',
    help: 'hosts remote @contexts may be fetched from (names, *.domain, addresses, CIDRs, *); unset: no fetching',
  },
  SAFECITY_EGRESS_ALLOW: {
    key: 'egressAllow',
    help: 'where notifications may go: schemes (https:), hosts, *.domain, CIDRs, public|private|loopback, *; unset: public,private',
  },
  SAFECITY_EGRESS_DENY: {
    key: 'egressDeny',
    help: 'where notifications and @context fetches never go (same grammar); link-local and metadata are always refused',
  },
  SAFECITY_INSTANCE_ID: {
    key: 'instanceId',
    help: 'name of this instance in logs and events (default host-pid)',
  },
  SAFECITY_SHUTDOWN_GRACE_MS: {
    key: 'shutdownGraceMs',
    help: 'time allowed for in-flight work on SIGTERM (default 10000)',
  },
} as const;

type Env = Record<string, string | undefined>;

function flatten(obj: Record<string, unknown>, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v))
      Object.assign(out, flatten(v as Record<string, unknown>, key));
    else if (v !== undefined && v !== null) out[key] = String(v);
  }
  return out;
}

/** Reads and validates the configuration; throws CONFIG_INVALID listing every problem. */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  let file: Record<string, string> = {};
  if (env.SAFECITY_CONFIG) {
    try {
      file = flatten(JSON.parse(readFileSync(env.SAFECITY_CONFIG, 'utf8')) as Record<string, unknown>);
    } catch (e) {
      problems.push(`SAFECITY_CONFIG: cannot read ${env.SAFECITY_CONFIG} as JSON (${(e as Error).message})`);
    }
    const known = new Set<string>(Object.values(SETTINGS).map((s) => s.key));
    for (const k of Object.keys(file))
      if (!known.has(k)) problems.push(`SAFECITY_CONFIG: unknown setting "${k}"`);
  }
  const get = (name: keyof typeof SETTINGS): string | undefined => {
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    return file[SETTINGS[name].key];
  };
  const int = (name: keyof typeof SETTINGS, def: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(
        `${name}: "${raw}" must be a whole number from ${min} to ${max} (${SETTINGS[name].help})`,
      );
      return def;
    }
    return n;
  };
  const url = (name: keyof typeof SETTINGS, protocols: string[]): string | undefined => {
    const raw = get(name);
    if (raw === undefined) return undefined;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) throw new Error(`protocol ${u.protocol}`);
      return raw;
    } catch {
      problems.push(
        `${name}: "${redactUrl(raw)}" must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
      );
      return undefined;
    }
  };

  const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
  const logLevel = (get('LOG_LEVEL') ?? 'info') as Config['logLevel'];
  if (!logLevels.includes(logLevel))
    problems.push(`LOG_LEVEL: "${logLevel}" must be one of ${logLevels.join(', ')}`);

  const jwtSecret = get('SAFECITY_JWT_SECRET');
  if (jwtSecret !== undefined && jwtSecret.length < 32)
    problems.push('SAFECITY_JWT_SECRET: must be at least 32 characters');

  const adminPassword = get('SAFECITY_ADMIN_PASSWORD');
  if (adminPassword !== undefined && adminPassword.length < 12) {
    problems.push('SAFECITY_ADMIN_PASSWORD: must be at least 12 characters');
  }

  let oidc: OidcConfig | undefined;
  const issuer = get('SAFECITY_OIDC_ISSUER');
  const jwksUrl = url('SAFECITY_OIDC_JWKS_URL', ['http:', 'https:']);
  if (issuer || jwksUrl) {
    if (!issuer || !jwksUrl)
      problems.push('SAFECITY_OIDC_ISSUER and SAFECITY_OIDC_JWKS_URL must be set together');
    else {
      oidc = {
        issuer,
        jwksUrl,
        orgClaim: get('SAFECITY_OIDC_ORG_CLAIM') ?? 'org',
        rolesClaim: get('SAFECITY_OIDC_ROLES_CLAIM') ?? 'roles',
      };
      const aud = get('SAFECITY_OIDC_AUDIENCE');
      if (aud) oidc.audience = aud;
    }
  }

  const egressList = (
    name: keyof typeof SETTINGS,
    opts: { allowing: boolean; schemes: boolean },
    whenEmpty: string,
  ): EgressList | undefined => {
    const raw = get(name);
    if (raw === undefined) return undefined;
    const parsed = parseEgressList(name, raw, opts);
    problems.push(...parsed.problems);
    if (parsed.problems.length === 0 && parsed.list.entries.length === 0)
      problems.push(`${name}: ${whenEmpty}`);
    return parsed.list;
  };
  const egressAllow =
    egressList(
      'SAFECITY_EGRESS_ALLOW',
      { allowing: true, schemes: true },
      'names nothing; unset it for the default (public, private)',
    ) ?? defaultAllowList('SAFECITY_EGRESS_ALLOW');
  const egressDeny = egressList(
    'SAFECITY_EGRESS_DENY',
    { allowing: false, schemes: true },
    'names nothing; unset it to deny only what is always refused',
  ) ?? { name: 'SAFECITY_EGRESS_DENY', entries: [] };
  const contextAllow = egressList(
    'SAFECITY_CONTEXT_ALLOW',
    { allowing: true, schemes: false },
    'names no host; unset it to keep remote @context fetching off',
  );

  const config: Config = {
    port: int('PORT', 8080, 0, 65535),
    host: get('HOST') ?? '0.0.0.0',
    dataDir: resolve(get('SAFECITY_DATA_DIR') ?? './data'),
    databaseUrl: url('DATABASE_URL', ['postgres:', 'postgresql:']),
    databasePoolSize: int('DATABASE_POOL_SIZE', 10, 1, 500),
    natsUrl: url('NATS_URL', ['nats:', 'tls:', 'ws:', 'wss:']),
    natsStream: get('NATS_STREAM') ?? 'SAFECITY_EVENTS',
    natsSubjectPrefix: get('NATS_SUBJECT_PREFIX') ?? 'safecity',
    mqttUrl: url('MQTT_URL', ['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:']),
    mqttPort: int('SAFECITY_MQTT_PORT', 1884, 0, 65535),
    bodyLimit: int('SAFECITY_BODY_LIMIT', 1_048_576, 1024, 1_073_741_824),
    logLevel,
    jwtSecret,
    jwtTtlSeconds: int('SAFECITY_JWT_TTL', 3600, 60, 7 * 24 * 3600),
    adminPassword,
    oidc,
    roads: get('SAFECITY_ROADS'),
    historyRetentionDays:
      get('SAFECITY_HISTORY_RETENTION_DAYS') === undefined
        ? undefined
        : int('SAFECITY_HISTORY_RETENTION_DAYS', 0, 1, 36_500),
    temporalMaxInstances: int('SAFECITY_TEMPORAL_MAX_INSTANCES', 10_000, 1, 1_000_000),
    detectionPartitions: int('SAFECITY_DETECTION_PARTITIONS', 8, 1, 256),
    detectionLeaseMs: int('SAFECITY_DETECTION_LEASE_MS', 10_000, 1000, 600_000),
    contextMap: get('SAFECITY_CONTEXT_MAP'),
    egressAllow,
    egressDeny,
    contextAllow,
    instanceId: get('SAFECITY_INSTANCE_ID') ?? `${hostname()}-${process.pid}`,
    shutdownGraceMs: int('SAFECITY_SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
  };
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(config.natsStream))
    problems.push('NATS_STREAM: letters, digits, - and _ only');
  if (problems.length > 0) {
    throw new AppError('CONFIG_INVALID', `invalid configuration:\n  - ${problems.join('\n  - ')}`, {
      problems,
    });
  }
  return config;
}

/** A URL without its password, for logs and messages. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return raw.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}

export function configHelp(): string {
  return Object.entries(SETTINGS)
    .map(([name, s]) => `  ${name.padEnd(28)} ${s.help}`)
    .join('\n');
}
