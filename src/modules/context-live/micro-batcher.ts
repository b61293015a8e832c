/**
 * Gathers items handed in one at a time and writes them in batches: a batch leaves as soon as the writer
 * is idle (no added delay when the load is light) or when it is full; items that arrive while a batch is
 * being written form the next one. `add` resolves when the item's batch is written.
 *
 * Under load a batch may wait a moment to fill (`lingerMs`): when the last batch was large and its write
 * ended a moment ago, the writers of its items are about to send their next ones (an MQTT publisher sends
 * its next message when the last one is acknowledged), so the next batch waits for about as many items,
 * at most `lingerMs` and half the last write's time, instead of leaving with the first few and paying a
 * write's fixed cost (round trips, audit record, outbox row) for them alone.
 */
export interface MicroBatcherOptions {
  /** Longest wait for a batch to fill under load (default 0: a batch never waits). */
  lingerMs?: number;
}

/** Batches smaller than this never make the next one wait. */
const LOADED_BATCH = 32;

export class MicroBatcher<T> {
  readonly #write: (items: T[]) => Promise<void>;
  readonly #max: number;
  readonly #lingerMs: number;
  #buffer: Array<{ item: T; resolve: () => void; reject: (e: unknown) => void }> = [];
  #writing = false;
  #scheduled = false;
  /** While a batch waits to fill: the size that sends it at once, and its timer. */
  #linger: { target: number; timer: NodeJS.Timeout } | undefined;
  #last = { size: 0, ms: 0, endedAt: 0 };

  constructor(write: (items: T[]) => Promise<void>, maxBatch = 1000, options: MicroBatcherOptions = {}) {
    this.#write = write;
    this.#max = maxBatch;
    this.#lingerMs = options.lingerMs ?? 0;
  }

  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#buffer.push({ item, resolve, reject });
      if (this.#linger && this.#buffer.length >= this.#linger.target) this.#fire();
      else this.#schedule();
    });
  }

  addMany(items: T[]): Promise<void> {
    return Promise.all(items.map((i) => this.add(i))).then(() => undefined);
  }

  #schedule(): void {
    if (this.#writing || this.#scheduled) return;
    this.#scheduled = true;
    const wait = this.#lingerFor();
    if (wait > 0) {
      const target = Math.min(this.#max, this.#last.size);
      this.#linger = { target, timer: setTimeout(() => this.#fire(), wait) };
      return;
    }
    setImmediate(() => this.#fire());
  }

  /** How long the next batch may wait to fill: only right after a large batch, and never long. */
  #lingerFor(): number {
    const l = this.#last;
    if (this.#lingerMs <= 0 || l.size < LOADED_BATCH || this.#buffer.length >= Math.min(this.#max, l.size)) {
      return 0;
    }
    const since = performance.now() - l.endedAt;
    if (since > l.ms) return 0;
    return Math.min(this.#lingerMs, l.ms / 2);
  }

  #fire(): void {
    if (this.#linger) {
      clearTimeout(this.#linger.timer);
      this.#linger = undefined;
    } else if (!this.#scheduled) {
      return;
    }
    this.#scheduled = false;
    void this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#writing || this.#buffer.length === 0) return;
    this.#writing = true;
    const batch = this.#buffer.splice(0, this.#max);
    const started = performance.now();
    try {
      await this.#write(batch.map((b) => b.item));
      for (const b of batch) b.resolve();
    } catch (e) {
      for (const b of batch) b.reject(e);
    } finally {
      const ended = performance.now();
      this.#last = { size: batch.length, ms: ended - started, endedAt: ended };
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
