/**
 * The interface between the engine and the evaluator of one rule, and what evaluators share. An
 * evaluator holds the rule's state (per entity where needed), reads observations its owner may see, and
 * fires or resolves causes through its context; the engine deduplicates, bounds and checkpoints.
 */

import type { FireOptions, OpenAlert } from './alert-book.ts';
import type { AlertSignal, Evidence } from './detection-result.ts';
import type { PreparedArea } from './geo.ts';
import type { Observation, Visibility } from './observation.ts';
import type { Condition, Match, RuleDefinition } from './rule-language.ts';

export interface EngineLimits {
  /** State entries (entities, samples, buffered events, open alerts) one rule may hold. */
  maxStateEntries: number;
  /** Estimated bytes of state one rule may hold. */
  maxStateBytes: number;
  /** Evidence kept per alert (the markings of dropped evidence are kept). */
  maxEvidence: number;
  /** Entities one correlation may visit along relationships per observation. */
  maxHopVisits: number;
  /** Milliseconds one evaluation may take before its rule is suspended. */
  maxEvaluationMs: number;
  /** Relationship edges the engine remembers (all tenants). */
  maxGraphEdges: number;
}

export const DEFAULT_LIMITS: EngineLimits = {
  maxStateEntries: 200_000,
  maxStateBytes: 64 * 1024 * 1024,
  maxEvidence: 50,
  maxHopVisits: 10_000,
  maxEvaluationMs: 250,
  maxGraphEdges: 1_000_000,
};

/** What an evaluator may ask of the engine. */
export interface RuleContext {
  readonly def: RuleDefinition;
  readonly limits: EngineLimits;
  fire(cause: string, evidence: Evidence[], at: number, opts: FireOptions): void;
  resolve(cause: string, at: number, reason: string, tenant: string): void;
  isActive(cause: string): boolean;
  findAlert(now: number, pred: (a: OpenAlert) => boolean): OpenAlert | undefined;
  /** May the rule's owner see this? */
  visible(v: Visibility): boolean;
  /** The area of an entity (its polygon), when its owner may see it. */
  areaOf(tenant: string, entityId: string, attribute: string): PreparedArea | undefined;
  /** Entities linked to `entityId` through the named relationships within `hops` (itself included). */
  linked(tenant: string, entityId: string, relationships: readonly string[], hops: number): Set<string>;
  /** Whether an observation falls under a match (its id pattern included). */
  matches(m: Match, o: Observation): boolean;
  /** The arrival order of the observation being evaluated (ties in time are told apart by it). */
  readonly seq: number;
}

export interface Evaluator {
  observe(o: Observation, ctx: RuleContext): void;
  /** Time passes (silence, minimum durations, dwell, window expiry). */
  tick?(now: number, ctx: RuleContext): void;
  /** The entity was deleted. */
  forget?(entityId: string): void;
  /** State entries held (checked against the limits after each evaluation). */
  entries(): number;
  /** Estimated bytes held. */
  bytes(): number;
  save(): unknown;
  load(state: unknown): void;
}

/** Signals are collected by the engine. */
export type SignalSink = (s: AlertSignal) => void;

export function evidenceOf(o: Observation): Evidence {
  const e: Evidence = {
    entityId: o.entityId,
    entityTypes: o.entityTypes,
    attribute: o.attribute,
    value: o.value,
    observedAt: o.observedAt,
    ownerOrg: o.ownerOrg,
    marking: o.marking,
  };
  if (o.domain) e.domain = o.domain;
  if (o.location) e.location = o.location;
  return e;
}

export function numberOf(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function conditionHolds(c: Condition | undefined, v: unknown): boolean {
  if (!c) return true;
  if (c.equals !== undefined && v !== c.equals) return false;
  if (c.notEquals !== undefined && v === c.notEquals) return false;
  if (c.in !== undefined && !c.in.includes(v as string)) return false;
  if (c.above !== undefined && !(typeof v === 'number' && v > c.above)) return false;
  if (c.below !== undefined && !(typeof v === 'number' && v < c.below)) return false;
  return true;
}

/** Whether an observation falls under a match (type, attribute, tenant; the id pattern is the engine's). */
export function matchesShape(m: Match, o: Observation, defaultAttribute?: string): boolean {
  if ((m.tenant ?? '') !== o.tenant) return false;
  const attr = m.attribute ?? defaultAttribute;
  if (attr !== undefined && attr !== o.attribute) return false;
  for (const t of o.entityTypes) if (m.types.includes(t)) return true;
  return false;
}

/** A FIFO with O(1) amortised shift (arrays' shift is O(n)). */
export class Fifo<T> {
  items: T[] = [];
  head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(x: T): void {
    this.items.push(x);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head];
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }

  *[Symbol.iterator](): Generator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i] as T;
  }

  toArray(): T[] {
    return this.items.slice(this.head);
  }

  static from<T>(xs: T[]): Fifo<T> {
    const f = new Fifo<T>();
    f.items = [...xs];
    return f;
  }
}
