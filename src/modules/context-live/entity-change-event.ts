/**
 * The entity change events this module consumes from the bus. The NGSI-LD core (src/modules/context)
 * publishes them after every change (its EntityChangeEvent); this is the narrow shape we rely on.
 */

import { ENTITY_CREATED, ENTITY_DELETED, ENTITY_UPDATED } from '../context/index.ts';
import type { Marking } from '../sharing/index.ts';
import type { ExpandedEntity } from './ports.ts';

export { ENTITY_CREATED, ENTITY_DELETED, ENTITY_UPDATED };
export const ENTITY_EVENT_TYPES = [ENTITY_CREATED, ENTITY_UPDATED, ENTITY_DELETED];

export type ChangeKind = 'created' | 'updated' | 'deleted';

export interface LiveEntityChange {
  tenant: string;
  entityId: string;
  /** Expanded type IRIs. */
  entityType: string[];
  /** The whole entity after the change (normalized, expanded); null on delete. */
  entity: ExpandedEntity | null;
  /** Expanded names of the attributes the change touched. */
  changedAttributes: string[];
  /** When the core tells them apart: the attributes that the change added, and those it removed. */
  createdAttributes?: string[];
  deletedAttributes?: string[];
  /** The changed attributes as they were before the change; on delete the whole entity (see the core's event). */
  previous?: Record<string, unknown>;
  ownerOrg: string;
  createdBy: string;
  marking: Marking;
  readKeys: string[];
  observedAt?: string;
  /**
   * The entity's incarnation at the sharing gate (a new one each time the id is created again). Derived
   * data — history, notification retries — is tied to it. Until the core sends it, it is derived from the
   * entity's createdAt (see incarnationOf).
   */
  incarnation?: string;
}

export function changeKindOf(eventType: string): ChangeKind | undefined {
  if (eventType === ENTITY_CREATED) return 'created';
  if (eventType === ENTITY_UPDATED) return 'updated';
  if (eventType === ENTITY_DELETED) return 'deleted';
  return undefined;
}

/** Members of an entity that are not attributes. */
export const NON_ATTRIBUTE_MEMBERS = new Set([
  'id',
  'type',
  '@id',
  '@type',
  '@context',
  'scope',
  'createdAt',
  'modifiedAt',
  'deletedAt',
  'https://uri.etsi.org/ngsi-ld/scope',
  'https://uri.etsi.org/ngsi-ld/createdAt',
  'https://uri.etsi.org/ngsi-ld/modifiedAt',
  'https://uri.etsi.org/ngsi-ld/deletedAt',
]);

export function attributeNames(entity: ExpandedEntity): string[] {
  return Object.keys(entity).filter((k) => !NON_ATTRIBUTE_MEMBERS.has(k));
}

export function typesOf(entity: { type: string | string[] }): string[] {
  return Array.isArray(entity.type) ? entity.type : [entity.type];
}

const CREATED_AT = ['createdAt', 'https://uri.etsi.org/ngsi-ld/createdAt'];

/**
 * The incarnation a change belongs to: the core's, or — for events without one — `createdAt:<ms>` of the
 * entity's creation time, which a re-created entity does not share. Undefined for a deletion that names
 * neither (its entity is null): the history store then closes every incarnation created before it.
 */
export function incarnationOf(change: LiveEntityChange): string | undefined {
  if (change.incarnation) return change.incarnation;
  const ms = createdAtOf(change.entity);
  if (ms !== undefined) return `createdAt:${ms}`;
  return change.entity ? '' : undefined;
}

/** When the entity was created (ms), from its createdAt; undefined when it does not say. */
export function createdAtOf(entity: ExpandedEntity | null): number | undefined {
  if (!entity) return undefined;
  for (const k of CREATED_AT) {
    const v = entity[k];
    if (typeof v === 'string') {
      const ms = Date.parse(v);
      if (!Number.isNaN(ms)) return ms;
    }
  }
  return undefined;
}
