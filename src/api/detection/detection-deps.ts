import type { AlertService, DryRunService, RuleService } from '../../modules/detection-live/index.ts';

export interface DetectionApiOptions {
  rules: RuleService;
  alerts: AlertService;
  dryRun: DryRunService;
}
