/**
 * Live inputs of the road network from the context broker (Smart Data Models):
 * - `Alert` with subCategory roadClosed, carAccident, hazardOnRoad, flood, buildingFire, forestFire,
 *   suspiciousAction or civilDisorder → a closure around its location (radius 50 m for a point), until validTo;
 * - `Alert` trafficJam / roadWorks → a slow-down to 30 % / 50 % speed;
 * - `RoadAccident` whose status is not solved/closed → a closure of 30 m around it;
 * - `TrafficFlowObserved` → a slow-down by averageVehicleSpeed / 50 km/h (or 30 % when `congested`),
 *   lifted when traffic flows again (≥ 45 km/h, or congested false);
 * - deleting the entity lifts its change.
 *
 * A derived change is owned, created and marked like its source (the gate's `recordDerived`): only who may
 * see the entity sees the closure, its reason and its location. It follows the source: a new marking is the
 * closure's new marking; the entity deleted, or deleted and created again (another incarnation), lifts the
 * old closure. The closure's effect on routes is the one thing others may notice (every route avoids the
 * road), so it is taken only when the source allows an action others can observe: never for TLP:RED (named
 * people only) and never for PAP:AMBER or PAP:RED (no detectable action). docs/routing.md argues the rule.
 */
import { isAppError } from '../../kernel/errors.ts';
import type { EventBus, PlatformEvent, Subscription } from '../../ports/event-bus.ts';
import {
  ENTITY_CREATED,
  ENTITY_DELETED,
  ENTITY_KIND,
  ENTITY_UPDATED,
  type EntityChangeEvent,
} from '../context/index.ts';
import type { Marking } from '../sharing/index.ts';
import type { ChangeSource, LiveChangeInput, RoutingService } from './routing-service.ts';

const CLOSING_ALERTS = new Set([
  'roadClosed',
  'carAccident',
  'hazardOnRoad',
  'flood',
  'buildingFire',
  'forestFire',
  'suspiciousAction',
  'civilDisorder',
]);
const SLOWING_ALERTS: Record<string, number> = { trafficJam: 0.3, roadWorks: 0.5 };
const FREE_FLOW_KMH = 50;
const FLOWING_KMH = 45;

/** The local name of an IRI: the part after its last `#` or `/`. */
function localName(iri: string): string {
  return iri.slice(Math.max(iri.lastIndexOf('#'), iri.lastIndexOf('/')) + 1);
}

/** The value of an attribute by its local name (first instance of a multi-attribute). */
function attr(entity: Record<string, unknown>, name: string): unknown {
  for (const [key, raw] of Object.entries(entity)) {
    if (localName(key) !== name) continue;
    const a = (Array.isArray(raw) ? raw[0] : raw) as { value?: unknown; object?: unknown } | undefined;
    return a?.value ?? a?.object;
  }
  return undefined;
}

/**
 * May the platform act on a source with this marking in a way others can observe (every route avoids the
 * road)? Not on TLP:RED (for named people only), not against PAP:AMBER or PAP:RED (passive use only).
 */
export function allowsRoadEffect(marking: Marking): boolean {
  return marking.tlp !== 'RED' && marking.pap !== 'AMBER' && marking.pap !== 'RED';
}

/** What an entity asks of the road network: a change, 'lift' (it no longer affects traffic) or null (not ours). */
export function liveChangeFor(event: EntityChangeEvent): LiveChangeInput | 'lift' | null {
  const types = event.entityType.map(localName);
  const relevant = types.some((t) => t === 'Alert' || t === 'RoadAccident' || t === 'TrafficFlowObserved');
  if (!relevant) return null;
  if (!event.entity) return 'lift';
  if (!allowsRoadEffect(event.marking)) return 'lift';
  const e = event.entity as Record<string, unknown>;
  const geometry = attr(e, 'location');
  if (!geometry || typeof geometry !== 'object') return 'lift';
  const reason = `${types.join(',')} ${event.entityId}`;
  const validTo = attr(e, 'validTo');
  const expiresAt =
    typeof validTo === 'string' && !Number.isNaN(Date.parse(validTo)) ? new Date(validTo) : undefined;
  if (expiresAt && expiresAt.getTime() <= Date.now()) return 'lift';
  const withExpiry = expiresAt ? { expiresAt } : {};

  if (types.includes('Alert')) {
    const sub = String(attr(e, 'subCategory') ?? '');
    if (CLOSING_ALERTS.has(sub))
      return { kind: 'closure', geometry, radiusMeters: 50, reason, ...withExpiry };
    const factor = SLOWING_ALERTS[sub];
    if (factor) return { kind: 'slowdown', geometry, factor, radiusMeters: 100, reason, ...withExpiry };
    return 'lift';
  }
  if (types.includes('RoadAccident')) {
    const status = String(attr(e, 'status') ?? 'onGoing');
    if (status === 'solved' || status === 'closed') return 'lift';
    return { kind: 'closure', geometry, radiusMeters: 30, reason, ...withExpiry };
  }
  const congested = attr(e, 'congested');
  const speed = attr(e, 'averageVehicleSpeed');
  if (congested === true) return { kind: 'slowdown', geometry, factor: 0.3, reason, ...withExpiry };
  if (typeof speed === 'number' && Number.isFinite(speed) && speed < FLOWING_KMH) {
    const factor = Math.min(0.9, Math.max(0.05, speed / FREE_FLOW_KMH));
    return { kind: 'slowdown', geometry, factor, reason, ...withExpiry };
  }
  return 'lift';
}

/**
 * Follows entity changes as one durable consumer group shared by all instances: each change is turned
 * into a closure or slow-down once, stored, and spread to every instance by the routing service.
 */
export async function followContextInputs(
  bus: EventBus,
  routing: RoutingService,
  onError: (e: unknown, event: PlatformEvent) => void = () => {},
): Promise<Subscription> {
  return bus.subscribe(
    {
      types: [ENTITY_CREATED, ENTITY_UPDATED, ENTITY_DELETED],
      mode: 'group',
      group: 'routing-context-inputs',
      maxDeliver: 5,
    },
    async (event) => {
      const data = event.data as EntityChangeEvent;
      const change = liveChangeFor(data);
      if (change === null) return;
      const source: ChangeSource = {
        name: `entity:${data.tenant}:${data.entityId}`,
        ref: { kind: ENTITY_KIND, scope: data.tenant, id: data.entityId },
        incarnation: data.incarnation,
      };
      try {
        await routing.followSource(
          source,
          change === 'lift'
            ? null
            : { ...change, ownerOrg: data.ownerOrg, createdBy: data.createdBy, marking: data.marking },
        );
      } catch (e) {
        // A geometry or value the network cannot use is the entity's problem, not a reason to retry: the
        // entity no longer describes a usable change, so its old one is lifted. Other failures are retried.
        if (!isAppError(e) || (e.kind !== 'invalid' && e.kind !== 'unprocessable')) throw e;
        await routing.followSource(source, null);
        onError(e, event);
      }
    },
  );
}
