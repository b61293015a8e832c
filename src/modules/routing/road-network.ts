/**
 * The built road network: the road graph (junctions, edges with geometry, directed road arcs), the
 * turn-expanded routing graph (junctions split only where turn restrictions apply), the CCH topology
 * over it, and the spatial index of road segments. Compact typed arrays only: no object per node.
 */
import Flatbush from 'flatbush';
import type { CchTopology } from './cch-topology.ts';
import type { ProfileName } from './profile.ts';

/** Bumped whenever the import or the file layout changes, so cached graphs are rebuilt. */
export const NETWORK_FORMAT_VERSION = 2;

export interface NetworkMeta {
  formatVersion: number;
  source: string;
  profile: ProfileName;
  builtAt: string;
  names: string[];
  refLat: number;
  bbox: [number, number, number, number];
  importStats: {
    osmNodes: number;
    osmWays: number;
    restrictions: number;
    restrictionsSkipped: number;
    junctionsBeforeScc: number;
    edgesBeforeScc: number;
    buildMs: number;
  };
}

export interface RoadNetwork {
  meta: NetworkMeta;
  junctionLon: Float64Array;
  junctionLat: Float64Array;
  edgeU: Uint32Array;
  edgeV: Uint32Array;
  edgeLength: Float64Array;
  edgeName: Int32Array;
  edgeFlags: Uint8Array;
  edgeGeomFirst: Uint32Array;
  geomLon: Float64Array;
  geomLat: Float64Array;
  /** base travel time per road arc (2e: U→V, 2e+1: V→U), integer ms, INF_WEIGHT = not allowed */
  arcWeight: Uint32Array;
  forbiddenTurns: Uint32Array;
  /** routing node (= CCH rank) → junction */
  nodeJunction: Uint32Array;
  /** road arc → the routing node reached by driving it (-1 if the arc is unusable) */
  arcHeadNode: Int32Array;
  /** routing arcs: tail/head routing nodes, the road arc they drive, their CCH arc and direction */
  xTail: Uint32Array;
  xHead: Uint32Array;
  xRoad: Uint32Array;
  xCch: Uint32Array;
  /** 1 when the routing arc runs from the lower to the higher rank */
  xUp: Uint8Array;
  roadXFirst: Uint32Array;
  roadX: Uint32Array;
  cchXFirst: Uint32Array;
  cchX: Uint32Array;
  topo: CchTopology;
  /** segments of the geometry: start point index and edge; indexed in local metres */
  segPoint: Uint32Array;
  segEdge: Uint32Array;
  segIndexData: ArrayBuffer;
}

export function segmentIndex(net: RoadNetwork): Flatbush {
  return Flatbush.from(net.segIndexData);
}

/** Typed arrays of a network by name, in a fixed order (the cache file layout). */
export const ARRAY_FIELDS = [
  'junctionLon',
  'junctionLat',
  'edgeU',
  'edgeV',
  'edgeLength',
  'edgeName',
  'edgeFlags',
  'edgeGeomFirst',
  'geomLon',
  'geomLat',
  'arcWeight',
  'forbiddenTurns',
  'nodeJunction',
  'arcHeadNode',
  'xTail',
  'xHead',
  'xRoad',
  'xCch',
  'xUp',
  'roadXFirst',
  'roadX',
  'cchXFirst',
  'cchX',
  'segPoint',
  'segEdge',
] as const;

export const TOPO_FIELDS = [
  'upFirst',
  'upHead',
  'arcTail',
  'downFirst',
  'downArc',
  'parent',
  'triangles',
] as const;

export function networkBytes(net: RoadNetwork): number {
  let b = net.segIndexData.byteLength;
  for (const f of ARRAY_FIELDS) b += net[f].byteLength;
  for (const f of TOPO_FIELDS) b += net.topo[f].byteLength;
  return b;
}
