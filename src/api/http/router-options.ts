/**
 * The router's options, the same for the server and for the test apps of each surface. A path with a
 * trailing slash is the path without it (`POST /ngsi-ld/v1/entities/` creates an entity, as NGSI-LD client
 * libraries and the ETSI conformance tests send it; `GET /api/reports/` lists reports): decided once, for
 * every surface, at the router rather than route by route. Query strings are read by one reader
 * (query-string.ts).
 */
import { MAX_PARAM_LENGTH } from './edge-guard.ts';
import { parseQueryString } from './query-string.ts';

export const ROUTER_OPTIONS = {
  maxParamLength: MAX_PARAM_LENGTH,
  ignoreTrailingSlash: true,
  querystringParser: parseQueryString,
} as const;
