/**
 * The Relationships correlation rules follow, learnt from observations: for each entity, its targets
 * under the relationship names some rule names, with the entity's visibility (a relationship is an
 * attribute of its source, seen only by who may see the source). Followed in both directions.
 */
import type { Visibility } from './observation.ts';

interface Node {
  rels: Record<string, readonly string[]>;
  vis: Visibility;
  /** The observation's relationships object this node was made from (the same object: no change). */
  from: unknown;
}

export class HopLimitExceeded extends Error {}

export class RelationshipGraph {
  readonly #nodes = new Map<string, Node>();
  readonly #reverse = new Map<string, Set<string>>();
  #edges = 0;

  constructor(
    private readonly names: () => ReadonlySet<string>,
    private readonly maxEdges: number,
  ) {}

  get edges(): number {
    return this.#edges;
  }

  get full(): boolean {
    return this.#edges >= this.maxEdges;
  }

  static key(tenant: string, id: string): string {
    return `${tenant}\u0000${id}`;
  }

  /** Records an entity's relationships (the names of interest only). */
  update(
    tenant: string,
    id: string,
    relationships: Readonly<Record<string, readonly string[]>> | undefined,
    vis: Visibility,
  ): void {
    const key = RelationshipGraph.key(tenant, id);
    const old = this.#nodes.get(key);
    if (old && old.from === relationships) {
      old.vis = visibilityOf(vis);
      return;
    }
    const names = this.names();
    let rels: Record<string, readonly string[]> | undefined;
    let count = 0;
    if (relationships) {
      for (const n of names) {
        const targets = relationships[n];
        if (targets && targets.length > 0) {
          rels ??= Object.create(null) as Record<string, readonly string[]>;
          rels[n] = targets;
          count += targets.length;
        }
      }
    }
    if (!rels && !old) return;
    if (old) this.remove(tenant, id);
    if (!rels || this.#edges + count > this.maxEdges) return;
    this.#nodes.set(key, { rels, vis: visibilityOf(vis), from: relationships });
    this.#edges += count;
    for (const targets of Object.values(rels)) {
      for (const t of targets) {
        const tk = RelationshipGraph.key(tenant, t);
        let s = this.#reverse.get(tk);
        if (!s) {
          s = new Set();
          this.#reverse.set(tk, s);
        }
        s.add(id);
      }
    }
  }

  /** The entity's marking changed: its edges are seen by whom may see it now. */
  setVisibility(tenant: string, id: string, vis: Visibility): void {
    const node = this.#nodes.get(RelationshipGraph.key(tenant, id));
    if (node) node.vis = visibilityOf(vis);
  }

  remove(tenant: string, id: string): void {
    const key = RelationshipGraph.key(tenant, id);
    const old = this.#nodes.get(key);
    if (!old) return;
    this.#nodes.delete(key);
    for (const targets of Object.values(old.rels)) {
      this.#edges -= targets.length;
      for (const t of targets) {
        const tk = RelationshipGraph.key(tenant, t);
        const s = this.#reverse.get(tk);
        s?.delete(id);
        if (s?.size === 0) this.#reverse.delete(tk);
      }
    }
  }

  /**
   * Entities within `hops` of `id` (itself included) along `names`, in either direction, through edges
   * whose source `visible` accepts. Throws HopLimitExceeded past `maxVisits` entities.
   */
  linked(
    tenant: string,
    id: string,
    names: readonly string[],
    hops: number,
    visible: (v: Visibility) => boolean,
    maxVisits: number,
  ): Set<string> {
    const seen = new Set<string>([id]);
    let frontier = [id];
    for (let h = 0; h < hops && frontier.length > 0; h++) {
      const next: string[] = [];
      const add = (x: string) => {
        if (seen.has(x)) return;
        seen.add(x);
        if (seen.size > maxVisits) {
          throw new HopLimitExceeded(`following ${names.join(', ')} visited more than ${maxVisits} entities`);
        }
        next.push(x);
      };
      for (const x of frontier) {
        const node = this.#nodes.get(RelationshipGraph.key(tenant, x));
        if (node && visible(node.vis)) {
          for (const n of names) for (const t of node.rels[n] ?? []) add(t);
        }
        for (const src of this.#reverse.get(RelationshipGraph.key(tenant, x)) ?? []) {
          if (seen.has(src)) continue;
          const s = this.#nodes.get(RelationshipGraph.key(tenant, src));
          if (s && visible(s.vis) && names.some((n) => s.rels[n]?.includes(x))) add(src);
        }
      }
      frontier = next;
    }
    return seen;
  }

  save(): [string, Record<string, readonly string[]>, Visibility][] {
    return [...this.#nodes].map(([k, n]) => [k, n.rels, n.vis]);
  }

  load(nodes: [string, Record<string, readonly string[]>, Visibility][]): void {
    this.#nodes.clear();
    this.#reverse.clear();
    this.#edges = 0;
    for (const [k, rels, vis] of nodes) {
      const i = k.indexOf('\u0000');
      this.update(k.slice(0, i), k.slice(i + 1), rels, vis);
    }
  }
}

/** Only the visibility facts (not the observation they may come with). */
function visibilityOf(v: Visibility): Visibility {
  const out: Visibility = { ownerOrg: v.ownerOrg, readKeys: v.readKeys, marking: v.marking };
  if (v.createdBy !== undefined) out.createdBy = v.createdBy;
  return out;
}
