export { changeOf, type StreamApiOptions, streamApi } from './stream-plugin.ts';
