/** What the engine answers: alert signals (raise, update, clear) and rule suspensions. */
import type { Marking } from '../sharing/index.ts';
import type { GeoPoint } from './geo.ts';
import type { Category, Domain, RuleKind, Severity } from './rule-language.ts';

/** One piece of evidence: an observation the rule's owner could see, with its marking. */
export interface Evidence {
  entityId: string;
  entityTypes: readonly string[];
  attribute: string;
  value: unknown;
  observedAt: number;
  ownerOrg: string;
  marking: Marking;
  domain?: Domain;
  location?: GeoPoint;
}

export interface AlertSignal {
  /** raise: a new alert; update: the same alert again (new evidence, re-raised); clear: its cause ended. */
  type: 'raise' | 'update' | 'clear';
  /** Stable for the alert's life (the same on replay): rule id, cause and first time, hashed. */
  alertKey: string;
  /** What the rule deduplicates on (an entity id, a group, a cluster). */
  cause: string;
  ruleId: string;
  ruleVersion: number;
  ruleKind: RuleKind;
  ruleName: string;
  ownerOrg: string;
  severity: Severity;
  category: Category;
  tenant: string;
  /** The alert's evidence, newest last (at most EngineLimits.maxEvidence). */
  evidence: Evidence[];
  /**
   * Every distinct marking of every piece of evidence the alert has had, dropped ones included: the
   * caller derives the alert's marking from them (the sharing gate's deriveMarking).
   */
  markings: Marking[];
  location?: GeoPoint;
  firstSeen: number;
  lastSeen: number;
  /** When the signal happened (event time, or the tick's time). */
  at: number;
  reason: string;
  details?: Record<string, string | number | boolean>;
}

export interface RuleSuspended {
  type: 'suspended';
  ruleId: string;
  ruleVersion: number;
  ownerOrg: string;
  reason: string;
  at: number;
}

export type DetectionResult = AlertSignal | RuleSuspended;
