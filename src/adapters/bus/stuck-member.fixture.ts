/**
 * A group member that never finishes its event, for nats-bus.test.ts to kill (SIGKILL) while it holds it.
 * Env: NATS_URL, STUCK_STREAM, STUCK_PREFIX, STUCK_TYPES, STUCK_GROUP, STUCK_ACK_WAIT_MS. Prints `holding`.
 */
import { silentBusLogger } from './bus-logger.ts';
import { createNatsBus } from './nats-bus.ts';

const env = process.env as Record<string, string>;
const bus = await createNatsBus({
  url: env.NATS_URL as string,
  stream: env.STUCK_STREAM as string,
  subjectPrefix: env.STUCK_PREFIX as string,
  storage: 'memory',
  ackWaitMs: Number(env.STUCK_ACK_WAIT_MS),
  logger: silentBusLogger,
});
await bus.subscribe({ types: [env.STUCK_TYPES as string], group: env.STUCK_GROUP as string }, async () => {
  process.stdout.write('holding\n');
  await new Promise(() => undefined);
});
process.stdout.write('subscribed\n');
