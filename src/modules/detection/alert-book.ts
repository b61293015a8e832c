/**
 * Deduplication and suppression for one rule: the alerts it has open, by cause. The same cause firing
 * again while its alert is active, or within the suppression window after it cleared or last fired,
 * updates that alert (same key) instead of raising a new one.
 */
import { createHash } from 'node:crypto';
import type { Marking } from '../sharing/index.ts';
import type { AlertSignal, Evidence } from './detection-result.ts';
import type { GeoPoint } from './geo.ts';
import type { RuleDefinition } from './rule-language.ts';

export interface OpenAlert {
  key: string;
  cause: string;
  firstSeen: number;
  lastSeen: number;
  active: boolean;
  /** When it cleared (inactive ones). */
  endedAt: number;
  evidence: Evidence[];
  markings: Marking[];
  markingKeys: string[];
  location?: GeoPoint;
  tenant: string;
  /** Entities of its evidence (correlation joins alerts that share one). */
  entities: string[];
}

export interface FireOptions {
  tenant: string;
  location?: GeoPoint | undefined;
  details?: Record<string, string | number | boolean>;
  reason: string;
}

const MAX_MARKINGS = 1_000;
const MAX_ENTITIES = 200;

export function alertKeyOf(ruleId: string, cause: string, firstSeen: number): string {
  return createHash('sha256').update(`${ruleId}\u0000${cause}\u0000${firstSeen}`).digest('hex').slice(0, 32);
}

export class AlertBook {
  readonly #alerts = new Map<string, OpenAlert>();

  constructor(
    private readonly def: () => RuleDefinition,
    private readonly dedupMs: () => number,
    private readonly maxEvidence: number,
    /** Event-like kinds end their alerts quietly once the window passes without new evidence. */
    private readonly eventLike: boolean,
  ) {}

  get size(): number {
    return this.#alerts.size;
  }

  /** Rough bytes held (for the state limit). */
  bytes(): number {
    let n = 0;
    for (const a of this.#alerts.values()) n += 200 + a.evidence.length * 200 + a.markings.length * 100;
    return n;
  }

  get(cause: string): OpenAlert | undefined {
    return this.#alerts.get(cause);
  }

  isActive(cause: string): boolean {
    return this.#alerts.get(cause)?.active === true;
  }

  /** The first alert (active, or within its suppression window) that `pred` accepts. */
  find(now: number, pred: (a: OpenAlert) => boolean): OpenAlert | undefined {
    const window = this.dedupMs();
    for (const a of this.#alerts.values()) {
      if ((a.active || now - Math.max(a.endedAt, a.lastSeen) <= window) && pred(a)) return a;
    }
    return undefined;
  }

  fire(cause: string, evidence: Evidence[], at: number, opts: FireOptions): AlertSignal {
    const def = this.def();
    let a = this.#alerts.get(cause);
    let type: AlertSignal['type'] = 'update';
    if (a && !a.active && at - Math.max(a.endedAt, a.lastSeen) > this.dedupMs()) {
      this.#alerts.delete(cause);
      a = undefined;
    }
    if (!a) {
      type = 'raise';
      const firstSeen = Math.min(at, ...evidence.map((e) => e.observedAt));
      a = {
        key: alertKeyOf(def.id, cause, firstSeen),
        tenant: opts.tenant,
        cause,
        firstSeen,
        lastSeen: at,
        active: true,
        endedAt: 0,
        evidence: [],
        markings: [],
        markingKeys: [],
        entities: [],
      };
      if (opts.location) a.location = opts.location;
      this.#alerts.set(cause, a);
    }
    a.active = true;
    a.lastSeen = Math.max(a.lastSeen, at);
    for (const e of evidence) {
      if (!a.evidence.includes(e)) a.evidence.push(e);
      if (!a.entities.includes(e.entityId) && a.entities.length < MAX_ENTITIES) a.entities.push(e.entityId);
      if (!a.markings.includes(e.marking)) {
        const k = JSON.stringify(e.marking);
        if (!a.markingKeys.includes(k) && a.markings.length < MAX_MARKINGS) {
          a.markingKeys.push(k);
          a.markings.push(e.marking);
        }
      }
    }
    if (a.evidence.length > this.maxEvidence) a.evidence.splice(0, a.evidence.length - this.maxEvidence);
    if (!a.location && opts.location) a.location = opts.location;
    return this.#signal(type, a, at, opts.reason, opts.details);
  }

  /** The cause ended: a clear for its active alert (none when it has none). */
  resolve(cause: string, at: number, reason: string): AlertSignal | undefined {
    const a = this.#alerts.get(cause);
    if (!a?.active) return undefined;
    a.active = false;
    a.endedAt = at;
    return this.#signal('clear', a, at, reason);
  }

  /** Drops what the suppression window no longer needs. */
  prune(now: number): void {
    const window = this.dedupMs();
    for (const [cause, a] of this.#alerts) {
      const quiet = now - Math.max(a.endedAt, a.lastSeen) > window;
      if (quiet && (!a.active || this.eventLike)) this.#alerts.delete(cause);
    }
  }

  /** After a new rule version: every alert counts as ended now (re-raised within the window: updated). */
  endAll(now: number): void {
    for (const a of this.#alerts.values()) {
      if (a.active) {
        a.active = false;
        a.endedAt = now;
      }
    }
  }

  #signal(
    type: AlertSignal['type'],
    a: OpenAlert,
    at: number,
    reason: string,
    details?: Record<string, string | number | boolean>,
  ): AlertSignal {
    const { id, version, ownerOrg, rule } = this.def();
    const s: AlertSignal = {
      type,
      alertKey: a.key,
      cause: a.cause,
      ruleId: id,
      ruleVersion: version,
      ruleKind: rule.kind,
      ruleName: rule.name,
      ownerOrg,
      severity: rule.severity,
      category: rule.category,
      tenant: a.tenant,
      evidence: [...a.evidence],
      markings: [...a.markings],
      firstSeen: a.firstSeen,
      lastSeen: a.lastSeen,
      at,
      reason,
    };
    if (a.location) s.location = a.location;
    if (details) s.details = details;
    return s;
  }

  save(): OpenAlert[] {
    return [...this.#alerts.values()];
  }

  load(alerts: OpenAlert[]): void {
    this.#alerts.clear();
    for (const a of alerts) this.#alerts.set(a.cause, a);
  }
}
