/**
 * Remembers event ids for a time window, like JetStream's duplicate window: a second publish of the same
 * id within the window is dropped. Bounded: past `maxIds` the oldest ids are forgotten early.
 */
export class DuplicateWindow {
  readonly #seen = new Map<string, number>();
  readonly #windowMs: number;
  readonly #maxIds: number;
  readonly #now: () => number;

  constructor(windowMs: number, maxIds = 100_000, now: () => number = Date.now) {
    this.#windowMs = windowMs;
    this.#maxIds = maxIds;
    this.#now = now;
  }

  /** True if the id was seen within the window; otherwise remembers it and returns false. */
  seen(id: string): boolean {
    const now = this.#now();
    // Ids are inserted in time order, so the expired ones are at the head of the map.
    for (const [oldId, expires] of this.#seen) {
      if (expires > now && this.#seen.size < this.#maxIds) break;
      this.#seen.delete(oldId);
    }
    const expires = this.#seen.get(id);
    if (expires !== undefined && expires > now) return true;
    if (this.#windowMs > 0) this.#seen.set(id, now + this.#windowMs);
    return false;
  }
}
