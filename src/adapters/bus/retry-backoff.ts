/** How long a group waits before redelivering an event whose handler failed. */
export interface RetryBackoff {
  /** Delay before the second delivery, in ms. Default 500. */
  initialDelayMs?: number;
  /** The delay doubles with each attempt up to this, in ms. Default 30 000. */
  maxDelayMs?: number;
}

/** The delay after the `attempt`-th delivery failed (attempt counts from 1). */
export function retryDelayMs(attempt: number, backoff: RetryBackoff = {}): number {
  const initial = backoff.initialDelayMs ?? 500;
  const max = backoff.maxDelayMs ?? 30_000;
  return Math.min(max, initial * 2 ** Math.max(0, attempt - 1));
}
