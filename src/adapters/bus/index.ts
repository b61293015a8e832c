/**
 * The event bus adapters and the one function that picks one: NATS JetStream when a URL is configured
 * (several instances), the in-process bus otherwise (embedded default).
 */
import type { BusLogger } from './bus-logger.ts';
import type { EventBusAdapter } from './event-bus-adapter.ts';
import { createMemoryBus, type MemoryBusOptions } from './memory-bus.ts';
import { createNatsBus, type NatsBusOptions } from './nats-bus.ts';

export type { BusLogger } from './bus-logger.ts';
export { consoleBusLogger, silentBusLogger } from './bus-logger.ts';
export type { DeadLetter } from './dead-letter.ts';
export type { EventBusAdapter } from './event-bus-adapter.ts';
export { matchesPattern } from './event-pattern.ts';
export { createMemoryBus, type MemoryBus, type MemoryBusOptions } from './memory-bus.ts';
export { createNatsBus, type NatsBus, type NatsBusOptions } from './nats-bus.ts';
export type { RetryBackoff } from './retry-backoff.ts';

export interface EventBusConfig {
  /** NATS URL(s); unset: the in-process bus. */
  natsUrl?: string | string[] | undefined;
  /** JetStream stream name. Default SAFECITY_EVENTS. */
  natsStream?: string | undefined;
  /** First subject token(s) of every event on NATS. Default `safecity`. */
  subjectPrefix?: string | undefined;
  /** This instance's name (NATS connection name, log lines). */
  source?: string | undefined;
  logger?: BusLogger | undefined;
  /** Further settings of the in-process bus. */
  memory?: Omit<MemoryBusOptions, 'source' | 'logger'>;
  /** Further settings of the NATS bus. */
  nats?: Omit<NatsBusOptions, 'url' | 'stream' | 'subjectPrefix' | 'source' | 'logger'>;
}

export async function createEventBus(config: EventBusConfig = {}): Promise<EventBusAdapter> {
  const common = {
    ...(config.source !== undefined && { source: config.source }),
    ...(config.logger !== undefined && { logger: config.logger }),
  };
  if (config.natsUrl === undefined || config.natsUrl.length === 0) {
    return createMemoryBus({ ...config.memory, ...common });
  }
  return createNatsBus({
    ...config.nats,
    ...common,
    url: config.natsUrl,
    ...(config.natsStream !== undefined && { stream: config.natsStream }),
    ...(config.subjectPrefix !== undefined && { subjectPrefix: config.subjectPrefix }),
  });
}
