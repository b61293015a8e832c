/** Deterministic random coordinates on (or near) a network, for tests and benchmarks. */
import type { RoadNetwork } from '../road-network.ts';
import type { LonLat } from '../routing-engine.ts';

export function seededRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A point on a random road segment, optionally moved up to `jitterDeg` degrees off it. */
export function randomRoadPoint(net: RoadNetwork, rnd: () => number, jitterDeg = 0): LonLat {
  const s = Math.floor(rnd() * net.segPoint.length);
  const p = net.segPoint[s]!;
  const t = rnd();
  const lon = net.geomLon[p]! + t * (net.geomLon[p + 1]! - net.geomLon[p]!);
  const lat = net.geomLat[p]! + t * (net.geomLat[p + 1]! - net.geomLat[p]!);
  return [lon + (rnd() - 0.5) * 2 * jitterDeg, lat + (rnd() - 0.5) * 2 * jitterDeg];
}
