/**
 * Ingestion from an external MQTT broker (MQTT_URL, e.g. the city's Mosquitto): the platform subscribes
 * to `safecity/v1/#` with QoS 1 over several connections sharing one subscription
 * (`$share/<group>/...`, so several instances split the work), and acknowledges each message only after
 * it was written or dead-lettered. The external broker authenticates the devices; the messages are
 * ingested as the service account the composition root names.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { IngestPrincipal } from '../../modules/context-live/index.ts';

export interface ExternalMqttIngestOptions {
  url: string;
  principal: IngestPrincipal;
  ingest(message: { topic: string; payload: Buffer; principal: IngestPrincipal }): Promise<unknown>;
  /** Connections sharing the subscription (each handles one message at a time). Default 4. */
  connections?: number;
  /** Shared subscription group; default `safecity-ingest`. */
  group?: string;
  topic?: string;
  onError?: (message: string, error: unknown) => void;
}

export interface ExternalMqttIngest {
  close(): Promise<void>;
}

export async function startExternalMqttIngest(opts: ExternalMqttIngestOptions): Promise<ExternalMqttIngest> {
  const n = opts.connections ?? 4;
  const topic = opts.topic ?? 'safecity/v1/#';
  const filter = `$share/${opts.group ?? 'safecity-ingest'}/${topic}`;
  const clients: MqttClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = mqtt.connect(opts.url, {
      clientId: `safecity-ingest-${i}-${Math.random().toString(36).slice(2, 8)}`,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
    });
    // The PUBACK leaves when this callback is called: after the message is durable.
    c.handleMessage = (packet, callback) => {
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
      opts.ingest({ topic: packet.topic, payload, principal: opts.principal }).then(
        () => callback(),
        (e) => {
          opts.onError?.('external mqtt ingest', e);
          callback(e instanceof Error ? e : new Error(String(e)));
        },
      );
    };
    c.on('error', (e) => opts.onError?.('external mqtt', e));
    clients.push(c);
  }
  await Promise.all(
    clients.map(async (c) => {
      if (!c.connected) await new Promise<void>((resolve) => c.once('connect', () => resolve()));
      await c.subscribeAsync(filter, { qos: 1 });
    }),
  );
  return {
    async close() {
      await Promise.all(clients.map((c) => c.endAsync()));
    },
  };
}
