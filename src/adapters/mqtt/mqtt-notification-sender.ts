/**
 * Sends NGSI-LD notifications over MQTT (the MQTT notification binding): the message is
 * `{ "metadata": { Content-Type, Link, receiverInfo... }, "body": <Notification> }` published to the
 * topic of the endpoint URI `mqtt[s]://[user:pass@]host[:port]/topic`. notifierInfo `MQTT-QoS` (0, 1, 2;
 * default 0) and `MQTT-Version` (mqtt3.1.1 or mqtt5.0) are honoured.
 *
 * Where a notification may go (checked at create and update, and again on every delivery):
 * - the embedded broker: published in-process, under `notifications/{subscriber's org}/` only;
 * - the broker the platform ingests from (MQTT_URL): the same topic space; the operator configured it,
 *   so the egress policy does not apply to its address;
 * - any other broker: the egress policy decides, the host is resolved once and the connection goes to the
 *   checked address; no ingestion topics and no other organisation's `notifications/` topics there either.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { AppError } from '../../kernel/errors.ts';
import type { NotificationSender, OutgoingNotification } from '../../modules/context-live/index.ts';
import type { EgressPolicy } from '../../modules/egress/index.ts';
import type { EmbeddedMqttBroker } from './embedded-mqtt-broker.ts';
import { notificationTopicRefusal } from './notification-topics.ts';

export interface MqttNotificationSenderOptions {
  /** Where notifications to brokers other than the platform's may go. */
  egress: EgressPolicy;
  local?: EmbeddedMqttBroker | undefined;
  /** The external broker the platform ingests from (MQTT_URL), whose topics every organisation shares. */
  platformBrokerUrl?: string | undefined;
}

/** host:port of an MQTT URL, with the scheme's default port. */
function brokerKey(url: URL): string {
  const port = url.port || (url.protocol === 'mqtts:' ? '8883' : '1883');
  return `${url.protocol}//${url.hostname.toLowerCase()}:${port}`;
}

function topicOf(url: URL): string {
  try {
    return decodeURIComponent(url.pathname.replace(/^\//, ''));
  } catch {
    throw new AppError('CONTEXT_LIVE_MQTT_TOPIC_REFUSED', 'the endpoint topic is not valid percent-encoding');
  }
}

export function createMqttNotificationSender(opts: MqttNotificationSenderOptions): NotificationSender {
  const clients = new Map<string, MqttClient>();
  const platformKey = opts.platformBrokerUrl ? brokerKey(new URL(opts.platformBrokerUrl)) : undefined;

  function clientFor(url: URL, address: string, version: 4 | 5): MqttClient {
    // The key holds the checked address: a host that resolves elsewhere later gets a new connection.
    const key = `${url.protocol}//${url.username}:${url.password}@${url.host}@${address}#${version}`;
    let c = clients.get(key);
    if (!c) {
      const port = Number(url.port || (url.protocol === 'mqtts:' ? 8883 : 1883));
      const name = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      c = mqtt.connect({
        protocol: url.protocol === 'mqtts:' ? 'mqtts' : 'mqtt',
        host: address,
        hostname: address,
        port,
        // TLS still checks the certificate against the name in the endpoint, not the address.
        ...(url.protocol === 'mqtts:' && name !== address ? { servername: name } : {}),
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

  /** Where a URL goes: in-process, the platform's broker, or elsewhere; throws when its topic is refused. */
  function route(
    uri: string,
    ownerOrg: string,
  ): { url: URL; topic: string; kind: 'local' | 'platform' | 'other' } {
    const url = new URL(uri);
    const topic = topicOf(url);
    const kind = opts.local?.isLocal(url) ? 'local' : brokerKey(url) === platformKey ? 'platform' : 'other';
    const refusal = notificationTopicRefusal(topic, ownerOrg, kind !== 'other');
    if (refusal)
      throw new AppError(
        'CONTEXT_LIVE_MQTT_TOPIC_REFUSED',
        `${uri.replace(/\/\/[^@/]*@/, '//')}: ${refusal}`,
      );
    return { url, topic, kind };
  }

  return {
    schemes: ['mqtt', 'mqtts'],
    async checkEndpoint(uri: string, ownerOrg: string): Promise<void> {
      const r = route(uri, ownerOrg);
      if (r.kind === 'other') await opts.egress.vet(r.url);
    },
    async send(n: OutgoingNotification): Promise<void> {
      const { url, topic, kind } = route(n.uri, n.ownerOrg);
      const qosRaw = Number(n.notifierInfo['MQTT-QoS'] ?? 0);
      const qos = (qosRaw === 1 || qosRaw === 2 ? qosRaw : 0) as 0 | 1 | 2;
      const payload = JSON.stringify({ metadata: n.headers, body: n.body });
      if (kind === 'local' && opts.local) {
        await opts.local.publishNotification(n.ownerOrg, topic, payload, qos);
        return;
      }
      const address =
        kind === 'platform'
          ? url.hostname.replace(/^\[|\]$/g, '')
          : (await opts.egress.resolve(url, n.timeoutMs)).address;
      const version = n.notifierInfo['MQTT-Version'] === 'mqtt5.0' ? 5 : 4;
      const c = clientFor(url, address, version);
      await connected(c, n.timeoutMs);
      await c.publishAsync(topic, payload, { qos });
    },
    async close() {
      await Promise.all([...clients.values()].map((c) => c.endAsync(true)));
      clients.clear();
    },
  };
}
