/**
 * Builds NGSI-LD notifications (clause 5.3.1) and the request each binding sends: HTTP (clause 7 of the
 * API binding: POST with the @context in a Link header or the body) and MQTT ({ metadata, body }).
 *
 * The marking of what a notification holds travels beside it, never inside the standard payload: the
 * `SafeCity-Marking` header of HTTP notifications, which the MQTT binding carries in its `metadata`.
 */
import { type ExpandedEntity as CoreEntity, DEFAULT_TENANT, renderEntity } from '../context/index.ts';
import { MARKING_HEADER } from '../sharing/index.ts';
import type { EntityFormat, ExpandedEntity, JsonLdContext, LdContextPort } from './ports.ts';
import type { SubscriptionSpec } from './subscription.ts';

export const CORE_CONTEXT = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld';
const SYS_ATTRS = new Set([
  'createdAt',
  'modifiedAt',
  'https://uri.etsi.org/ngsi-ld/createdAt',
  'https://uri.etsi.org/ngsi-ld/modifiedAt',
]);

/** One entity to notify: its state after the change, or its id and types when it was deleted. */
export interface NotifiedEntity {
  entityId: string;
  types: string[];
  entity: ExpandedEntity | null;
  deletedAt?: string;
}

export interface OutgoingNotification {
  uri: string;
  /** The subscriber's organisation: senders confine where its notifications may go. */
  ownerOrg: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  timeoutMs: number;
  notifierInfo: Record<string, string>;
}

function filterAttributes(e: ExpandedEntity, spec: SubscriptionSpec): ExpandedEntity {
  const attrs = spec.notification.attributes;
  const sys = spec.notification.sysAttrs === true;
  const out: ExpandedEntity = { id: e.id, type: e.type };
  for (const [k, v] of Object.entries(e)) {
    if (k === 'id' || k === 'type') continue;
    if (SYS_ATTRS.has(k)) {
      if (sys) out[k] = v;
      continue;
    }
    if (attrs && !attrs.includes(k)) continue;
    out[k] = sys ? v : stripSysAttrs(v);
  }
  return out;
}

function stripSysAttrs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripSysAttrs);
  if (typeof v !== 'object' || v === null) return v;
  const o: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (SYS_ATTRS.has(k)) continue;
    o[k] = x;
  }
  return o;
}

export async function buildNotification(
  spec: SubscriptionSpec,
  tenant: string,
  ownerOrg: string,
  items: NotifiedEntity[],
  ld: LdContextPort,
  notificationId: string,
  notifiedAt: Date,
  /** The label of what the notification holds (`markingLabel` of its entities). */
  opts: { marking?: string | undefined } = {},
): Promise<OutgoingNotification> {
  const ctx: JsonLdContext | undefined = spec.jsonldContext;
  const format: EntityFormat = spec.notification.format;
  const ac = await ld.resolve(ctx);
  const data: Record<string, unknown>[] = [];
  for (const it of items) {
    if (!it.entity) {
      const types = it.types.map((t) => ac.compactIri(t));
      data.push({
        id: it.entityId,
        type: types.length === 1 ? types[0] : types,
        deletedAt: it.deletedAt ?? notifiedAt.toISOString(),
      });
      continue;
    }
    const e = filterAttributes(it.entity, spec);
    data.push(
      renderEntity({ ...e, type: Array.isArray(e.type) ? e.type : [e.type] } as CoreEntity, ac, {
        format,
        sysAttrs: spec.notification.sysAttrs === true,
      }),
    );
  }
  const ep = spec.notification.endpoint;
  const body: Record<string, unknown> = {
    id: `urn:ngsi-ld:Notification:${notificationId}`,
    type: 'Notification',
    subscriptionId: spec.id,
    notifiedAt: notifiedAt.toISOString(),
    data,
  };
  const headers: Record<string, string> = {};
  const accept = ep.accept === 'application/ld+json' ? 'application/ld+json' : 'application/json';
  headers['Content-Type'] = accept;
  if (accept === 'application/ld+json') {
    body['@context'] = ctx ?? CORE_CONTEXT;
  } else {
    const link = typeof ctx === 'string' ? ctx : CORE_CONTEXT;
    headers.Link = `<${link}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`;
  }
  if (tenant !== DEFAULT_TENANT) headers['NGSILD-Tenant'] = tenant;
  const marking = MARKING_HEADER.toLowerCase();
  for (const kv of ep.receiverInfo ?? []) {
    // The subscriber names its own headers, but never the platform's label of the data.
    if (kv.key.toLowerCase() !== marking) headers[kv.key] = kv.value;
  }
  if (opts.marking) headers[MARKING_HEADER] = opts.marking;
  const notifierInfo: Record<string, string> = {};
  for (const kv of ep.notifierInfo ?? []) notifierInfo[kv.key] = kv.value;
  return {
    uri: ep.uri,
    ownerOrg,
    headers,
    body,
    timeoutMs: Math.min(60_000, (ep.timeout ?? 10) * 1000),
    notifierInfo,
  };
}

/**
 * Sends notifications over one or more URI schemes. Each sender owns the rules of its endpoints: it checks
 * them when a subscription is created or updated, and again, after DNS resolution, on every delivery.
 */
export interface NotificationSender {
  readonly schemes: string[];
  /** Rejects with AppError when `ownerOrg`'s subscriptions may not notify `uri`. */
  checkEndpoint(uri: string, ownerOrg: string): Promise<void>;
  /** Rejects when the receiver did not take it, or when the endpoint is refused now. */
  send(n: OutgoingNotification): Promise<void>;
  close(): Promise<void>;
}
