import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMemoryBus,
  createNatsBus,
  type EventBusAdapter,
  silentBusLogger,
} from '../../adapters/bus/index.ts';
import { createPostgresStore } from '../../adapters/storage/postgres-store.ts';
import { testStoreFactories } from '../../adapters/storage/testing.ts';
import { AppError } from '../../kernel/errors.ts';
import type { PlatformEvent } from '../../ports/event-bus.ts';
import type { Store } from '../../ports/store.ts';
import { eventsMigrations } from './migrations.ts';
import { TransactionalOutbox } from './transactional-outbox.ts';

type TestEvents = {
  'test.thing.happened': { n: number };
  'test.thing.undone': { n: number };
};

const ROOT = join(import.meta.dirname, '../../..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  what = 'condition',
): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

const quiet = () => undefined;

async function rowsIn(store: Store): Promise<Array<{ events: PlatformEvent[]; attempts: number }>> {
  const r = await sql<{ events: Uint8Array; attempts: number }>`select events, attempts from event_outbox
    order by id`.execute(store.db);
  return r.rows.map((row) => ({
    events: JSON.parse(brotliDecompressSync(row.events).toString('utf8')) as PlatformEvent[],
    attempts: row.attempts,
  }));
}

for (const f of testStoreFactories()) {
  describe.skipIf(f.skip)(`transactional outbox on ${f.name}${f.skip ? ` (skipped: ${f.skip})` : ''}`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await f.open(eventsMigrations);
    });
    afterAll(async () => {
      await store?.close();
    });

    it('relays a transaction’s events once it committed, in emit order, before transaction resolves, and deletes the row', async () => {
      const bus = createMemoryBus();
      const seen: PlatformEvent[] = [];
      await bus.subscribe({ types: ['test.>'], group: 'g1' }, async (e) => {
        seen.push(e);
      });
      const outbox = new TransactionalOutbox<TestEvents>({ store, bus });
      const events = outbox.emitter<TestEvents>('tests');
      const published: string[] = [];
      await store.transaction(async (trx) => {
        await events.emitAll(trx, [
          { type: 'test.thing.happened', data: { n: 1 } },
          { type: 'test.thing.happened', data: { n: 2 } },
        ]);
        await events.emit(trx, 'test.thing.undone', { n: 1 });
        // Not yet: nothing leaves before the commit.
        await sleep(20);
        published.push(`in transaction: ${seen.length}`);
      });
      // The memory bus hands events to handlers on the next ticks; they were accepted before the resolve.
      await until(() => seen.length === 3, 2000, 'three events');
      expect(published).toEqual(['in transaction: 0']);
      expect(seen.map((e) => [e.type, e.data, e.source])).toEqual([
        ['test.thing.happened', { n: 1 }, 'tests'],
        ['test.thing.happened', { n: 2 }, 'tests'],
        ['test.thing.undone', { n: 1 }, 'tests'],
      ]);
      expect(new Set(seen.map((e) => e.id)).size).toBe(3);
      await until(async () => (await outbox.backlog()) === 0, 2000, 'the relayed row to be deleted');
      expect(outbox.stats).toMatchObject({ relayed: 3, swept: 0, failed: 0 });
      await outbox.stop();
      await bus.close();
    });

    it('leaves no row and no event when the transaction rolls back', async () => {
      const bus = createMemoryBus();
      const seen: PlatformEvent[] = [];
      await bus.subscribe({ types: ['test.>'], mode: 'broadcast' }, async (e) => {
        seen.push(e);
      });
      const outbox = new TransactionalOutbox<TestEvents>({ store, bus, sweepEveryMs: 20 });
      outbox.start();
      const events = outbox.emitter<TestEvents>('tests');
      await expect(
        store.transaction(async (trx) => {
          await events.emit(trx, 'test.thing.happened', { n: 99 });
          throw new AppError('PLATFORM_BAD_REQUEST', 'the change is refused after its event was written');
        }),
      ).rejects.toMatchObject({ code: 'PLATFORM_BAD_REQUEST' });
      await sleep(300);
      expect(seen).toEqual([]);
      expect(await rowsIn(store)).toEqual([]);
      await outbox.stop();
      await bus.close();
    });

    it('gap 10: copies drift — keeps the events of a failed publish, and another instance’s sweeper relays them with the same ids', async () => {
      // Instance A's bus is down (closed): its relay fails after the commit.
      const downBus = createMemoryBus();
      await downBus.close();
      const errors: string[] = [];
      const a = new TransactionalOutbox<TestEvents>({
        store,
        bus: downBus,
        firstRetryDelayMs: 200,
        onError: (message) => errors.push(message),
      });
      await store.transaction(async (trx) => {
        await a.emitter<TestEvents>('a').emit(trx, 'test.thing.happened', { n: 7 });
      });
      await until(() => errors.length > 0, 2000, 'the failed relay');
      expect(errors).toEqual(['events not published; relayed again later']);
      const [kept] = await rowsIn(store);
      expect(kept?.attempts).toBe(1);
      const id = kept?.events[0]?.id;
      // Instance B, with a working bus, takes the row once its retry time has come.
      const bus = createMemoryBus();
      const seen: PlatformEvent[] = [];
      await bus.subscribe({ types: ['test.>'], group: 'g2' }, async (e) => {
        seen.push(e);
      });
      const b = new TransactionalOutbox<TestEvents>({ store, bus, sweepEveryMs: 50 });
      b.start();
      await until(() => seen.length === 1, 5000, 'the swept event');
      expect(seen.map((e) => [e.id, e.type, e.data, e.source])).toEqual([
        [id, 'test.thing.happened', { n: 7 }, 'a'],
      ]);
      await until(async () => (await b.backlog()) === 0, 2000, 'the swept row to be deleted');
      expect(b.stats).toMatchObject({ swept: 1, relayed: 1 });
      await a.stop();
      await b.stop();
      await bus.close();
    });

    it('gives up an event the bus refuses for good, and still relays the others of its row', async () => {
      const bus = createMemoryBus();
      const seen: PlatformEvent[] = [];
      await bus.subscribe({ types: ['test.>'], mode: 'broadcast' }, async (e) => {
        seen.push(e);
      });
      const errors: string[] = [];
      // The platform's map keeps such a type out of modules; a map made for the test shows what the bus does.
      type Loose = { 'test.ok': object; 'not a type': object };
      const outbox = new TransactionalOutbox<Loose>({ store, bus, onError: (m) => errors.push(m) });
      const loose = outbox.emitter<Loose>('tests');
      await store.transaction(async (trx) => {
        await loose.emitAll(trx, [
          { type: 'not a type', data: {} },
          { type: 'test.ok', data: {} },
        ]);
      });
      await until(() => seen.length === 1, 2000, 'the valid event');
      expect(errors).toEqual(['event given up: the bus refuses it']);
      await until(async () => (await outbox.backlog()) === 0, 2000, 'the row to be deleted');
      await outbox.stop();
      await bus.close();
    });
  });
}

const pgUrl = process.env.DATABASE_URL;
describe.skipIf(!pgUrl)(
  `a writer killed between commit and relay${pgUrl ? '' : ' (skipped: DATABASE_URL is not set)'}`,
  () => {
    it('is taken over by another instance’s sweeper within its grace period plus a sweep', async () => {
      const schema = `t_outbox_crash_${Date.now().toString(36)}`;
      const store = await createPostgresStore({ url: pgUrl as string, schema, migrations: eventsMigrations });
      await store.migrate();
      let bus: EventBusAdapter | undefined;
      let outbox: TransactionalOutbox<{ 'test.crash.committed': { by: number } }> | undefined;
      try {
        const child = spawn(
          process.execPath,
          [join(ROOT, 'bin/run-ts.js'), join(import.meta.dirname, 'crash-after-commit.fixture.ts')],
          { env: { ...process.env, OUTBOX_TEST_SCHEMA: schema }, stdio: 'inherit' },
        );
        const signal = await new Promise((r) => child.once('exit', (_code, s) => r(s)));
        expect(signal).toBe('SIGKILL');
        const diedAt = Date.now();
        const [left] = await rowsIn(store);
        expect(left?.attempts).toBe(0);
        expect(left?.events.map((e) => e.type)).toEqual(['test.crash.committed']);
        bus = process.env.NATS_URL
          ? await createNatsBus({
              url: process.env.NATS_URL,
              stream: `TEST_OUTBOX_${schema.toUpperCase()}`,
              subjectPrefix: `outbox-${schema.replaceAll('_', '-')}`,
              storage: 'memory',
              logger: silentBusLogger,
            })
          : createMemoryBus();
        const seen: PlatformEvent[] = [];
        await bus.subscribe({ types: ['test.>'], group: 'crash' }, async (e) => {
          seen.push(e);
        });
        outbox = new TransactionalOutbox({ store, bus, sweepEveryMs: 100, onError: quiet });
        outbox.start();
        await until(() => seen.length === 1, 5000, 'the dead writer’s event');
        const tookMs = Date.now() - diedAt;
        expect(seen[0]?.id).toBe(left?.events[0]?.id);
        // The writer's grace (2 s from its insert) plus one sweep, with room for a loaded machine.
        expect(tookMs).toBeLessThan(3500);
        await until(async () => (await outbox?.backlog()) === 0, 2000, 'the row to be deleted');
      } finally {
        await outbox?.stop();
        if (bus?.kind === 'nats') {
          const { jetstreamManager } = await import('@nats-io/jetstream');
          const { connect } = await import('@nats-io/transport-node');
          const nc = await connect({ servers: process.env.NATS_URL as string });
          const jsm = await jetstreamManager(nc);
          for (const s of [`TEST_OUTBOX_${schema.toUpperCase()}`, `TEST_OUTBOX_${schema.toUpperCase()}_DEAD`])
            await jsm.streams.delete(s).catch(() => false);
          await nc.close();
        }
        await bus?.close();
        await store.close();
        const pg = (await import('pg')).default;
        const admin = new pg.Client({ connectionString: pgUrl });
        await admin.connect();
        await admin.query(`drop schema if exists ${schema} cascade`);
        await admin.end();
      }
    }, 30_000);
  },
);
