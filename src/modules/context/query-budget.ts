/**
 * What one query may cost in memory: how many candidate rows it evaluates (`maxScan`, past it 403
 * TooManyResults) and how long it evaluates them (past it 403 TooComplexQuery). The evaluation runs in
 * slices and gives the event loop back between them, so one user's expensive query delays the others by
 * one slice at most, never by its whole length.
 *
 * Rows are charged as the caller's predicates see them: the service hands over only rows the caller may
 * see, so the budget (and the time) never depends on what the caller cannot see.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { AppError } from '../../kernel/errors.ts';

export interface QueryLimits {
  /** Most rows evaluated in memory. */
  maxScan: number;
  /** Most milliseconds spent evaluating (time on the event loop, not time waiting for it). */
  maxEvaluationMs: number;
  /** Longest run on the event loop before giving it back (default 10 ms). */
  sliceMs?: number;
}

export const NARROW_HINT = 'narrow it by type, id, attrs or geo-query';

export class QueryBudget {
  readonly #limits: QueryLimits;
  #rows = 0;
  #spentMs = 0;
  #sliceStart = performance.now();

  constructor(limits: QueryLimits) {
    this.#limits = limits;
  }

  /** Rows evaluated so far. */
  get rows(): number {
    return this.#rows;
  }

  /** Counts `n` rows about to be evaluated; past maxScan, CONTEXT_TOO_MANY_RESULTS. */
  chargeRows(n: number): void {
    this.#rows += n;
    if (this.#rows > this.#limits.maxScan) {
      throw new AppError(
        'CONTEXT_TOO_MANY_RESULTS',
        `the query would evaluate more than ${this.#limits.maxScan} entities; ${NARROW_HINT}`,
      );
    }
  }

  /**
   * The rows `keep` accepts, in order, each charged to maxScan (unless `charge` is false: rows charged
   * before); gives the event loop back between slices; bounded in time.
   */
  async filter<T>(
    rows: readonly T[],
    keep: (row: T) => boolean,
    { charge = true }: { charge?: boolean } = {},
  ): Promise<T[]> {
    const out: T[] = [];
    const sliceMs = this.#limits.sliceMs ?? 10;
    this.#sliceStart = performance.now();
    for (const row of rows) {
      if (charge) this.chargeRows(1);
      if (keep(row)) out.push(row);
      // The clock is read after every row: one row may cost milliseconds (a long value, a large pattern).
      const now = performance.now();
      if (now - this.#sliceStart >= sliceMs) {
        this.#spend(now);
        await nextTurn();
        this.#sliceStart = performance.now();
      }
    }
    this.#spend();
    return out;
  }

  #spend(now = performance.now()): void {
    this.#spentMs += now - this.#sliceStart;
    this.#sliceStart = now;
    if (this.#spentMs > this.#limits.maxEvaluationMs) {
      throw new AppError(
        'CONTEXT_QUERY_TOO_COMPLEX',
        `the query took more than ${this.#limits.maxEvaluationMs} ms to evaluate; ${NARROW_HINT}, or simplify q`,
      );
    }
  }
}
