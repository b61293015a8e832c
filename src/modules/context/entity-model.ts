/**
 * The entity model inside the platform: "expanded normalized" NGSI-LD.
 *
 * - `id` is the entity id (a URI), `type` the list of entity types as expanded IRIs, `scope` optional.
 * - Every other member is an attribute keyed by its expanded IRI; its value is one attribute object or,
 *   for multi-attributes (several datasetIds), an array of them.
 * - An attribute object is normalized NGSI-LD: `type` (Property, Relationship, GeoProperty,
 *   LanguageProperty, ...), `value` / `object` / `languageMap` / ..., optional `observedAt`, `unitCode`,
 *   `datasetId`, system `createdAt` / `modifiedAt`, and sub-attributes keyed by expanded IRIs.
 *   NGSI-LD core members (see CORE_ATTRIBUTE_MEMBERS) keep their short names; values (including
 *   compound JSON values) are kept exactly as the client sent them.
 */
export const ATTRIBUTE_TYPES = [
  'Property',
  'Relationship',
  'GeoProperty',
  'LanguageProperty',
  'ListProperty',
  'ListRelationship',
  'JsonProperty',
  'VocabProperty',
] as const;
export type AttributeType = (typeof ATTRIBUTE_TYPES)[number];

export interface ExpandedAttribute {
  type: AttributeType;
  value?: unknown;
  object?: unknown;
  languageMap?: unknown;
  observedAt?: string;
  unitCode?: string;
  datasetId?: string;
  createdAt?: string;
  modifiedAt?: string;
  [member: string]: unknown;
}

export interface ExpandedEntity {
  id: string;
  type: string[];
  scope?: string[];
  createdAt?: string;
  modifiedAt?: string;
  [attribute: string]: unknown;
}
