/**
 * Detection: the rule language and the engine that runs rules over the city's observations (issue 9).
 * A self-contained domain module: no HTTP, no storage; the platform feeds it observations, time and a
 * visibility predicate, and persists its checkpoints (docs/detection.md).
 */
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
