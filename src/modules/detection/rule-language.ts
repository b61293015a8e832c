/**
 * The rule language of detection: rules are JSON documents (docs/detection.md, "Rule language"). A document
 * has no id, owner or version: the rules store gives those; the engine takes a validated `Rule` with them
 * (`RuleDefinition`). Every number has a bound (`RULE_LIMITS`) so that no rule can hold unbounded state.
 */

export const RULE_KINDS = [
  'threshold',
  'rate',
  'anomaly',
  'silence',
  'geofence',
  'crowdDensity',
  'flowImbalance',
  'sequence',
  'count',
  'correlation',
] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

/** The severities of a Smart Data Models `Alert`. */
export const SEVERITIES = ['informational', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const CATEGORIES = [
  'security',
  'fire',
  'crowd',
  'traffic',
  'health',
  'environment',
  'cyber',
  'infrastructure',
] as const;
export type Category = (typeof CATEGORIES)[number];

/** Where a signal comes from, for correlation across domains. */
export const DOMAINS = ['cyber', 'physical', 'social'] as const;
export type Domain = (typeof DOMAINS)[number];

/** Fruin's levels of service (crowd density), A (free) to F (critical). */
export const FRUIN_LEVELS = ['A', 'B', 'C', 'D', 'E', 'F'] as const;
export type FruinLevel = (typeof FRUIN_LEVELS)[number];

/** The bounds the validator enforces (and docs/detection.md, "Limits", lists). */
export const RULE_LIMITS = {
  nameLength: 200,
  descriptionLength: 2000,
  /** Entity types per match. */
  types: 20,
  termLength: 500,
  idPatternLength: 256,
  /** Any time window, minimum duration, dwell, suppression window: 24 h. */
  windowSeconds: 86_400,
  /** Samples of an anomaly rule's rolling window (per entity, per hour of day with seasonality). */
  anomalySamples: 1_000,
  anomalyMinSamples: 5,
  /** Counts in a window, and per sequence step. */
  count: 10_000,
  stepCount: 100,
  sequenceSteps: 10,
  correlationSignals: 10,
  /** Relationship hops of correlation. */
  hops: 5,
  relationships: 10,
  radiusMetres: 50_000,
  /** Positions of a rule's polygon, in all its rings. */
  polygonPositions: 10_000,
  polygonRings: 100,
  inValues: 100,
  /** Entities of a group (flow imbalance) and distinct values anywhere: bounded by the engine's state limits. */
  flowRatio: 1_000,
} as const;

/** A JSON scalar a condition compares with. */
export type Scalar = string | number | boolean;

/** Which observations a rule (or a step of it) reads. */
export interface Match {
  /** Entity types (as the observations carry them; any one suffices). */
  types: string[];
  /** An RE2 pattern the entity id must match (a search: anchor with ^…$). */
  idPattern?: string;
  /** The attribute read; some kinds need it, others default it (geofence: `location`). */
  attribute?: string;
  /** The NGSI-LD tenant ('' — the default tenant — when absent). */
  tenant?: string;
}

export interface AttributeMatch extends Match {
  attribute: string;
}

/** A filter on an observation's value: every field given must hold. */
export interface Condition {
  equals?: Scalar;
  notEquals?: Scalar;
  in?: Scalar[];
  above?: number;
  below?: number;
}

export interface TimeWindow {
  seconds: number;
}

/** Suppression: the same cause raised again within `seconds` of its last evidence updates its alert. */
export interface Dedup {
  seconds: number;
}

export type GeoPolygon =
  | { type: 'Polygon'; coordinates: number[][][] }
  | { type: 'MultiPolygon'; coordinates: number[][][][] };

export interface RuleCommon {
  name: string;
  description?: string;
  enabled?: boolean;
  severity: Severity;
  category: Category;
  /** Default: 600 s. */
  dedup?: Dedup;
}

/**
 * Fires when the value is above `above` or below `below` (both: outside the range) for at least
 * `forSeconds`; clears once it is back by `hysteresis` (above − h, below + h).
 */
export interface ThresholdRule extends RuleCommon {
  kind: 'threshold';
  match: AttributeMatch;
  above?: number;
  below?: number;
  hysteresis?: number;
  forSeconds?: number;
}

/** Fires when the value rose by more than `riseBy` (or fell by more than `fallBy`) within the window. */
export interface RateRule extends RuleCommon {
  kind: 'rate';
  match: AttributeMatch;
  window: TimeWindow;
  riseBy?: number;
  fallBy?: number;
}

/**
 * Fires when a value is far from the entity's own recent values: robust z-score (median and MAD of the
 * last `window.samples`) or EWMA (mean and variance with α = 2 / (samples + 1)). Nothing fires before
 * `warmup` samples. With `seasonality: hourOfDay` each hour of the day has its own history, used once it
 * holds `warmup` samples (the whole history before that).
 */
export interface AnomalyRule extends RuleCommon {
  kind: 'anomaly';
  match: AttributeMatch;
  method: 'robustZ' | 'ewma';
  window: { samples: number };
  /** The |score| from which a value is anomalous (e.g. 3.5). */
  threshold: number;
  /** Default: min(samples, 30). */
  warmup?: number;
  direction?: 'both' | 'above' | 'below';
  /** Smallest absolute deviation that counts (a flat series has no spread). Default 0. */
  minDeviation?: number;
  seasonality?: 'none' | 'hourOfDay';
  /** The local time of the hours of day (minutes east of UTC). Default 0. */
  utcOffsetMinutes?: number;
}

/** Fires when an entity that reported stops for longer than `expectedIntervalSeconds` + `graceSeconds`. */
export interface SilenceRule extends RuleCommon {
  kind: 'silence';
  /** Without attribute: any attribute of the entity counts as a sign of life. */
  match: Match;
  expectedIntervalSeconds: number;
  graceSeconds?: number;
}

export type GeofenceArea = { polygon: GeoPolygon } | { entityId: string; attribute?: string };

/**
 * Moving entities against an area: `enter` fires on entering (clears on leaving), `leave` the reverse,
 * `dwell` after staying inside for `dwellSeconds` (clears on leaving).
 */
export interface GeofenceRule extends RuleCommon {
  kind: 'geofence';
  /** The attribute holding the position; default `location`. */
  match: Match;
  area: GeofenceArea;
  trigger: 'enter' | 'leave' | 'dwell';
  dwellSeconds?: number;
}

/**
 * Crowd density of an area: the value is a count of persons over `areaSquareMetres` (measure `count`) or a
 * density in persons/m² (measure `density`). Fires at a Fruin level of service (`raiseAt.level`) or at a
 * share of the area's `capacity` (`raiseAt.capacityRatio`), whichever comes first.
 */
export interface CrowdDensityRule extends RuleCommon {
  kind: 'crowdDensity';
  match: AttributeMatch;
  measure: 'count' | 'density';
  areaSquareMetres?: number;
  capacity?: number;
  raiseAt: { level?: FruinLevel; capacityRatio?: number };
  /** Fruin's walkway or queueing table. Default walkway. */
  standard?: 'walkway' | 'queueing';
  forSeconds?: number;
}

/**
 * In ≫ out at a venue's gates: the sums of `inAttribute` and `outAttribute` over the window, over all the
 * matching entities (or per target of `groupBy.relationship`), fire when in ≥ `minIn` and in ≥ ratio × out.
 */
export interface FlowImbalanceRule extends RuleCommon {
  kind: 'flowImbalance';
  match: Match;
  inAttribute: string;
  outAttribute: string;
  groupBy?: { relationship: string };
  window: TimeWindow;
  ratio: number;
  minIn: number;
}

export interface SequenceStep {
  match: AttributeMatch;
  where?: Condition;
  /** Times the step must be seen (default 1). */
  count?: number;
}

/** Steps in this order (each step's count met before the next begins) within the window. */
export interface SequenceRule extends RuleCommon {
  kind: 'sequence';
  steps: SequenceStep[];
  window: TimeWindow;
  /** `entity`: every step on the same entity (default); `any`: across the matching entities. */
  by?: 'entity' | 'any';
}

/**
 * `count` observations matching `where` within the window: per entity, across all (`any`), or — with
 * `radiusMetres` — within that distance of one another.
 */
export interface CountRule extends RuleCommon {
  kind: 'count';
  match: AttributeMatch;
  where?: Condition;
  count: number;
  window: TimeWindow;
  by?: 'entity' | 'any';
  radiusMetres?: number;
}

export interface CorrelationSignal {
  domain: Domain;
  match: AttributeMatch;
  where?: Condition;
}

/**
 * Signals of at least `minDomains` different domains within the window that are near one another: within
 * `near.radiusMetres`, or linked through the named Relationships in at most `near.maxHops` hops (either
 * suffices when both are given). One alert with every piece of evidence.
 */
export interface CorrelationRule extends RuleCommon {
  kind: 'correlation';
  signals: CorrelationSignal[];
  window: TimeWindow;
  minDomains?: number;
  near: { radiusMetres?: number; relationships?: string[]; maxHops?: number };
}

export type Rule =
  | ThresholdRule
  | RateRule
  | AnomalyRule
  | SilenceRule
  | GeofenceRule
  | CrowdDensityRule
  | FlowImbalanceRule
  | SequenceRule
  | CountRule
  | CorrelationRule;

/** A validated rule as the engine runs it: the store's id, version and owner around the document. */
export interface RuleDefinition {
  id: string;
  version: number;
  ownerOrg: string;
  rule: Rule;
}

/** Default suppression window (seconds). */
export const DEFAULT_DEDUP_SECONDS = 600;
