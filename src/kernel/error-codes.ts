/**
 * The catalogue of stable error codes. Every code here must be documented in docs/errors.md
 * (a test checks it). The `kind` decides the HTTP status in every API plugin.
 */
export type ErrorKind =
  | 'invalid' // 400: the request is malformed or breaks a rule
  | 'unauthenticated' // 401
  | 'forbidden' // 403
  | 'not_found' // 404
  | 'method_not_allowed' // 405
  | 'timeout' // 408
  | 'conflict' // 409
  | 'too_large' // 413
  | 'uri_too_long' // 414
  | 'unsupported_media' // 415
  | 'unprocessable' // 422
  | 'rate_limited' // 429
  | 'headers_too_large' // 431
  | 'unavailable' // 503
  | 'internal'; // 500

export interface ErrorCodeEntry {
  kind: ErrorKind;
  title: string;
}

export const ERROR_CODES = {
  // kernel / platform
  PLATFORM_INTERNAL: { kind: 'internal', title: 'Internal error' },
  PLATFORM_BAD_REQUEST: { kind: 'invalid', title: 'Malformed request' },
  PLATFORM_VALIDATION_FAILED: { kind: 'invalid', title: 'Request does not match the schema' },
  PLATFORM_BODY_TOO_LARGE: { kind: 'too_large', title: 'Request body too large' },
  PLATFORM_UNSUPPORTED_MEDIA_TYPE: { kind: 'unsupported_media', title: 'Unsupported media type' },
  PLATFORM_ROUTE_NOT_FOUND: { kind: 'not_found', title: 'No such route' },
  PLATFORM_METHOD_NOT_ALLOWED: { kind: 'method_not_allowed', title: 'Method not allowed on this resource' },
  PLATFORM_REQUEST_TIMEOUT: { kind: 'timeout', title: 'The request was not received in time' },
  PLATFORM_URI_TOO_LONG: { kind: 'uri_too_long', title: 'URI too long' },
  PLATFORM_HEADERS_TOO_LARGE: { kind: 'headers_too_large', title: 'Request header fields too large' },
  PLATFORM_INVALID_TEXT: {
    kind: 'invalid',
    title: 'Text with a NUL character, a lone surrogate or not in UTF-8',
  },
  PLATFORM_JSON_TOO_DEEP: { kind: 'invalid', title: 'JSON nested too deep' },
  PLATFORM_RATE_LIMITED: { kind: 'rate_limited', title: 'Too many requests' },
  PLATFORM_UNAVAILABLE: { kind: 'unavailable', title: 'Service unavailable' },
  PLATFORM_SHUTTING_DOWN: { kind: 'unavailable', title: 'The instance is shutting down' },
  CONFIG_INVALID: { kind: 'invalid', title: 'Invalid configuration' },
  // storage and bus
  STORE_UNAVAILABLE: { kind: 'unavailable', title: 'The store is unavailable' },
  STORE_MIGRATION_FAILED: { kind: 'internal', title: 'A migration failed' },
  BUS_UNAVAILABLE: { kind: 'unavailable', title: 'The event bus is unavailable' },
  BUS_PUBLISH_FAILED: { kind: 'unavailable', title: 'An event could not be published' },
  BUS_INVALID_EVENT: { kind: 'invalid', title: 'The event is malformed' },
  BUS_INVALID_SUBSCRIPTION: { kind: 'invalid', title: 'The subscription options are invalid' },
  BUS_BACKLOG_FULL: { kind: 'unavailable', title: 'A consumer group has too many events waiting' },
  // access: authentication
  AUTH_INVALID_CREDENTIALS: { kind: 'unauthenticated', title: 'Invalid username or password' },
  AUTH_TOKEN_MISSING: { kind: 'unauthenticated', title: 'Authentication required' },
  AUTH_TOKEN_INVALID: { kind: 'unauthenticated', title: 'Invalid token' },
  AUTH_TOKEN_EXPIRED: { kind: 'unauthenticated', title: 'Token expired' },
  AUTH_ACCOUNT_DISABLED: { kind: 'unauthenticated', title: 'Account disabled' },
  AUTH_TOKEN_REVOKED: { kind: 'unauthenticated', title: 'Token revoked' },
  AUTH_ROLE_REQUIRED: { kind: 'forbidden', title: 'The account lacks the role this action needs' },
  AUTH_PASSWORD_CHANGE_REQUIRED: {
    kind: 'forbidden',
    title: 'An administrator reset the password: set your own to log in',
  },
  // access: organisations, users, communities
  ACCESS_ORG_NOT_FOUND: { kind: 'not_found', title: 'Unknown organisation' },
  ACCESS_ORG_EXISTS: { kind: 'conflict', title: 'Organisation already exists' },
  ACCESS_USER_NOT_FOUND: { kind: 'not_found', title: 'Unknown user' },
  ACCESS_USER_EXISTS: { kind: 'conflict', title: 'User already exists' },
  ACCESS_COMMUNITY_NOT_FOUND: { kind: 'not_found', title: 'Unknown community' },
  ACCESS_COMMUNITY_EXISTS: { kind: 'conflict', title: 'Community already exists' },
  ACCESS_TOKEN_NOT_FOUND: { kind: 'not_found', title: 'Unknown API token' },
  ACCESS_WEAK_PASSWORD: { kind: 'invalid', title: 'Password too weak' },
  // access: markings and policy
  ACCESS_INVALID_MARKING: { kind: 'invalid', title: 'Invalid marking' },
  ACCESS_INVALID_TLP: { kind: 'invalid', title: 'Invalid TLP label' },
  ACCESS_INVALID_PAP: { kind: 'invalid', title: 'Invalid PAP label' },
  ACCESS_INVALID_AUDIENCE: { kind: 'invalid', title: 'Invalid audience' },
  ACCESS_DENIED: { kind: 'forbidden', title: 'Not allowed' },
  ACCESS_OBJECT_NOT_FOUND: { kind: 'not_found', title: 'Unknown object' },
  ACCESS_OBJECT_EXISTS: { kind: 'conflict', title: 'Object already registered' },
  ACCESS_INVALID_INPUT: { kind: 'invalid', title: 'Invalid organisation, community or account data' },
  ACCESS_BREAK_GLASS_REASON_REQUIRED: { kind: 'invalid', title: 'Break-glass access needs a stated reason' },
  // routing
  ROUTING_SOURCE_NOT_FOUND: { kind: 'not_found', title: 'The road data source does not exist' },
  ROUTING_DOWNLOAD_FAILED: { kind: 'unavailable', title: 'The road data could not be downloaded' },
  ROUTING_NOT_OSM_PBF: { kind: 'unprocessable', title: 'The file is not an OpenStreetMap PBF extract' },
  ROUTING_CORRUPT_FILE: { kind: 'unprocessable', title: 'The OpenStreetMap PBF file is corrupt' },
  ROUTING_EMPTY_NETWORK: { kind: 'unprocessable', title: 'The extract contains no routable roads' },
  ROUTING_UNKNOWN_PROFILE: { kind: 'invalid', title: 'Unknown vehicle profile' },
  ROUTING_INVALID_COORDINATE: { kind: 'invalid', title: 'Invalid coordinate (expected [lon, lat])' },
  ROUTING_POINT_OUTSIDE_NETWORK: { kind: 'unprocessable', title: 'The point is too far from any road' },
  ROUTING_INVALID_GEOMETRY: { kind: 'invalid', title: 'Invalid GeoJSON geometry' },
  ROUTING_INVALID_ARGUMENT: { kind: 'invalid', title: 'Invalid routing argument' },
  ROUTING_CLOSURE_NOT_FOUND: { kind: 'not_found', title: 'Unknown closure' },
  ROUTING_SLOWDOWN_NOT_FOUND: { kind: 'not_found', title: 'Unknown slow-down' },
  ROUTING_NOT_READY: { kind: 'unavailable', title: 'Routing is not ready' },
  // detection-live: rules as marked objects, alerts, dry-runs
  DETECTION_RULE_INVALID: { kind: 'invalid', title: 'Invalid detection rule' },
  DETECTION_RULE_NOT_FOUND: { kind: 'not_found', title: 'Unknown rule' },
  DETECTION_RULE_VERSION_NOT_FOUND: { kind: 'not_found', title: 'Unknown version of the rule' },
  DETECTION_INVALID_INPUT: { kind: 'invalid', title: 'Invalid detection request' },
  DETECTION_ALERT_NOT_FOUND: { kind: 'not_found', title: 'Unknown alert' },
  DETECTION_ALERT_STATUS_CONFLICT: { kind: 'conflict', title: 'The alert cannot move to this status' },
  DETECTION_ALERT_WRITE_FAILED: { kind: 'internal', title: 'An alert could not be written' },
  DETECTION_DRY_RUN_TOO_LARGE: { kind: 'forbidden', title: 'The dry-run would replay too much history' },
  // audit
  AUDIT_CHAIN_BROKEN: { kind: 'internal', title: 'The audit chain is broken' },
  // context-live: subscriptions, notifications, temporal history, IoT ingestion
  CONTEXT_LIVE_SUBSCRIPTION_INVALID: { kind: 'invalid', title: 'Invalid subscription' },
  CONTEXT_LIVE_SUBSCRIPTION_EXISTS: { kind: 'conflict', title: 'A subscription with this id already exists' },
  CONTEXT_LIVE_UNSUPPORTED: { kind: 'unprocessable', title: 'Operation not supported by this broker' },
  CONTEXT_LIVE_TEMPORAL_QUERY_INVALID: { kind: 'invalid', title: 'Invalid temporal query' },
  CONTEXT_LIVE_TEMPORAL_ENTITY_NOT_FOUND: { kind: 'not_found', title: 'No history for this entity' },
  CONTEXT_LIVE_INGEST_INVALID: { kind: 'invalid', title: 'Malformed ingestion message' },
  CONTEXT_LIVE_NOTIFICATION_FAILED: { kind: 'unavailable', title: 'A notification could not be delivered' },
  CONTEXT_LIVE_MQTT_TOPIC_REFUSED: {
    kind: 'invalid',
    title: "The MQTT topic is outside the subscriber organisation's notification topics",
  },
  // egress: where the platform connects on a user's behalf
  EGRESS_DESTINATION_REFUSED: { kind: 'invalid', title: 'The destination is refused by the egress policy' },
  // context: NGSI-LD entities, @context, queries
  CONTEXT_INVALID_JSON: { kind: 'invalid', title: 'The payload is not valid JSON of the expected type' },
  CONTEXT_INVALID_JSONLD: { kind: 'invalid', title: 'Invalid JSON-LD @context' },
  CONTEXT_LDCONTEXT_NOT_AVAILABLE: { kind: 'unavailable', title: 'A remote @context cannot be retrieved' },
  CONTEXT_INVALID_ENTITY: { kind: 'invalid', title: 'Invalid NGSI-LD entity or attribute' },
  CONTEXT_INVALID_REQUEST: { kind: 'invalid', title: 'Invalid NGSI-LD request' },
  CONTEXT_INVALID_QUERY: { kind: 'invalid', title: 'Invalid NGSI-LD query' },
  CONTEXT_UNKNOWN_PARAMETER: { kind: 'invalid', title: 'Unknown query parameter' },
  CONTEXT_INVALID_GEOQUERY: { kind: 'invalid', title: 'Invalid geo-query' },
  CONTEXT_INVALID_GEOMETRY: { kind: 'invalid', title: 'Invalid GeoJSON geometry' },
  CONTEXT_UNSUPPORTED_GEOMETRY: { kind: 'unprocessable', title: 'Unsupported geometry' },
  CONTEXT_ENTITY_NOT_FOUND: { kind: 'not_found', title: 'Unknown entity' },
  CONTEXT_ATTRIBUTE_NOT_FOUND: { kind: 'not_found', title: 'Unknown attribute' },
  CONTEXT_TYPE_NOT_FOUND: { kind: 'not_found', title: 'Unknown entity type' },
  CONTEXT_TENANT_NOT_FOUND: { kind: 'not_found', title: 'Unknown tenant' },
  CONTEXT_ENTITY_EXISTS: { kind: 'conflict', title: 'The entity already exists' },
  CONTEXT_BATCH_TOO_LARGE: { kind: 'invalid', title: 'Too many entities in one batch' },
  CONTEXT_TOO_MANY_RESULTS: { kind: 'forbidden', title: 'Too many results' },
  CONTEXT_QUERY_TOO_COMPLEX: { kind: 'forbidden', title: 'The query is too costly to answer' },
  CONTEXT_NOT_ACCEPTABLE: { kind: 'invalid', title: 'No acceptable representation' },
  CONTEXT_OPERATION_NOT_SUPPORTED: { kind: 'unprocessable', title: 'Operation not supported' },
  CONTEXT_LDCONTEXT_NOT_FOUND: { kind: 'not_found', title: 'Unknown hosted @context' },
} as const satisfies Record<string, ErrorCodeEntry>;

export type ErrorCode = keyof typeof ERROR_CODES;
