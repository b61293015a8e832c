/**
 * A writer that dies between commit and relay, for transactional-outbox.test.ts: it emits one event in a
 * transaction on PostgreSQL and kills itself (SIGKILL) in an after-commit hook that runs before the
 * outbox's own, so the committed event is never relayed by its writer.
 * Env: DATABASE_URL, OUTBOX_TEST_SCHEMA.
 */
import { createMemoryBus } from '../../adapters/bus/index.ts';
import { createPostgresStore } from '../../adapters/storage/postgres-store.ts';
import { eventsMigrations } from './migrations.ts';
import { TransactionalOutbox } from './transactional-outbox.ts';

type CrashEvents = { 'test.crash.committed': { by: number } };

const store = await createPostgresStore({
  url: process.env.DATABASE_URL as string,
  schema: process.env.OUTBOX_TEST_SCHEMA as string,
  migrations: eventsMigrations,
});
const outbox = new TransactionalOutbox<CrashEvents>({ store, bus: createMemoryBus() });
const events = outbox.emitter<CrashEvents>('crashing-writer');
await store.transaction(async (trx) => {
  store.afterCommit(trx, async () => {
    process.kill(process.pid, 'SIGKILL');
  });
  await events.emit(trx, 'test.crash.committed', { by: process.pid });
});
