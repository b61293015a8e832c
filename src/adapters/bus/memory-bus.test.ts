import { describe, expect, it } from 'vitest';
import { makeEvent, runEventBusContract, sleep, uniqueNamespace, waitFor } from './bus.contract.ts';
import type { BusLogger } from './bus-logger.ts';
import { silentBusLogger } from './bus-logger.ts';
import { createMemoryBus, type MemoryBusOptions } from './memory-bus.ts';

const testOptions: MemoryBusOptions = {
  source: 'memory-test',
  retry: { initialDelayMs: 10, maxDelayMs: 40 },
  logger: silentBusLogger,
};

runEventBusContract('memory', async () => createMemoryBus(testOptions));

function capturingLogger() {
  const lines: { level: string; message: string; details: Record<string, unknown> }[] = [];
  const logger: BusLogger = {
    warn: (details, message) => lines.push({ level: 'warn', message, details }),
    error: (details, message) => lines.push({ level: 'error', message, details }),
  };
  return { lines, logger };
}

describe('memory bus', () => {
  it('is kind memory and shares a group round robin between its members', async () => {
    const bus = createMemoryBus(testOptions);
    expect(bus.kind).toBe('memory');
    const ns = uniqueNamespace();
    const counts = [0, 0, 0];
    for (const k of [0, 1, 2]) {
      await bus.subscribe({ types: [`${ns}.>`], group: 'g' }, async () => {
        counts[k] = (counts[k] ?? 0) + 1;
        await sleep(1);
      });
    }
    for (let i = 0; i < 30; i++) await bus.publish(makeEvent(`${ns}.a`, { i }));
    await waitFor(() => counts.reduce((a, b) => a + b) === 30);
    expect(counts).toEqual([10, 10, 10]);
    await bus.close();
  });

  it('refuses a publish when a group keeps maxPending events, and delivers it nowhere', async () => {
    const bus = createMemoryBus({ ...testOptions, maxPending: 3 });
    const ns = uniqueNamespace();
    const live: string[] = [];
    const sub = await bus.subscribe({ types: [`${ns}.>`], group: 'idle' }, async () => {});
    await sub.unsubscribe();
    await bus.subscribe({ types: [`${ns}.>`], mode: 'broadcast' }, async (e) => {
      live.push(e.id);
    });
    for (let i = 0; i < 3; i++) await bus.publish(makeEvent(`${ns}.a`, { i }));
    const refused = makeEvent(`${ns}.a`, { i: 3 });
    await expect(bus.publish(refused)).rejects.toMatchObject({
      code: 'BUS_BACKLOG_FULL',
      kind: 'unavailable',
    });
    // Other types are not held back by that group.
    await bus.publish(makeEvent(`other${ns}.a`, {}));
    await sleep(50);
    expect(live).toHaveLength(3);
    expect(live).not.toContain(refused.id);
    // Once a member drains the group, publishing works again, and the refused id is not a duplicate.
    const got: string[] = [];
    await bus.subscribe({ types: [`${ns}.>`], group: 'idle' }, async (e) => {
      got.push(e.id);
    });
    await waitFor(() => got.length === 3);
    await bus.publish(refused);
    await waitFor(() => got.length === 4);
    expect(got[3]).toBe(refused.id);
    await bus.close();
  });

  it('drops the oldest event of a slow broadcast subscriber, with a warning', async () => {
    const { lines, logger } = capturingLogger();
    const bus = createMemoryBus({ ...testOptions, maxBroadcastPending: 2, logger });
    const ns = uniqueNamespace();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const seen: number[] = [];
    await bus.subscribe({ types: [`${ns}.>`], mode: 'broadcast' }, async (e) => {
      seen.push((e.data as { n: number }).n);
      await gate;
    });
    await bus.publish(makeEvent(`${ns}.a`, { n: 0 }));
    await waitFor(() => seen.length === 1);
    for (let n = 1; n <= 4; n++) await bus.publish(makeEvent(`${ns}.a`, { n }));
    release();
    await waitFor(() => seen.length === 3);
    expect(seen).toEqual([0, 3, 4]);
    expect(lines.filter((l) => l.level === 'warn' && l.message.includes('dropped'))).toHaveLength(2);
    await bus.close();
  });

  it('refuses a member whose types differ from the running members of its group', async () => {
    const bus = createMemoryBus(testOptions);
    const ns = uniqueNamespace();
    const sub = await bus.subscribe({ types: [`${ns}.a`], group: 'g' }, async () => {});
    await expect(bus.subscribe({ types: [`${ns}.b`], group: 'g' }, async () => {})).rejects.toMatchObject({
      code: 'BUS_INVALID_SUBSCRIPTION',
    });
    await expect(
      bus.subscribe({ types: [`${ns}.a`], group: 'g', maxDeliver: 9 }, async () => {}),
    ).rejects.toMatchObject({ code: 'BUS_INVALID_SUBSCRIPTION' });
    await sub.unsubscribe();
    // With no member running, the group takes the new definition.
    const got: string[] = [];
    await bus.subscribe({ types: [`${ns}.b`], group: 'g' }, async (e) => {
      got.push(e.type);
    });
    await bus.publish(makeEvent(`${ns}.b`, {}));
    await waitFor(() => got.length === 1);
    await bus.close();
  });

  it('handles the events already published before close resolves (graceful shutdown)', async () => {
    const bus = createMemoryBus({ ...testOptions });
    const ns = uniqueNamespace();
    const handled: string[] = [];
    const live: string[] = [];
    await bus.subscribe({ types: [`${ns}.>`], group: 'slow' }, async (e) => {
      await new Promise((r) => setTimeout(r, 20));
      handled.push(e.id);
    });
    await bus.subscribe({ types: [`${ns}.>`], mode: 'broadcast' }, async (e) => {
      await new Promise((r) => setTimeout(r, 5));
      live.push(e.id);
    });
    for (let i = 0; i < 10; i++) await bus.publish(makeEvent(`${ns}.a`, { i }));
    expect(handled.length).toBeLessThan(10);
    await bus.close();
    expect(handled).toHaveLength(10);
    expect(live).toHaveLength(10);
  });

  it('logs a dead letter as an error and drops retries waiting at close', async () => {
    const { lines, logger } = capturingLogger();
    const bus = createMemoryBus({ ...testOptions, logger, retry: { initialDelayMs: 10_000 } });
    const ns = uniqueNamespace();
    let calls = 0;
    await bus.subscribe({ types: [`${ns}.>`], group: 'g', maxDeliver: 2 }, async () => {
      calls += 1;
      throw new Error('nope');
    });
    await bus.publish(makeEvent(`${ns}.a`, {}));
    await waitFor(() => calls === 1);
    const started = Date.now();
    await bus.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(lines.some((l) => l.message.includes('closed with events still waiting'))).toBe(true);
    expect(bus.deadLetters()).toEqual([]);

    const bus2 = createMemoryBus({ ...testOptions, logger });
    await bus2.subscribe({ types: [`${ns}.>`], group: 'g', maxDeliver: 1 }, async () => {
      throw new Error('nope');
    });
    await bus2.publish(makeEvent(`${ns}.a`, {}));
    await waitFor(() => bus2.deadLetters().length === 1);
    expect(lines.some((l) => l.level === 'error' && l.details.group === 'g')).toBe(true);
    await bus2.close();
  });
});
