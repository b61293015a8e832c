export type {
  EmbeddedMqttBroker,
  EmbeddedMqttBrokerOptions,
  MqttAuthenticate,
  MqttConnection,
  MqttSession,
} from './embedded-mqtt-broker.ts';
export { startEmbeddedMqttBroker } from './embedded-mqtt-broker.ts';
export type { ExternalMqttIngest, ExternalMqttIngestOptions } from './external-mqtt-ingest.ts';
export { startExternalMqttIngest } from './external-mqtt-ingest.ts';
export type { MqttNotificationSenderOptions } from './mqtt-notification-sender.ts';
export { createMqttNotificationSender } from './mqtt-notification-sender.ts';
export type { MqttRuntime, MqttRuntimeOptions } from './mqtt-runtime.ts';
export { DEFAULT_MQTT_PORT, startMqttRuntime } from './mqtt-runtime.ts';
export {
  INGEST_TOPIC_PREFIX,
  NOTIFICATION_TOPIC_ROOT,
  notificationTopicRefusal,
  orgNotificationPrefix,
} from './notification-topics.ts';
