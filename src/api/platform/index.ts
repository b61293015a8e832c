export { platformApi } from './platform-api.ts';
export type { PlatformApiOptions } from './platform-deps.ts';
