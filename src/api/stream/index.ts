export {
  type Change,
  changeOf,
  ENTITY_KIND,
  type StreamApiOptions,
  type StreamGate,
  type StreamSessions,
  streamApi,
} from './stream-plugin.ts';
