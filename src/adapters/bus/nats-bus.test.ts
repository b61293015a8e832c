import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { makeEvent, runEventBusContract, sleep, uniqueNamespace, waitFor } from './bus.contract.ts';
import { silentBusLogger } from './bus-logger.ts';
import { createNatsBus, type NatsBus, type NatsBusOptions } from './nats-bus.ts';

const url = process.env.NATS_URL;
const natsServerBin = process.env.NATS_SERVER_BIN ?? 'nats-server';
const haveNatsServer = spawnSync(natsServerBin, ['--version']).status === 0;
const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`.toUpperCase();
const testOptions = (): NatsBusOptions => ({
  url: url ?? '',
  stream: `TEST_EVENTS_${run}`,
  subjectPrefix: `test-${run.toLowerCase()}`,
  source: 'nats-test',
  storage: 'memory',
  ackWaitMs: 2000,
  retry: { initialDelayMs: 20, maxDelayMs: 100 },
  logger: silentBusLogger,
});

async function deleteStreams(): Promise<void> {
  if (!url) return;
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  for (const name of [`TEST_EVENTS_${run}`, `TEST_EVENTS_${run}_DEAD`]) {
    await jsm.streams.delete(name).catch(() => false);
  }
  await nc.close();
}

describe.skipIf(!url)('NATS JetStream bus (needs NATS_URL, e.g. nats://127.0.0.1:4222)', () => {
  afterAll(deleteStreams);

  runEventBusContract('nats', () => createNatsBus(testOptions()), { settleMs: 300 });

  it('creates its stream and dead letter stream with the configured subjects', async () => {
    const bus = await createNatsBus(testOptions());
    expect(bus.kind).toBe('nats');
    const nc = await connect({ servers: url ?? '' });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(bus.stream);
    expect(info.config.subjects).toEqual([`${bus.subjectPrefix}.>`]);
    expect(info.config.duplicate_window).toBe(120_000_000_000);
    const dead = await jsm.streams.info(bus.deadLetterStream);
    expect(dead.config.subjects).toEqual([`${bus.subjectPrefix}-dead.>`]);
    await nc.close();
    await bus.close();
  });

  it('fails to connect with BUS_UNAVAILABLE', async () => {
    await expect(
      createNatsBus({ ...testOptions(), url: 'nats://127.0.0.1:1', connectTimeoutMs: 500 }),
    ).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' });
  });

  it('stores a dead letter in the dead letter stream', async () => {
    const bus = await createNatsBus(testOptions());
    const ns = uniqueNamespace();
    await bus.subscribe({ types: [`${ns}.>`], group: `${ns}-g`, maxDeliver: 1 }, async () => {
      throw new Error('poison');
    });
    const e = makeEvent(`${ns}.bad`, { x: 1 });
    await bus.publish(e);
    await waitFor(() => bus.deadLetters().length === 1);
    const nc = await connect({ servers: url ?? '' });
    const jsm = await jetstreamManager(nc);
    const stored = await jsm.streams.getMessage(bus.deadLetterStream, {
      last_by_subj: `${bus.subjectPrefix}-dead.${ns}-g`,
    });
    expect(stored?.json()).toMatchObject({ group: `${ns}-g`, attempts: 1, error: 'poison', event: e });
    await nc.close();
    await bus.close();
  });

  it("keeps a group's events while no instance runs it, for the next instance to handle", async () => {
    const ns = uniqueNamespace();
    const first = await createNatsBus(testOptions());
    const sub = await first.subscribe({ types: [`${ns}.>`], group: `${ns}-g` }, async () => {});
    await sub.unsubscribe();
    await first.close();
    const publisher = await createNatsBus(testOptions());
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) {
      const e = makeEvent(`${ns}.incident.opened`, { i });
      sent.push(e.id);
      await publisher.publish(e);
    }
    await publisher.close();
    const next = await createNatsBus(testOptions());
    const got: string[] = [];
    await next.subscribe({ types: [`${ns}.>`], group: `${ns}-g` }, async (e) => {
      got.push(e.id);
    });
    await waitFor(() => got.length === 5);
    expect(got).toEqual(sent);
    await next.close();
  });

  it('updates a group consumer when its types change (the newest definition wins)', async () => {
    const ns = uniqueNamespace();
    const bus = await createNatsBus(testOptions());
    const old = await bus.subscribe({ types: [`${ns}.a`], group: `${ns}-g` }, async () => {});
    await old.unsubscribe();
    const got: string[] = [];
    await bus.subscribe({ types: [`${ns}.b`], group: `${ns}-g` }, async (e) => {
      got.push(e.type);
    });
    await bus.publish(makeEvent(`${ns}.a`, {}));
    await bus.publish(makeEvent(`${ns}.b`, {}));
    await waitFor(() => got.length === 1);
    await sleep(200);
    expect(got).toEqual([`${ns}.b`]);
    await bus.close();
  });

  it('keeps an event with the member that handles it for as long as that member lives, however long it takes', async () => {
    const ns = uniqueNamespace();
    const a = await createNatsBus({ ...testOptions(), ackWaitMs: 300 });
    const b = await createNatsBus({ ...testOptions(), ackWaitMs: 300 });
    let release!: () => void;
    const slow = new Promise<void>((r) => {
      release = r;
    });
    const onA: number[] = [];
    const onB: number[] = [];
    await a.subscribe({ types: [`${ns}.>`], group: `${ns}-g` }, async (_e, d) => {
      onA.push(d.attempt);
      await slow;
    });
    await a.publish(makeEvent(`${ns}.job`, {}));
    await waitFor(() => onA.length === 1);
    await b.subscribe({ types: [`${ns}.>`], group: `${ns}-g` }, async (_e, d) => {
      onB.push(d.attempt);
    });
    // Six lease periods: a renews its lease, so the event is not handed to b.
    await sleep(1800);
    release();
    await sleep(300);
    expect([onA, onB]).toEqual([[1], []]);
    await Promise.all([a.close(), b.close()]);
  });

  it('hands the events a killed member held to another member once its lease lapses', async () => {
    const ns = uniqueNamespace();
    const opts = testOptions();
    const member = spawn(
      process.execPath,
      [
        join(import.meta.dirname, '../../../bin/run-ts.js'),
        join(import.meta.dirname, 'stuck-member.fixture.ts'),
      ],
      {
        env: {
          ...process.env,
          STUCK_STREAM: opts.stream as string,
          STUCK_PREFIX: opts.subjectPrefix as string,
          STUCK_TYPES: `${ns}.>`,
          STUCK_GROUP: `${ns}-g`,
          STUCK_ACK_WAIT_MS: '1000',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    member.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor(() => out.includes('subscribed'), 30_000, 'the member to subscribe');
    const b = await createNatsBus({ ...opts, ackWaitMs: 1000 });
    const e = makeEvent(`${ns}.job`, {});
    await b.publish(e);
    await waitFor(() => out.includes('holding'), 10_000, 'the member to hold the event');
    const onB: Array<[string, number]> = [];
    await b.subscribe({ types: [`${ns}.>`], group: `${ns}-g` }, async (ev, d) => {
      onB.push([ev.id, d.attempt]);
    });
    const exited = new Promise((r) => member.once('exit', r));
    member.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    await waitFor(() => onB.length === 1, 10_000, 'the redelivery to b');
    expect(Date.now() - killedAt).toBeLessThan(2500);
    expect(onB).toEqual([[e.id, 2]]);
    await b.close();
  });

  describe('two instances on one stream', () => {
    const buses: NatsBus[] = [];
    afterAll(async () => {
      await Promise.all(buses.map((b) => b.close()));
    });

    it('broadcasts across instances and shares a group between them', async () => {
      const a = await createNatsBus({ ...testOptions(), source: 'instance-a' });
      const b = await createNatsBus({ ...testOptions(), source: 'instance-b' });
      buses.push(a, b);
      const ns = uniqueNamespace();
      const liveOnB: string[] = [];
      await b.subscribe({ types: [`${ns}.entity.*`], mode: 'broadcast' }, async (e) => {
        liveOnB.push(e.id);
      });
      const handledBy: Record<string, string[]> = {};
      const worker = (who: string) => async (e: { id: string }) => {
        handledBy[e.id] = [...(handledBy[e.id] ?? []), who];
        await sleep(2);
      };
      await a.subscribe({ types: [`${ns}.entity.*`], group: `${ns}-workers` }, worker('a'));
      await b.subscribe({ types: [`${ns}.entity.*`], group: `${ns}-workers` }, worker('b'));
      const sent: string[] = [];
      for (let i = 0; i < 40; i++) {
        const e = makeEvent(`${ns}.entity.updated`, { i });
        sent.push(e.id);
        await (i % 2 ? b : a).publish(e);
      }
      await waitFor(
        () => liveOnB.length === 40 && Object.keys(handledBy).length === 40,
        15_000,
        'all events',
      );
      await sleep(300);
      expect(liveOnB).toEqual(sent);
      expect(Object.values(handledBy).every((who) => who.length === 1)).toBe(true);
      const byA = Object.values(handledBy).filter((who) => who[0] === 'a').length;
      expect(byA).toBeGreaterThan(0);
      expect(byA).toBeLessThan(40);
    });
  });
});

describe.skipIf(!haveNatsServer)('NATS bus across a server restart (needs the nats-server binary)', () => {
  it('reconnects by itself and resumes both group and broadcast subscriptions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'safecity-nats-'));
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const start = () =>
      spawn(natsServerBin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
    let server = start();
    try {
      let bus: NatsBus | undefined;
      const started = Date.now();
      while (!bus) {
        bus = await createNatsBus({
          url: `nats://127.0.0.1:${port}`,
          logger: silentBusLogger,
          publishTimeoutMs: 1000,
          reconnectWaitMs: 200,
        }).catch(async () => {
          if (Date.now() - started > 10_000) throw new Error('private nats-server did not start');
          await sleep(100);
          return undefined;
        });
      }
      const inGroup: string[] = [];
      const live: string[] = [];
      await bus.subscribe({ types: ['x.>'], group: 'g' }, async (e) => {
        inGroup.push(e.id);
      });
      await bus.subscribe({ types: ['x.>'], mode: 'broadcast' }, async (e) => {
        live.push(e.id);
      });
      await bus.publish(makeEvent('x.before', {}));
      await waitFor(() => inGroup.length === 1 && live.length === 1);
      const stopped = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await stopped;
      await expect(bus.publish(makeEvent('x.during', {}))).rejects.toMatchObject({
        code: 'BUS_PUBLISH_FAILED',
      });
      server = start();
      const after = makeEvent('x.after', {});
      let published = false;
      while (!published) {
        published = await bus.publish(after).then(
          () => true,
          () => sleep(200).then(() => false),
        );
      }
      await waitFor(
        () => inGroup.includes(after.id) && live.includes(after.id),
        30_000,
        'delivery after restart',
      );
      await bus.close();
    } finally {
      server.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
