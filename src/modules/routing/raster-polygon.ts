/**
 * Turns a filled raster (cells reached within the time limit) into GeoJSON polygon rings by tracing the
 * boundary between filled and empty cells: outer rings counter-clockwise, holes clockwise (RFC 7946).
 */

export interface Raster {
  width: number;
  height: number;
  /** projected metres of the lower-left corner of cell (0,0) */
  x0: number;
  y0: number;
  cell: number;
  filled: Uint8Array;
}

type Ring = number[]; // flat x,y pairs in projected metres, closed

function signedArea(r: Ring): number {
  let a = 0;
  for (let i = 0; i + 3 < r.length; i += 2) a += r[i]! * r[i + 3]! - r[i + 2]! * r[i + 1]!;
  return a / 2;
}

function inside(x: number, y: number, r: Ring): boolean {
  let c = false;
  const n = r.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const xi = r[2 * i]!;
    const yi = r[2 * i + 1]!;
    const xj = r[2 * j]!;
    const yj = r[2 * j + 1]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) c = !c;
  }
  return c;
}

/** Polygons as arrays of rings (first outer, then holes), in projected metres. */
export function tracePolygons(r: Raster): Ring[][] {
  const { width: w, height: h, filled } = r;
  const at = (i: number, j: number) => i >= 0 && j >= 0 && i < w && j < h && filled[j * w + i] === 1;
  const W = w + 1;
  const fromV: number[] = [];
  const toV: number[] = [];
  const out = new Map<number, number[]>();
  const add = (a: number, b: number) => {
    const id = fromV.length;
    fromV.push(a);
    toV.push(b);
    const l = out.get(a);
    if (l) l.push(id);
    else out.set(a, [id]);
  };
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      if (!at(i, j)) continue;
      if (!at(i, j - 1)) add(j * W + i, j * W + i + 1);
      if (!at(i + 1, j)) add(j * W + i + 1, (j + 1) * W + i + 1);
      if (!at(i, j + 1)) add((j + 1) * W + i + 1, (j + 1) * W + i);
      if (!at(i - 1, j)) add((j + 1) * W + i, j * W + i);
    }
  }
  const used = new Uint8Array(fromV.length);
  const rings: Ring[] = [];
  const dir = (e: number) => {
    const a = fromV[e]!;
    const b = toV[e]!;
    return [(b % W) - (a % W), Math.floor(b / W) - Math.floor(a / W)] as const;
  };
  for (let start = 0; start < fromV.length; start++) {
    if (used[start]) continue;
    const verts: number[] = [];
    let e = start;
    while (!used[e]) {
      used[e] = 1;
      verts.push(fromV[e]!);
      const candidates = (out.get(toV[e]!) ?? []).filter((c) => !used[c]);
      if (candidates.length === 0) break;
      if (candidates.length === 1) e = candidates[0]!;
      else {
        // pinch vertex: turn left (keeps diagonal cells in separate rings)
        const [dx, dy] = dir(e);
        e =
          candidates.find((c) => {
            const [cx, cy] = dir(c);
            return dx * cy - dy * cx > 0;
          }) ?? candidates[0]!;
      }
    }
    // drop collinear vertices
    const ring: Ring = [];
    const n = verts.length;
    for (let k = 0; k < n; k++) {
      const p = verts[(k + n - 1) % n]!;
      const c = verts[k]!;
      const q = verts[(k + 1) % n]!;
      const ax = (c % W) - (p % W);
      const ay = Math.floor(c / W) - Math.floor(p / W);
      const bx = (q % W) - (c % W);
      const by = Math.floor(q / W) - Math.floor(c / W);
      if (ax * by - ay * bx === 0) continue;
      ring.push(r.x0 + (c % W) * r.cell, r.y0 + Math.floor(c / W) * r.cell);
    }
    if (ring.length >= 6) {
      ring.push(ring[0]!, ring[1]!);
      rings.push(ring);
    }
  }
  const outers = rings.filter((x) => signedArea(x) > 0);
  const holes = rings.filter((x) => signedArea(x) < 0);
  const polys: Ring[][] = outers.map((o) => [o]);
  for (const hole of holes) {
    let best = -1;
    let bestArea = Number.POSITIVE_INFINITY;
    outers.forEach((o, k) => {
      const a = signedArea(o);
      if (a < bestArea && inside(hole[0]!, hole[1]!, o)) {
        best = k;
        bestArea = a;
      }
    });
    if (best >= 0) polys[best]!.push(hole);
  }
  return polys;
}
