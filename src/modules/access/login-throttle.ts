import { AppError } from '../../kernel/errors.ts';

export interface LoginThrottleOptions {
  /** Failed attempts on one username allowed within the window (default 10). */
  maxFailures?: number | undefined;
  /** The window, in milliseconds (default 15 minutes). */
  windowMs?: number | undefined;
}

/**
 * Slows password guessing: after too many failed logins for one username within the window, further
 * attempts are refused (429) until the window has passed, whatever the password. Kept per instance in
 * memory; a success clears the count. It refuses attempts, it does not lock the account.
 */
export class LoginThrottle {
  readonly #max: number;
  readonly #window: number;
  readonly #failures = new Map<string, { count: number; since: number }>();

  constructor(opts: LoginThrottleOptions = {}) {
    this.#max = opts.maxFailures ?? 10;
    this.#window = opts.windowMs ?? 15 * 60_000;
  }

  check(username: string, now: number): void {
    const f = this.#failures.get(username.toLowerCase());
    if (!f) return;
    if (now - f.since >= this.#window) {
      this.#failures.delete(username.toLowerCase());
      return;
    }
    if (f.count >= this.#max) {
      const seconds = Math.ceil((f.since + this.#window - now) / 1000);
      throw new AppError(
        'PLATFORM_RATE_LIMITED',
        `too many failed logins for this account; try again in ${seconds} s`,
        {
          retryAfterSeconds: seconds,
        },
      );
    }
  }

  failed(username: string, now: number): void {
    const key = username.toLowerCase();
    const f = this.#failures.get(key);
    if (!f || now - f.since >= this.#window) this.#failures.set(key, { count: 1, since: now });
    else f.count += 1;
    // Bounded memory under a spray of random usernames: forget the oldest entries.
    if (this.#failures.size > 100_000) {
      const oldest = this.#failures.keys().next().value;
      if (oldest !== undefined) this.#failures.delete(oldest);
    }
  }

  succeeded(username: string): void {
    this.#failures.delete(username.toLowerCase());
  }
}
