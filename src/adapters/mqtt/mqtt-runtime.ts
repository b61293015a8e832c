/**
 * Picks the MQTT side of the platform from configuration, for the composition root:
 * - always the embedded broker (aedes) on `port` (SAFECITY_MQTT_PORT, default 1884), authenticating
 *   clients by token through `authenticate`;
 * - with `mqttUrl` (MQTT_URL) also the bridge that ingests from the external broker as `bridgePrincipal`;
 * - the MQTT notification sender (in-process for the embedded broker).
 * `port: false` runs without the embedded broker (e.g. a second instance behind an external broker).
 */
import type { IngestPrincipal, NotificationSender } from '../../modules/context-live/index.ts';
import type { EgressPolicy } from '../../modules/egress/index.ts';
import {
  type EmbeddedMqttBroker,
  type MqttAuthenticate,
  startEmbeddedMqttBroker,
} from './embedded-mqtt-broker.ts';
import { type ExternalMqttIngest, startExternalMqttIngest } from './external-mqtt-ingest.ts';
import { createMqttNotificationSender } from './mqtt-notification-sender.ts';

export const DEFAULT_MQTT_PORT = 1884;

export interface MqttRuntimeOptions {
  port: number | false;
  host?: string;
  mqttUrl?: string | undefined;
  /** Where notifications to brokers other than the platform's own may go. */
  egress: EgressPolicy;
  authenticate: MqttAuthenticate;
  /** The service account the external bridge ingests as; required with mqttUrl. */
  bridgePrincipal?: IngestPrincipal | undefined;
  onError?: (message: string, error: unknown) => void;
}

export interface MqttRuntime {
  readonly broker: EmbeddedMqttBroker | undefined;
  readonly sender: NotificationSender;
  /** Connects ingestion (the context-live module's `ingestion.ingest`) and starts the external bridge. */
  start(
    ingest: (m: { topic: string; payload: Buffer; principal: IngestPrincipal }) => Promise<unknown>,
  ): Promise<void>;
  close(): Promise<void>;
}

export async function startMqttRuntime(opts: MqttRuntimeOptions): Promise<MqttRuntime> {
  let ingest:
    | ((m: { topic: string; payload: Buffer; principal: IngestPrincipal }) => Promise<unknown>)
    | undefined;
  const route = (m: { topic: string; payload: Buffer; principal: IngestPrincipal }) => {
    if (!ingest) return Promise.reject(new Error('ingestion is not started yet'));
    return ingest(m);
  };
  const broker =
    opts.port === false
      ? undefined
      : await startEmbeddedMqttBroker({
          port: opts.port,
          ...(opts.host ? { host: opts.host } : {}),
          authenticate: opts.authenticate,
          ingest: route,
          ...(opts.onError ? { onError: opts.onError } : {}),
        });
  const sender = createMqttNotificationSender({
    egress: opts.egress,
    local: broker,
    platformBrokerUrl: opts.mqttUrl,
  });
  let external: ExternalMqttIngest | undefined;
  return {
    broker,
    sender,
    async start(fn) {
      ingest = fn;
      if (opts.mqttUrl) {
        if (!opts.bridgePrincipal)
          throw new Error('MQTT_URL needs the service account the bridge ingests as');
        external = await startExternalMqttIngest({
          url: opts.mqttUrl,
          principal: opts.bridgePrincipal,
          ingest: route,
          ...(opts.onError ? { onError: opts.onError } : {}),
        });
      }
    },
    async close() {
      await external?.close();
      await broker?.close();
      await sender.close();
    },
  };
}
