import type { AccessService, Authenticator, ReportService } from '../../modules/access/index.ts';

export interface PlatformApiOptions {
  access: AccessService;
  reports: ReportService;
  authenticator: Authenticator;
}
