/**
 * The context module's public surface: NGSI-LD entities, @context handling, the query language and
 * geo-queries. Other modules use only what is exported here.
 */
export type { AttributeType, ExpandedAttribute, ExpandedEntity } from './entity-model.ts';
export { ATTRIBUTE_TYPES } from './entity-model.ts';
export type { GeoQuery, GeoQueryInput, Georel } from './geo-query.ts';
export { GEORELS, geoDistance, LOCATION_IRI, matchesGeoQuery, parseGeoQuery } from './geo-query.ts';
export type { BBox, Geometry } from './geometry.ts';
export { validateGeometry } from './geometry.ts';
export type { AttributePath, CompareOp, QueryNode, QueryValue, ScopeNode } from './query-language.ts';
export {
  attributeValue,
  matchesQuery,
  matchesScopeQuery,
  parseQuery,
  parseScopeQuery,
} from './query-language.ts';
