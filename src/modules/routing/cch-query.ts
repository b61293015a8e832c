/**
 * Queries on a customized CCH by elimination-tree search: the forward search from the sources walks up
 * the elimination tree relaxing upward arcs, the backward search from the targets does the same with
 * downward weights, and the shortest distance is the best sum over the common ancestors. No priority
 * queue is needed; the work is bounded by the tree depth. Scratch arrays are reused between queries
 * (reset along the visited chains only).
 */
import type { CchMetric } from './cch-metric.ts';
import { INF_WEIGHT } from './osm-import.ts';
import type { RoadNetwork } from './road-network.ts';

/** A routing node with the cost (ms) already spent to reach it (or still to spend from it). */
export interface NodeCost {
  node: number;
  cost: number;
}

export interface CchPath {
  cost: number;
  /** routing arcs (indices into net.xTail/xHead/xRoad) from a source node to a target node */
  xArcs: number[];
  sourceNode: number;
  targetNode: number;
}

export class CchQuery {
  readonly dF: Float64Array;
  readonly dB: Float64Array;
  private readonly predF: Int32Array;
  private readonly predB: Int32Array;
  private readonly ptr: Int32Array;

  constructor(private readonly net: RoadNetwork) {
    const n = net.topo.n;
    this.dF = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
    this.dB = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
    this.predF = new Int32Array(n).fill(-1);
    this.predB = new Int32Array(n).fill(-1);
    this.ptr = new Int32Array(64);
  }

  /**
   * Walks the union of the elimination-tree chains of the given nodes in ascending rank and calls
   * visit(v) once per node.
   */
  private walk(starts: readonly NodeCost[], visit: (v: number) => void): void {
    const parent = this.net.topo.parent;
    const k = Math.min(starts.length, this.ptr.length);
    const ptr = this.ptr;
    for (let i = 0; i < k; i++) ptr[i] = starts[i]!.node;
    for (;;) {
      let v = -1;
      for (let i = 0; i < k; i++) {
        const p = ptr[i]!;
        if (p >= 0 && (v < 0 || p < v)) v = p;
      }
      if (v < 0) return;
      visit(v);
      const pv = parent[v]!;
      for (let i = 0; i < k; i++) if (ptr[i] === v) ptr[i] = pv;
    }
  }

  /** Forward (dir = up) or backward (dir = down) elimination-tree search; fills dF or dB. */
  /** With prune, nodes at or beyond the best meeting cost found so far are not expanded; returns that cost. */
  search(metric: CchMetric, starts: readonly NodeCost[], forward: boolean, prune = false): number {
    const dist = forward ? this.dF : this.dB;
    const pred = forward ? this.predF : this.predB;
    const other = forward ? this.dB : this.dF;
    const w = forward ? metric.up : metric.down;
    const { upFirst, upHead } = this.net.topo;
    for (const s of starts) {
      if (s.cost < dist[s.node]!) {
        dist[s.node] = s.cost;
        pred[s.node] = -1;
      }
    }
    let best = Number.POSITIVE_INFINITY;
    this.walk(starts, (v) => {
      const d = dist[v]!;
      if (d === Number.POSITIVE_INFINITY) return;
      if (prune) {
        const o = d + other[v]!;
        if (o < best) best = o;
        if (d >= best) return;
      }
      for (let a = upFirst[v]!; a < upFirst[v + 1]!; a++) {
        const wa = w[a]!;
        if (wa === INF_WEIGHT) continue;
        const u = upHead[a]!;
        const nd = d + wa;
        if (nd < dist[u]!) {
          dist[u] = nd;
          pred[u] = a;
        }
      }
    });
    return best;
  }

  reset(starts: readonly NodeCost[], forward: boolean): void {
    const dist = forward ? this.dF : this.dB;
    const pred = forward ? this.predF : this.predB;
    this.walk(starts, (v) => {
      dist[v] = Number.POSITIVE_INFINITY;
      pred[v] = -1;
    });
  }

  /** Best meeting node over the chains of `starts` (after both searches); -1 when disconnected. */
  meet(starts: readonly NodeCost[]): { node: number; cost: number } {
    let node = -1;
    let cost = Number.POSITIVE_INFINITY;
    const { dF, dB } = this;
    this.walk(starts, (v) => {
      const c = dF[v]! + dB[v]!;
      if (c < cost) {
        cost = c;
        node = v;
      }
    });
    return { node, cost };
  }

  /** Point-to-point shortest path between node sets; undefined when unreachable. */
  shortestPath(
    metric: CchMetric,
    sources: readonly NodeCost[],
    targets: readonly NodeCost[],
  ): CchPath | undefined {
    this.search(metric, sources, true);
    this.search(metric, targets, false);
    const { node, cost } = this.meet(targets);
    let result: CchPath | undefined;
    if (node >= 0 && cost < INF_WEIGHT) {
      const up: number[] = [];
      let v = node;
      while (this.predF[v]! >= 0) {
        const a = this.predF[v]!;
        up.push(a);
        v = this.net.topo.arcTail[a]!;
      }
      const sourceNode = v;
      const xArcs: number[] = [];
      for (let i = up.length - 1; i >= 0; i--) this.unpack(metric, up[i]!, true, xArcs);
      v = node;
      while (this.predB[v]! >= 0) {
        const a = this.predB[v]!;
        this.unpack(metric, a, false, xArcs);
        v = this.net.topo.arcTail[a]!;
      }
      result = { cost, xArcs, sourceNode, targetNode: v };
    }
    this.reset(sources, true);
    this.reset(targets, false);
    return result;
  }

  /** Expands CCH arc a (up: tail→head, else head→tail) into routing arcs. */
  unpack(metric: CchMetric, a: number, dirUp: boolean, out: number[]): void {
    const net = this.net;
    const { arcTail, upHead, downFirst, downArc } = net.topo;
    const w = dirUp ? metric.up[a]! : metric.down[a]!;
    if (w === (dirUp ? metric.inUp[a]! : metric.inDown[a]!)) {
      for (let q = net.cchXFirst[a]!; q < net.cchXFirst[a + 1]!; q++) {
        const k = net.cchX[q]!;
        if ((net.xUp[k] === 1) === dirUp && metric.roadW[net.xRoad[k]!] === w) {
          out.push(k);
          return;
        }
      }
    }
    const lo = arcTail[a]!;
    const hi = upHead[a]!;
    let i = downFirst[lo]!;
    const ie = downFirst[lo + 1]!;
    let j = downFirst[hi]!;
    const je = downFirst[hi + 1]!;
    while (i < ie && j < je) {
      const xa = downArc[i]!;
      const xb = downArc[j]!;
      const ta = arcTail[xa]!;
      const tb = arcTail[xb]!;
      if (ta < tb) i++;
      else if (tb < ta) j++;
      else {
        if (dirUp) {
          if (metric.down[xa]! + metric.up[xb]! === w) {
            this.unpack(metric, xa, false, out);
            this.unpack(metric, xb, true, out);
            return;
          }
        } else if (metric.down[xb]! + metric.up[xa]! === w) {
          this.unpack(metric, xb, false, out);
          this.unpack(metric, xa, true, out);
          return;
        }
        i++;
        j++;
      }
    }
    throw new Error(`CCH arc ${a} could not be unpacked`);
  }

  /** All-node distances from the sources (PHAST: elimination-tree search then a downward sweep). */
  oneToAll(metric: CchMetric, sources: readonly NodeCost[], out: Float64Array): void {
    out.fill(Number.POSITIVE_INFINITY);
    this.search(metric, sources, true);
    this.walk(sources, (v) => {
      out[v] = this.dF[v]!;
    });
    this.reset(sources, true);
    const { upFirst, upHead } = this.net.topo;
    const down = metric.down;
    for (let v = this.net.topo.n - 1; v >= 0; v--) {
      let d = out[v]!;
      for (let a = upFirst[v]!; a < upFirst[v + 1]!; a++) {
        const wa = down[a]!;
        if (wa === INF_WEIGHT) continue;
        const c = out[upHead[a]!]! + wa;
        if (c < d) d = c;
      }
      out[v] = d;
    }
  }
}
