import type { AccessService, Authenticator } from '../../modules/access/index.ts';
import type { ReportService } from '../../modules/reports/index.ts';
import type { SharingGate } from '../../modules/sharing/index.ts';

export interface PlatformApiOptions {
  access: AccessService;
  gate: SharingGate;
  reports: ReportService;
  authenticator: Authenticator;
}
