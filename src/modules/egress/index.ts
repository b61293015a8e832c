/**
 * egress: where the platform may connect on a user's behalf (notification endpoints, remote @contexts),
 * decided by one policy with always-refused destinations, a deny-list and an allow-list.
 */
export type { Address, AddressClass } from './address-class.ts';
export { ALWAYS_REFUSED, classify, METADATA_HOSTS, parseAddress } from './address-class.ts';
export type { EgressGetOptions } from './egress-get.ts';
export { EgressTimeoutError, egressGet } from './egress-get.ts';
export type { CheckedDestination, EgressPolicyOptions, HostResolver } from './egress-policy.ts';
export { EgressPolicy, pinnedLookup } from './egress-policy.ts';
export type { EgressEntry, EgressList } from './egress-rules.ts';
export { defaultAllowList, NETWORK_SCHEMES, parseEgressList } from './egress-rules.ts';
