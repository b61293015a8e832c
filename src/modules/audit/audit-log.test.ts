import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresStore } from '../../adapters/storage/postgres-store.ts';
import { openTestPostgresStore, testStoreFactories } from '../../adapters/storage/testing.ts';
import type { Store } from '../../ports/store.ts';
import {
  AuditChainer,
  appendAudit,
  auditMigrations,
  canonicalJson,
  chainPendingAudit,
  listAudit,
  recordAudit,
  verifyAuditChain,
} from './index.ts';

describe('canonicalJson', () => {
  it('sorts keys at every depth and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[1,{"y":2,"z":1}]},"b":1}',
    );
  });
});

for (const factory of testStoreFactories()) {
  describe.skipIf(factory.skip)(
    `audit log on ${factory.name}${factory.skip ? ` (skipped: ${factory.skip})` : ''}`,
    () => {
      let store: Store;
      beforeAll(async () => {
        store = await factory.open(auditMigrations);
      });
      afterAll(async () => {
        await store?.close();
      });

      const entry = (i: number) => ({
        actorId: `u${i % 3}`,
        actorOrg: 'police',
        action: 'update' as const,
        objectKind: 'report',
        objectId: `obj-${i % 4}`,
        ownerOrg: 'police',
        details: { i, nested: { b: 'x', a: [1, 2.5, null] } },
      });

      it('starts as a valid empty chain, then links every record to the one before', async () => {
        expect(await verifyAuditChain(store)).toEqual({ ok: true, records: 0 });
        for (let i = 0; i < 5; i++) await recordAudit(store, entry(i));
        await recordAudit(store, [entry(5), entry(6), entry(7)]);
        const all = await listAudit(store.db, { limit: 1000 });
        expect(all.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        for (let i = 1; i < all.length; i++) expect(all[i]?.prevHash).toBe(all[i - 1]?.hash);
        expect(await verifyAuditChain(store)).toEqual({ ok: true, records: 8 });
      });

      it('filters by object, actor, action and time', async () => {
        const byObject = await listAudit(store.db, { objectId: 'obj-1' });
        expect(byObject.map((r) => r.details.i)).toEqual([1, 5]);
        const byActor = await listAudit(store.db, { actorId: 'u0', newestFirst: true });
        expect(byActor.map((r) => r.details.i)).toEqual([6, 3, 0]);
        expect(await listAudit(store.db, { action: 'delete' })).toEqual([]);
        expect(await listAudit(store.db, { from: new Date(Date.now() + 60_000) })).toEqual([]);
        expect(await listAudit(store.db, { to: new Date(Date.now() + 60_000), limit: 2 })).toHaveLength(2);
      });

      it('chains committed records in the background, in the order they were written', async () => {
        const before = (await verifyAuditChain(store)).records;
        const chainer = new AuditChainer(store, { everyMs: 20 });
        try {
          await store.transaction((trx) => appendAudit(trx, [entry(300), entry(301)]));
          const pending = async () =>
            Number(
              (
                await sql<{ n: string }>`select count(*) as n from audit_record where seq is null`.execute(
                  store.db,
                )
              ).rows[0]?.n,
            );
          for (let i = 0; i < 100 && (await pending()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
          expect(await pending()).toBe(0);
        } finally {
          await chainer.stop();
        }
        expect(await chainPendingAudit(store.db)).toBe(0);
        const last = await listAudit(store.db, { newestFirst: true, limit: 2 });
        expect(last.map((r) => [r.seq, r.details.i])).toEqual([
          [before + 2, 301],
          [before + 1, 300],
        ]);
        await sql`delete from audit_record where seq > ${before}`.execute(store.db);
        await sql`update audit_head set seq = ${before}, hash = (select hash from audit_record where seq = ${before}) where id = 1`.execute(
          store.db,
        );
        expect((await verifyAuditChain(store)).ok).toBe(true);
      });

      it('rolls the record back with the write it belongs to', async () => {
        await expect(
          store.transaction(async (trx) => {
            await appendAudit(trx, entry(100));
            throw new Error('the write failed');
          }),
        ).rejects.toThrow('the write failed');
        expect(await verifyAuditChain(store)).toEqual({ ok: true, records: 8 });
      });

      it('never forks under concurrent appends', async () => {
        await Promise.all(Array.from({ length: 30 }, (_, i) => recordAudit(store, entry(200 + i))));
        const v = await verifyAuditChain(store);
        expect(v).toEqual({ ok: true, records: 38 });
      });

      it('detects an edited field', async () => {
        await sql`update audit_record set actor_id = 'mallory' where seq = 3`.execute(store.db);
        const v = await verifyAuditChain(store);
        expect(v.ok).toBe(false);
        expect(v.firstBadSeq).toBe(3);
        expect(v.reason).toMatch(/altered/);
        await sql`update audit_record set actor_id = 'u2' where seq = 3`.execute(store.db);
        expect((await verifyAuditChain(store)).ok).toBe(true);
      });

      it('detects an edited detail inside the jsonb', async () => {
        await sql`update audit_record set details = jsonb_set(details, '{i}', '99') where seq = 4`.execute(
          store.db,
        );
        const v = await verifyAuditChain(store);
        expect(v).toMatchObject({ ok: false, firstBadSeq: 4, records: 3 });
        await sql`update audit_record set details = jsonb_set(details, '{i}', '3') where seq = 4`.execute(
          store.db,
        );
        expect((await verifyAuditChain(store)).ok).toBe(true);
      });

      it('detects a removed middle record', async () => {
        const before = await listAudit(store.db, { limit: 1000 });
        const saved = (
          await sql<Record<string, unknown>>`select * from audit_record where seq = 10`.execute(store.db)
        ).rows[0];
        await sql`delete from audit_record where seq = 10`.execute(store.db);
        const v = await verifyAuditChain(store);
        expect(v.ok).toBe(false);
        expect(v.firstBadSeq).toBe(11);
        expect(v.firstBadId).toBe(before[10]?.id);
        expect(v.reason).toMatch(/record 10 is missing/);
        const r = saved as Record<string, unknown>;
        await sql`insert into audit_record (seq, id, at, actor_id, actor_org, action, object_kind, object_id, owner_org,
        details, prev_hash, hash) values (${r.seq}, ${r.id}, ${r.at}, ${r.actor_id}, ${r.actor_org}, ${r.action},
        ${r.object_kind}, ${r.object_id}, ${r.owner_org}, ${JSON.stringify(r.details)}, ${r.prev_hash}, ${r.hash})`.execute(
          store.db,
        );
        expect(await verifyAuditChain(store)).toEqual({ ok: true, records: 38 });
      });

      it('detects records removed at the end (the head is kept apart)', async () => {
        await sql`delete from audit_record where seq = 38`.execute(store.db);
        const v = await verifyAuditChain(store);
        expect(v).toMatchObject({ ok: false, records: 37 });
        expect(v.reason).toMatch(/removed at the end/);
      });
    },
  );
}

describe.skipIf(!process.env.DATABASE_URL)(
  `audit chain across two instances on one PostgreSQL${process.env.DATABASE_URL ? '' : ' (skipped: DATABASE_URL is not set)'}`,
  () => {
    it('serialises appends from two connection pools: one chain, no fork', async () => {
      const a = await openTestPostgresStore(auditMigrations);
      const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(a.db)).rows[0]?.s ?? '';
      const url = process.env.DATABASE_URL ?? '';
      const b = await createPostgresStore({ url, migrations: auditMigrations, schema, poolSize: 4 });
      try {
        const entry = (i: number) => ({
          actorId: 'x',
          actorOrg: 'o',
          action: 'create' as const,
          details: { i },
        });
        const t0 = performance.now();
        await Promise.all(Array.from({ length: 100 }, (_, i) => recordAudit(i % 2 === 0 ? a : b, entry(i))));
        const ms = performance.now() - t0;
        const v = await verifyAuditChain(b);
        expect(v).toEqual({ ok: true, records: 100 });
        console.log(`audit: 100 concurrent appends from two pools in ${ms.toFixed(0)} ms`);
      } finally {
        await b.close();
        await a.close();
      }
    });

    it('lets audited writes go in parallel: an append waits for no other transaction, and only committed records are chained', async () => {
      const store = await openTestPostgresStore(auditMigrations);
      try {
        const entry = (i: number) => ({
          actorId: 'x',
          actorOrg: 'o',
          action: 'update' as const,
          details: { i },
        });
        let release: () => void = () => {};
        const held = new Promise<void>((r) => {
          release = r;
        });
        // A long write holds its (uncommitted) audit record...
        const slow = store.transaction(async (trx) => {
          await appendAudit(trx, entry(1));
          await held;
        });
        await new Promise((r) => setTimeout(r, 50));
        // ...while another audited write commits, and the chain is read, without waiting for it.
        const t0 = performance.now();
        await recordAudit(store, entry(2));
        expect(await verifyAuditChain(store)).toEqual({ ok: true, records: 1 });
        expect(performance.now() - t0).toBeLessThan(5_000);
        release();
        await slow;
        expect(await verifyAuditChain(store)).toEqual({ ok: true, records: 2 });
        const all = await listAudit(store.db, { limit: 10 });
        expect(all.map((r) => [r.seq, r.details.i])).toEqual([
          [1, 2],
          [2, 1],
        ]);
      } finally {
        await store.close();
      }
    });
  },
);
