import { describe, expect, it } from 'vitest';
import { makeEvent, uniqueNamespace, waitFor } from './bus.contract.ts';
import { createEventBus, silentBusLogger } from './index.ts';

describe('createEventBus', () => {
  it('picks the in-process bus when no NATS URL is configured', async () => {
    const bus = await createEventBus({ natsUrl: undefined, source: 'test', logger: silentBusLogger });
    expect(bus.kind).toBe('memory');
    const ns = uniqueNamespace();
    const got: string[] = [];
    await bus.subscribe({ types: [`${ns}.>`], mode: 'broadcast' }, async (e) => {
      got.push(e.type);
    });
    await bus.publish(makeEvent(`${ns}.entity.updated`, {}));
    await waitFor(() => got.length === 1);
    await bus.close();
  });

  it('reports an unreachable NATS server as BUS_UNAVAILABLE', async () => {
    await expect(
      createEventBus({
        natsUrl: 'nats://127.0.0.1:1',
        logger: silentBusLogger,
        nats: { connectTimeoutMs: 500 },
      }),
    ).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' });
  });

  describe.skipIf(!process.env.NATS_URL)('with NATS_URL set', () => {
    it('picks the NATS bus, with the configured stream', async () => {
      const stream = `TEST_PICK_${Date.now().toString(36).toUpperCase()}`;
      const bus = await createEventBus({
        natsUrl: process.env.NATS_URL,
        natsStream: stream,
        subjectPrefix: `test-pick-${Date.now().toString(36)}`,
        logger: silentBusLogger,
        nats: { storage: 'memory' },
      });
      expect(bus.kind).toBe('nats');
      expect('stream' in bus && bus.stream).toBe(stream);
      const { connect } = await import('@nats-io/transport-node');
      const { jetstreamManager } = await import('@nats-io/jetstream');
      await bus.close();
      const nc = await connect({ servers: process.env.NATS_URL ?? '' });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(stream);
      await jsm.streams.delete(`${stream}_DEAD`);
      await nc.close();
    });
  });
});
