/**
 * The correctness oracle (tests and bench/routing/verify.ts only): a plain arc-based Dijkstra on the
 * road graph itself — states are road arcs, turns are checked against the forbidden-turn list — so it
 * shares nothing with the engine's turn expansion, order, contraction or customization. Also validates
 * a route's arc sequence (consecutive, allowed turns, open arcs, cost).
 */
import { arcHead, arcTail, INF_WEIGHT } from '../osm-import.ts';
import type { RoadNetwork } from '../road-network.ts';
import { arcPos, partialCost, type Route, type SnappedPoint } from '../routing-engine.ts';

const KEY = 0x4000000;

export class DijkstraOracle {
  private readonly outFirst: Uint32Array;
  private readonly outArcs: Uint32Array;
  private readonly forbidden = new Set<number>();
  /** 1 when some turn out of this arc is forbidden (skips the set lookup for most arcs) */
  private readonly restricted: Uint8Array;
  private heapD = new Float64Array(1024);
  private heapA = new Uint32Array(1024);
  private readonly dist: Float64Array;
  private readonly stamp: Uint32Array;
  private round = 0;

  constructor(private readonly net: RoadNetwork) {
    const jCount = net.junctionLon.length;
    const arcs = 2 * net.edgeU.length;
    this.outFirst = new Uint32Array(jCount + 1);
    for (let a = 0; a < arcs; a++) this.outFirst[arcTail(net, a) + 1]!++;
    for (let j = 0; j < jCount; j++) this.outFirst[j + 1]! += this.outFirst[j]!;
    this.outArcs = new Uint32Array(arcs);
    const fill = this.outFirst.slice(0, jCount);
    for (let a = 0; a < arcs; a++) this.outArcs[fill[arcTail(net, a)]!++] = a;
    this.restricted = new Uint8Array(arcs);
    for (let i = 0; i < net.forbiddenTurns.length; i += 2) {
      this.restricted[net.forbiddenTurns[i]!] = 1;
      this.forbidden.add(net.forbiddenTurns[i]! * KEY + net.forbiddenTurns[i + 1]!);
    }
    this.dist = new Float64Array(arcs);
    this.stamp = new Uint32Array(arcs);
  }

  allowedTurn(from: number, to: number): boolean {
    return this.restricted[from] === 0 || !this.forbidden.has(from * KEY + to);
  }

  /** Shortest travel time in ms between two snapped points under the given arc weights; Infinity if none. */
  cost(roadW: Uint32Array, a: SnappedPoint, b: SnappedPoint): number {
    const net = this.net;
    this.round++;
    const { dist, stamp, round } = this;
    const get = (arc: number) => (stamp[arc] === round ? dist[arc]! : Number.POSITIVE_INFINITY);
    let size = 0;
    const push = (d: number, arc: number) => {
      if (size === this.heapD.length) {
        const nd = new Float64Array(size * 2);
        nd.set(this.heapD);
        this.heapD = nd;
        const na = new Uint32Array(size * 2);
        na.set(this.heapA);
        this.heapA = na;
      }
      const heapD = this.heapD;
      const heapA = this.heapA;
      let i = size++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heapD[p]! <= d) break;
        heapD[i] = heapD[p]!;
        heapA[i] = heapA[p]!;
        i = p;
      }
      heapD[i] = d;
      heapA[i] = arc;
    };
    let topD = 0;
    let topA = 0;
    const pop = () => {
      const heapD = this.heapD;
      const heapA = this.heapA;
      topD = heapD[0]!;
      topA = heapA[0]!;
      size--;
      const d = heapD[size]!;
      const x = heapA[size]!;
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= size) break;
        if (c + 1 < size && heapD[c + 1]! < heapD[c]!) c++;
        if (heapD[c]! >= d) break;
        heapD[i] = heapD[c]!;
        heapA[i] = heapA[c]!;
        i = c;
      }
      heapD[i] = d;
      heapA[i] = x;
    };
    const relax = (arc: number, d: number) => {
      if (d < get(arc)) {
        dist[arc] = d;
        stamp[arc] = round;
        push(d, arc);
      }
    };
    let best = Number.POSITIVE_INFINITY;
    // staying on the shared edge
    if (a.edge === b.edge) {
      const e = a.edge;
      if (b.fraction >= a.fraction && roadW[2 * e] !== INF_WEIGHT)
        best = partialCost(b.fraction - a.fraction, roadW[2 * e]!);
      else if (b.fraction <= a.fraction && roadW[2 * e + 1] !== INF_WEIGHT)
        best = partialCost(a.fraction - b.fraction, roadW[2 * e + 1]!);
    }
    for (const arc of [2 * a.edge, 2 * a.edge + 1]) {
      const w = roadW[arc]!;
      if (w !== INF_WEIGHT) relax(arc, partialCost(1 - arcPos(arc, a.fraction), w));
    }
    const targetArcs = [2 * b.edge, 2 * b.edge + 1];
    while (size > 0) {
      pop();
      const d = topD;
      const arc = topA;
      if (d > get(arc)) continue;
      if (d >= best) break;
      const h = arcHead(net, arc);
      for (const t of targetArcs) {
        const w = roadW[t]!;
        if (w === INF_WEIGHT || arcTail(net, t) !== h || !this.allowedTurn(arc, t)) continue;
        const c = d + partialCost(arcPos(t, b.fraction), w);
        if (c < best) best = c;
      }
      for (let p = this.outFirst[h]!; p < this.outFirst[h + 1]!; p++) {
        const next = this.outArcs[p]!;
        const w = roadW[next]!;
        if (w === INF_WEIGHT || !this.allowedTurn(arc, next)) continue;
        relax(next, d + w);
      }
    }
    return best;
  }

  /** Problems with a route's arc sequence under the given weights; empty when valid. */
  validate(roadW: Uint32Array, route: Route): string[] {
    const net = this.net;
    const problems: string[] = [];
    const arcs = route.arcs;
    let cost = 0;
    for (let i = 0; i < arcs.length; i++) {
      const arc = arcs[i]!;
      const w = roadW[arc]!;
      if (w === INF_WEIGHT) problems.push(`arc ${arc} is closed or not allowed`);
      if (i > 0) {
        const prev = arcs[i - 1]!;
        if (arcHead(net, prev) !== arcTail(net, arc))
          problems.push(`arcs ${prev} and ${arc} are not consecutive`);
        if (!this.allowedTurn(prev, arc)) problems.push(`turn ${prev} → ${arc} is forbidden`);
      }
      if (arcs.length === 1) {
        cost += partialCost(Math.abs(route.to.fraction - route.from.fraction), w);
      } else if (i === 0) cost += partialCost(1 - arcPos(arc, route.from.fraction), w);
      else if (i === arcs.length - 1) cost += partialCost(arcPos(arc, route.to.fraction), w);
      else cost += w;
    }
    if (arcs[0]! >>> 1 !== route.from.edge) problems.push('route does not start on the source edge');
    if (arcs[arcs.length - 1]! >>> 1 !== route.to.edge)
      problems.push('route does not end on the target edge');
    if (cost !== route.durationMs) problems.push(`arc costs sum to ${cost}, route says ${route.durationMs}`);
    return problems;
  }
}
