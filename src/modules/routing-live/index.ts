/** Routing as a platform service: the loaded road network and its live changes, shared by all instances. */

export { allowsRoadEffect, followContextInputs, liveChangeFor } from './context-inputs.ts';
export { type RoutingLiveTables, routingLiveMigrations } from './migrations.ts';
export {
  type ChangeSource,
  CLOSURE_KIND,
  type DerivedChangeInput,
  type LiveChangeInput,
  type LiveChangeKind,
  type LiveChangeRecord,
  type ManualChangeInput,
  ROAD_CHANGE_ROLES,
  ROUTING_CHANGE_ADDED,
  ROUTING_CHANGE_LIFTED,
  ROUTING_CHANGE_UPDATED,
  type RoutingChangeEvent,
  type RoutingLiveEvents,
  RoutingService,
  type RoutingServiceOptions,
  type RoutingStatus,
  SLOWDOWN_KIND,
} from './routing-service.ts';
