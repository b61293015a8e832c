/**
 * Decides whether an entity change is of interest to a subscription (clause 5.11 and the
 * notificationTrigger member of clause 5.2.12): entity selectors, watched attributes, triggers, q, geoQ.
 */

import { AppError } from '../../kernel/errors.ts';
import { compileUserPattern, type UserPattern } from '../context/index.ts';
import { attributeNames, type ChangeKind, type LiveEntityChange } from './entity-change-event.ts';
import type { EntityPredicate } from './ports.ts';
import type { NotificationTrigger, SubscriptionSpec } from './subscription.ts';

export interface CompiledSubscription {
  spec: SubscriptionSpec;
  idPatterns: Array<UserPattern | undefined>;
  q?: EntityPredicate | undefined;
  geoQ?: EntityPredicate | undefined;
}

/**
 * The selectors' idPatterns, in RE2 (linear time: a subscriber's pattern runs on every change of its
 * tenant, on the event loop). They were checked when the subscription was written.
 */
export function compileIdPatterns(spec: SubscriptionSpec): Array<UserPattern | undefined> {
  return (spec.entities ?? []).map((e) =>
    e.idPattern
      ? compileUserPattern(e.idPattern, (why) => new AppError('CONTEXT_LIVE_SUBSCRIPTION_INVALID', why))
      : undefined,
  );
}

/** The triggers a change fires, with the attributes each attribute trigger concerns. */
export function firedTriggers(
  kind: ChangeKind,
  change: LiveEntityChange,
): Map<NotificationTrigger, string[]> {
  const fired = new Map<NotificationTrigger, string[]>();
  if (kind === 'deleted') {
    fired.set('entityDeleted', []);
    // Deleting an entity deletes its attributes (clause 5.2.12: attributeDeleted).
    const gone = change.deletedAttributes ?? [];
    if (gone.length > 0) fired.set('attributeDeleted', gone);
    return fired;
  }
  const present = new Set(change.entity ? attributeNames(change.entity) : []);
  if (kind === 'created') {
    const all = [...present];
    fired.set('entityCreated', all);
    // Creating an entity creates its attributes: default subscriptions (attributeCreated) see new entities.
    if (all.length > 0) fired.set('attributeCreated', all);
    return fired;
  }
  const changed = change.changedAttributes;
  const created = new Set(change.createdAttributes ?? []);
  const deleted = new Set(change.deletedAttributes ?? changed.filter((a) => !present.has(a)));
  const updated = changed.filter((a) => !created.has(a) && !deleted.has(a));
  fired.set('entityUpdated', changed);
  if (created.size > 0) fired.set('attributeCreated', [...created]);
  if (updated.length > 0) fired.set('attributeUpdated', updated);
  if (deleted.size > 0) fired.set('attributeDeleted', [...deleted]);
  return fired;
}

export function selectorMatches(cs: CompiledSubscription, change: LiveEntityChange): boolean {
  const entities = cs.spec.entities;
  if (!entities) return true;
  for (let i = 0; i < entities.length; i++) {
    const sel = entities[i]!;
    if (!change.entityType.includes(sel.type)) continue;
    if (sel.id !== undefined) {
      if (sel.id === change.entityId) return true;
      continue;
    }
    const re = cs.idPatterns[i];
    if (re && !testQuietly(re, change.entityId)) continue;
    return true;
  }
  return false;
}

/** The trigger that makes the subscription notify this change, or undefined. */
export function matchChange(
  cs: CompiledSubscription,
  kind: ChangeKind,
  change: LiveEntityChange,
  fired: Map<NotificationTrigger, string[]>,
): NotificationTrigger | undefined {
  if (!selectorMatches(cs, change)) return undefined;
  const watched = cs.spec.watchedAttributes;
  let trigger: NotificationTrigger | undefined;
  for (const t of cs.spec.notificationTrigger) {
    const attrs = fired.get(t);
    if (!attrs) continue;
    if (t !== 'entityDeleted' && watched && !attrs.some((a) => watched.includes(a))) continue;
    trigger = t;
    break;
  }
  if (!trigger) return undefined;
  if (kind !== 'deleted' && change.entity) {
    if (cs.q && !safe(cs.q, change)) return undefined;
    if (cs.geoQ && !safe(cs.geoQ, change)) return undefined;
  }
  return trigger;
}

/** An id too long for the pattern's work bound does not match (the subscriber is not stalled for it). */
function testQuietly(re: UserPattern, id: string): boolean {
  try {
    return re.test(id);
  } catch {
    return false;
  }
}

function safe(p: EntityPredicate, change: LiveEntityChange): boolean {
  try {
    return p(change.entity!);
  } catch {
    return false;
  }
}
