/**
 * Metric-independent node order for the CCH by nested dissection with inertial flow
 * (Schild & Sommer 2015): project the nodes of a piece on four directions, take the first and last
 * quarter as source and sink, and cut with a minimum vertex separator (unit node capacities,
 * Ford–Fulkerson with BFS). The separator gets the highest ranks of the piece, the two sides are
 * ordered recursively. Road networks have small separators, which keeps the CCH small.
 */

export interface UndirectedGraph {
  n: number;
  first: Uint32Array;
  adj: Uint32Array;
}

const BIG = 1 << 29;
const DIRECTIONS: readonly (readonly [number, number])[] = [
  [1, 0],
  [0, 1],
  [Math.SQRT1_2, Math.SQRT1_2],
  [Math.SQRT1_2, -Math.SQRT1_2],
];

interface Task {
  nodes: Uint32Array;
  /** highest rank this piece may use; its nodes get (hi - nodes.length, hi] */
  hi: number;
}

/** Returns rank[node]; ranks are a permutation of 0..n-1, highest rank = contracted last. */
export function nestedDissectionOrder(
  g: UndirectedGraph,
  x: Float64Array,
  y: Float64Array,
  onProgress?: (done: number) => void,
): Uint32Array {
  const { n } = g;
  const rank = new Uint32Array(n);
  const local = new Int32Array(n).fill(-1);
  const stack: Task[] = [{ nodes: Uint32Array.from({ length: n }, (_, i) => i), hi: n - 1 }];
  let assigned = 0;
  let nextReport = 0;
  const assign = (node: number, r: number) => {
    rank[node] = r;
    assigned++;
  };

  while (stack.length > 0) {
    const task = stack.pop()!;
    const { nodes, hi } = task;
    const k = nodes.length;
    if (assigned >= nextReport) {
      onProgress?.(assigned / n);
      nextReport = assigned + Math.max(1, n >> 6);
    }
    if (k <= 3) {
      for (let i = 0; i < k; i++) assign(nodes[i]!, hi - i);
      continue;
    }
    for (let i = 0; i < k; i++) local[nodes[i]!] = i;
    // local CSR
    const lFirst = new Uint32Array(k + 1);
    for (let i = 0; i < k; i++) {
      const v = nodes[i]!;
      let d = 0;
      for (let p = g.first[v]!; p < g.first[v + 1]!; p++) if (local[g.adj[p]!]! >= 0) d++;
      lFirst[i + 1] = lFirst[i]! + d;
    }
    const lAdj = new Uint32Array(lFirst[k]!);
    for (let i = 0, q = 0; i < k; i++) {
      const v = nodes[i]!;
      for (let p = g.first[v]!; p < g.first[v + 1]!; p++) {
        const l = local[g.adj[p]!]!;
        if (l >= 0) lAdj[q++] = l;
      }
    }
    for (let i = 0; i < k; i++) local[nodes[i]!] = -1;

    // connected components: order each separately
    const comp = new Int32Array(k).fill(-1);
    const queue = new Uint32Array(k);
    let comps = 0;
    for (let s = 0; s < k; s++) {
      if (comp[s]! >= 0) continue;
      let qh = 0;
      let qt = 0;
      queue[qt++] = s;
      comp[s] = comps;
      while (qh < qt) {
        const v = queue[qh++]!;
        for (let p = lFirst[v]!; p < lFirst[v + 1]!; p++) {
          const w = lAdj[p]!;
          if (comp[w]! < 0) {
            comp[w] = comps;
            queue[qt++] = w;
          }
        }
      }
      comps++;
    }
    if (comps > 1) {
      const sizes = new Uint32Array(comps);
      for (let i = 0; i < k; i++) sizes[comp[i]!]!++;
      const parts = Array.from({ length: comps }, (_, c) => new Uint32Array(sizes[c]!));
      const fillAt = new Uint32Array(comps);
      for (let i = 0; i < k; i++) {
        const c = comp[i]!;
        parts[c]![fillAt[c]!++] = nodes[i]!;
      }
      let top = hi;
      for (const part of parts) {
        stack.push({ nodes: part, hi: top });
        top -= part.length;
      }
      continue;
    }

    const sep = inertialFlowSeparator(k, lFirst, lAdj, nodes, x, y);
    const inSep = new Uint8Array(k);
    for (const s of sep) inSep[s] = 1;
    let r = hi;
    for (const s of sep) assign(nodes[s]!, r--);
    const rest = new Uint32Array(k - sep.length);
    for (let i = 0, q = 0; i < k; i++) if (!inSep[i]) rest[q++] = nodes[i]!;
    if (rest.length > 0) stack.push({ nodes: rest, hi: r });
  }
  onProgress?.(1);
  return rank;
}

/** Minimum vertex separator between the extreme quarters along the best of four directions (local ids). */
function inertialFlowSeparator(
  k: number,
  lFirst: Uint32Array,
  lAdj: Uint32Array,
  nodes: Uint32Array,
  x: Float64Array,
  y: Float64Array,
): number[] {
  // Residual network: in(i) = 2i, out(i) = 2i+1.
  // arcs of in(i): [in→out], then one reverse arc per neighbour j (in_i → out_j, residual of out_j→in_i)
  // arcs of out(i): [out→in (reverse of internal)], then out_i → in_j per neighbour j
  const m = lFirst[k]!;
  const N = 2 * k;
  const first = new Uint32Array(N + 1);
  for (let i = 0; i < k; i++) {
    const d = lFirst[i + 1]! - lFirst[i]!;
    first[2 * i + 1] = first[2 * i]! + 1 + d;
    first[2 * i + 2] = first[2 * i + 1]! + 1 + d;
  }
  const total = first[N]!;
  const head = new Uint32Array(total);
  const rev = new Uint32Array(total);
  const baseCap = new Int32Array(total);
  // position of neighbour arcs
  for (let i = 0; i < k; i++) {
    const inBase = first[2 * i]!;
    const outBase = first[2 * i + 1]!;
    head[inBase] = 2 * i + 1;
    rev[inBase] = outBase;
    baseCap[inBase] = 1;
    head[outBase] = 2 * i;
    rev[outBase] = inBase;
    baseCap[outBase] = 0;
  }
  // for neighbour pair (i -> j at lAdj index p): out_i → in_j with cap BIG; reverse lives in in_j's list.
  // in_j's list slot for neighbour i: find index of i in j's adjacency.
  const slotOf = (j: number, i: number): number => {
    for (let p = lFirst[j]!; p < lFirst[j + 1]!; p++) if (lAdj[p] === i) return p - lFirst[j]!;
    return -1;
  };
  for (let i = 0; i < k; i++) {
    for (let p = lFirst[i]!; p < lFirst[i + 1]!; p++) {
      const j = lAdj[p]!;
      const a = first[2 * i + 1]! + 1 + (p - lFirst[i]!);
      const s = slotOf(j, i);
      const b = first[2 * j]! + 1 + s;
      head[a] = 2 * j;
      baseCap[a] = BIG;
      rev[a] = b;
      head[b] = 2 * i + 1;
      baseCap[b] = 0;
      rev[b] = a;
    }
  }
  void m;

  const cap = new Int32Array(total);
  const parentArc = new Int32Array(N);
  const seen = new Int32Array(N);
  const queue = new Uint32Array(N);
  const role = new Uint8Array(k); // 1 source, 2 sink
  const keys = new Float64Array(k);
  const idx = Array.from({ length: k }, (_, i) => i);
  const s = Math.max(1, Math.floor(k * 0.25));
  let best: number[] | undefined;
  let bestBalance = 0;
  let stamp = 0;

  for (const [a, b] of DIRECTIONS) {
    for (let i = 0; i < k; i++) keys[i] = a * x[nodes[i]!]! + b * y[nodes[i]!]!;
    idx.sort((p, q) => keys[p]! - keys[q]! || p - q);
    role.fill(0);
    for (let i = 0; i < s; i++) role[idx[i]!] = 1;
    for (let i = k - s; i < k; i++) role[idx[i]!] = 2;
    cap.set(baseCap);
    const limit = best ? best.length : Number.POSITIVE_INFINITY;
    let flow = 0;
    let reachable = false;
    for (;;) {
      stamp++;
      let qh = 0;
      let qt = 0;
      for (let i = 0; i < k; i++) {
        if (role[i] === 1) {
          seen[2 * i] = stamp;
          parentArc[2 * i] = -1;
          queue[qt++] = 2 * i;
        }
      }
      let sinkNode = -1;
      while (qh < qt && sinkNode < 0) {
        const u = queue[qh++]!;
        for (let p = first[u]!; p < first[u + 1]!; p++) {
          if (cap[p]! <= 0) continue;
          const w = head[p]!;
          if (seen[w] === stamp) continue;
          seen[w] = stamp;
          parentArc[w] = p;
          if ((w & 1) === 1 && role[w >> 1] === 2) {
            sinkNode = w;
            break;
          }
          queue[qt++] = w;
        }
      }
      if (sinkNode < 0) {
        reachable = true;
        break;
      }
      for (let w = sinkNode; parentArc[w]! >= 0; ) {
        const p = parentArc[w]!;
        cap[p]!--;
        cap[rev[p]!]!++;
        w = head[rev[p]!]!;
      }
      flow++;
      if (flow >= limit) break;
    }
    if (!reachable) continue;
    // seen[...] === stamp marks the source side of the minimum cut
    const sep: number[] = [];
    let sourceSide = 0;
    for (let i = 0; i < k; i++) {
      const inR = seen[2 * i] === stamp;
      const outR = seen[2 * i + 1] === stamp;
      if (inR && !outR) sep.push(i);
      else if (outR) sourceSide++;
    }
    const balance = Math.min(sourceSide, k - sep.length - sourceSide);
    if (!best || sep.length < best.length || (sep.length === best.length && balance > bestBalance)) {
      best = sep;
      bestBalance = balance;
    }
  }
  return best ?? [0];
}
