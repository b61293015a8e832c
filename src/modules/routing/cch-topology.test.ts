import { describe, expect, it } from 'vitest';
import { contractTopology, findArc } from './cch-topology.ts';
import { nestedDissectionOrder } from './nested-dissection.ts';
import { tracePolygons } from './raster-polygon.ts';

/** An undirected w × h grid graph with coordinates. */
function grid(w: number, h: number) {
  const n = w * h;
  const lists: number[][] = Array.from({ length: n }, () => []);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = y * w + x;
      const link = (u: number) => {
        lists[v]!.push(u);
        lists[u]!.push(v);
      };
      if (x + 1 < w) link(v + 1);
      if (y + 1 < h) link(v + w);
    }
  }
  const first = new Uint32Array(n + 1);
  lists.forEach((l, v) => {
    first[v + 1] = first[v]! + l.length;
  });
  const adj = Uint32Array.from(lists.flat());
  const xs = Float64Array.from({ length: n }, (_, v) => v % w);
  const ys = Float64Array.from({ length: n }, (_, v) => Math.floor(v / w));
  return { g: { n, first, adj }, xs, ys, lists };
}

describe('nested dissection and contraction', () => {
  it('orders a grid as a permutation with small top separators', () => {
    const { g, xs, ys } = grid(30, 20);
    const rank = nestedDissectionOrder(g, xs, ys);
    expect([...rank].sort((a, b) => a - b)).toEqual(Array.from({ length: g.n }, (_, i) => i));
    // the highest ranks are a separator: removing them splits the grid
    const top = new Set([...rank.keys()].filter((v) => rank[v]! >= g.n - 20));
    const seen = new Set<number>();
    const start = [...rank.keys()].find((v) => !top.has(v))!;
    const stack = [start];
    seen.add(start);
    while (stack.length > 0) {
      const v = stack.pop()!;
      for (let p = g.first[v]!; p < g.first[v + 1]!; p++) {
        const u = g.adj[p]!;
        if (!top.has(u) && !seen.has(u)) {
          seen.add(u);
          stack.push(u);
        }
      }
    }
    expect(seen.size).toBeLessThan(g.n - top.size);
  });

  it('contraction yields a chordal supergraph whose up-neighbours are elimination-tree ancestors', () => {
    const { g, xs, ys, lists } = grid(12, 9);
    const rank = nestedDissectionOrder(g, xs, ys);
    // relabel by rank
    const rl: number[][] = Array.from({ length: g.n }, () => []);
    lists.forEach((l, v) => {
      for (const u of l) rl[rank[v]!]!.push(rank[u]!);
    });
    const first = new Uint32Array(g.n + 1);
    rl.forEach((l, v) => {
      first[v + 1] = first[v]! + l.length;
    });
    const topo = contractTopology(g.n, first, Uint32Array.from(rl.flat()));
    // every original edge is an arc
    rl.forEach((l, v) => {
      for (const u of l) expect(findArc(topo, v, u)).toBeGreaterThanOrEqual(0);
    });
    for (let v = 0; v < g.n; v++) {
      const ups = Array.from(topo.upHead.subarray(topo.upFirst[v]!, topo.upFirst[v + 1]!));
      // up-neighbours form a clique (chordality) …
      for (let i = 0; i < ups.length; i++)
        for (let j = i + 1; j < ups.length; j++)
          expect(findArc(topo, ups[i]!, ups[j]!)).toBeGreaterThanOrEqual(0);
      // … and lie on the elimination-tree path to the root
      const ancestors = new Set<number>();
      for (let a = topo.parent[v]!; a >= 0; a = topo.parent[a]!) ancestors.add(a);
      for (const u of ups) expect(ancestors.has(u)).toBe(true);
    }
    const expected = Array.from({ length: g.n }, (_, v) => {
      const d = topo.upFirst[v + 1]! - topo.upFirst[v]!;
      return (d * (d - 1)) / 2;
    }).reduce((a, b) => a + b, 0);
    expect(topo.triangles.length).toBe(expected);
  });
});

describe('raster outlines', () => {
  const raster = (rows: string[]) => {
    const height = rows.length;
    const width = rows[0]!.length;
    const filled = new Uint8Array(width * height);
    // row 0 of the picture is the top (highest y)
    rows.forEach((r, i) => {
      for (let x = 0; x < width; x++) if (r[x] === '#') filled[(height - 1 - i) * width + x] = 1;
    });
    return { width, height, x0: 0, y0: 0, cell: 1, filled };
  };
  const area = (ring: number[]) => {
    let a = 0;
    for (let i = 0; i + 3 < ring.length; i += 2) a += ring[i]! * ring[i + 3]! - ring[i + 2]! * ring[i + 1]!;
    return a / 2;
  };

  it('traces a block as one counter-clockwise ring', () => {
    const polys = tracePolygons(raster(['....', '.##.', '.##.', '....']));
    expect(polys).toHaveLength(1);
    expect(polys[0]).toHaveLength(1);
    expect(area(polys[0]![0]!)).toBe(4);
    expect(polys[0]![0]!.slice(0, 2)).toEqual(polys[0]![0]!.slice(-2));
  });

  it('keeps holes (clockwise) and separate parts', () => {
    const polys = tracePolygons(raster(['#####..', '#...#..', '#####.#']));
    expect(polys).toHaveLength(2);
    const withHole = polys.find((p) => p.length === 2)!;
    expect(area(withHole[0]!)).toBe(15);
    expect(area(withHole[1]!)).toBe(-3);
    expect(area(polys.find((p) => p.length === 1)![0]!)).toBe(1);
  });
});
