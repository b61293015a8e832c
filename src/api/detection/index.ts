export type { DetectionApiOptions } from './detection-deps.ts';
export { detectionApi } from './detection-plugin.ts';
