import type { ActiveContext } from '../context/index.ts';
import type { GatePrincipal, Marking, SharingGate } from '../sharing/index.ts';

/**
 * What this module needs from the rest of the platform, as narrow interfaces ("only what we need").
 * The composition root satisfies them with the NGSI-LD core (src/modules/context), the sharing gate and the
 * access module.
 */

/** An NGSI-LD entity in normalized form with expanded type and attribute names. */
export interface ExpandedEntity {
  id: string;
  type: string | string[];
  [attribute: string]: unknown;
}

/** A JSON-LD @context as a client sent it: a URL, an inline object, or a list of them. */
export type JsonLdContext = string | Record<string, unknown> | Array<string | Record<string, unknown>>;

/** The representations NGSI-LD defines for entities in responses and notifications. */
export type EntityFormat = 'normalized' | 'keyValues' | 'concise';

/** A client's @context resolved (the NGSI-LD core's ActiveContext): expands terms, compacts IRIs. */
export type ActiveLdContext = ActiveContext;

/** Resolves @contexts (the NGSI-LD core's ContextResolver); the core context is always appended. */
export interface LdContextPort {
  /** Throws AppError when a context cannot be retrieved or is malformed. */
  resolve(context: JsonLdContext | null | undefined): Promise<ActiveContext>;
}

/** A compiled filter over expanded entities. */
export type EntityPredicate = (entity: ExpandedEntity) => boolean;

/** The NGSI-LD geo-query of a subscription (spec 5.2.13). */
export interface GeoQuery {
  geometry: string;
  coordinates: unknown;
  georel: string;
  geoproperty?: string;
}

/** The NGSI-LD q-language and geo-query evaluators (the core's parseQuery/matchesQuery/matchesGeoQuery). */
export interface QueryPort {
  /** Parses `q`, expanding its attribute names with `context`; throws AppError (kind invalid) when malformed. */
  compileQ(q: string, context: JsonLdContext | undefined): Promise<EntityPredicate>;
  compileGeoQ(geoQ: GeoQuery, context: JsonLdContext | undefined): Promise<EntityPredicate>;
}

/** Selects entities for periodic (timeInterval) notifications. */
export interface EntitySelection {
  types: string[];
  ids: string[];
  idPatterns: string[];
}

/** Reads current entities (the core's entity store) for periodic notifications; optional. */
export interface EntityReaderPort {
  /** Entities of the tenant matching the selection, limited to those whose readKeys meet `readKeys`. */
  findEntities(tenant: string, selection: EntitySelection, readKeys: string[]): Promise<ExpandedEntity[]>;
}

/**
 * What this module asks of the sharing gate (src/modules/sharing): subscriptions are marked objects of kind
 * `subscription`, and every notification and temporal answer is decided by it. The whole gate satisfies it.
 */
export type LiveGate = Pick<
  SharingGate,
  | 'store'
  | 'clock'
  | 'defineKind'
  | 'checkCreate'
  | 'checkChange'
  | 'create'
  | 'update'
  | 'remove'
  | 'recordDerived'
  | 'notFound'
  | 'visibleWhere'
  | 'canSee'
  | 'orgReadKeys'
>;

/** Whether an account may still act for its organisation (the access module's accounts). */
export interface AccountStatusPort {
  /** False when the account is disabled or no longer exists. */
  isActive(userId: string): Promise<boolean>;
}

/** The principal an ingestion message acts as (a service account). */
export interface IngestPrincipal {
  userId: string;
  orgId: string;
  roles: string[];
  /** The marking of entities this account creates (the core's default otherwise). */
  defaultMarking?: Marking;
}

/** One entity fragment to upsert: NGSI-LD normalized, in the terms of `context`. */
export interface EntityFragment {
  id: string;
  type: string;
  [attribute: string]: unknown;
}

/** Writes ingested measurements into the entity store (the NGSI-LD core's service satisfies it). */
export interface EntityWriterPort {
  /**
   * Creates the entities that do not exist and merges the attributes of those that do, in one batch, acting
   * as `principal`. Resolves once the batch is durable; rejects with AppError for a batch it refuses. It
   * returns, per fragment, undefined when written or the reason it was refused.
   */
  upsertFragments(
    tenant: string,
    principal: IngestPrincipal,
    fragments: EntityFragment[],
    context: JsonLdContext | undefined,
  ): Promise<Array<string | undefined>>;
  /**
   * Throws AppError (AUTH_ROLE_REQUIRED) when the principal may write no entity at all, so a message from an
   * account without a writing role is refused as such before anything is parsed.
   */
  checkWriter?(principal: IngestPrincipal): void;
}

/**
 * Hosts a @context that is not one URL (inline, or several) as an ImplicitlyCreated context of the @context
 * API (clause 5.13), so that notifications can name it in a `Link` header (the NGSI-LD core's service).
 */
export interface ImplicitContextPort {
  /** The id of the hosted copy of `context` for the principal's organisation (created once, then reused). */
  implicitContext(principal: GatePrincipal, context: JsonLdContext): Promise<string>;
}
