/**
 * detection-live: detection as a platform service — rules as marked objects (versions, enable/disable),
 * the service that runs them over the bus's entity changes (partitioned, checkpointed), alerts as NGSI-LD
 * Alert entities, and dry-runs over stored history. The rule language and evaluator are the detection
 * module's (src/modules/detection), adapted to `RuleEngine` by the composition root.
 */
export { alertMarking, type MarkingSource } from './alert-marking.ts';
export {
  ALERT_CATEGORIES,
  ALERT_CONTEXT,
  ALERT_SEVERITIES,
  ALERT_STATUSES,
  ALERT_TYPE,
  type AlertCaller,
  type AlertQuery,
  type AlertRecord,
  AlertService,
  type AlertServiceOptions,
  type AlertSignal,
  type AlertStatus,
  alertIdFor,
  type Evidence,
} from './alert-service.ts';
export {
  DETECTION_ENTITY_EVENTS,
  DetectionService,
  type DetectionServiceOptions,
  partitionOf,
} from './detection-service.ts';
export {
  type DryRunAnswer,
  type DryRunFiring,
  DryRunService,
  type DryRunServiceOptions,
  type HistoryReplay,
} from './dry-run.ts';
export type {
  EngineFactory,
  EngineRule,
  EngineSignal,
  Observation,
  OwnerCanSee,
  RuleEngine,
  SignalEvidence,
} from './engine-port.ts';
export { type DetectionLiveTables, detectionLiveMigrations } from './migrations.ts';
export {
  type DetectionLiveEvents,
  RULE_CREATED,
  RULE_DELETED,
  RULE_KIND,
  RULE_UPDATED,
  type RuleChangeEvent,
  type RuleInput,
  type RulePatch,
  type RuleProblem,
  type RuleQuery,
  type RuleRecord,
  RuleService,
  type RuleServiceOptions,
  type RuleValidator,
  type RuleVersion,
} from './rule-service.ts';
