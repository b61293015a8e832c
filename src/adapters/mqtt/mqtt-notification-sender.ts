/**
 * Sends NGSI-LD notifications over MQTT (the MQTT notification binding): the message is
 * `{ "metadata": { Content-Type, Link, receiverInfo... }, "body": <Notification> }` published to the
 * topic of the endpoint URI `mqtt[s]://[user:pass@]host[:port]/topic`. notifierInfo `MQTT-QoS` (0, 1, 2;
 * default 0) and `MQTT-Version` (mqtt3.1.1 or mqtt5.0) are honoured. Notifications to the embedded broker
 * are published in-process.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { NotificationSender, OutgoingNotification } from '../../modules/context-live/index.ts';
import type { EmbeddedMqttBroker } from './embedded-mqtt-broker.ts';

export function createMqttNotificationSender(opts: { local?: EmbeddedMqttBroker } = {}): NotificationSender {
  const clients = new Map<string, MqttClient>();

  function clientFor(url: URL, version: 4 | 5): MqttClient {
    const key = `${url.protocol}//${url.username}:${url.password}@${url.host}#${version}`;
    let c = clients.get(key);
    if (!c) {
      c = mqtt.connect(`${url.protocol}//${url.host}`, {
        ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
        ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
        protocolVersion: version,
        reconnectPeriod: 1000,
        connectTimeout: 5000,
        queueQoSZero: false,
        clientId: `safecity-notifier-${Math.random().toString(36).slice(2, 10)}`,
      });
      c.on('error', () => {});
      clients.set(key, c);
    }
    return c;
  }

  async function connected(c: MqttClient, timeoutMs: number): Promise<void> {
    if (c.connected) return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        c.off('connect', ok);
        reject(new Error('MQTT broker not reachable'));
      }, timeoutMs);
      const ok = () => {
        clearTimeout(t);
        resolve();
      };
      c.once('connect', ok);
    });
  }

  return {
    schemes: ['mqtt', 'mqtts'],
    async send(n: OutgoingNotification): Promise<void> {
      const url = new URL(n.uri);
      const topic = decodeURIComponent(url.pathname.replace(/^\//, ''));
      const qosRaw = Number(n.notifierInfo['MQTT-QoS'] ?? 0);
      const qos = (qosRaw === 1 || qosRaw === 2 ? qosRaw : 0) as 0 | 1 | 2;
      const payload = JSON.stringify({ metadata: n.headers, body: n.body });
      if (opts.local?.isLocal(url)) {
        await opts.local.publish(topic, payload, qos);
        return;
      }
      const version = n.notifierInfo['MQTT-Version'] === 'mqtt5.0' ? 5 : 4;
      const c = clientFor(url, version);
      await connected(c, n.timeoutMs);
      await c.publishAsync(topic, payload, { qos });
    },
    async close() {
      await Promise.all([...clients.values()].map((c) => c.endAsync(true)));
      clients.clear();
    },
  };
}
