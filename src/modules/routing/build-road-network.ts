/**
 * From a road graph to a routable network:
 * 1. turn expansion — a junction with turn restrictions gets one extra routing node per group of
 *    incoming arcs that share the same forbidden turns; each such node has only the allowed outgoing
 *    arcs. Junctions without restrictions stay one node (node-based routing everywhere else).
 * 2. keep the largest strongly connected component of that routing graph.
 * 3. nested-dissection order, relabel nodes by rank, CCH contraction (metric independent).
 * 4. spatial index over the road segments.
 */
import Flatbush from 'flatbush';
import { contractTopology } from './cch-topology.ts';
import { LocalProjection } from './geo.ts';
import { nestedDissectionOrder } from './nested-dissection.ts';
import { arcHead, arcTail, INF_WEIGHT, type ProgressCallback, type RoadGraph } from './osm-import.ts';
import type { ProfileName } from './profile.ts';
import { NETWORK_FORMAT_VERSION, type RoadNetwork } from './road-network.ts';

interface Expanded {
  nodeCount: number;
  nodeJunction: Uint32Array;
  arcHeadNode: Int32Array;
  xTail: Uint32Array;
  xHead: Uint32Array;
  xRoad: Uint32Array;
}

function expandTurns(g: RoadGraph): Expanded {
  const jCount = g.junctionLon.length;
  const arcCount = g.arcWeight.length;
  // forbidden successors per from-arc (forbiddenTurns is sorted by from-arc)
  const ft = g.forbiddenTurns;
  const forbidFirst = new Int32Array(arcCount).fill(-1);
  const forbidEnd = new Int32Array(arcCount);
  for (let i = 0; i < ft.length; i += 2) {
    const a = ft[i]!;
    if (forbidFirst[a]! < 0) forbidFirst[a] = i;
    forbidEnd[a] = i + 2;
  }
  const nodeJunction: number[] = [];
  for (let j = 0; j < jCount; j++) nodeJunction.push(j);
  const arcHeadNode = new Int32Array(arcCount).fill(-1);
  const copyKey = new Map<string, number>();
  /** routing node → first index in ft of its forbidden list (copies only), or -1 */
  const nodeForbid: number[] = new Array(jCount).fill(-1);
  for (let a = 0; a < arcCount; a++) {
    if (g.arcWeight[a] === INF_WEIGHT) continue;
    const j = arcHead(g, a);
    if (forbidFirst[a]! < 0) {
      arcHeadNode[a] = j;
      continue;
    }
    const key = `${j}:${Array.from(ft.subarray(forbidFirst[a]!, forbidEnd[a]!).filter((_, i) => i % 2 === 1)).join(',')}`;
    let node = copyKey.get(key);
    if (node === undefined) {
      node = nodeJunction.length;
      nodeJunction.push(j);
      nodeForbid.push(a);
      copyKey.set(key, node);
    }
    arcHeadNode[a] = node;
  }
  // outgoing arcs per junction
  const outFirst = new Uint32Array(jCount + 1);
  for (let a = 0; a < arcCount; a++) if (g.arcWeight[a] !== INF_WEIGHT) outFirst[arcTail(g, a) + 1]!++;
  for (let j = 0; j < jCount; j++) outFirst[j + 1]! += outFirst[j]!;
  const outArcs = new Uint32Array(outFirst[jCount]!);
  const fill = outFirst.slice(0, jCount);
  for (let a = 0; a < arcCount; a++) if (g.arcWeight[a] !== INF_WEIGHT) outArcs[fill[arcTail(g, a)]!++] = a;

  const xt: number[] = [];
  const xh: number[] = [];
  const xr: number[] = [];
  for (let x = 0; x < nodeJunction.length; x++) {
    const j = nodeJunction[x]!;
    const fromArc = nodeForbid[x]!;
    for (let p = outFirst[j]!; p < outFirst[j + 1]!; p++) {
      const b = outArcs[p]!;
      if (fromArc >= 0) {
        let banned = false;
        for (let i = forbidFirst[fromArc]!; i < forbidEnd[fromArc]!; i += 2) {
          if (ft[i + 1] === b) {
            banned = true;
            break;
          }
        }
        if (banned) continue;
      }
      xt.push(x);
      xh.push(arcHeadNode[b]!);
      xr.push(b);
    }
  }
  return {
    nodeCount: nodeJunction.length,
    nodeJunction: Uint32Array.from(nodeJunction),
    arcHeadNode,
    xTail: Uint32Array.from(xt),
    xHead: Uint32Array.from(xh),
    xRoad: Uint32Array.from(xr),
  };
}

/** Marks the nodes of the largest strongly connected component (iterative Tarjan). */
export function largestScc(n: number, tail: Uint32Array, head: Uint32Array): Uint8Array {
  const first = new Uint32Array(n + 1);
  for (let i = 0; i < tail.length; i++) first[tail[i]! + 1]!++;
  for (let v = 0; v < n; v++) first[v + 1]! += first[v]!;
  const succ = new Uint32Array(tail.length);
  const fill = first.slice(0, n);
  for (let i = 0; i < tail.length; i++) succ[fill[tail[i]!]!++] = head[i]!;

  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const stack = new Uint32Array(n);
  const callNode = new Uint32Array(n);
  const callEdge = new Uint32Array(n);
  const comp = new Int32Array(n).fill(-1);
  let sp = 0;
  let counter = 0;
  let comps = 0;
  const sizes: number[] = [];
  for (let root = 0; root < n; root++) {
    if (index[root]! >= 0) continue;
    let depth = 0;
    callNode[0] = root;
    callEdge[0] = first[root]!;
    index[root] = low[root] = counter++;
    stack[sp++] = root;
    onStack[root] = 1;
    while (depth >= 0) {
      const v = callNode[depth]!;
      const p = callEdge[depth]!;
      if (p < first[v + 1]!) {
        callEdge[depth] = p + 1;
        const w = succ[p]!;
        if (index[w]! < 0) {
          index[w] = low[w] = counter++;
          stack[sp++] = w;
          onStack[w] = 1;
          depth++;
          callNode[depth] = w;
          callEdge[depth] = first[w]!;
        } else if (onStack[w]) {
          if (index[w]! < low[v]!) low[v] = index[w]!;
        }
      } else {
        if (low[v] === index[v]) {
          let size = 0;
          for (;;) {
            const w = stack[--sp]!;
            onStack[w] = 0;
            comp[w] = comps;
            size++;
            if (w === v) break;
          }
          sizes.push(size);
          comps++;
        }
        depth--;
        if (depth >= 0) {
          const parent = callNode[depth]!;
          if (low[v]! < low[parent]!) low[parent] = low[v]!;
        }
      }
    }
  }
  let bestComp = 0;
  for (let c = 1; c < comps; c++) if (sizes[c]! > sizes[bestComp]!) bestComp = c;
  const inScc = new Uint8Array(n);
  for (let v = 0; v < n; v++) if (comp[v] === bestComp) inScc[v] = 1;
  return inScc;
}

/** Drops road arcs outside the component, then edges without arcs and junctions without edges. */
function compact(g: RoadGraph, keepArc: Uint8Array): RoadGraph {
  const edgeCount = g.edgeU.length;
  const newEdge = new Int32Array(edgeCount).fill(-1);
  const jCount = g.junctionLon.length;
  const newJ = new Int32Array(jCount).fill(-1);
  let e2 = 0;
  let j2 = 0;
  let points = 0;
  for (let e = 0; e < edgeCount; e++) {
    if (!keepArc[2 * e] && !keepArc[2 * e + 1]) continue;
    newEdge[e] = e2++;
    points += g.edgeGeomFirst[e + 1]! - g.edgeGeomFirst[e]!;
    for (const j of [g.edgeU[e]!, g.edgeV[e]!]) if (newJ[j]! < 0) newJ[j] = j2++;
  }
  const junctionLon = new Float64Array(j2);
  const junctionLat = new Float64Array(j2);
  for (let j = 0; j < jCount; j++) {
    const t = newJ[j]!;
    if (t >= 0) {
      junctionLon[t] = g.junctionLon[j]!;
      junctionLat[t] = g.junctionLat[j]!;
    }
  }
  const edgeU = new Uint32Array(e2);
  const edgeV = new Uint32Array(e2);
  const edgeLength = new Float64Array(e2);
  const edgeName = new Int32Array(e2);
  const edgeFlags = new Uint8Array(e2);
  const edgeWay = new Float64Array(e2);
  const edgeGeomFirst = new Uint32Array(e2 + 1);
  const geomLon = new Float64Array(points);
  const geomLat = new Float64Array(points);
  const arcWeight = new Uint32Array(2 * e2);
  let q = 0;
  for (let e = 0; e < edgeCount; e++) {
    const t = newEdge[e]!;
    if (t < 0) continue;
    edgeU[t] = newJ[g.edgeU[e]!]!;
    edgeV[t] = newJ[g.edgeV[e]!]!;
    edgeLength[t] = g.edgeLength[e]!;
    edgeName[t] = g.edgeName[e]!;
    edgeFlags[t] = g.edgeFlags[e]!;
    edgeWay[t] = g.edgeWay[e]!;
    for (let p = g.edgeGeomFirst[e]!; p < g.edgeGeomFirst[e + 1]!; p++) {
      geomLon[q] = g.geomLon[p]!;
      geomLat[q] = g.geomLat[p]!;
      q++;
    }
    edgeGeomFirst[t + 1] = q;
    arcWeight[2 * t] = keepArc[2 * e] ? g.arcWeight[2 * e]! : INF_WEIGHT;
    arcWeight[2 * t + 1] = keepArc[2 * e + 1] ? g.arcWeight[2 * e + 1]! : INF_WEIGHT;
  }
  const ft: number[] = [];
  for (let i = 0; i < g.forbiddenTurns.length; i += 2) {
    const a = g.forbiddenTurns[i]!;
    const b = g.forbiddenTurns[i + 1]!;
    if (!keepArc[a] || !keepArc[b]) continue;
    ft.push(2 * newEdge[a >>> 1]! + (a & 1), 2 * newEdge[b >>> 1]! + (b & 1));
  }
  return {
    ...g,
    junctionLon,
    junctionLat,
    edgeU,
    edgeV,
    edgeLength,
    edgeName,
    edgeFlags,
    edgeWay,
    edgeGeomFirst,
    geomLon,
    geomLat,
    arcWeight,
    forbiddenTurns: Uint32Array.from(ft),
  };
}

function csr(count: number, keys: Uint32Array): { first: Uint32Array; items: Uint32Array } {
  const first = new Uint32Array(count + 1);
  for (let i = 0; i < keys.length; i++) first[keys[i]! + 1]!++;
  for (let v = 0; v < count; v++) first[v + 1]! += first[v]!;
  const items = new Uint32Array(keys.length);
  const fill = first.slice(0, count);
  for (let i = 0; i < keys.length; i++) items[fill[keys[i]!]!++] = i;
  return { first, items };
}

export interface BuildOptions {
  source: string;
  profile: ProfileName;
  onProgress?: ProgressCallback | undefined;
}

export function buildRoadNetwork(raw: RoadGraph, options: BuildOptions): RoadNetwork {
  const t0 = performance.now();
  const report = (phase: 'graph' | 'order' | 'contract' | 'index', fraction: number, message: string) =>
    options.onProgress?.({ phase, fraction, message });
  const junctionsBeforeScc = raw.junctionLon.length;
  const edgesBeforeScc = raw.edgeU.length;

  // 1–2: expand, find the largest SCC, keep its road arcs, compact, expand again
  const ex0 = expandTurns(raw);
  const scc0 = largestScc(ex0.nodeCount, ex0.xTail, ex0.xHead);
  const keepArc = new Uint8Array(raw.arcWeight.length);
  for (let i = 0; i < ex0.xTail.length; i++) {
    if (scc0[ex0.xTail[i]!] && scc0[ex0.xHead[i]!]) keepArc[ex0.xRoad[i]!] = 1;
  }
  const g = compact(raw, keepArc);
  const ex1 = expandTurns(g);
  // junction nodes that only exist as restriction "shadows" (no arc reaches them) are dropped here
  const scc1 = largestScc(ex1.nodeCount, ex1.xTail, ex1.xHead);
  report('graph', 0.36, `largest strongly connected component: ${g.junctionLon.length} junctions`);

  // undirected simple graph over the kept routing nodes
  const oldToNew = new Int32Array(ex1.nodeCount).fill(-1);
  let n = 0;
  for (let v = 0; v < ex1.nodeCount; v++) if (scc1[v]) oldToNew[v] = n++;
  const keptX: number[] = [];
  for (let i = 0; i < ex1.xTail.length; i++) if (scc1[ex1.xTail[i]!] && scc1[ex1.xHead[i]!]) keptX.push(i);
  let minLon = Number.POSITIVE_INFINITY;
  let minLat = Number.POSITIVE_INFINITY;
  let maxLon = Number.NEGATIVE_INFINITY;
  let maxLat = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < g.geomLon.length; i++) {
    const lo = g.geomLon[i]!;
    const la = g.geomLat[i]!;
    if (lo < minLon) minLon = lo;
    if (lo > maxLon) maxLon = lo;
    if (la < minLat) minLat = la;
    if (la > maxLat) maxLat = la;
  }
  const refLat = (minLat + maxLat) / 2;
  const projection = new LocalProjection(refLat);
  const px = new Float64Array(n);
  const py = new Float64Array(n);
  for (let v = 0; v < ex1.nodeCount; v++) {
    const t = oldToNew[v]!;
    if (t < 0) continue;
    const j = ex1.nodeJunction[v]!;
    px[t] = projection.x(g.junctionLon[j]!);
    py[t] = projection.y(g.junctionLat[j]!);
  }
  const undirected = (map: (v: number) => number) => {
    const pairs: number[] = [];
    for (const i of keptX) {
      const a = map(oldToNew[ex1.xTail[i]!]!);
      const b = map(oldToNew[ex1.xHead[i]!]!);
      if (a !== b) pairs.push(a, b, b, a);
    }
    const keys = new Uint32Array(pairs.length / 2);
    for (let i = 0; i < keys.length; i++) keys[i] = pairs[2 * i]!;
    const { first, items } = csr(n, keys);
    const adjRaw = new Uint32Array(items.length);
    for (let i = 0; i < items.length; i++) adjRaw[i] = pairs[2 * items[i]! + 1]!;
    // dedupe per node
    const dFirst = new Uint32Array(n + 1);
    const out: number[] = [];
    for (let v = 0; v < n; v++) {
      const list = Array.from(adjRaw.subarray(first[v]!, first[v + 1]!)).sort((x, y) => x - y);
      for (let k = 0; k < list.length; k++) if (k === 0 || list[k] !== list[k - 1]) out.push(list[k]!);
      dFirst[v + 1] = out.length;
    }
    return { n, first: dFirst, adj: Uint32Array.from(out) };
  };
  report('order', 0.37, 'computing nested-dissection order');
  const ug = undirected((v) => v);
  const rank = nestedDissectionOrder(ug, px, py, (f) =>
    report('order', 0.37 + 0.45 * f, `nested dissection ${(f * 100).toFixed(0)} %`),
  );

  report('contract', 0.83, 'contracting (metric independent)');
  const rg = undirected((v) => rank[v]!);
  const topo = contractTopology(n, rg.first, rg.adj);

  // routing arrays in rank space
  const nodeJunction = new Uint32Array(n);
  for (let v = 0; v < ex1.nodeCount; v++) {
    const t = oldToNew[v]!;
    if (t >= 0) nodeJunction[rank[t]!] = ex1.nodeJunction[v]!;
  }
  const arcHeadNode = new Int32Array(g.arcWeight.length).fill(-1);
  for (let a = 0; a < arcHeadNode.length; a++) {
    const h = ex1.arcHeadNode[a]!;
    if (h >= 0 && oldToNew[h]! >= 0) arcHeadNode[a] = rank[oldToNew[h]!]!;
  }
  const xc = keptX.length;
  const xTail = new Uint32Array(xc);
  const xHead = new Uint32Array(xc);
  const xRoad = new Uint32Array(xc);
  const xCch = new Uint32Array(xc);
  const xUp = new Uint8Array(xc);
  for (let k = 0; k < xc; k++) {
    const i = keptX[k]!;
    const a = rank[oldToNew[ex1.xTail[i]!]!]!;
    const b = rank[oldToNew[ex1.xHead[i]!]!]!;
    xTail[k] = a;
    xHead[k] = b;
    xRoad[k] = ex1.xRoad[i]!;
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    let p = topo.upFirst[lo]!;
    while (topo.upHead[p] !== hi) p++;
    xCch[k] = p;
    xUp[k] = a < b ? 1 : 0;
  }
  const roadCsr = csr(g.arcWeight.length, xRoad);
  const cchCsr = csr(topo.upHead.length, xCch);

  report('index', 0.95, 'building the spatial index');
  const segPointList: number[] = [];
  const segEdgeList: number[] = [];
  for (let e = 0; e < g.edgeU.length; e++) {
    for (let p = g.edgeGeomFirst[e]!; p < g.edgeGeomFirst[e + 1]! - 1; p++) {
      segPointList.push(p);
      segEdgeList.push(e);
    }
  }
  const segPoint = Uint32Array.from(segPointList);
  const segEdge = Uint32Array.from(segEdgeList);
  const index = new Flatbush(Math.max(1, segPoint.length));
  for (let s = 0; s < segPoint.length; s++) {
    const p = segPoint[s]!;
    const ax = projection.x(g.geomLon[p]!);
    const ay = projection.y(g.geomLat[p]!);
    const bx = projection.x(g.geomLon[p + 1]!);
    const by = projection.y(g.geomLat[p + 1]!);
    index.add(Math.min(ax, bx), Math.min(ay, by), Math.max(ax, bx), Math.max(ay, by));
  }
  if (segPoint.length === 0) index.add(0, 0, 0, 0);
  index.finish();
  report('index', 1, 'network built');

  return {
    meta: {
      formatVersion: NETWORK_FORMAT_VERSION,
      source: options.source,
      profile: options.profile,
      builtAt: new Date().toISOString(),
      names: g.names,
      refLat,
      bbox: [minLon, minLat, maxLon, maxLat],
      importStats: {
        ...raw.stats,
        junctionsBeforeScc,
        edgesBeforeScc,
        buildMs: Math.round(performance.now() - t0),
      },
    },
    junctionLon: g.junctionLon,
    junctionLat: g.junctionLat,
    edgeU: g.edgeU,
    edgeV: g.edgeV,
    edgeLength: g.edgeLength,
    edgeName: g.edgeName,
    edgeFlags: g.edgeFlags,
    edgeGeomFirst: g.edgeGeomFirst,
    geomLon: g.geomLon,
    geomLat: g.geomLat,
    arcWeight: g.arcWeight,
    forbiddenTurns: g.forbiddenTurns,
    nodeJunction,
    arcHeadNode,
    xTail,
    xHead,
    xRoad,
    xCch,
    xUp,
    roadXFirst: roadCsr.first,
    roadX: roadCsr.items,
    cchXFirst: cchCsr.first,
    cchX: cchCsr.items,
    topo,
    segPoint,
    segEdge,
    segIndexData: index.data as ArrayBuffer,
  };
}
