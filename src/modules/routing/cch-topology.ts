/**
 * The metric-independent part of a Customizable Contraction Hierarchy (Dibbelt, Strasser, Wagner 2016):
 * given a graph whose node ids already are their ranks, contract nodes in rank order once, without
 * weights, which yields the chordal supergraph (original edges + shortcuts), its elimination tree, and
 * the list of lower triangles that customization walks. Everything lives in flat typed arrays:
 *
 *   up arcs of v:   upHead[upFirst[v] .. upFirst[v+1]) sorted by head rank; arc id = position
 *   arcTail[a]:     lower endpoint of arc a (arc ids are sorted by tail, so id order = tail order)
 *   down arcs of u: downArc[downFirst[u] .. downFirst[u+1]) = ids of arcs whose head is u, sorted by tail
 *   parent[v]:      elimination-tree parent (lowest up-neighbour), -1 at roots
 *   triangles:      for v ascending, for i < j over up(v): id of arc (up_i, up_j)
 */

export interface CchTopology {
  n: number;
  upFirst: Uint32Array;
  upHead: Uint32Array;
  arcTail: Uint32Array;
  downFirst: Uint32Array;
  downArc: Uint32Array;
  parent: Int32Array;
  triangles: Uint32Array;
}

/** adjacency must be undirected and in rank space (node id = rank). */
export function contractTopology(n: number, first: Uint32Array, adj: Uint32Array): CchTopology {
  const ups: number[][] = new Array(n);
  for (let v = 0; v < n; v++) {
    const list: number[] = [];
    for (let p = first[v]!; p < first[v + 1]!; p++) if (adj[p]! > v) list.push(adj[p]!);
    ups[v] = list;
  }
  const parent = new Int32Array(n).fill(-1);
  let m = 0;
  for (let v = 0; v < n; v++) {
    const raw = ups[v]!;
    raw.sort((a, b) => a - b);
    const uniq: number[] = [];
    for (const w of raw) if (uniq.length === 0 || uniq[uniq.length - 1] !== w) uniq.push(w);
    ups[v] = uniq;
    m += uniq.length;
    if (uniq.length > 0) {
      const p = uniq[0]!;
      parent[v] = p;
      const target = ups[p]!;
      for (let i = 1; i < uniq.length; i++) target.push(uniq[i]!);
    }
  }
  const upFirst = new Uint32Array(n + 1);
  const upHead = new Uint32Array(m);
  const arcTail = new Uint32Array(m);
  let triCount = 0;
  for (let v = 0, q = 0; v < n; v++) {
    const list = ups[v]!;
    for (const w of list) {
      upHead[q] = w;
      arcTail[q] = v;
      q++;
    }
    upFirst[v + 1] = q;
    triCount += (list.length * (list.length - 1)) / 2;
    ups[v] = [];
  }
  const downFirst = new Uint32Array(n + 1);
  for (let a = 0; a < m; a++) downFirst[upHead[a]! + 1]!++;
  for (let v = 0; v < n; v++) downFirst[v + 1]! += downFirst[v]!;
  const downArc = new Uint32Array(m);
  const fill = downFirst.slice(0, n);
  // arcs visited in id order = tail order, so each down list ends up sorted by tail
  for (let a = 0; a < m; a++) downArc[fill[upHead[a]!]!++] = a;

  const triangles = new Uint32Array(triCount);
  let t = 0;
  for (let v = 0; v < n; v++) {
    const b = upFirst[v]!;
    const e = upFirst[v + 1]!;
    for (let i = b; i < e; i++) {
      const u = upHead[i]!;
      let p = upFirst[u]!;
      for (let j = i + 1; j < e; j++) {
        const w = upHead[j]!;
        while (upHead[p]! < w) p++;
        triangles[t++] = p;
      }
    }
  }
  return { n, upFirst, upHead, arcTail, downFirst, downArc, parent, triangles };
}

/** Arc id of the CCH arc between a and b (either order), or -1. */
export function findArc(topo: CchTopology, a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  let l = topo.upFirst[lo]!;
  let r = topo.upFirst[lo + 1]! - 1;
  const head = topo.upHead;
  while (l <= r) {
    const mid = (l + r) >>> 1;
    const h = head[mid]!;
    if (h === hi) return mid;
    if (h < hi) l = mid + 1;
    else r = mid - 1;
  }
  return -1;
}
