/**
 * Silence: an entity that reported and then stops for longer than the expected interval (plus grace).
 * Entities are kept in order of their last report (a Map re-inserted on each report), so a tick only
 * looks at those that may have gone quiet and stops at the first that has not. A report from a silent
 * entity clears its alert.
 */
import type { Evidence } from './detection-result.ts';
import { type Evaluator, evidenceOf, type RuleContext } from './evaluator.ts';
import type { Observation } from './observation.ts';
import type { SilenceRule } from './rule-language.ts';

interface LastSeen {
  t: number;
  e: Evidence;
  tenant: string;
}

export class SilenceEvaluator implements Evaluator {
  /** Reporting entities, oldest report first. */
  readonly #live = new Map<string, LastSeen>();
  readonly #silent = new Map<string, LastSeen>();
  readonly #limitMs: number;

  constructor(private readonly r: SilenceRule) {
    this.#limitMs = (r.expectedIntervalSeconds + (r.graceSeconds ?? 0)) * 1000;
  }

  observe(o: Observation, ctx: RuleContext): void {
    const before = this.#live.get(o.entityId);
    if (before && before.t >= o.observedAt) return; // late or repeated: no news of life
    const seen: LastSeen = { t: o.observedAt, e: evidenceOf(o), tenant: o.tenant };
    if (before) this.#live.delete(o.entityId);
    const silent = this.#silent.get(o.entityId);
    if (silent) {
      this.#silent.delete(o.entityId);
      const quiet = Math.round((o.observedAt - silent.t) / 1000);
      ctx.resolve(o.entityId, o.observedAt, `${o.entityId} reports again after ${quiet} s`, o.tenant);
    }
    this.#live.set(o.entityId, seen);
  }

  tick(now: number, ctx: RuleContext): void {
    for (const [id, seen] of this.#live) {
      if (now - seen.t <= this.#limitMs) break;
      this.#live.delete(id);
      this.#silent.set(id, seen);
      ctx.fire(id, [seen.e], now, {
        tenant: seen.tenant,
        location: seen.e.location,
        reason:
          `${id} has not reported for ${Math.round((now - seen.t) / 1000)} s ` +
          `(expected every ${this.r.expectedIntervalSeconds} s)`,
        details: { silentSeconds: Math.round((now - seen.t) / 1000), lastSeen: seen.t },
      });
    }
  }

  forget(entityId: string): void {
    this.#live.delete(entityId);
    this.#silent.delete(entityId);
  }

  entries(): number {
    return this.#live.size + this.#silent.size;
  }

  bytes(): number {
    return (this.#live.size + this.#silent.size) * 400;
  }

  save(): unknown {
    return { live: [...this.#live], silent: [...this.#silent] };
  }

  load(state: unknown): void {
    const s = state as { live: [string, LastSeen][]; silent: [string, LastSeen][] };
    this.#live.clear();
    this.#silent.clear();
    for (const [id, x] of s.live) this.#live.set(id, x);
    for (const [id, x] of s.silent) this.#silent.set(id, x);
  }
}
