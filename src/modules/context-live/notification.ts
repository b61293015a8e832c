/**
 * Builds NGSI-LD notifications (clause 5.3.1) and the request each binding sends: HTTP (clause 7 of the
 * API binding: POST with the @context in a Link header or the body) and MQTT ({ metadata, body }).
 *
 * The marking of what a notification holds travels beside it, never inside the standard payload: the
 * `SafeCity-Marking` header of HTTP notifications, which the MQTT binding carries in its `metadata`.
 */
import {
  type ExpandedEntity as CoreEntity,
  DEFAULT_TENANT,
  NGSI_LD_NULL,
  renderEntity,
} from '../context/index.ts';
import { MARKING_HEADER } from '../sharing/index.ts';
import { NON_ATTRIBUTE_MEMBERS } from './entity-change-event.ts';
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
  /**
   * What the change replaced (EntityChangeEvent.previous): the previous values `showChanges` shows, and the
   * instances the change deleted, shown with the NGSI-LD Null. Kept only when the subscription needs it.
   */
  previous?: Record<string, unknown> | undefined;
  /** The trigger that made the subscription notify it. */
  trigger?: string;
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

type Instance = Record<string, unknown>;

/** The member holding an attribute's value, by attribute type, and the one `showChanges` names its previous. */
const VALUE_MEMBER: Record<string, [string, string]> = {
  Property: ['value', 'previousValue'],
  GeoProperty: ['value', 'previousValue'],
  Relationship: ['object', 'previousObject'],
  LanguageProperty: ['languageMap', 'previousLanguageMap'],
  JsonProperty: ['json', 'previousJson'],
  VocabProperty: ['vocab', 'previousVocab'],
  ListProperty: ['valueList', 'previousValueList'],
  ListRelationship: ['objectList', 'previousObjectList'],
};

function instances(v: unknown): Instance[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).filter((i) => typeof i === 'object' && i !== null) as Instance[];
}

const sameDataset = (a: Instance, b: Instance) => (a.datasetId ?? '') === (b.datasetId ?? '');

/**
 * A deleted attribute instance as notifications show it (clause 4.5.x, NGSI-LD Null): its type and
 * datasetId, its value member the NGSI-LD Null (`languageMap: {"@none": …}` for a LanguageProperty),
 * `deletedAt`, and with `showChanges` the value it had.
 */
function deletedInstance(old: Instance, deletedAt: string, showChanges: boolean): Instance {
  const type = typeof old.type === 'string' ? old.type : 'Property';
  const [member, previous] = VALUE_MEMBER[type] ?? ['value', 'previousValue'];
  const out: Instance = { type };
  out[member] = member === 'languageMap' ? { '@none': NGSI_LD_NULL } : NGSI_LD_NULL;
  if (typeof old.datasetId === 'string') out.datasetId = old.datasetId;
  if (showChanges && old[member] !== undefined) out[previous] = old[member];
  if (typeof old.createdAt === 'string') out.createdAt = old.createdAt;
  if (typeof old.modifiedAt === 'string') out.modifiedAt = old.modifiedAt;
  out.deletedAt = deletedAt;
  return out;
}

/** An instance after the change with the value it replaced (`showChanges`), when it had one. */
function withPrevious(cur: Instance, before: Instance[]): Instance {
  const old = before.find((b) => sameDataset(b, cur));
  const type = typeof cur.type === 'string' ? cur.type : 'Property';
  const [member, previous] = VALUE_MEMBER[type] ?? ['value', 'previousValue'];
  if (!old || old.type !== cur.type || old[member] === undefined) return cur;
  return { ...cur, [previous]: old[member] };
}

/**
 * The entity a notification carries, expanded: after an update its attributes (those the subscription
 * names) with the instances the change deleted shown as NGSI-LD Nulls and, with `showChanges`, the previous
 * values; after a deletion id and types, and — for `attributeDeleted` (the watched attributes) or with
 * `showChanges` — every attribute it had as NGSI-LD Nulls.
 */
function notifiedEntity(
  it: NotifiedEntity,
  spec: SubscriptionSpec,
  deletedAt: string,
): { entity: ExpandedEntity; sys: Record<string, string> } {
  const attrs = spec.notification.attributes;
  const sys = spec.notification.sysAttrs === true;
  const showChanges = spec.notification.showChanges === true;
  const previous = it.previous ?? {};
  const sysMembers: Record<string, string> = {};
  const out: ExpandedEntity = { id: it.entityId, type: it.types };
  const { pick, omit } = spec.notification;
  const wanted = (k: string) =>
    (!attrs || attrs.includes(k)) && (!pick || pick.includes(k)) && !omit?.includes(k);
  const datasets = spec.datasetId;
  /** The instances of the datasetIds the subscription names (all when it names none). */
  const ofDatasets = (v: unknown): unknown => {
    if (!datasets) return v;
    const kept = instances(v).filter((i) =>
      datasets.includes(typeof i.datasetId === 'string' ? i.datasetId : '@none'),
    );
    return kept.length === 0 ? undefined : kept.length === 1 ? kept[0] : kept;
  };
  if (!it.entity) {
    for (const k of ['createdAt', 'modifiedAt']) {
      const v = previous[k] ?? previous[`https://uri.etsi.org/ngsi-ld/${k}`];
      if (sys && typeof v === 'string') sysMembers[k] = v;
    }
    const watched = spec.watchedAttributes;
    const asNulls = showChanges || it.trigger === 'attributeDeleted';
    for (const [k, v] of Object.entries(previous)) {
      if (!asNulls || NON_ATTRIBUTE_MEMBERS.has(k) || !wanted(k)) continue;
      if (!showChanges && watched && !watched.includes(k)) continue;
      const gone = instances(ofDatasets(v)).map((i) => deletedInstance(i, deletedAt, showChanges));
      if (gone.length > 0) out[k] = gone.length === 1 ? gone[0] : gone;
    }
    return { entity: out, sys: sysMembers };
  }
  for (const [k, v] of Object.entries(it.entity)) {
    if (k === 'id' || k === 'type') continue;
    if (SYS_ATTRS.has(k)) {
      if (sys && typeof v === 'string') sysMembers[k.slice(k.lastIndexOf('/') + 1)] = v;
      continue;
    }
    if (NON_ATTRIBUTE_MEMBERS.has(k)) {
      out[k] = v;
      continue;
    }
    if (!wanted(k)) continue;
    const mine = ofDatasets(v);
    if (mine === undefined) continue;
    const before = instances(previous[k]);
    out[k] = showChanges && before.length > 0 ? mapInstances(mine, (i) => withPrevious(i, before)) : mine;
  }
  for (const [k, v] of Object.entries(previous)) {
    if (NON_ATTRIBUTE_MEMBERS.has(k) || !wanted(k)) continue;
    const now = instances(it.entity[k]);
    const gone = instances(ofDatasets(v))
      .filter((b) => !now.some((n) => sameDataset(n, b)))
      .map((b) => deletedInstance(b, deletedAt, showChanges));
    if (gone.length === 0) continue;
    const all = [...instances(out[k]), ...gone];
    out[k] = all.length === 1 ? all[0] : all;
  }
  return { entity: out, sys: sysMembers };
}

function mapInstances(v: unknown, f: (i: Instance) => Instance): unknown {
  return Array.isArray(v) ? v.map((i) => f(i as Instance)) : f(v as Instance);
}

/**
 * The context a notification's body is compacted with and the one its `Link` header names (clause 5.2.12,
 * `jsonldContext`): the subscription's `jsonldContext` member, else the @context it was created with. A
 * `Link` header names one URL: a context that is not one URL (inline, or several) is sent in the body of
 * `application/ld+json` notifications and replaced by the core context in `application/json` ones.
 */
export function notificationContext(
  spec: SubscriptionSpec,
  accept: 'application/json' | 'application/ld+json',
): { compactWith: JsonLdContext | undefined; label: JsonLdContext } {
  const given = spec.notificationContext ?? spec.jsonldContext;
  if (accept === 'application/ld+json') return { compactWith: given, label: given ?? CORE_CONTEXT };
  const url = singleUrl(given);
  return { compactWith: url, label: url ?? CORE_CONTEXT };
}

function singleUrl(ctx: JsonLdContext | undefined): string | undefined {
  if (typeof ctx === 'string') return ctx;
  if (Array.isArray(ctx) && ctx.length === 1 && typeof ctx[0] === 'string') return ctx[0];
  return undefined;
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
  const ep = spec.notification.endpoint;
  const accept = ep.accept === 'application/ld+json' ? 'application/ld+json' : 'application/json';
  const context = notificationContext(spec, accept);
  const format: EntityFormat = spec.notification.format;
  const ac = await ld.resolve(context.compactWith);
  const data: Record<string, unknown>[] = [];
  for (const it of items) {
    const deletedAt = it.deletedAt ?? notifiedAt.toISOString();
    const { entity, sys } = notifiedEntity(it, spec, deletedAt);
    const rendered = renderEntity(
      { ...entity, type: Array.isArray(entity.type) ? entity.type : [entity.type] } as CoreEntity,
      ac,
      { format, sysAttrs: spec.notification.sysAttrs === true },
    );
    // System attributes of the entity, in every format (keyValues too: clause 5.2.12 sysAttrs).
    Object.assign(rendered, sys);
    if (!it.entity) rendered.deletedAt = deletedAt;
    const { pick, omit } = spec.notification;
    for (const m of ['id', 'type', 'scope']) {
      if ((pick && !pick.includes(m)) || omit?.includes(m)) delete rendered[m];
    }
    // As the reference brokers and the ETSI tests have it: each entity of an application/ld+json
    // notification carries the @context it is compacted with (the notification too, below).
    if (accept === 'application/ld+json') rendered['@context'] = context.label;
    data.push(rendered);
  }
  const body: Record<string, unknown> = {
    id: `urn:ngsi-ld:Notification:${notificationId}`,
    type: 'Notification',
    subscriptionId: spec.id,
    notifiedAt: notifiedAt.toISOString(),
    data,
  };
  const headers: Record<string, string> = {};
  headers['Content-Type'] = accept;
  if (accept === 'application/ld+json') {
    body['@context'] = context.label;
  } else {
    headers.Link = `<${context.label as string}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`;
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
