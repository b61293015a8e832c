import type { PlatformEvent } from '../../ports/event-bus.ts';

/** An event that a group gave up on after `maxDeliver` failed deliveries (or could not read). */
export interface DeadLetter {
  group: string;
  /** The event as delivered; for a message that could not be parsed, its raw text as `data`. */
  event: PlatformEvent;
  attempts: number;
  /** The last handler error's message. */
  error: string;
  /** When it was given up (ISO 8601). */
  time: string;
}

/** The dead letters recorded by this process, oldest first, bounded (the oldest are forgotten). */
export class DeadLetterLog {
  readonly #records: DeadLetter[] = [];
  readonly #max: number;

  constructor(max = 1000) {
    this.#max = max;
  }

  add(record: DeadLetter): void {
    this.#records.push(record);
    if (this.#records.length > this.#max) this.#records.shift();
  }

  list(): DeadLetter[] {
    return [...this.#records];
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
