/**
 * What the platform needs of a detection engine (the rule language and evaluator of src/modules/detection):
 * rules loaded and unloaded, observations in, signals out, a tick for time (silence), and each rule's state
 * as a checkpoint. The composition root adapts the engine to this port; the detection service, the dry-run
 * and their tests use only this.
 */
import type { Marking } from '../sharing/index.ts';

/** One change of an entity, as a rule sees it. */
export interface Observation {
  tenant: string;
  entityId: string;
  /** Expanded type IRIs. */
  entityTypes: string[];
  /** The entity after the change (expanded, normalized): the attributes the change touched at least. */
  entity: Record<string, unknown>;
  /** Expanded names of the attributes the change touched. */
  changed: string[];
  /** When it was observed (the change's observedAt, else the time of the change). */
  at: string;
  ownerOrg: string;
  createdBy?: string | undefined;
  marking: Marking;
  readKeys: readonly string[];
  /** Expanded names of the attributes (instances) the change deleted. */
  deletedAttributes?: string[] | undefined;
  /** The entity was deleted (entity holds what it was). */
  deleted?: boolean | undefined;
}

/** One piece of evidence a signal names. */
export interface SignalEvidence {
  entityId: string;
  entityType?: string | undefined;
  attribute?: string | undefined;
  value?: unknown;
  observedAt?: string | undefined;
  /** Who owns what the evidence comes from, and its marking (else the service's memory of the entity). */
  ownerOrg?: string | undefined;
  marking?: Marking | undefined;
}

/** What the engine says about a rule: an alert raised, updated or cleared, or the rule suspended. */
export interface EngineSignal {
  kind: 'raise' | 'update' | 'clear' | 'suspended';
  ruleId: string;
  /** The alert's key within the rule: the same for the alert's whole life. */
  key: string;
  /** What the rule deduplicates on (an entity, a group, a cluster); the key when absent. */
  cause?: string | undefined;
  at: string;
  severity?: string | undefined;
  category?: string | undefined;
  subCategory?: string | undefined;
  description?: string | undefined;
  location?: unknown;
  evidence: SignalEvidence[];
  /** Why the rule was suspended, or why the alert was raised. */
  reason?: string | undefined;
  /**
   * Every source the alert has had beyond its current evidence (evidence dropped from a bounded list): the
   * alert's marking is derived from all of them, so it never loosens when old evidence leaves the list.
   */
  sources?: { ownerOrg?: string | undefined; marking: Marking }[] | undefined;
}

/** A rule as the engine takes it: the validated document and its version. */
export interface EngineRule {
  id: string;
  version: number;
  /** The organisation whose visibility the rule runs with. */
  ownerOrg: string;
  rule: unknown;
}

export interface RuleEngine {
  /** Loads (or replaces) a rule; a rule the engine refuses answers a `suspended` signal. */
  load(rule: EngineRule): EngineSignal[];
  unload(ruleId: string): void;
  /** Feeds one observation to the rules whose owner organisation may see it (the factory's `canSee`). */
  observe(o: Observation): EngineSignal[];
  /** Time passes: silence and windows close. */
  tick(now: Date): EngineSignal[];
  /** The engine's state (every loaded rule's, and what it learnt of entities), as JSON-compatible data. */
  checkpoint(): unknown;
  /** Restores a checkpoint into an engine holding the rules (a rule of another version starts afresh). */
  restore(state: unknown): void;
  /** Names of the attributes (expanded) and types the rule reads, when it says (to narrow a replay). */
  reads?(rule: EngineRule): { attrs?: string[]; types?: string[] };
}

/**
 * May this organisation (a rule's owner) see what carries these read keys? The sharing gate's canSee with the
 * organisation's keys; a dry-run, whose history the gate already filtered, answers yes.
 */
export type OwnerCanSee = (ownerOrg: string, readKeys: readonly string[]) => boolean;

/** Makes a fresh engine (the service holds one per partition; every dry-run makes its own). */
export type EngineFactory = (canSee: OwnerCanSee) => RuleEngine;
