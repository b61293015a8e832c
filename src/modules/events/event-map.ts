/**
 * The platform's one map of domain events: event type → the type of its data. Each module declares the
 * part it emits beside its payload types; this file joins them and is the only place that sees them all.
 * It imports types only, so it adds no dependency between modules: a module depends on the outbox port
 * (src/ports/event-outbox.ts) typed by its own part, and the composition root hands it this outbox.
 *
 * | type | emitted by | data |
 * | --- | --- | --- |
 * | `context.entity.created` / `updated` / `deleted` | context (every committed entity write) | EntityChangeEvent |
 * | `context.entity.marking_changed` | context | EntityMarkingChangedEvent |
 * | `context.subscription.changed` | context-live | { tenant, id } |
 * | `context.temporal_entity.changed` / `deleted` | context-live | TemporalEntityChangeEvent (an object change) |
 * | `report.created` / `updated` / `deleted` | reports | ObjectChangeEvent |
 * | `access.org.changed` / `community.changed` | access | { id } |
 * | `access.user.changed` | access | { id, orgId, sessionsEnded } |
 * | `access.token.revoked` | access | { id, userId, orgId } |
 * | `routing.change.added` / `updated` / `lifted` | routing-live | RoutingChangeEvent |
 * | `detection.rule.created` / `updated` / `deleted` | detection-live | RuleChangeEvent (an object change) |
 */
import type { AccessEvents } from '../access/index.ts';
import type { ContextEvents } from '../context/index.ts';
import type { ContextLiveEvents } from '../context-live/index.ts';
import type { DetectionLiveEvents } from '../detection-live/index.ts';
import type { ReportEvents } from '../reports/index.ts';
import type { RoutingLiveEvents } from '../routing-live/index.ts';

type Parts = [
  AccessEvents,
  ContextEvents,
  ContextLiveEvents,
  DetectionLiveEvents,
  ReportEvents,
  RoutingLiveEvents,
];

/** Every event type of the platform and its data. */
export type EventMap = AccessEvents &
  ContextEvents &
  ContextLiveEvents &
  DetectionLiveEvents &
  ReportEvents &
  RoutingLiveEvents;

export type EventType = keyof EventMap;

/** The event types two parts both declare (never, or the map would silently merge their data types). */
type Shared<P extends unknown[], Seen = never> = P extends [infer Head, ...infer Rest]
  ? (keyof Head & Seen) | Shared<Rest, Seen | keyof Head>
  : never;

// A type declared by two modules fails to compile here.
const partsAreDisjoint: [Shared<Parts>] extends [never] ? true : Shared<Parts> = true;
void partsAreDisjoint;
