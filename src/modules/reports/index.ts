/** Reports: the platform's own kind of marked object (security information reports). */
export {
  type GeoPoint,
  type ObjectChangeEvent,
  REPORT_CREATED,
  REPORT_DELETED,
  REPORT_KIND,
  REPORT_UPDATED,
  type Report,
  type ReportEvents,
  type ReportInput,
  type ReportPatch,
  type ReportQuery,
  ReportService,
} from './report-service.ts';
