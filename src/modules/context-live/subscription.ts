/**
 * The NGSI-LD Subscription data type (ETSI GS CIM 009 v1.8, clause 5.2.12) and its validation.
 * A subscription is stored with its entity types and attribute names expanded, and with the @context it
 * was created with, so that notifications can be compacted the way its subscriber expects.
 */
import { AppError } from '../../kernel/errors.ts';
import { compileUserPattern } from '../context/index.ts';
import type {
  ActiveLdContext,
  EntityFormat,
  GeoQuery,
  JsonLdContext,
  LdContextPort,
  QueryPort,
} from './ports.ts';

export const NOTIFICATION_TRIGGERS = [
  'entityCreated',
  'entityUpdated',
  'entityDeleted',
  'attributeCreated',
  'attributeUpdated',
  'attributeDeleted',
] as const;
export type NotificationTrigger = (typeof NOTIFICATION_TRIGGERS)[number];

/** The default when a subscription names no trigger (clause 5.2.12). */
export const DEFAULT_TRIGGERS: NotificationTrigger[] = ['attributeCreated', 'attributeUpdated'];

export interface EntitySelector {
  id?: string;
  idPattern?: string;
  /** Expanded. */
  type: string;
}

export interface KeyValuePair {
  key: string;
  value: string;
}

export interface Endpoint {
  uri: string;
  accept: 'application/json' | 'application/ld+json' | 'application/geo+json';
  timeout?: number;
  cooldown?: number;
  receiverInfo?: KeyValuePair[];
  notifierInfo?: KeyValuePair[];
}

export interface NotificationParams {
  /** Expanded attribute names to include; all when absent. */
  attributes?: string[];
  /** Members to keep (`id`, `type`, expanded attribute names); all when absent (clause 5.2.14, pick). */
  pick?: string[];
  /** Members to leave out (same names; omit). */
  omit?: string[];
  format: EntityFormat;
  sysAttrs?: boolean;
  showChanges?: boolean;
  endpoint: Endpoint;
}

/** A subscription as stored (terms expanded). */
export interface SubscriptionSpec {
  id: string;
  type: 'Subscription';
  subscriptionName?: string;
  description?: string;
  entities?: EntitySelector[];
  /** Expanded. */
  watchedAttributes?: string[];
  notificationTrigger: NotificationTrigger[];
  timeInterval?: number;
  q?: string;
  geoQ?: GeoQuery;
  isActive: boolean;
  /** The subscriber gave `isActive` (it is shown then; the default is not a member it wrote). */
  isActiveGiven?: boolean;
  expiresAt?: string;
  throttling?: number;
  lang?: string;
  /** Only the attribute instances of these datasetIds are notified (`@none`: the default instance). */
  datasetId?: string[];
  notification: NotificationParams;
  /** The @context the subscription was created with (Link header or body). */
  jsonldContext?: JsonLdContext;
  /**
   * The subscription's `jsonldContext` member (clause 5.2.12): the URI of the @context its notifications
   * are compacted with, instead of `jsonldContext` above.
   */
  notificationContext?: string;
}

/** Delivery status kept beside a subscription (clause 5.2.14). */
export interface DeliveryStatus {
  timesSent: number;
  timesFailed: number;
  lastNotification?: string;
  lastSuccess?: string;
  lastFailure?: string;
  status?: 'ok' | 'failed';
  lastError?: string;
}

export interface SubscriptionRecord {
  tenant: string;
  spec: SubscriptionSpec;
  ownerOrg: string;
  createdBy: string;
  /** Why the platform paused it whatever `isActive` says (its creator's account is disabled), if it did. */
  pausedReason?: string | undefined;
  delivery: DeliveryStatus;
  createdAt: string;
  modifiedAt: string;
}

/** Why a subscription is paused when its creator's account is disabled (shown as `statusReason`). */
export const OWNER_DISABLED = 'the account that created this subscription is disabled';

/** The status the API shows: `expired` wins over `paused`; the platform's pause wins over `isActive`. */
export function subscriptionStatus(
  spec: SubscriptionSpec,
  now: Date,
  pausedReason?: string,
): 'active' | 'paused' | 'expired' {
  if (spec.expiresAt && Date.parse(spec.expiresAt) <= now.getTime()) return 'expired';
  return spec.isActive && !pausedReason ? 'active' : 'paused';
}

const FORMATS: Record<string, EntityFormat> = {
  normalized: 'normalized',
  keyValues: 'keyValues',
  simplified: 'keyValues',
  concise: 'concise',
};
const ACCEPTS = ['application/json', 'application/ld+json', 'application/geo+json'] as const;
const GEO_RELS =
  /^(near;(maxDistance|minDistance)==\d+(\.\d+)?|within|contains|intersects|equals|disjoint|overlaps)$/;
const GEOMETRIES = ['Point', 'MultiPoint', 'LineString', 'MultiLineString', 'Polygon', 'MultiPolygon'];
const TOP_LEVEL = new Set([
  '@context',
  'id',
  'type',
  'subscriptionName',
  'description',
  'entities',
  'watchedAttributes',
  'notificationTrigger',
  'timeInterval',
  'q',
  'geoQ',
  'csf',
  'isActive',
  'notification',
  'expiresAt',
  'expires',
  'throttling',
  'temporalQ',
  'scopeQ',
  'lang',
  'datasetId',
  'jsonldContext',
  'status',
  'createdAt',
  'modifiedAt',
]);

function bad(message: string, details?: Record<string, unknown>): AppError {
  return new AppError('CONTEXT_LIVE_SUBSCRIPTION_INVALID', message, details);
}

export function isUri(s: unknown): s is string {
  if (typeof s !== 'string' || s.length === 0 || s.length > 2048) return false;
  return /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/.test(s);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isDateTime(s: unknown): s is string {
  return (
    typeof s === 'string' &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(s) &&
    !Number.isNaN(Date.parse(s))
  );
}

function positiveNumber(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw bad(`${name} must be a number greater than 0`);
  }
  return v;
}

function stringList(v: unknown, name: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string' && x.length > 0)) {
    throw bad(`${name} must be a non-empty array of strings`);
  }
  return v as string[];
}

function keyValues(v: unknown, name: string): KeyValuePair[] {
  if (
    !Array.isArray(v) ||
    !v.every((x) => isObject(x) && typeof x.key === 'string' && typeof x.value === 'string')
  ) {
    throw bad(`${name} must be an array of {key, value} strings`);
  }
  return (v as Array<Record<string, string>>).map((x) => ({
    key: x.key as string,
    value: x.value as string,
  }));
}

export interface ParseDeps {
  ld: LdContextPort;
  query?: QueryPort | undefined;
  now: Date;
}

function parseEntities(v: unknown, ac: ActiveLdContext): EntitySelector[] {
  if (!Array.isArray(v) || v.length === 0) throw bad('entities must be a non-empty array');
  const out: EntitySelector[] = [];
  for (const e of v) {
    if (!isObject(e)) throw bad('each entry of entities must be an object');
    if (typeof e.type !== 'string' || e.type.length === 0) throw bad('each entity selector needs a type');
    const sel: EntitySelector = { type: ac.expandTerm(e.type) };
    if (e.id !== undefined) {
      if (!isUri(e.id)) throw bad(`entity selector id "${String(e.id)}" is not a URI`);
      sel.id = e.id;
    }
    if (e.idPattern !== undefined) {
      if (typeof e.idPattern !== 'string') throw bad('idPattern must be a string');
      compileUserPattern(e.idPattern, (why) => bad(`idPattern: ${why}`));
      sel.idPattern = e.idPattern;
    }
    out.push(sel);
  }
  return out;
}

function parseGeoQ(v: unknown): GeoQuery {
  if (!isObject(v)) throw bad('geoQ must be an object');
  if (typeof v.geometry !== 'string' || !GEOMETRIES.includes(v.geometry)) {
    throw bad(`geoQ.geometry must be one of ${GEOMETRIES.join(', ')}`);
  }
  if (!Array.isArray(v.coordinates) && typeof v.coordinates !== 'string') {
    throw bad('geoQ.coordinates must be an array');
  }
  const coordinates =
    typeof v.coordinates === 'string' ? parseJson(v.coordinates, 'geoQ.coordinates') : v.coordinates;
  if (typeof v.georel !== 'string' || !GEO_RELS.test(v.georel))
    throw bad(`geoQ.georel "${String(v.georel)}" is invalid`);
  const g: GeoQuery = { geometry: v.geometry, coordinates, georel: v.georel };
  if (v.geoproperty !== undefined) {
    if (typeof v.geoproperty !== 'string') throw bad('geoQ.geoproperty must be a string');
    g.geoproperty = v.geoproperty;
  }
  return g;
}

function parseJson(s: string, name: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    throw bad(`${name} is not valid JSON`);
  }
}

function parseNotification(v: unknown, ac: ActiveLdContext): NotificationParams {
  if (!isObject(v)) throw bad('notification must be an object');
  const ep = v.endpoint;
  if (!isObject(ep)) throw bad('notification.endpoint must be an object');
  if (!isUri(ep.uri)) throw bad('notification.endpoint.uri must be a URI');
  const scheme = ep.uri.slice(0, ep.uri.indexOf(':')).toLowerCase();
  if (!['http', 'https', 'mqtt', 'mqtts'].includes(scheme)) {
    throw bad(`notification.endpoint.uri scheme "${scheme}" is not supported (http, https, mqtt, mqtts)`);
  }
  if ((scheme === 'mqtt' || scheme === 'mqtts') && !/^mqtts?:\/\/[^/]+\/.+/.test(ep.uri)) {
    throw bad('an MQTT endpoint must name a topic: mqtt://host[:port]/topic');
  }
  const accept = ep.accept ?? 'application/json';
  if (!(ACCEPTS as readonly unknown[]).includes(accept)) {
    throw bad(`notification.endpoint.accept must be one of ${ACCEPTS.join(', ')}`);
  }
  const endpoint: Endpoint = { uri: ep.uri, accept: accept as Endpoint['accept'] };
  if (ep.timeout !== undefined) endpoint.timeout = positiveNumber(ep.timeout, 'endpoint.timeout');
  if (ep.cooldown !== undefined) endpoint.cooldown = positiveNumber(ep.cooldown, 'endpoint.cooldown');
  if (ep.receiverInfo !== undefined)
    endpoint.receiverInfo = keyValues(ep.receiverInfo, 'endpoint.receiverInfo');
  if (ep.notifierInfo !== undefined)
    endpoint.notifierInfo = keyValues(ep.notifierInfo, 'endpoint.notifierInfo');
  const format = v.format === undefined ? 'normalized' : FORMATS[String(v.format)];
  if (!format) throw bad(`notification.format "${String(v.format)}" is not normalized, keyValues or concise`);
  const out: NotificationParams = { format, endpoint };
  if (v.attributes !== undefined) {
    out.attributes = stringList(v.attributes, 'notification.attributes').map((a) => ac.expandTerm(a));
  }
  if (v.sysAttrs !== undefined) {
    if (typeof v.sysAttrs !== 'boolean') throw bad('notification.sysAttrs must be a boolean');
    out.sysAttrs = v.sysAttrs;
  }
  if (v.showChanges !== undefined) {
    if (typeof v.showChanges !== 'boolean') throw bad('notification.showChanges must be a boolean');
    out.showChanges = v.showChanges;
  }
  if (v.pick !== undefined && v.pick !== null) out.pick = memberList(v.pick, 'notification.pick', ac);
  if (v.omit !== undefined && v.omit !== null) out.omit = memberList(v.omit, 'notification.omit', ac);
  return out;
}

/** pick and omit name entity members: `id`, `type`, `scope` as they are, attributes expanded. */
function memberList(v: unknown, name: string, ac: ActiveLdContext): string[] {
  return stringList(v, name).map((m) => (ENTITY_MEMBER_NAMES.has(m) ? m : ac.expandTerm(m)));
}

const ENTITY_MEMBER_NAMES = new Set(['id', 'type', 'scope']);

/** `attributes` and `pick`/`omit` are two ways of choosing members: one at a time (clause 5.2.14). */
function checkProjection(n: NotificationParams): void {
  if (n.attributes && (n.pick || n.omit)) {
    throw bad('notification.attributes cannot be combined with notification.pick or notification.omit');
  }
  const both = n.pick?.filter((m) => n.omit?.includes(m)) ?? [];
  if (both.length > 0) throw bad(`notification.pick and notification.omit both name ${both.join(', ')}`);
}

/**
 * Parses a subscription from an API request (compacted terms) into its stored form.
 * `context` is the request's @context (Link header, or `@context` of an application/ld+json body).
 */
export async function parseSubscription(
  input: unknown,
  context: JsonLdContext | undefined,
  deps: ParseDeps & { newId: () => string },
): Promise<SubscriptionSpec> {
  if (!isObject(input)) throw bad('a subscription must be a JSON object');
  for (const k of Object.keys(input)) {
    if (!TOP_LEVEL.has(k)) throw bad(`unknown subscription member "${k}"`);
  }
  if (input.type !== 'Subscription') throw bad('type must be "Subscription"');
  const ctx = (input['@context'] as JsonLdContext | undefined) ?? context;
  let id: string;
  if (input.id === undefined) id = `urn:ngsi-ld:Subscription:${deps.newId()}`;
  else if (isUri(input.id)) id = input.id;
  else throw bad('id must be a URI');
  const ac = await deps.ld.resolve(ctx);
  const notification = parseNotification(input.notification, ac);
  const spec: SubscriptionSpec = {
    id,
    type: 'Subscription',
    notificationTrigger: [...DEFAULT_TRIGGERS],
    isActive: true,
    notification,
  };
  if (ctx !== undefined) spec.jsonldContext = ctx;
  await applyMembers(spec, input, ctx, ac, deps, true);
  checkCoherence(spec, deps.now, true);
  return spec;
}

/** Applies a PATCH fragment (clause 5.8.2): members present replace those of the subscription. */
export async function patchSubscription(
  current: SubscriptionSpec,
  fragment: unknown,
  context: JsonLdContext | undefined,
  deps: ParseDeps,
): Promise<SubscriptionSpec> {
  if (!isObject(fragment)) throw bad('a subscription fragment must be a JSON object');
  for (const k of Object.keys(fragment)) {
    if (!TOP_LEVEL.has(k)) throw bad(`unknown subscription member "${k}"`);
  }
  if (fragment.id !== undefined && fragment.id !== current.id)
    throw bad('the id of a subscription cannot change');
  if (fragment.type !== undefined && fragment.type !== 'Subscription')
    throw bad('type must be "Subscription"');
  const ctx = (fragment['@context'] as JsonLdContext | undefined) ?? context ?? current.jsonldContext;
  const ac = await deps.ld.resolve(ctx);
  const next: SubscriptionSpec = structuredClone(current);
  if (fragment.notification !== undefined) {
    const merged = isObject(fragment.notification)
      ? {
          ...toRawNotification(current.notification),
          ...fragment.notification,
          endpoint: isObject(fragment.notification.endpoint)
            ? { ...current.notification.endpoint, ...fragment.notification.endpoint }
            : current.notification.endpoint,
        }
      : fragment.notification;
    const attrs = isObject(fragment.notification) ? fragment.notification.attributes : undefined;
    next.notification = parseNotification(
      { ...(merged as Record<string, unknown>), attributes: undefined },
      ac,
    );
    if (attrs !== undefined) {
      next.notification.attributes = stringList(attrs, 'notification.attributes').map((a) =>
        ac.expandTerm(a),
      );
    } else if (current.notification.attributes) {
      next.notification.attributes = current.notification.attributes;
    }
    const given: Record<string, unknown> = isObject(fragment.notification) ? fragment.notification : {};
    for (const k of ['pick', 'omit'] as const) {
      const kept = current.notification[k];
      if (given[k] === null) delete next.notification[k];
      else if (given[k] === undefined && kept) next.notification[k] = kept;
    }
  }
  await applyMembers(next, fragment, ctx, ac, deps, false);
  checkCoherence(next, deps.now, false);
  return next;
}

function toRawNotification(n: NotificationParams): Record<string, unknown> {
  // pick and omit are expanded here: the caller keeps them from the subscription as they are.
  const raw: Record<string, unknown> = { format: n.format };
  if (n.sysAttrs !== undefined) raw.sysAttrs = n.sysAttrs;
  if (n.showChanges !== undefined) raw.showChanges = n.showChanges;
  return raw;
}

async function applyMembers(
  spec: SubscriptionSpec,
  input: Record<string, unknown>,
  ctx: JsonLdContext | undefined,
  ac: ActiveLdContext,
  deps: ParseDeps,
  creating: boolean,
): Promise<void> {
  // A PATCH may set a member to null to remove it (JSON merge-patch semantics of clause 5.6.2).
  const remove = (k: keyof SubscriptionSpec) => {
    if (!creating && input[k] === null) {
      delete spec[k];
      return true;
    }
    return false;
  };
  for (const k of ['subscriptionName', 'description', 'lang'] as const) {
    if (input[k] === undefined || remove(k)) continue;
    if (typeof input[k] !== 'string') throw bad(`${k} must be a string`);
    spec[k] = input[k] as string;
  }
  if (input.datasetId !== undefined && !remove('datasetId')) {
    const ids = stringList(input.datasetId, 'datasetId');
    for (const d of ids) {
      if (d !== '@none' && !isUri(d)) throw bad(`datasetId "${d}" is not a URI (nor @none)`);
    }
    spec.datasetId = [...new Set(ids)];
  }
  if (input.entities !== undefined && !remove('entities')) {
    spec.entities = parseEntities(input.entities, ac);
  }
  if (input.watchedAttributes !== undefined && !remove('watchedAttributes')) {
    spec.watchedAttributes = stringList(input.watchedAttributes, 'watchedAttributes').map((a) =>
      ac.expandTerm(a),
    );
  }
  if (input.notificationTrigger !== undefined) {
    const triggers = stringList(input.notificationTrigger, 'notificationTrigger');
    for (const t of triggers) {
      if (!(NOTIFICATION_TRIGGERS as readonly string[]).includes(t)) {
        throw bad(`notificationTrigger "${t}" is not one of ${NOTIFICATION_TRIGGERS.join(', ')}`);
      }
    }
    spec.notificationTrigger = [...new Set(triggers)] as NotificationTrigger[];
  }
  if (input.timeInterval !== undefined && !remove('timeInterval')) {
    spec.timeInterval = positiveNumber(input.timeInterval, 'timeInterval');
  }
  if (input.throttling !== undefined && !remove('throttling')) {
    spec.throttling = positiveNumber(input.throttling, 'throttling');
  }
  if (input.q !== undefined && !remove('q')) {
    if (typeof input.q !== 'string' || input.q.length === 0) throw bad('q must be a non-empty string');
    if (deps.query) await deps.query.compileQ(input.q, ctx);
    spec.q = input.q;
  }
  if (input.geoQ !== undefined && !remove('geoQ')) {
    spec.geoQ = parseGeoQ(input.geoQ);
    if (deps.query) await deps.query.compileGeoQ(spec.geoQ, ctx);
  }
  if (input.csf !== undefined || input.scopeQ !== undefined || input.temporalQ !== undefined) {
    throw new AppError(
      'CONTEXT_LIVE_UNSUPPORTED',
      'csf, scopeQ and temporalQ are not supported in subscriptions',
    );
  }
  if (input.isActive !== undefined) {
    if (typeof input.isActive !== 'boolean') throw bad('isActive must be a boolean');
    spec.isActive = input.isActive;
    spec.isActiveGiven = true;
  }
  if (input.jsonldContext !== undefined) {
    if (input.jsonldContext === null && !creating) delete spec.notificationContext;
    else {
      // The @context notifications are compacted with: a dereferenceable URI (clause 5.2.12), resolved now so
      // that one that cannot be had is refused at once (503 LdContextNotAvailable), not at every delivery.
      if (!isUri(input.jsonldContext) || !/^https?:\/\//i.test(input.jsonldContext)) {
        throw bad('jsonldContext must be the URI of a JSON-LD @context (http or https)');
      }
      await deps.ld.resolve(input.jsonldContext);
      spec.notificationContext = input.jsonldContext;
    }
  }
  const expires = input.expiresAt ?? input.expires;
  if (expires !== undefined && !(input.expiresAt === null && remove('expiresAt'))) {
    if (!isDateTime(expires)) throw bad('expiresAt must be a DateTime (ISO 8601)');
    if (Date.parse(expires) <= deps.now.getTime()) throw bad('expiresAt must be in the future');
    spec.expiresAt = new Date(expires).toISOString();
  }
}

function checkCoherence(spec: SubscriptionSpec, _now: Date, _creating: boolean): void {
  checkProjection(spec.notification);
  if (!spec.entities && !spec.watchedAttributes) {
    throw bad('a subscription needs entities or watchedAttributes');
  }
  if (spec.timeInterval !== undefined && spec.watchedAttributes) {
    throw bad('timeInterval and watchedAttributes cannot both be present');
  }
  if (spec.timeInterval !== undefined && spec.throttling !== undefined) {
    throw bad('timeInterval and throttling cannot both be present');
  }
}

/** The API view of a subscription (clause 5.2.12), compacted with the request's @context. */
export async function subscriptionView(
  rec: SubscriptionRecord,
  context: JsonLdContext | undefined,
  ld: LdContextPort,
  now: Date,
  opts: { includeContext?: boolean; sysAttrs?: boolean } = {},
): Promise<Record<string, unknown>> {
  const s = rec.spec;
  const ctx = context ?? s.jsonldContext;
  const ac = await ld.resolve(ctx);
  const out: Record<string, unknown> = { id: s.id, type: 'Subscription' };
  if (s.subscriptionName !== undefined) out.subscriptionName = s.subscriptionName;
  if (s.description !== undefined) out.description = s.description;
  if (s.entities) {
    out.entities = s.entities.map((e) => ({
      ...(e.id !== undefined ? { id: e.id } : {}),
      ...(e.idPattern !== undefined ? { idPattern: e.idPattern } : {}),
      type: ac.compactIri(e.type),
    }));
  }
  if (s.watchedAttributes) {
    out.watchedAttributes = s.watchedAttributes.map((a) => ac.compactIri(a));
  }
  out.notificationTrigger = s.notificationTrigger;
  if (s.timeInterval !== undefined) out.timeInterval = s.timeInterval;
  if (s.q !== undefined) out.q = s.q;
  if (s.geoQ !== undefined) out.geoQ = s.geoQ;
  if (s.isActiveGiven || !s.isActive) out.isActive = s.isActive;
  if (s.expiresAt !== undefined) out.expiresAt = s.expiresAt;
  if (s.throttling !== undefined) out.throttling = s.throttling;
  if (s.lang !== undefined) out.lang = s.lang;
  if (s.datasetId !== undefined) out.datasetId = s.datasetId;
  const n = s.notification;
  const notification: Record<string, unknown> = {};
  if (n.attributes) notification.attributes = n.attributes.map((a) => ac.compactIri(a));
  notification.format = n.format;
  if (n.sysAttrs !== undefined) notification.sysAttrs = n.sysAttrs;
  if (n.showChanges !== undefined) notification.showChanges = n.showChanges;
  const member = (m: string) => (ENTITY_MEMBER_NAMES.has(m) ? m : ac.compactIri(m));
  if (n.pick) notification.pick = n.pick.map(member);
  if (n.omit) notification.omit = n.omit.map(member);
  notification.endpoint = n.endpoint;
  const d = rec.delivery;
  notification.timesSent = d.timesSent;
  notification.timesFailed = d.timesFailed;
  if (d.status) notification.status = d.status;
  if (d.lastNotification) notification.lastNotification = d.lastNotification;
  if (d.lastSuccess) notification.lastSuccess = d.lastSuccess;
  if (d.lastFailure) notification.lastFailure = d.lastFailure;
  // NGSI-LD gives the time of the last failure only; why it failed is what the subscriber needs to fix it.
  if (d.status === 'failed' && d.lastError) notification.lastFailureReason = d.lastError;
  out.notification = notification;
  if (s.notificationContext !== undefined) out.jsonldContext = s.notificationContext;
  out.status = subscriptionStatus(s, now, rec.pausedReason);
  // Not an NGSI-LD member: NGSI-LD has no word for "paused by the platform", and its subscriber must know why.
  if (rec.pausedReason && out.status === 'paused') out.statusReason = rec.pausedReason;
  // System attributes, as for entities: only when asked for (options=sysAttrs).
  if (opts.sysAttrs) {
    out.createdAt = rec.createdAt;
    out.modifiedAt = rec.modifiedAt;
  }
  if (opts.includeContext && ctx !== undefined) out['@context'] = ctx;
  return out;
}
