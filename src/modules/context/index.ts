/**
 * The context module's public surface: NGSI-LD entities, @context handling, the query language and
 * geo-queries. Other modules use only what is exported here.
 */
export { ClientTerms } from './client-terms.ts';
export { ContextService, type ContextServiceOptions } from './context-service.ts';
export { CORE_CONTEXT_URL, CORE_CONTEXT_URLS } from './core-context.ts';
export type {
  ContextEvents,
  EntityChangeEvent,
  EntityMarkingChangedEvent,
} from './entity-change-event.ts';
export {
  ENTITY_CREATED,
  ENTITY_DELETED,
  ENTITY_MARKING_CHANGED,
  ENTITY_UPDATED,
} from './entity-change-event.ts';
export type { AttributeType, ExpandedAttribute, ExpandedEntity } from './entity-model.ts';
export {
  ATTRIBUTE_TYPES,
  attributeNamesOf,
  checkAttributeName,
  checkEntityId,
  checkExpandedName,
  DEFAULT_TENANT,
  ENTITY_MEMBERS,
  expandTypes,
  instancesOf,
  isUri,
  MARKING_TERM,
  NGSI_LD_NULL,
  parseAttribute,
  parseScope,
} from './entity-model.ts';
export {
  EntityQueries,
  type EntityQueriesOptions,
  type EntityQuery,
  parseTypeExpression,
  type QueryResult,
} from './entity-queries.ts';
export type { EntityFormat, GeoJsonOptions, RenderOptions } from './entity-representation.ts';
export {
  renderAttributeValue,
  renderEntity,
  renderFeature,
} from './entity-representation.ts';
export type { Caller, EntityView } from './entity-view.ts';
export { EntityWriter, type EntityWriterOptions } from './entity-writer.ts';
export type { GeoQuery, GeoQueryInput, Georel } from './geo-query.ts';
export { GEORELS, geoDistance, LOCATION_IRI, matchesGeoQuery, parseGeoQuery } from './geo-query.ts';
export type { BBox, Geometry } from './geometry.ts';
export { validateGeometry } from './geometry.ts';
export { HostedContexts } from './hosted-contexts.ts';
export type { ActiveContext, ContextResolverOptions, LdContext } from './json-ld-context.ts';
export { ContextResolver, readContextMap } from './json-ld-context.ts';
export {
  CORE_MEMBERS,
  expandProjection,
  type JoinedAnswer,
  type JoinedNode,
  type JoinMode,
  type JoinRequest,
  MAX_JOIN_LEVEL,
  type Projection,
  type ProjectionTree,
  parseProjection,
  projectedMembers,
  projectsNothing,
  reachesLinked,
} from './linked-entities.ts';
export { contextMigrations } from './migrations.ts';
export type { QueryLimits } from './query-budget.ts';
export { QueryBudget } from './query-budget.ts';
export type { AttributePath, CompareOp, QueryNode, QueryValue, ScopeNode } from './query-language.ts';
export {
  attributeValue,
  matchesQuery,
  matchesScopeQuery,
  parseQuery,
  parseScopeQuery,
} from './query-language.ts';
export { TenantGeoIndexes } from './tenant-geo-indexes.ts';
export { compileUserPattern, likePrefixPattern, UserPattern } from './user-pattern.ts';
export type { BatchError, BatchItem, BatchResult, UpdateResult } from './write-plan.ts';
export { ENTITY_KIND } from './write-planner.ts';
