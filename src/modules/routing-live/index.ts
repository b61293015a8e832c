/** Routing as a platform service: the loaded road network and its live changes, shared by all instances. */

export { followContextInputs, liveChangeFor } from './context-inputs.ts';
export { type RoutingLiveTables, routingLiveMigrations } from './migrations.ts';
export {
  type LiveChangeInput,
  type LiveChangeKind,
  type LiveChangeRecord,
  ROUTING_CHANGE_ADDED,
  ROUTING_CHANGE_LIFTED,
  RoutingService,
  type RoutingServiceOptions,
  type RoutingStatus,
} from './routing-service.ts';
