/**
 * What the OpenAPI document says of the NGSI-LD operations: their query parameters (validated at the edge:
 * types, bounds, no repeated parameter) and their payloads with an example each. Payload schemas only
 * document: the context module validates NGSI-LD payloads, which only a JSON-LD processor can read
 * (the plugins compile body schemas with `documentedBodies`).
 */

const text = (description: string, extra: Record<string, unknown> = {}) =>
  ({ type: 'string', maxLength: 8192, description, ...extra }) as const;
const flag = (description: string) => ({ type: 'string', enum: ['true', 'false'], description }) as const;
const count = (description: string, maximum = 1_000_000_000) =>
  ({ type: 'integer', minimum: 0, maximum, description }) as const;

/** Every NGSI-LD query parameter the broker reads, by name. */
export const QUERY_PARAMETERS = {
  type: text('Entity types, comma-separated (terms of the @context, or IRIs)', { examples: ['Vehicle'] }),
  id: text('Entity ids, comma-separated'),
  idPattern: text('A regular expression the entity ids match'),
  attrs: text('Attributes to return (and that the entity must have), comma-separated'),
  pick: text('Members to return, comma-separated'),
  omit: text('Members to leave out, comma-separated'),
  q: text('NGSI-LD query language (clause 4.9), e.g. speed>50;status=="parked"'),
  expandValues: text(
    'Attributes whose string values in q are terms of the @context, expanded before comparing, comma-separated',
  ),
  scopeQ: text('Scope query (clause 4.19), e.g. /Madrid/+'),
  georel: text('Geo relationship: near;maxDistance==2000, within, intersects, …'),
  geometry: text('Geometry of the geo-query: Point, Polygon, …'),
  coordinates: text('Coordinates of the geo-query geometry, as JSON'),
  geoproperty: text('The GeoProperty the geo-query applies to (default location)'),
  geometryProperty: text('The GeoProperty a GeoJSON answer takes as geometry'),
  lang: text('Language of LanguageProperty values'),
  datasetId: text('The datasetIds of the attribute instances (@none: the default instance), comma-separated'),
  join: text('Linked entity retrieval (clause 4.5.23): inline, flat or @none'),
  joinLevel: count('Levels of linked entities to join (1 to 5; default 1)', 1_000_000),
  containedBy: text('Entity ids already met, not to join again, comma-separated'),
  deleteAll: flag('Delete every instance of the attribute'),
  limit: count('Most entities in the answer (page size)'),
  offset: count('Entities skipped before the page'),
  count: flag('Answer the total in NGSILD-Results-Count'),
  local: flag('Local entities only (no registrations)'),
  csf: text('Context source filter (not supported: no registrations)'),
  options: text(
    "keyValues, concise, normalized, sysAttrs, noOverwrite, replace, update (comma-separated); marking (platform extension: each entity's marking)",
  ),
  format: text('normalized, concise or keyValues'),
  details: flag('Detailed type or attribute information'),
  kind: text('Hosted, Cached or ImplicitlyCreated'),
  reload: flag('Fetch a cached @context again instead of dropping it'),
  timerel: text('before, after or between'),
  timeAt: text('DateTime of the temporal query'),
  endTimeAt: text('End DateTime of a between query'),
  timeproperty: text('observedAt (default), createdAt or modifiedAt'),
  lastN: count('The last N instances of each attribute', 100_000),
  aggrMethods: text('Aggregation methods, comma-separated: totalCount, sum, avg, min, max, …'),
  aggrPeriodDuration: text('Aggregation period (ISO 8601 duration), e.g. PT1H'),
  before: text('Page marker: items older than this id'),
  orderBy: text('Order of the entities of a temporal query: id'),
} as const;

type ParameterName = keyof typeof QUERY_PARAMETERS;

/**
 * A querystring schema of these parameters: what the operation takes. Any other parameter is 400
 * InvalidRequest (clause 6.3.20; `refuseUnknownParameters` in ngsi-ld-request.ts reads this schema).
 */
export function queryOf(...names: ParameterName[]) {
  return {
    type: 'object',
    properties: Object.fromEntries(names.map((n) => [n, QUERY_PARAMETERS[n]])),
  } as const;
}

const NOW = '2024-05-01T10:00:00Z';
const POINT = { type: 'Point', coordinates: [7.4245, 43.7349] };

const ATTRIBUTE_EXAMPLE = { type: 'Property', value: 42, observedAt: NOW, unitCode: 'KMH' };

const ENTITY_EXAMPLE = {
  id: 'urn:ngsi-ld:Vehicle:example',
  type: 'Vehicle',
  speed: ATTRIBUTE_EXAMPLE,
  serviceStatus: { type: 'Property', value: 'parked' },
  location: { type: 'GeoProperty', value: POINT },
  refParking: { type: 'Relationship', object: 'urn:ngsi-ld:Parking:example' },
  name: { type: 'LanguageProperty', languageMap: { en: 'Ambulance 3', fr: 'Ambulance 3' } },
  marking: { type: 'Property', value: { tlp: 'AMBER', audience: { orgs: [] } } },
};

/** A documented payload: its schema only describes (see the file comment). */
function payload(description: string, example: unknown, type: 'object' | 'array' = 'object') {
  return { type, description, examples: [example] } as const;
}

export const PAYLOADS = {
  entity: payload('An NGSI-LD entity (normalized, concise or keyValues)', ENTITY_EXAMPLE),
  fragment: payload('Attributes of an entity, by name', {
    speed: ATTRIBUTE_EXAMPLE,
    serviceStatus: { type: 'Property', value: 'onRoute' },
  }),
  attribute: payload('One attribute', ATTRIBUTE_EXAMPLE),
  entities: payload('Entities, at most 1,000', [ENTITY_EXAMPLE], 'array'),
  entityIds: payload('Entity ids, at most 1,000', ['urn:ngsi-ld:Vehicle:example'], 'array'),
  query: payload('An NGSI-LD Query (clause 5.2.23)', {
    type: 'Query',
    entities: [{ type: 'Vehicle' }],
    attrs: ['speed', 'location'],
    q: 'speed>10',
    geoQ: { georel: 'near;maxDistance==2000', geometry: 'Point', coordinates: [7.4245, 43.7349] },
  }),
  context: payload('A JSON-LD context document to host', {
    '@context': { ex: 'https://example.org/ns#', Vehicle: 'ex:Vehicle' },
  }),
  subscription: payload('An NGSI-LD Subscription (clause 5.2.12)', {
    type: 'Subscription',
    entities: [{ type: 'Vehicle' }],
    watchedAttributes: ['speed'],
    q: 'speed>50',
    notification: {
      attributes: ['speed'],
      format: 'normalized',
      endpoint: { uri: 'https://receiver.example.org/notify', accept: 'application/json' },
    },
  }),
  subscriptionPatch: payload('Members of a Subscription to change', { q: 'speed>60', isActive: true }),
  retention: payload('How long history of this entity type is kept', { seconds: 86_400 }),
  temporalEntity: payload('A temporal entity: per attribute, its instances (clause 4.5.8)', {
    id: 'urn:ngsi-ld:Vehicle:example',
    type: 'Vehicle',
    speed: [
      { type: 'Property', value: 42, observedAt: NOW },
      { type: 'Property', value: 45, observedAt: '2024-05-01T10:01:00Z' },
    ],
  }),
  temporalQuery: payload('An NGSI-LD Query (clause 5.2.23) with a TemporalQuery (clause 5.2.21)', {
    type: 'Query',
    entities: [{ type: 'Vehicle' }],
    attrs: ['speed'],
    q: 'speed>10',
    temporalQ: { timerel: 'after', timeAt: NOW, lastN: 10 },
  }),
  temporalFragment: payload('Attribute instances to add, by attribute name', {
    speed: [{ type: 'Property', value: 47, observedAt: '2024-05-01T10:02:00Z' }],
  }),
  temporalInstance: payload('Members of one attribute instance to change', {
    type: 'Property',
    value: 44,
    observedAt: NOW,
  }),
  measurements: payload('Plain measurements of one device (an object, or an array of them)', {
    speed: 42,
    serviceStatus: 'onRoute',
    observedAt: NOW,
  }),
  ingestEntities: payload('NGSI-LD entity fragments (an entity, or an array of them)', {
    id: 'urn:ngsi-ld:Vehicle:example',
    type: 'Vehicle',
    speed: { type: 'Property', value: 42, observedAt: NOW },
  }),
} as const;

/** The payload media types of NGSI-LD, for the OpenAPI document. */
export const CONSUMES = ['application/json', 'application/ld+json'];
