/**
 * The metric of a CCH: weights per road arc, their minimum per CCH arc and direction (input weights),
 * and the customized up/down weights. Full customization walks every lower triangle once in rank order;
 * partial customization re-derives only the arcs whose lower triangles changed, in arc-id order (which
 * is tail-rank order, so every arc is final before it is used).
 *
 *   up[a]   = cost from arcTail[a] (lower rank) to upHead[a] (higher rank)
 *   down[a] = cost from upHead[a] to arcTail[a]
 *   midUp[a], midDown[a] = the lower triangle that gives that cost, as its position in the lower-triangle
 *   index (NO_MID when the road arc itself is best): path unpacking reads the two lower arcs directly.
 */
export const NO_MID = 0xffffffff;

import { type CchTopology, findArc } from './cch-topology.ts';
import { INF_WEIGHT } from './osm-import.ts';
import type { RoadNetwork } from './road-network.ts';

export interface CchMetric {
  roadW: Uint32Array;
  inUp: Uint32Array;
  inDown: Uint32Array;
  up: Uint32Array;
  down: Uint32Array;
  midUp: Uint32Array;
  midDown: Uint32Array;
}

export function createMetric(net: RoadNetwork): CchMetric {
  const m = net.topo.upHead.length;
  return {
    roadW: net.arcWeight.slice(),
    inUp: new Uint32Array(m),
    inDown: new Uint32Array(m),
    up: new Uint32Array(m),
    down: new Uint32Array(m),
    midUp: new Uint32Array(m),
    midDown: new Uint32Array(m),
  };
}

export function copyMetric(from: CchMetric, to: CchMetric): void {
  to.roadW.set(from.roadW);
  to.inUp.set(from.inUp);
  to.inDown.set(from.inDown);
  to.up.set(from.up);
  to.down.set(from.down);
  to.midUp.set(from.midUp);
  to.midDown.set(from.midDown);
}

export function customizeFull(net: RoadNetwork, metric: CchMetric, lower: LowerTriangles): void {
  const position = lower.position;
  const { roadW, inUp, inDown, up, down, midUp, midDown } = metric;
  const { xRoad, xCch, xUp } = net;
  inUp.fill(INF_WEIGHT);
  inDown.fill(INF_WEIGHT);
  for (let k = 0; k < xRoad.length; k++) {
    const w = roadW[xRoad[k]!]!;
    const c = xCch[k]!;
    if (xUp[k] === 1) {
      if (w < inUp[c]!) inUp[c] = w;
    } else if (w < inDown[c]!) inDown[c] = w;
  }
  up.set(inUp);
  down.set(inDown);
  midUp.fill(NO_MID);
  midDown.fill(NO_MID);
  const { upFirst, triangles } = net.topo;
  const n = net.topo.n;
  let t = 0;
  for (let v = 0; v < n; v++) {
    const b = upFirst[v]!;
    const e = upFirst[v + 1]!;
    for (let i = b; i < e; i++) {
      const downI = down[i]!;
      const upI = up[i]!;
      if (downI === INF_WEIGHT && upI === INF_WEIGHT) {
        t += e - i - 1;
        continue;
      }
      for (let j = i + 1; j < e; j++) {
        const a = triangles[t]!;
        const viaUp = downI + up[j]!;
        if (viaUp < up[a]!) {
          up[a] = viaUp;
          midUp[a] = position[t]!;
        }
        const viaDown = down[j]! + upI;
        if (viaDown < down[a]!) {
          down[a] = viaDown;
          midDown[a] = position[t]!;
        }
        t++;
      }
    }
  }
}

/**
 * For every CCH arc, its lower triangles as pairs of arcs (v→lo, v→hi) with v below both ends: the
 * exact work to re-derive one arc (partial customization) or to find the middle node of a shortcut
 * (path unpacking), instead of intersecting two neighbour lists. Built from the triangle list in O(T).
 */
export interface LowerTriangles {
  first: Uint32Array;
  /** flat pairs: [arc v→lo, arc v→hi] */
  pairs: Uint32Array;
  /** triangle number in topo.triangles order → its position in pairs */
  position: Uint32Array;
}

export function buildLowerTriangles(topo: CchTopology): LowerTriangles {
  const { upFirst, triangles, n } = topo;
  const m = topo.upHead.length;
  const first = new Uint32Array(m + 1);
  for (let t = 0; t < triangles.length; t++) first[triangles[t]! + 1]!++;
  for (let a = 0; a < m; a++) first[a + 1]! += first[a]!;
  const fill = first.slice(0, m);
  const pairs = new Uint32Array(2 * triangles.length);
  const position = new Uint32Array(triangles.length);
  let t = 0;
  for (let v = 0; v < n; v++) {
    const b = upFirst[v]!;
    const e = upFirst[v + 1]!;
    for (let i = b; i < e; i++) {
      for (let j = i + 1; j < e; j++) {
        const a = triangles[t]!;
        const at = fill[a]!++;
        pairs[2 * at] = i;
        pairs[2 * at + 1] = j;
        position[t++] = at;
      }
    }
  }
  return { first, pairs, position };
}

/** A binary min-heap of arc ids with membership marks (each arc at most once). */
class ArcHeap {
  private readonly heap: Uint32Array;
  private size = 0;
  readonly queued: Uint8Array;
  constructor(capacity: number) {
    this.heap = new Uint32Array(capacity);
    this.queued = new Uint8Array(capacity);
  }
  push(a: number): void {
    if (this.queued[a]) return;
    this.queued[a] = 1;
    const h = this.heap;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]! <= a) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = a;
  }
  pop(): number {
    const h = this.heap;
    const top = h[0]!;
    const last = h[--this.size]!;
    let i = 0;
    const n = this.size;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && h[c + 1]! < h[c]!) c++;
      if (h[c]! >= last) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    this.queued[top] = 0;
    return top;
  }
  get length(): number {
    return this.size;
  }
}

export class PartialCustomizer {
  private readonly heap: ArcHeap;
  constructor(
    private readonly net: RoadNetwork,
    private readonly lower: LowerTriangles,
  ) {
    this.heap = new ArcHeap(net.topo.upHead.length);
  }

  /**
   * Applies new road-arc weights (already written into metric.roadW) and re-customizes only what they
   * affect. Returns the CCH arcs whose input or customized weights changed.
   */
  run(metric: CchMetric, changedRoadArcs: Iterable<number>): number[] {
    const net = this.net;
    const { roadXFirst, roadX, xCch, xUp, xRoad, cchXFirst, cchX } = net;
    const { roadW, inUp, inDown, up, down, midUp, midDown } = metric;
    const { upFirst, upHead, arcTail } = net.topo;
    const heap = this.heap;
    const touched: number[] = [];
    for (const r of changedRoadArcs) {
      for (let p = roadXFirst[r]!; p < roadXFirst[r + 1]!; p++) {
        const c = xCch[roadX[p]!]!;
        let bu = INF_WEIGHT;
        let bd = INF_WEIGHT;
        for (let q = cchXFirst[c]!; q < cchXFirst[c + 1]!; q++) {
          const k = cchX[q]!;
          const w = roadW[xRoad[k]!]!;
          if (xUp[k] === 1) {
            if (w < bu) bu = w;
          } else if (w < bd) bd = w;
        }
        if (bu !== inUp[c] || bd !== inDown[c]) {
          inUp[c] = bu;
          inDown[c] = bd;
          touched.push(c);
          heap.push(c);
        }
      }
    }
    while (heap.length > 0) {
      const c = heap.pop();
      const a = arcTail[c]!;
      const b = upHead[c]!;
      let nu = inUp[c]!;
      let nd = inDown[c]!;
      let mu = NO_MID;
      let md = NO_MID;
      const { first: lFirst, pairs } = this.lower;
      for (let p = lFirst[c]!; p < lFirst[c + 1]!; p++) {
        const xa = pairs[2 * p]!;
        const xb = pairs[2 * p + 1]!;
        const viaUp = down[xa]! + up[xb]!;
        if (viaUp < nu) {
          nu = viaUp;
          mu = p;
        }
        const viaDown = down[xb]! + up[xa]!;
        if (viaDown < nd) {
          nd = viaDown;
          md = p;
        }
      }
      const weightsChanged = nu !== up[c] || nd !== down[c];
      if (!weightsChanged && mu === midUp[c] && md === midDown[c]) continue;
      up[c] = nu;
      down[c] = nd;
      midUp[c] = mu;
      midDown[c] = md;
      touched.push(c);
      if (!weightsChanged) continue;
      for (let p = upFirst[a]!; p < upFirst[a + 1]!; p++) {
        const z = upHead[p]!;
        if (z === b) continue;
        const target = findArc(net.topo, b, z);
        if (target >= 0) heap.push(target);
      }
    }
    return touched;
  }
}
