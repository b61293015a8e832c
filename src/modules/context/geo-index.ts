/**
 * An in-memory spatial index of GeoProperty values, per tenant: a uniform grid (0.005°, about 550 m) of
 * entries that carry what a geo-query needs without touching the database — the geometry, its box, the
 * entity's types, read keys and modification time. Geometries spanning many cells sit in a short list
 * scanned on every query.
 *
 * The database stays the source of truth: a tenant's index is loaded from it on first use; the service
 * applies its own writes after each commit, and writes of other instances arrive as entity change events
 * (applied only when newer than what the index holds, so late or duplicate events are harmless).
 */
import type { ExpandedEntity } from './entity-model.ts';
import { instancesOf } from './entity-model.ts';
import { type BBox, bbox, type Geometry, validateGeometry } from './geometry.ts';

export interface GeoEntry {
  id: string;
  attr: string;
  geometry: Geometry;
  box: BBox;
  types: string[];
  readKeys: string[];
}

/** Grid cell size in degrees (about 550 m north-south). */
const CELL = 0.005;
const MAX_CELL = Math.ceil(180 / CELL) + 1;
const MAX_CELLS_PER_ENTRY = 64;

function cellOf(v: number, max: number): number {
  return Math.max(-max, Math.min(max, Math.floor(v / CELL)));
}

function key(cx: number, cy: number): number {
  return (cx + MAX_CELL) * (2 * MAX_CELL + 1) + (cy + MAX_CELL);
}

export class TenantGeoIndex {
  readonly #cells = new Map<number, GeoEntry[]>();
  readonly #large: GeoEntry[] = [];
  /** Entries placed in more than one cell (found once per query). */
  readonly #multiCell = new WeakSet<GeoEntry>();
  readonly #byId = new Map<string, { entries: GeoEntry[]; modifiedAt: string }>();
  /** Deleted ids and when, so that a late event does not bring an entity back. */
  readonly #deleted = new Map<string, string>();

  get size(): number {
    return this.#byId.size;
  }

  /** Sets the entity's entries if `modifiedAt` is not older than what the index holds. */
  upsert(entity: ExpandedEntity, readKeys: string[], modifiedAt: string): void {
    const current = this.#byId.get(entity.id);
    if (current && current.modifiedAt > modifiedAt) return;
    const deletedAt = this.#deleted.get(entity.id);
    if (deletedAt !== undefined) {
      if (deletedAt > modifiedAt) return;
      this.#deleted.delete(entity.id);
    }
    this.#removeEntries(entity.id);
    const entries: GeoEntry[] = [];
    for (const [attr, v] of Object.entries(entity)) {
      for (const inst of instancesOf(v)) {
        if (inst === null || typeof inst !== 'object' || inst.type !== 'GeoProperty') continue;
        let geometry: Geometry;
        try {
          geometry = validateGeometry(inst.value, 'value', { bounds: false });
        } catch {
          continue;
        }
        entries.push({ id: entity.id, attr, geometry, box: bbox(geometry), types: entity.type, readKeys });
      }
    }
    for (const e of entries) this.#place(e);
    this.#byId.set(entity.id, { entries, modifiedAt });
  }

  delete(id: string, at: string): void {
    const current = this.#byId.get(id);
    if (current && current.modifiedAt > at) return;
    this.#removeEntries(id);
    this.#byId.delete(id);
    this.#deleted.set(id, at);
    if (this.#deleted.size > 100_000) {
      const oldest = this.#deleted.keys().next().value;
      if (oldest !== undefined) this.#deleted.delete(oldest);
    }
  }

  /** Entries of `attr` whose box meets `box` (every entry of `attr` when box is null). */
  search(attr: string, box: BBox | null): GeoEntry[] {
    const out: GeoEntry[] = [];
    if (box === null) {
      for (const { entries } of this.#byId.values())
        for (const e of entries) if (e.attr === attr) out.push(e);
      return out;
    }
    const meets = (e: GeoEntry) =>
      e.attr === attr &&
      e.box.minX <= box.maxX &&
      e.box.maxX >= box.minX &&
      e.box.minY <= box.maxY &&
      e.box.maxY >= box.minY;
    const x0 = cellOf(box.minX, MAX_CELL);
    const x1 = cellOf(box.maxX, MAX_CELL);
    const y0 = cellOf(box.minY, MAX_CELL);
    const y1 = cellOf(box.maxY, MAX_CELL);
    if ((x1 - x0 + 1) * (y1 - y0 + 1) > 4 * this.#cells.size) {
      // A query box larger than the populated area: scanning entries is cheaper than cells.
      for (const { entries } of this.#byId.values()) for (const e of entries) if (meets(e)) out.push(e);
      return out;
    }
    const seen = new Set<GeoEntry>();
    for (let cx = x0; cx <= x1; cx++) {
      for (let cy = y0; cy <= y1; cy++) {
        const list = this.#cells.get(key(cx, cy));
        if (!list) continue;
        for (const e of list) {
          if (!meets(e)) continue;
          if (this.#multiCell.has(e)) {
            if (seen.has(e)) continue;
            seen.add(e);
          }
          out.push(e);
        }
      }
    }
    for (const e of this.#large) if (meets(e)) out.push(e);
    return out;
  }

  #place(e: GeoEntry): void {
    const x0 = cellOf(e.box.minX, MAX_CELL);
    const x1 = cellOf(e.box.maxX, MAX_CELL);
    const y0 = cellOf(e.box.minY, MAX_CELL);
    const y1 = cellOf(e.box.maxY, MAX_CELL);
    if ((x1 - x0 + 1) * (y1 - y0 + 1) > MAX_CELLS_PER_ENTRY) {
      this.#large.push(e);
      return;
    }
    if (x1 > x0 || y1 > y0) this.#multiCell.add(e);
    for (let cx = x0; cx <= x1; cx++) {
      for (let cy = y0; cy <= y1; cy++) {
        const k = key(cx, cy);
        let list = this.#cells.get(k);
        if (!list) {
          list = [];
          this.#cells.set(k, list);
        }
        list.push(e);
      }
    }
  }

  #removeEntries(id: string): void {
    const current = this.#byId.get(id);
    if (!current) return;
    for (const e of current.entries) {
      const x0 = cellOf(e.box.minX, MAX_CELL);
      const x1 = cellOf(e.box.maxX, MAX_CELL);
      const y0 = cellOf(e.box.minY, MAX_CELL);
      const y1 = cellOf(e.box.maxY, MAX_CELL);
      if ((x1 - x0 + 1) * (y1 - y0 + 1) > MAX_CELLS_PER_ENTRY) {
        const i = this.#large.indexOf(e);
        if (i >= 0) this.#large.splice(i, 1);
        continue;
      }
      for (let cx = x0; cx <= x1; cx++) {
        for (let cy = y0; cy <= y1; cy++) {
          const k = key(cx, cy);
          const list = this.#cells.get(k);
          if (!list) continue;
          const i = list.indexOf(e);
          if (i >= 0) list.splice(i, 1);
          if (list.length === 0) this.#cells.delete(k);
        }
      }
    }
  }
}

/** One row of a tenant's geo table, as the store loads it. */
export interface GeoIndexRow {
  id: string;
  types: string[];
  readKeys: string[];
  modifiedAt: string;
  attr: string;
  geometry: unknown;
}

/**
 * A tenant's index and its rebuilding: the index is rebuilt from the store from time to time, so that a
 * change event lost in transit (another instance's write) cannot leave it stale for long. While a
 * rebuild loads, changes go to both indexes; the load never overwrites newer data (time-guarded).
 */
export class GeoIndexHolder {
  current = new TenantGeoIndex();
  loadedAt = 0;
  #next: TenantGeoIndex | undefined;

  get rebuilding(): boolean {
    return this.#next !== undefined;
  }

  upsert(entity: ExpandedEntity, readKeys: string[], modifiedAt: string): void {
    this.current.upsert(entity, readKeys, modifiedAt);
    this.#next?.upsert(entity, readKeys, modifiedAt);
  }

  delete(id: string, at: string): void {
    this.current.delete(id, at);
    this.#next?.delete(id, at);
  }

  async rebuild(load: () => Promise<GeoIndexRow[]>, now: () => number = Date.now): Promise<void> {
    if (this.#next) return;
    const next = new TenantGeoIndex();
    this.#next = next;
    try {
      const byId = new Map<string, GeoIndexRow[]>();
      for (const r of await load()) {
        const list = byId.get(r.id);
        if (list) list.push(r);
        else byId.set(r.id, [r]);
      }
      for (const [id, rows] of byId) {
        const first = rows[0]!;
        const entity: ExpandedEntity = { id, type: first.types };
        for (const r of rows) {
          const v = { type: 'GeoProperty' as const, value: r.geometry };
          const prev = entity[r.attr];
          entity[r.attr] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
        }
        next.upsert(entity, first.readKeys, first.modifiedAt);
      }
      this.current = next;
      this.loadedAt = now();
    } finally {
      this.#next = undefined;
    }
  }
}
