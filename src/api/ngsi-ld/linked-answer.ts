/**
 * The request side of linked entity retrieval (ETSI GS CIM 009 v1.8.1, clauses 4.5.23 and 4.21): the `join`,
 * `joinLevel` and `containedBy` parameters, the projections `attrs`, `pick` and `omit` (with braces for the
 * members of linked entities), and how joined entities are placed in an answer — inline, as the `entity`
 * member of the Relationship that names them (`entityList` for a ListRelationship; in keyValues the
 * relationship's value becomes the entity), or flat, after the answer's own entities.
 */
import { AppError } from '../../kernel/errors.ts';
import {
  type ActiveContext,
  CORE_MEMBERS,
  type EntityFormat,
  expandProjection,
  type JoinedNode,
  type JoinRequest,
  MARKING_TERM,
  type Projection,
  type ProjectionTree,
  parseProjection,
  reachesLinked,
} from '../../modules/context/index.ts';
import { intParam, list } from './ngsi-ld-request.ts';

type Query = Record<string, string | undefined>;

/**
 * The projection a request asks for: `attrs` (attribute names; the core members stay) or `pick`, and
 * `omit`; attribute names expanded, the core members `id`, `type`, `scope` (and the platform's `marking`)
 * as they are. `attrs` with `pick` or `omit`, and a member named by both `pick` and `omit`, are 400
 * BadRequestData (clause 4.21; ETSI tests 018_18 and 019_18).
 */
export function projectionOf(query: Query, ctx: ActiveContext): Projection {
  const { pick, omit } = projectionTrees(query);
  const expand = (a: string) => (a === MARKING_TERM || CORE_MEMBERS.has(a) ? a : ctx.expandTerm(a));
  return {
    pick: pick ? expandProjection(pick, expand) : undefined,
    omit: omit ? expandProjection(omit, expand) : undefined,
  };
}

function projectionTrees(query: Query): { pick?: ProjectionTree; omit?: ProjectionTree } {
  const attrs = list(query.attrs);
  // An empty parameter is no parameter (as clients that always send every parameter have it).
  const pick = query.pick || undefined;
  const omit = query.omit || undefined;
  const out: { pick?: ProjectionTree; omit?: ProjectionTree } = {};
  if (attrs && (pick !== undefined || omit !== undefined)) {
    throw new AppError(
      'CONTEXT_INVALID_QUERY',
      `attrs cannot be combined with ${pick !== undefined ? 'pick' : 'omit'}: both choose the members shown`,
    );
  }
  // attrs chooses attributes only: the entity's id, type and scope stay.
  if (attrs) out.pick = new Map([...CORE_MEMBERS, ...attrs].map((a) => [a, null]));
  else if (pick !== undefined) out.pick = parseProjection(pick, 'pick');
  if (omit !== undefined) out.omit = parseProjection(omit, 'omit');
  if (!attrs && out.pick && out.omit) {
    const both = [...out.pick.keys()].filter((m) => out.omit?.has(m));
    if (both.length > 0) {
      throw new AppError('CONTEXT_INVALID_QUERY', `pick and omit both name ${both.join(', ')}`);
    }
  }
  return out;
}

/** The attributes an entity must have one of to be answered by a query with this `attrs` or `pick`. */
export function requiredAttributes(query: Query): string[] | undefined {
  const attrs = list(query.attrs);
  if (attrs) return attrs;
  if (!query.pick) return undefined;
  // pick's own names (not those in braces, which belong to linked entities); when it picks a core member
  // every entity has something to show (the query leaves out those left empty, see projectsNothing).
  const names = [...parseProjection(query.pick, 'pick').keys()];
  return names.some((n) => CORE_MEMBERS.has(n)) ? undefined : names;
}

/**
 * The linked entity retrieval a request asks for, or undefined (`join` absent or `@none`). `joinLevel`
 * defaults to 1; `containedBy` lists ids not to join. A projection into linked entities without a join is
 * refused (clause 5.7.1.4: BadRequestData).
 */
export function joinOf(query: Query): JoinRequest | undefined {
  const join = query.join;
  if (join === undefined || join === '' || join === '@none') {
    const { pick, omit } = projectionTrees(query);
    if (reachesLinked(pick) || reachesLinked(omit)) {
      throw new AppError(
        'CONTEXT_INVALID_QUERY',
        'members of linked entities (braces in pick or omit) need join=inline or join=flat',
      );
    }
    return undefined;
  }
  if (join !== 'inline' && join !== 'flat') {
    throw new AppError('CONTEXT_INVALID_QUERY', `join must be inline, flat or @none (got "${join}")`);
  }
  return {
    join,
    joinLevel: intParam(query.joinLevel, 'joinLevel') ?? 1,
    containedBy: list(query.containedBy) ?? [],
  };
}

/**
 * Places the linked entities of `node` inline in its rendered body: the `entity` member of each Relationship
 * instance naming one (`entityList` for a ListRelationship); in keyValues, the relationship's value becomes
 * the linked entity. Ids not joined (absent, invisible, beyond joinLevel) stay as they are.
 */
export function placeInline(
  body: Record<string, unknown>,
  node: JoinedNode,
  ctx: ActiveContext,
  format: EntityFormat,
  renderChild: (child: JoinedNode) => Record<string, unknown>,
): void {
  for (const [attr, byId] of node.links) {
    const key = ctx.compactIri(attr);
    if (!Object.hasOwn(body, key)) continue;
    const rendered = new Map<string, Record<string, unknown>>();
    const entityOf = (id: unknown) => {
      if (typeof id !== 'string') return undefined;
      const child = byId.get(id);
      if (!child) return undefined;
      let r = rendered.get(id);
      if (!r) {
        r = renderChild(child);
        rendered.set(id, r);
      }
      return r;
    };
    const value = body[key];
    if (format === 'keyValues') {
      body[key] = Array.isArray(value) ? value.map((v) => entityOf(v) ?? v) : (entityOf(value) ?? value);
      continue;
    }
    for (const instance of Array.isArray(value) ? value : [value]) {
      if (instance === null || typeof instance !== 'object' || Array.isArray(instance)) continue;
      const inst = instance as Record<string, unknown>;
      const one = entityOf(inst.object);
      if (one) inst.entity = one;
      if (Array.isArray(inst.objectList)) {
        const ids = inst.objectList.map((o) =>
          o !== null && typeof o === 'object' ? (o as { object?: unknown }).object : o,
        );
        const entities = ids.map(entityOf).filter((e) => e !== undefined);
        if (entities.length > 0) inst.entityList = entities;
      }
    }
  }
}
