/**
 * Queries on a customized CCH by elimination-tree search: the forward search from the sources walks up
 * the elimination tree relaxing upward arcs, the backward search from the targets does the same with
 * downward weights, and the shortest distance is the best sum over the common ancestors. No priority
 * queue is needed; the work is bounded by the tree depth. Scratch arrays are reused between queries
 * (reset along the visited chains only).
 */
import { type CchMetric, type LowerTriangles, NO_MID } from './cch-metric.ts';
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
  /** nodes visited by the last forward / backward search, for cheap resets */
  private readonly seenF: Uint32Array;
  private readonly seenB: Uint32Array;
  private countF = 0;
  private countB = 0;
  /** meeting node of the last pruned forward search */
  meetNode = -1;

  constructor(
    private readonly net: RoadNetwork,
    private readonly lower: LowerTriangles,
  ) {
    const n = net.topo.n;
    this.dF = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
    this.dB = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
    this.predF = new Int32Array(n).fill(-1);
    this.predB = new Int32Array(n).fill(-1);
    this.ptr = new Int32Array(64);
    this.seenF = new Uint32Array(n);
    this.seenB = new Uint32Array(n);
  }

  /**
   * Forward (up weights) or backward (down weights) elimination-tree search over the union of the
   * chains of the start nodes. With prune, the other direction's distances must be in place: nodes at
   * or beyond the best meeting cost found so far are not expanded, and the best cost (and meetNode) is
   * returned. Without prune, returns Infinity.
   */
  search(metric: CchMetric, starts: readonly NodeCost[], forward: boolean, prune = false): number {
    this.reset(forward);
    const dist = forward ? this.dF : this.dB;
    const pred = forward ? this.predF : this.predB;
    const seen = forward ? this.seenF : this.seenB;
    const other = forward ? this.dB : this.dF;
    const w = forward ? metric.up : metric.down;
    const { upFirst, upHead, parent } = this.net.topo;
    const ptr = this.ptr;
    const k = Math.min(starts.length, ptr.length);
    for (let i = 0; i < k; i++) {
      const s = starts[i]!;
      ptr[i] = s.node;
      if (s.cost < dist[s.node]!) {
        dist[s.node] = s.cost;
        pred[s.node] = -1;
      }
    }
    let count = 0;
    let best = Number.POSITIVE_INFINITY;
    let meet = -1;
    for (;;) {
      let v = -1;
      for (let i = 0; i < k; i++) {
        const p = ptr[i]!;
        if (p >= 0 && (v < 0 || p < v)) v = p;
      }
      if (v < 0) break;
      seen[count++] = v;
      const pv = parent[v]!;
      for (let i = 0; i < k; i++) if (ptr[i] === v) ptr[i] = pv;
      const d = dist[v]!;
      if (d === Number.POSITIVE_INFINITY) continue;
      if (prune) {
        const o = d + other[v]!;
        if (o < best) {
          best = o;
          meet = v;
        }
        if (d >= best) continue;
      }
      const end = upFirst[v + 1]!;
      for (let a = upFirst[v]!; a < end; a++) {
        const wa = w[a]!;
        if (wa === INF_WEIGHT) continue;
        const u = upHead[a]!;
        const nd = d + wa;
        if (nd < dist[u]!) {
          dist[u] = nd;
          pred[u] = a;
        }
      }
    }
    if (forward) this.countF = count;
    else this.countB = count;
    this.meetNode = meet;
    return best;
  }

  /** Clears the distances of the last search in that direction. */
  reset(forward: boolean): void {
    const dist = forward ? this.dF : this.dB;
    const pred = forward ? this.predF : this.predB;
    const seen = forward ? this.seenF : this.seenB;
    const count = forward ? this.countF : this.countB;
    for (let i = 0; i < count; i++) {
      const v = seen[i]!;
      dist[v] = Number.POSITIVE_INFINITY;
      pred[v] = -1;
    }
    if (forward) this.countF = 0;
    else this.countB = 0;
  }

  /** Nodes visited by the last search in that direction (ascending rank). */
  visited(forward: boolean): Uint32Array {
    return (forward ? this.seenF : this.seenB).subarray(0, forward ? this.countF : this.countB);
  }

  /** Point-to-point shortest path between node sets; undefined when unreachable. */
  shortestPath(
    metric: CchMetric,
    sources: readonly NodeCost[],
    targets: readonly NodeCost[],
  ): CchPath | undefined {
    this.search(metric, targets, false);
    const cost = this.search(metric, sources, true, true);
    const node = this.meetNode;
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
    this.reset(true);
    this.reset(false);
    return result;
  }

  /** Expands CCH arc a (up: tail→head, else head→tail) into routing arcs. */
  unpack(metric: CchMetric, a: number, dirUp: boolean, out: number[]): void {
    const net = this.net;
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
    const p = dirUp ? metric.midUp[a]! : metric.midDown[a]!;
    if (p !== NO_MID) {
      const xa = this.lower.pairs[2 * p]!;
      const xb = this.lower.pairs[2 * p + 1]!;
      if (dirUp) {
        this.unpack(metric, xa, false, out);
        this.unpack(metric, xb, true, out);
      } else {
        this.unpack(metric, xb, false, out);
        this.unpack(metric, xa, true, out);
      }
      return;
    }
    throw new Error(`CCH arc ${a} could not be unpacked`);
  }

  /** All-node distances from the sources (PHAST: elimination-tree search then a downward sweep). */
  oneToAll(metric: CchMetric, sources: readonly NodeCost[], out: Float64Array): void {
    out.fill(Number.POSITIVE_INFINITY);
    this.search(metric, sources, true);
    for (const v of this.visited(true)) out[v] = this.dF[v]!;
    this.reset(true);
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

  /**
   * Many-to-one (RPHAST): travel times from many source sets to one target. One backward search from
   * the target, then a single downward sweep over the union of the sources' elimination-tree chains,
   * so the shared upper part of the chains is processed once instead of once per source.
   */
  manyToOne(
    metric: CchMetric,
    sourceSets: readonly (readonly NodeCost[])[],
    targets: readonly NodeCost[],
  ): number[] {
    const { parent, upFirst, upHead } = this.net.topo;
    this.search(metric, targets, false);
    const dB = this.dB;
    const dF = this.dF; // reused as the sweep's distance array
    const seen = this.seenF;
    let count = 0;
    for (const set of sourceSets) {
      for (const s of set) {
        for (let v = s.node; v >= 0 && this.predF[v] !== -2; v = parent[v]!) {
          this.predF[v] = -2;
          seen[count++] = v;
        }
      }
    }
    const sel = seen.subarray(0, count).sort();
    const up = metric.up;
    for (let i = count - 1; i >= 0; i--) {
      const v = sel[i]!;
      let d = dB[v]!;
      for (let a = upFirst[v]!; a < upFirst[v + 1]!; a++) {
        const wa = up[a]!;
        if (wa === INF_WEIGHT) continue;
        const c = wa + dF[upHead[a]!]!;
        if (c < d) d = c;
      }
      dF[v] = d;
    }
    const out = sourceSets.map((set) => {
      let best = Number.POSITIVE_INFINITY;
      for (const s of set) {
        const c = s.cost + dF[s.node]!;
        if (c < best) best = c;
      }
      return best;
    });
    this.countF = count;
    this.reset(true);
    this.reset(false);
    return out;
  }
}
