/**
 * The embedded MQTT broker (aedes) of the default preset: sensors and gateways publish measurements to
 * it, and subscribers' systems receive MQTT notifications from it.
 *
 * - Clients authenticate with a service account's token as password, through the `authenticate`
 *   callback the composition root provides (username is informative). A connection is a live session:
 *   when its credential stops holding (token revoked, account disabled) the session disconnects it, and
 *   every publish waits for the session's verdict first, so nothing it sends after that is ingested.
 * - A publish under `safecity/v1/` is ingested before it is acknowledged: the PUBACK of a QoS 1
 *   message leaves once the message is written or dead-lettered, so nothing acknowledged is lost.
 *   Ingestion topics are never forwarded to other clients (they carry unmarked raw data).
 * - A client may subscribe only to `notifications/{its organisation}/...`: the topics where MQTT
 *   notifications of its organisation's subscriptions go. The platform publishes there in-process, and
 *   only there: `publishNotification` refuses another organisation's topics and ingestion topics, so no
 *   subscription can reach another organisation's clients or feed measurements in.
 */
import { createServer, type Server } from 'node:net';
import { finished } from 'node:stream';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { AppError } from '../../kernel/errors.ts';
import type { IngestPrincipal } from '../../modules/context-live/index.ts';
import {
  INGEST_TOPIC_PREFIX,
  notificationTopicRefusal,
  orgNotificationPrefix,
} from './notification-topics.ts';

/** An authenticated connection, as the broker lets the platform end it. */
export interface MqttConnection {
  /** Closes the connection (its will is not published: a publish of an ended session is refused). */
  disconnect(reason: string): void;
}

/** What the platform says of a connection it accepted. */
export interface MqttSession {
  principal: IngestPrincipal;
  /** False once the credential no longer holds; waits for a check in flight. Every publish asks. */
  valid?(): Promise<boolean>;
  /** The connection closed. */
  close?(): void;
}

export type MqttAuthenticate = (
  username: string | undefined,
  password: string | undefined,
  connection: MqttConnection,
) => Promise<MqttSession | null>;

export interface EmbeddedMqttBrokerOptions {
  /** TCP port (env SAFECITY_MQTT_PORT, default 1884 so it does not clash with a system Mosquitto). */
  port: number;
  host?: string;
  /** Accepts a connection with its session, or null to refuse it. */
  authenticate: MqttAuthenticate;
  /** Ingests one message; resolves once it is written or dead-lettered. */
  ingest(message: { topic: string; payload: Buffer; principal: IngestPrincipal }): Promise<unknown>;
  onError?: (message: string, error: unknown) => void;
}

export interface EmbeddedMqttBroker {
  readonly port: number;
  /**
   * Publishes a notification of `orgId`'s subscription from inside the platform (no client authorisation
   * applies), under `notifications/{orgId}/` only; rejects with CONTEXT_LIVE_MQTT_TOPIC_REFUSED elsewhere.
   */
  publishNotification(orgId: string, topic: string, payload: Buffer | string, qos: 0 | 1 | 2): Promise<void>;
  /** True when `uri` (mqtt://host:port/...) points at this broker. */
  isLocal(uri: URL): boolean;
  close(): Promise<void>;
}

function authError(message: string): AuthenticateError {
  // 4 = bad user name or password (MQTT 3.1.1 CONNACK return code).
  return Object.assign(new Error(message), { returnCode: 4 }) as AuthenticateError;
}

export async function startEmbeddedMqttBroker(opts: EmbeddedMqttBrokerOptions): Promise<EmbeddedMqttBroker> {
  const sessions = new WeakMap<Client, MqttSession>();
  const broker = await Aedes.createBroker({
    authenticate(client, username, password, done) {
      const connection: MqttConnection = {
        disconnect() {
          client.close();
        },
      };
      opts
        .authenticate(username, password?.toString('utf8'), connection)
        .then((session) => {
          if (!session) return done(authError('invalid token'), false);
          sessions.set(client, session);
          // However the connection ends, the platform stops watching its session.
          if (client.closed) session.close?.();
          else finished(client.conn, () => session.close?.());
          done(null, true);
        })
        .catch((e) => {
          opts.onError?.('mqtt authenticate', e);
          done(authError('authentication failed'), false);
        });
    },
    authorizePublish(client, packet, done) {
      if (!client) return done(null);
      const session = sessions.get(client);
      if (!session || !packet.topic.startsWith(INGEST_TOPIC_PREFIX)) {
        return done(new Error(`publishing to ${packet.topic} is not allowed`));
      }
      packet.retain = false;
      const principal = session.principal;
      (session.valid ? session.valid() : Promise.resolve(true))
        .then((valid) => {
          if (!valid) throw new Error('the session of this connection has ended');
          return opts.ingest({ topic: packet.topic, payload: Buffer.from(packet.payload), principal });
        })
        .then(
          () => done(null),
          (e) => {
            opts.onError?.('mqtt ingest', e);
            done(e instanceof Error ? e : new Error(String(e)));
          },
        );
    },
    authorizeSubscribe(client, sub, done) {
      const principal = sessions.get(client)?.principal;
      const mine = principal ? orgNotificationPrefix(principal.orgId) : undefined;
      // A null subscription refuses this topic (SUBACK 0x80) and keeps the connection.
      if (!mine || !sub.topic.startsWith(mine)) return done(null, null);
      done(null, sub);
    },
    authorizeForward(_client, packet) {
      return packet.topic.startsWith(INGEST_TOPIC_PREFIX) ? null : packet;
    },
  });
  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return {
    port,
    publishNotification(orgId, topic, payload, qos) {
      const refusal = notificationTopicRefusal(topic, orgId, true);
      if (refusal) return Promise.reject(new AppError('CONTEXT_LIVE_MQTT_TOPIC_REFUSED', refusal));
      return new Promise((resolve, reject) => {
        broker.publish(
          { cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false },
          (err) => (err ? reject(err) : resolve()),
        );
      });
    },
    isLocal(uri) {
      const local = ['localhost', '127.0.0.1', '[::1]', '0.0.0.0'];
      return uri.protocol === 'mqtt:' && local.includes(uri.hostname) && Number(uri.port || 1883) === port;
    },
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
