/**
 * Reads an OpenStreetMap PBF extract (with the maintained `tiny-osmpbf` parser) into a road graph:
 * junctions (OSM nodes where roads meet or end), edges (the stretch of one way between two junctions,
 * with its geometry), directed arcs with integer travel times, and the forbidden turns from
 * restriction relations. Degree-2 nodes are folded into edge geometry.
 */
import { readFileSync } from 'node:fs';
import parseOsmPbf, { type OsmElement } from 'tiny-osmpbf';
import { AppError } from '../../kernel/index.ts';
import { haversineMeters } from './geo.ts';
import { type Profile, wayRouting } from './profile.ts';

/** Travel-time weights are integer milliseconds; this value means "not traversable". */
export const INF_WEIGHT = 0x7fffffff;

export interface ImportProgress {
  phase: 'download' | 'parse' | 'graph' | 'order' | 'contract' | 'index' | 'cache' | 'load';
  /** overall fraction 0..1 (the parse phase is estimated from the file size) */
  fraction: number;
  message: string;
}
export type ProgressCallback = (p: ImportProgress) => void;

export interface RoadGraph {
  junctionLon: Float64Array;
  junctionLat: Float64Array;
  edgeU: Uint32Array;
  edgeV: Uint32Array;
  edgeLength: Float64Array;
  /** index into names, -1 when unnamed */
  edgeName: Int32Array;
  /** bit 0: roundabout */
  edgeFlags: Uint8Array;
  edgeWay: Float64Array;
  edgeGeomFirst: Uint32Array;
  geomLon: Float64Array;
  geomLat: Float64Array;
  /** arc 2e runs U→V, arc 2e+1 runs V→U; INF_WEIGHT when that direction is not allowed */
  arcWeight: Uint32Array;
  /** forbidden turns as pairs (fromArc, toArc) through the junction between them */
  forbiddenTurns: Uint32Array;
  names: string[];
  stats: { osmNodes: number; osmWays: number; restrictions: number; restrictionsSkipped: number };
}

export interface ImportOptions {
  profile: Profile;
  onProgress?: ProgressCallback | undefined;
}

const PBF_HEADER_MARK = Buffer.from('OSMHeader');

export function readOsmPbfFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new AppError(
      'ROUTING_SOURCE_NOT_FOUND',
      `Cannot read road data file ${path}`,
      { path },
      { cause: e },
    );
  }
}

interface WayRecord {
  id: number;
  nodes: number[];
  speed: number;
  forward: boolean;
  backward: boolean;
  name: number;
  roundabout: boolean;
}

interface RestrictionRecord {
  kind: 'no' | 'only';
  from: number;
  via: number;
  to: number;
}

export function importOsmPbfBuffer(data: Uint8Array, options: ImportOptions): RoadGraph {
  const { profile, onProgress } = options;
  if (data.byteLength < 16 || Buffer.from(data.subarray(0, 32)).indexOf(PBF_HEADER_MARK) < 0) {
    throw new AppError('ROUTING_NOT_OSM_PBF', 'The file does not start with an OSMHeader block');
  }
  const nodeIndex = new Map<number, number>();
  let lon: number[] = [];
  let lat: number[] = [];
  const ways: WayRecord[] = [];
  const restrictions: RestrictionRecord[] = [];
  const names: string[] = [];
  const nameIndex = new Map<string, number>();
  let restrictionsSkipped = 0;
  let elements = 0;
  const estimated = Math.max(1, data.byteLength * 0.13);
  const report = (phase: ImportProgress['phase'], fraction: number, message: string) =>
    onProgress?.({ phase, fraction, message });
  report('parse', 0, 'parsing OpenStreetMap data');

  const handle = (el: OsmElement) => {
    elements++;
    if ((elements & 0xffff) === 0) {
      report('parse', 0.3 * Math.min(0.98, elements / estimated), `parsed ${elements} elements`);
    }
    if (el.type === 'node') {
      nodeIndex.set(el.id, lon.length);
      lon.push(el.lon);
      lat.push(el.lat);
    } else if (el.type === 'way') {
      const r = wayRouting(el.tags, profile);
      if (!r || el.nodes.length < 2) return;
      const label = el.tags.name ?? el.tags.ref;
      let name = -1;
      if (label !== undefined) {
        const known = nameIndex.get(label);
        if (known === undefined) {
          name = names.length;
          names.push(label);
          nameIndex.set(label, name);
        } else name = known;
      }
      ways.push({
        id: el.id,
        nodes: el.nodes,
        speed: r.speed,
        forward: r.forward,
        backward: r.backward,
        name,
        roundabout: el.tags.junction === 'roundabout' || el.tags.junction === 'circular',
      });
    } else {
      const t = el.tags;
      if (t.type !== 'restriction') return;
      const value = t['restriction:motorcar'] ?? t.restriction;
      const except = (t.except ?? '').split(';').map((s) => s.trim());
      if (!value || except.includes('motorcar') || except.includes('motor_vehicle')) return;
      if (profile.honoursEmergencyAccess && except.includes('emergency')) return;
      const kind = value.startsWith('no_') ? 'no' : value.startsWith('only_') ? 'only' : undefined;
      const from = el.members.filter((m) => m.role === 'from' && m.type === 'way');
      const via = el.members.filter((m) => m.role === 'via');
      const to = el.members.filter((m) => m.role === 'to' && m.type === 'way');
      if (!kind || from.length !== 1 || to.length !== 1 || via.length !== 1 || via[0]!.type !== 'node') {
        restrictionsSkipped++;
        return;
      }
      restrictions.push({ kind, from: from[0]!.ref, via: via[0]!.ref, to: to[0]!.ref });
    }
  };

  try {
    parseOsmPbf(data, handle);
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw new AppError(
      'ROUTING_CORRUPT_FILE',
      `The OpenStreetMap PBF data could not be decoded: ${(e as Error).message}`,
      undefined,
      { cause: e },
    );
  }
  report('graph', 0.3, `parsed ${elements} elements, ${ways.length} routable ways`);

  // Junctions: nodes used more than once among routable ways, way ends, and restriction via nodes.
  const nodeCount = lon.length;
  const use = new Uint8Array(nodeCount);
  for (const w of ways) {
    for (let i = 0; i < w.nodes.length; i++) {
      const idx = nodeIndex.get(w.nodes[i]!);
      if (idx === undefined) continue;
      const bump = i === 0 || i === w.nodes.length - 1 ? 2 : 1;
      use[idx] = Math.min(255, use[idx]! + bump);
    }
  }
  for (const r of restrictions) {
    const idx = nodeIndex.get(r.via);
    if (idx !== undefined) use[idx] = Math.max(use[idx]!, 2);
  }
  const junctionOf = new Int32Array(nodeCount).fill(-1);
  const jLon: number[] = [];
  const jLat: number[] = [];
  const junction = (idx: number) => {
    let j = junctionOf[idx]!;
    if (j < 0) {
      j = jLon.length;
      junctionOf[idx] = j;
      jLon.push(lon[idx]!);
      jLat.push(lat[idx]!);
    }
    return j;
  };

  const eU: number[] = [];
  const eV: number[] = [];
  const eLen: number[] = [];
  const eName: number[] = [];
  const eFlags: number[] = [];
  const eWay: number[] = [];
  const wFwd: number[] = [];
  const wBwd: number[] = [];
  const gFirst: number[] = [0];
  const gLon: number[] = [];
  const gLat: number[] = [];
  for (const w of ways) {
    let start = -1;
    let segLon: number[] = [];
    let segLat: number[] = [];
    let length = 0;
    for (let i = 0; i < w.nodes.length; i++) {
      const idx = nodeIndex.get(w.nodes[i]!);
      if (idx === undefined) {
        // a node outside the extract: the way is cut here
        start = -1;
        segLon = [];
        segLat = [];
        length = 0;
        continue;
      }
      const x = lon[idx]!;
      const y = lat[idx]!;
      if (segLon.length > 0)
        length += haversineMeters(segLon[segLon.length - 1]!, segLat[segLat.length - 1]!, x, y);
      segLon.push(x);
      segLat.push(y);
      if (use[idx]! >= 2) {
        const j = junction(idx);
        if (start >= 0 && start !== j) {
          const ms = Math.max(1, Math.round((length / (w.speed / 3.6)) * 1000));
          eU.push(start);
          eV.push(j);
          eLen.push(length);
          eName.push(w.name);
          eFlags.push(w.roundabout ? 1 : 0);
          eWay.push(w.id);
          wFwd.push(w.forward ? ms : INF_WEIGHT);
          wBwd.push(w.backward ? ms : INF_WEIGHT);
          for (let k = 0; k < segLon.length; k++) {
            gLon.push(segLon[k]!);
            gLat.push(segLat[k]!);
          }
          gFirst.push(gLon.length);
        }
        start = j;
        segLon = [x];
        segLat = [y];
        length = 0;
      }
    }
  }
  const edgeCount = eU.length;
  if (edgeCount === 0) throw new AppError('ROUTING_EMPTY_NETWORK', 'The extract contains no routable roads');
  // free parse memory early
  lon = [];
  lat = [];

  const arcWeight = new Uint32Array(2 * edgeCount);
  for (let e = 0; e < edgeCount; e++) {
    arcWeight[2 * e] = wFwd[e]!;
    arcWeight[2 * e + 1] = wBwd[e]!;
  }
  const edgeU = Uint32Array.from(eU);
  const edgeV = Uint32Array.from(eV);

  // Turn restrictions → forbidden (fromArc, toArc) pairs.
  const jCount = jLon.length;
  const incFirst = new Uint32Array(jCount + 1);
  for (let e = 0; e < edgeCount; e++) {
    incFirst[edgeU[e]! + 1]!++;
    incFirst[edgeV[e]! + 1]!++;
  }
  for (let j = 0; j < jCount; j++) incFirst[j + 1]! += incFirst[j]!;
  const incEdges = new Uint32Array(2 * edgeCount);
  const fill = incFirst.slice(0, jCount);
  for (let e = 0; e < edgeCount; e++) {
    incEdges[fill[edgeU[e]!]!++] = e;
    incEdges[fill[edgeV[e]!]!++] = e;
  }
  const forbidden = new Set<number>();
  const pairKey = (a: number, b: number) => a * 0x4000000 + b;
  let restrictionCount = 0;
  for (const r of restrictions) {
    const vIdx = nodeIndex.get(r.via);
    const j = vIdx === undefined ? -1 : junctionOf[vIdx]!;
    if (j < 0) {
      restrictionsSkipped++;
      continue;
    }
    const into: number[] = [];
    const outOf: number[] = [];
    const allOut: number[] = [];
    for (let k = incFirst[j]!; k < incFirst[j + 1]!; k++) {
      const e = incEdges[k]!;
      // arc entering j and arc leaving j along edge e
      const inArc = edgeV[e] === j ? 2 * e : 2 * e + 1;
      const outArc = edgeU[e] === j ? 2 * e : 2 * e + 1;
      if (arcWeight[outArc] !== INF_WEIGHT) allOut.push(outArc);
      if (eWay[e] === r.from && arcWeight[inArc] !== INF_WEIGHT) into.push(inArc);
      if (eWay[e] === r.to && arcWeight[outArc] !== INF_WEIGHT) outOf.push(outArc);
    }
    if (into.length === 0 || outOf.length === 0) {
      restrictionsSkipped++;
      continue;
    }
    restrictionCount++;
    for (const a of into) {
      if (r.kind === 'no') for (const b of outOf) forbidden.add(pairKey(a, b));
      else for (const b of allOut) if (!outOf.includes(b)) forbidden.add(pairKey(a, b));
    }
  }
  const pairs = [...forbidden].sort((x, y) => x - y);
  const forbiddenTurns = new Uint32Array(pairs.length * 2);
  for (let i = 0; i < pairs.length; i++) {
    forbiddenTurns[2 * i] = Math.floor(pairs[i]! / 0x4000000);
    forbiddenTurns[2 * i + 1] = pairs[i]! % 0x4000000;
  }
  report(
    'graph',
    0.33,
    `${jCount} junctions, ${edgeCount} road segments, ${restrictionCount} turn restrictions`,
  );

  return {
    junctionLon: Float64Array.from(jLon),
    junctionLat: Float64Array.from(jLat),
    edgeU,
    edgeV,
    edgeLength: Float64Array.from(eLen),
    edgeName: Int32Array.from(eName),
    edgeFlags: Uint8Array.from(eFlags),
    edgeWay: Float64Array.from(eWay),
    edgeGeomFirst: Uint32Array.from(gFirst),
    geomLon: Float64Array.from(gLon),
    geomLat: Float64Array.from(gLat),
    arcWeight,
    forbiddenTurns,
    names,
    stats: { osmNodes: nodeCount, osmWays: ways.length, restrictions: restrictionCount, restrictionsSkipped },
  };
}

export function arcTail(g: { edgeU: Uint32Array; edgeV: Uint32Array }, arc: number): number {
  const e = arc >>> 1;
  return (arc & 1) === 0 ? g.edgeU[e]! : g.edgeV[e]!;
}

export function arcHead(g: { edgeU: Uint32Array; edgeV: Uint32Array }, arc: number): number {
  const e = arc >>> 1;
  return (arc & 1) === 0 ? g.edgeV[e]! : g.edgeU[e]!;
}
