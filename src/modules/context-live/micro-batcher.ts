/**
 * Gathers items handed in one at a time and writes them in batches: a batch leaves as soon as the writer
 * is idle (no added delay when the load is light) or when it is full; items that arrive while a batch is
 * being written form the next one. `add` resolves when the item's batch is written.
 */
export class MicroBatcher<T> {
  readonly #write: (items: T[]) => Promise<void>;
  readonly #max: number;
  #buffer: Array<{ item: T; resolve: () => void; reject: (e: unknown) => void }> = [];
  #writing = false;
  #scheduled = false;

  constructor(write: (items: T[]) => Promise<void>, maxBatch = 1000) {
    this.#write = write;
    this.#max = maxBatch;
  }

  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#buffer.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  addMany(items: T[]): Promise<void> {
    return Promise.all(items.map((i) => this.add(i))).then(() => undefined);
  }

  #schedule(): void {
    if (this.#writing || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#writing || this.#buffer.length === 0) return;
    this.#writing = true;
    const batch = this.#buffer.splice(0, this.#max);
    try {
      await this.#write(batch.map((b) => b.item));
      for (const b of batch) b.resolve();
    } catch (e) {
      for (const b of batch) b.reject(e);
    } finally {
      this.#writing = false;
      if (this.#buffer.length > 0) this.#schedule();
    }
  }

  /** Resolves when everything handed in so far is written. */
  async drain(): Promise<void> {
    while (this.#buffer.length > 0 || this.#writing || this.#scheduled) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
