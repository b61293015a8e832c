export { type RoutingApiOptions, routingApi } from './routing-plugin.ts';
