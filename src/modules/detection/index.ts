/**
 * Detection: the rule language and the engine that runs rules over the city's observations (issue 9).
 * A self-contained domain module: no HTTP, no storage; the platform feeds it observations, time and a
 * visibility predicate, and persists its checkpoints (docs/detection.md).
 */

export type { FireOptions, OpenAlert } from './alert-book.ts';
export {
  DetectionEngine,
  type DetectionEngineOptions,
  type EngineCheckpoint,
  type RuleCheckpoint,
  type RuleState,
  type RuleStatus,
} from './detection-engine.ts';
export type { AlertSignal, DetectionResult, Evidence, RuleSuspended } from './detection-result.ts';
export { DEFAULT_LIMITS, type EngineLimits } from './evaluator.ts';
export { fruinDensity, fruinLevel } from './fruin.ts';
export type { GeoPoint } from './geo.ts';
export {
  defaultTermOf,
  type EntityChange,
  type Observation,
  type ObservationOptions,
  observationFromReport,
  observationsFromChange,
  REPORT_ATTRIBUTE,
  REPORT_TYPE,
  type ReportSignal,
  type Visibility,
} from './observation.ts';
export {
  type AnomalyRule,
  type AttributeMatch,
  CATEGORIES,
  type Category,
  type Condition,
  type CorrelationRule,
  type CorrelationSignal,
  type CountRule,
  type CrowdDensityRule,
  DEFAULT_DEDUP_SECONDS,
  type Dedup,
  DOMAINS,
  type Domain,
  type FlowImbalanceRule,
  FRUIN_LEVELS,
  type FruinLevel,
  type GeofenceArea,
  type GeofenceRule,
  type GeoPolygon,
  type Match,
  type RateRule,
  RULE_KINDS,
  RULE_LIMITS,
  type Rule,
  type RuleCommon,
  type RuleDefinition,
  type RuleKind,
  type Scalar,
  SEVERITIES,
  type SequenceRule,
  type SequenceStep,
  type Severity,
  type SilenceRule,
  type ThresholdRule,
  type TimeWindow,
} from './rule-language.ts';
export { type RuleError, type RuleValidation, validateRule } from './validate-rule.ts';
