/**
 * Where MQTT notifications of an organisation's subscriptions may be published. On the platform's own
 * brokers (the embedded one, MQTT_URL) every organisation has its space, `notifications/{orgId}/...`, and
 * its clients may subscribe there only; ingestion topics (`safecity/...`) carry measurements in, never
 * notifications out, on any broker.
 */
export const NOTIFICATION_TOPIC_ROOT = 'notifications/';
export const INGEST_TOPIC_PREFIX = 'safecity/v1/';
const PLATFORM_NAMESPACE = 'safecity/';

/** The topics of one organisation's notifications, as a prefix. */
export function orgNotificationPrefix(orgId: string): string {
  return `${NOTIFICATION_TOPIC_ROOT}${orgId}/`;
}

/**
 * Why `orgId`'s subscriptions may not publish to `topic`, or undefined when they may. `platformBroker`:
 * the topic is on a broker the platform runs or ingests from, shared by every organisation.
 */
export function notificationTopicRefusal(
  topic: string,
  orgId: string,
  platformBroker: boolean,
): string | undefined {
  const mine = orgNotificationPrefix(orgId);
  if (topic.length === 0) return 'the endpoint names no topic';
  if (topic.includes('+') || topic.includes('#') || topic.includes('\u0000'))
    return `topic "${topic}" holds a wildcard or NUL; a publish names one topic`;
  if (topic.startsWith('$')) return `topic "${topic}" is a broker system topic`;
  if (topic.startsWith(PLATFORM_NAMESPACE)) {
    return `topic "${topic}" is under ${PLATFORM_NAMESPACE}, the platform's ingestion topics`;
  }
  if (topic.startsWith(NOTIFICATION_TOPIC_ROOT) && !topic.startsWith(mine)) {
    return `topic "${topic}" belongs to another organisation's notifications; yours are under ${mine}`;
  }
  if (platformBroker && !topic.startsWith(mine)) {
    return `on the platform's broker, notifications of organisation ${orgId} go under ${mine} only`;
  }
  return undefined;
}
