/**
 * What every part of the context service shares about who asks and what it gets back: the caller (tenant,
 * principal, read keys, default marking) and an entity as the caller sees it, with its marking facts.
 */
import { AppError, isAppError } from '../../kernel/errors.ts';
import type { GatePrincipal, Marking } from '../sharing/index.ts';
import type { ExpandedEntity } from './entity-model.ts';
import type { EntityRecord } from './entity-repository.ts';

/** Who asks, in which tenant, with which read keys and default marking. */
export interface Caller {
  tenant: string;
  principal: { userId: string; orgId: string; roles: readonly string[]; username?: string | undefined };
  readKeys: string[];
  defaultMarking: Marking;
}

/** The caller as the sharing gate knows principals. */
export function gatePrincipal(caller: Caller): GatePrincipal {
  const p = caller.principal;
  return {
    userId: p.userId,
    username: p.username,
    orgId: p.orgId,
    roles: p.roles,
    readKeys: caller.readKeys,
    defaultMarking: caller.defaultMarking,
  };
}

/** An entity as a caller sees it: the entity and its marking facts. */
export interface EntityView {
  entity: ExpandedEntity;
  marking: Marking;
  ownerOrg: string;
  createdBy: string;
}

export function view(rec: EntityRecord): EntityView {
  return { entity: rec.entity, marking: rec.marking, ownerOrg: rec.ownerOrg, createdBy: rec.createdBy };
}

export function notFound(id: string): AppError {
  return new AppError('CONTEXT_ENTITY_NOT_FOUND', `entity ${id} was not found`);
}

export function badRequest(detail: string): AppError {
  return new AppError('CONTEXT_INVALID_REQUEST', detail);
}

export function asAppError(e: unknown): AppError {
  if (isAppError(e)) return e;
  return new AppError('PLATFORM_INTERNAL', e instanceof Error ? e.message : String(e));
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A record's entity with `type` as a list, as the evaluators of q and geo-queries take it. */
export function asExpanded(e: { id: string; type: string | string[]; [k: string]: unknown }): ExpandedEntity {
  return Array.isArray(e.type) ? (e as ExpandedEntity) : ({ ...e, type: [e.type] } as ExpandedEntity);
}
