/**
 * Linked entity retrieval (ETSI GS CIM 009 v1.8.1, clause 4.5.23, parameters `join`, `joinLevel`,
 * `containedBy` of clauses 5.7.1 and 5.7.2) and the projections that reach into linked entities
 * (clause 4.21: `pick=id,locatedAt{id,name}`, `omit=locatedAt{name}`).
 *
 * The walk follows the Relationships and ListRelationships an answer shows, level by level, and reads the
 * entities they name **as the caller**: through the read keys the sharing gate gives, tested in SQL like every
 * other read, so a linked entity the caller may not see is simply not joined — the same answer, and the same
 * cost, as for an id that names nothing. What one answer may join is bounded (`maxJoined` relationship
 * targets followed, `MAX_JOIN_LEVEL` levels), so nobody makes the broker walk an unbounded graph.
 */
import { AppError } from '../../kernel/errors.ts';
import { ENTITY_MEMBERS, type ExpandedEntity, instancesOf } from './entity-model.ts';
import type { EntityView } from './entity-view.ts';

export type JoinMode = 'inline' | 'flat';

/** The deepest `joinLevel` a request may ask for. */
export const MAX_JOIN_LEVEL = 5;

export interface JoinRequest {
  join: JoinMode;
  /** Levels of linked entities to join (1 = the entities the answer's relationships name). */
  joinLevel: number;
  /** Entity ids already met by the requester (another broker walking the same graph): never joined. */
  containedBy: string[];
}

/**
 * One level of a projection, with expanded attribute names: `pick` keeps only the members it names, `omit`
 * drops those it names without braces; a name with braces (`locatedAt{name}`) carries the projection of the
 * entity that relationship links to (and, in `omit`, keeps the relationship itself).
 */
export interface Projection {
  pick?: ProjectionTree | undefined;
  omit?: ProjectionTree | undefined;
}

/** Member names of one level, each with the projection of its linked entity (`null`: none given). */
export type ProjectionTree = Map<string, ProjectionTree | null>;

const badProjection = (param: string, expr: string, why: string) =>
  new AppError('CONTEXT_INVALID_QUERY', `${param}="${expr}" is not a valid projection: ${why}`);

/** Characters a member name may hold (terms, compact IRIs, IRIs): no separators, braces, quotes or blanks. */
const NAME_RE = /^[A-Za-z0-9_@$.:/#~%+?&=-]+$/;

/**
 * Parses `a,b{c,d{e}}` (clause 4.21): names separated by commas, each optionally followed by braces holding
 * the projection of the entity its relationship links to. Empty names, empty braces, unbalanced braces and
 * characters such as `;` are refused with 400 BadRequestData.
 */
export function parseProjection(expr: string, param: 'pick' | 'omit'): ProjectionTree {
  let pos = 0;
  const fail = (why: string): never => {
    throw badProjection(param, expr, why);
  };
  const list = (depth: number): ProjectionTree => {
    if (depth > MAX_JOIN_LEVEL) fail(`more than ${MAX_JOIN_LEVEL} levels of braces`);
    const out: ProjectionTree = new Map();
    for (;;) {
      const start = pos;
      while (pos < expr.length && !',{}'.includes(expr[pos]!)) pos++;
      const name = expr.slice(start, pos);
      if (name === '') fail(`a member name is missing at position ${start}`);
      if (!NAME_RE.test(name)) fail(`"${name}" is not a member name`);
      let nested: ProjectionTree | null = null;
      if (expr[pos] === '{') {
        pos++;
        nested = list(depth + 1);
        if (expr[pos] !== '}') fail(`"{" after "${name}" is not closed`);
        pos++;
      }
      if (out.has(name)) fail(`"${name}" is named twice`);
      out.set(name, nested);
      if (expr[pos] !== ',') return out;
      pos++;
    }
  };
  const tree = list(0);
  if (pos < expr.length) fail(`unexpected "${expr[pos]}" at position ${pos}`);
  return tree;
}

/** True when a projection names members of linked entities (braces), which only a join can show. */
export function reachesLinked(tree: ProjectionTree | undefined): boolean {
  return tree !== undefined && [...tree.values()].some((t) => t !== null);
}

/** A projection with its names expanded (`expand` maps a client's term to the stored name). */
export function expandProjection(tree: ProjectionTree, expand: (term: string) => string): ProjectionTree {
  const out: ProjectionTree = new Map();
  for (const [name, nested] of tree) out.set(expand(name), nested ? expandProjection(nested, expand) : null);
  return out;
}

/**
 * The members of an entity that are not attributes, named as they are in `pick` and `omit` (clause 4.21:
 * "id", "type" and "scope" are members like the attributes, so `pick=name` shows `name` alone).
 */
export const CORE_MEMBERS: ReadonlySet<string> = new Set(['id', 'type', 'scope']);

/**
 * The members a level shows (for the renderer): `attrs` the attributes kept by pick, `omit` the attributes
 * omitted outright, `core` the core members shown (`id`, `type`, `scope`: all unless pick or omit decides).
 */
export function projectedMembers(p: Projection): {
  attrs?: Set<string>;
  omit?: Set<string>;
  core?: Set<string>;
} {
  const out: { attrs?: Set<string>; omit?: Set<string>; core?: Set<string> } = {};
  let core: Set<string> | undefined;
  if (p.pick) {
    out.attrs = new Set([...p.pick.keys()].filter((k) => !CORE_MEMBERS.has(k)));
    core = new Set([...p.pick.keys()].filter((k) => CORE_MEMBERS.has(k)));
  }
  if (p.omit) {
    const omit = [...p.omit].filter(([, nested]) => nested === null).map(([name]) => name);
    const attrs = omit.filter((k) => !CORE_MEMBERS.has(k));
    if (attrs.length > 0) out.omit = new Set(attrs);
    for (const k of omit.filter((m) => CORE_MEMBERS.has(m))) {
      core ??= new Set(CORE_MEMBERS);
      core.delete(k);
    }
  }
  if (core) out.core = core;
  return out;
}

/**
 * True when a projection leaves nothing of the entity: no core member it has and no attribute (ETSI tests
 * 018_19: a retrieval answers 404; 019_17: a query leaves the entity out). System attributes and the
 * platform's marking do not count.
 */
export function projectsNothing(entity: ExpandedEntity, p: Projection): boolean {
  if (!p.pick && !p.omit) return false;
  const m = projectedMembers(p);
  const core = m.core ?? CORE_MEMBERS;
  if (core.has('id') || core.has('type')) return false;
  if (core.has('scope') && entity.scope !== undefined && entity.scope.length > 0) return false;
  for (const key of Object.keys(entity)) {
    if (ENTITY_MEMBERS.has(key)) continue;
    if (m.attrs && !m.attrs.has(key)) continue;
    if (m.omit?.has(key)) continue;
    return false;
  }
  return true;
}

/** The ids a Relationship or ListRelationship instance names. */
export function relationshipObjects(instance: unknown): string[] {
  if (instance === null || typeof instance !== 'object') return [];
  const a = instance as Record<string, unknown>;
  const ids: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === 'string') ids.push(v);
    else if (Array.isArray(v)) for (const x of v) add(x);
    else if (v !== null && typeof v === 'object' && typeof (v as { object?: unknown }).object === 'string')
      ids.push((v as { object: string }).object);
  };
  if (a.type === 'Relationship') add(a.object);
  else if (a.type === 'ListRelationship') add(a.objectList);
  return ids;
}

/**
 * The relationships of `entity` a level of the answer shows (those the projection keeps), each with the ids
 * it names and the projection of the entities it links to.
 */
export function followedRelationships(
  entity: ExpandedEntity,
  p: Projection,
): { attr: string; ids: string[]; next: Projection }[] {
  const out: { attr: string; ids: string[]; next: Projection }[] = [];
  for (const [attr, raw] of Object.entries(entity)) {
    if (ENTITY_MEMBERS.has(attr)) continue;
    if (p.pick && !p.pick.has(attr)) continue;
    if (p.omit?.get(attr) === null) continue;
    const ids = [...new Set(instancesOf(raw).flatMap(relationshipObjects))];
    if (ids.length === 0) continue;
    out.push({
      attr,
      ids,
      next: { pick: p.pick?.get(attr) ?? undefined, omit: p.omit?.get(attr) ?? undefined },
    });
  }
  return out;
}

/** An entity where it appears in a joined answer, with the linked entities it carries inline. */
export interface JoinedNode {
  view: EntityView;
  projection: Projection;
  /** Per relationship (expanded name), the linked entities joined, by id. */
  links: Map<string, Map<string, JoinedNode>>;
}

export interface JoinedAnswer {
  /** The answer's own entities, each with its linked entities (inline). */
  roots: JoinedNode[];
  /**
   * Every linked entity joined, once, in the order first met (breadth first), with the projection of the
   * relationship that first reached it (flat). Never one of the roots.
   */
  linked: JoinedNode[];
}
