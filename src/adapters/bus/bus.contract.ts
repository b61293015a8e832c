/**
 * The one contract every event bus adapter passes (see docs/event-bus.md). Each adapter's test file calls
 * `runEventBusContract` with a factory that returns a new, connected bus; the factory sets short retry
 * backoffs so the suite stays fast. Every test uses its own event type namespace and group names, so
 * adapters that share a server between tests (NATS) do not see each other's events.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { newTimeOrderedId } from '../../kernel/ids.ts';
import type { EventDelivery, PlatformEvent } from '../../ports/event-bus.ts';
import type { EventBusAdapter } from './event-bus-adapter.ts';

export interface ContractOptions {
  /** How long to wait to be sure that nothing more arrives (ms). Default 150. */
  settleMs?: number;
}

let namespaceCounter = 0;

/** A namespace unique to this test run and test: `t<random>n<counter>`. */
export function uniqueNamespace(): string {
  namespaceCounter += 1;
  return `t${Math.random().toString(36).slice(2, 8)}n${namespaceCounter}`;
}

export function makeEvent<T>(type: string, data: T, id: string = newTimeOrderedId()): PlatformEvent<T> {
  return { id, type, time: new Date().toISOString(), source: 'contract-test', data };
}

export async function waitFor(check: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Received {
  event: PlatformEvent;
  delivery: EventDelivery;
}

function recorder() {
  const got: Received[] = [];
  const handler = async (event: PlatformEvent, delivery: EventDelivery) => {
    got.push({ event, delivery });
  };
  return { got, handler, ids: () => got.map((r) => r.event.id) };
}

export function runEventBusContract(
  name: string,
  factory: () => Promise<EventBusAdapter>,
  options: ContractOptions = {},
): void {
  const settleMs = options.settleMs ?? 150;

  describe(`event bus contract: ${name}`, () => {
    const opened: EventBusAdapter[] = [];
    const open = async () => {
      const bus = await factory();
      opened.push(bus);
      return bus;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((b) => b.close()));
    });

    it('delivers a published event as it was published, without waiting for the handler', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      let release!: () => void;
      const blocker = new Promise<void>((r) => {
        release = r;
      });
      const got: Received[] = [];
      let finished = false;
      await bus.subscribe({ types: [`${ns}.entity.updated`], group: `${ns}-g` }, async (event, delivery) => {
        got.push({ event, delivery });
        await blocker;
        finished = true;
      });
      const event = makeEvent(`${ns}.entity.updated`, {
        id: 'urn:ngsi-ld:Device:1',
        value: 42,
        at: [1.5, 2],
      });
      await bus.publish(event);
      await waitFor(() => got.length === 1, 10_000, 'the delivery');
      expect(finished).toBe(false);
      release();
      await waitFor(() => finished, 10_000, 'the handler');
      expect(got[0]?.event).toEqual(event);
      expect(got[0]?.delivery).toEqual({ attempt: 1 });
    });

    it('matches exact types, `*` (one level) and `>` (one or more levels)', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const exact = recorder();
      const star = recorder();
      const tail = recorder();
      const overlapping = recorder();
      await bus.subscribe({ types: [`${ns}.a.b`], mode: 'broadcast' }, exact.handler);
      await bus.subscribe({ types: [`${ns}.a.*`], mode: 'broadcast' }, star.handler);
      await bus.subscribe({ types: [`${ns}.a.>`], mode: 'broadcast' }, tail.handler);
      await bus.subscribe(
        { types: [`${ns}.a.*`, `${ns}.a.b`, `${ns}.a.b`], group: `${ns}-g` },
        overlapping.handler,
      );
      const types = [`${ns}.a.b`, `${ns}.a.c`, `${ns}.a.b.c`, `${ns}.a`, `${ns}.x.b`];
      for (const t of types) await bus.publish(makeEvent(t, {}));
      await waitFor(() => tail.got.length === 3, 10_000, 'the `>` subscriber');
      await sleep(settleMs);
      const typesOf = (r: ReturnType<typeof recorder>) => r.got.map((x) => x.event.type);
      expect(typesOf(exact)).toEqual([`${ns}.a.b`]);
      expect(typesOf(star)).toEqual([`${ns}.a.b`, `${ns}.a.c`]);
      expect(typesOf(tail)).toEqual([`${ns}.a.b`, `${ns}.a.c`, `${ns}.a.b.c`]);
      expect(typesOf(overlapping)).toEqual([`${ns}.a.b`, `${ns}.a.c`]);
    });

    it('gives a group with several patterns each matching event once', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const r = recorder();
      await bus.subscribe(
        { types: [`${ns}.incident.*`, `${ns}.alert.raised`, `${ns}.cti.>`], group: `${ns}-g` },
        r.handler,
      );
      const types = [
        `${ns}.incident.opened`,
        `${ns}.alert.raised`,
        `${ns}.cti.indicator.matched`,
        `${ns}.alert.closed`,
      ];
      for (const t of types) await bus.publish(makeEvent(t, {}));
      await waitFor(() => r.got.length >= 3, 10_000, 'three events');
      await sleep(settleMs);
      expect(r.got.map((x) => x.event.type).sort()).toEqual(types.slice(0, 3).sort());
    });

    it('rejects bad subscriptions and bad events with stable codes', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const noop = async () => {};
      const invalid = { code: 'BUS_INVALID_SUBSCRIPTION' };
      await expect(bus.subscribe({ types: [`${ns}.a`] }, noop)).rejects.toMatchObject(invalid);
      await expect(bus.subscribe({ types: [], group: 'g' }, noop)).rejects.toMatchObject(invalid);
      for (const bad of [`${ns}.*.b`, `${ns}..b`, `${ns}.>x`, `${ns}.>.b`, '', `${ns}.a b`]) {
        await expect(bus.subscribe({ types: [bad], mode: 'broadcast' }, noop)).rejects.toMatchObject(invalid);
      }
      await expect(bus.subscribe({ types: [`${ns}.a`], group: 'has.dot' }, noop)).rejects.toMatchObject(
        invalid,
      );
      await expect(
        bus.subscribe({ types: [`${ns}.a`], group: `${ns}-g`, maxDeliver: 0 }, noop),
      ).rejects.toMatchObject(invalid);
      const badEvent = { code: 'BUS_INVALID_EVENT' };
      await expect(bus.publish(makeEvent(`${ns}.a.*`, {}))).rejects.toMatchObject(badEvent);
      await expect(bus.publish(makeEvent(`${ns}..a`, {}))).rejects.toMatchObject(badEvent);
      await expect(bus.publish(makeEvent(`${ns}.a`, {}, ''))).rejects.toMatchObject(badEvent);
      await expect(bus.publish(makeEvent(`${ns}.a`, {}, 'has space'))).rejects.toMatchObject(badEvent);
      await expect(bus.publish(makeEvent(`${ns}.a`, { n: 1n }))).rejects.toMatchObject(badEvent);
    });

    it('shares a group between members: each event handled exactly once', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const a = recorder();
      const b = recorder();
      await bus.subscribe({ types: [`${ns}.>`], group: `${ns}-workers` }, a.handler);
      await bus.subscribe({ types: [`${ns}.>`], group: `${ns}-workers` }, b.handler);
      const sent: string[] = [];
      for (let i = 0; i < 40; i++) {
        const e = makeEvent(`${ns}.job.created`, { i });
        sent.push(e.id);
        await bus.publish(e);
      }
      await waitFor(() => a.got.length + b.got.length >= 40, 10_000, 'all events');
      await sleep(settleMs);
      const all = [...a.ids(), ...b.ids()];
      expect(all.length).toBe(40);
      expect(new Set(all)).toEqual(new Set(sent));
    });

    it('keeps events for a group while it has no member, and delivers them in order later', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const first = recorder();
      const sub = await bus.subscribe({ types: [`${ns}.incident.*`], group: `${ns}-g` }, first.handler);
      await sub.unsubscribe();
      const sent: string[] = [];
      for (let i = 0; i < 5; i++) {
        const e = makeEvent(`${ns}.incident.opened`, { i });
        sent.push(e.id);
        await bus.publish(e);
      }
      await sleep(settleMs);
      expect(first.got).toEqual([]);
      const later = recorder();
      await bus.subscribe({ types: [`${ns}.incident.*`], group: `${ns}-g` }, later.handler);
      await waitFor(() => later.got.length === 5, 10_000, 'the kept events');
      expect(later.ids()).toEqual(sent);
    });

    it('lets an unsubscribing member finish its event; the group keeps the others', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      let finished = 0;
      const firstMember: string[] = [];
      const sub = await bus.subscribe({ types: [`${ns}.>`], group: `${ns}-g` }, async (event) => {
        firstMember.push(event.id);
        await sleep(200);
        finished += 1;
      });
      const sent: string[] = [];
      for (let i = 0; i < 3; i++) {
        const e = makeEvent(`${ns}.job`, { i });
        sent.push(e.id);
        await bus.publish(e);
      }
      await waitFor(() => firstMember.length === 1, 10_000, 'the first event');
      await sub.unsubscribe();
      expect(finished).toBe(1);
      const rest: string[] = [];
      await bus.subscribe({ types: [`${ns}.>`], group: `${ns}-g` }, async (event) => {
        rest.push(event.id);
      });
      // At least once: what the leaving member had fetched but not started comes back to the group, and a
      // redelivery may reach the new member twice (handlers are idempotent by id); none is lost.
      await waitFor(() => new Set(rest).size >= 2, 10_000, 'the other events');
      await sleep(settleMs);
      expect(firstMember).toEqual([sent[0]]);
      expect([...new Set(rest)].sort()).toEqual(sent.slice(1).sort());
    });

    it('broadcasts every event to every subscriber, from its subscription on', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const early = makeEvent(`${ns}.entity.updated`, { n: 0 });
      await bus.publish(early);
      const a = recorder();
      const b = recorder();
      await bus.subscribe({ types: [`${ns}.entity.updated`], mode: 'broadcast' }, a.handler);
      await bus.subscribe({ types: [`${ns}.entity.*`], mode: 'broadcast' }, b.handler);
      const sent: string[] = [];
      for (let i = 1; i <= 5; i++) {
        const e = makeEvent(`${ns}.entity.updated`, { n: i });
        sent.push(e.id);
        await bus.publish(e);
      }
      await waitFor(() => a.got.length >= 5 && b.got.length >= 5, 10_000, 'both subscribers');
      await sleep(settleMs);
      expect(a.ids()).toEqual(sent);
      expect(b.ids()).toEqual(sent);
    });

    it('stops delivering to a broadcast subscriber that unsubscribed', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const r = recorder();
      const sub = await bus.subscribe({ types: [`${ns}.>`], mode: 'broadcast' }, r.handler);
      await bus.publish(makeEvent(`${ns}.a`, {}));
      await waitFor(() => r.got.length === 1, 10_000, 'the first event');
      await sub.unsubscribe();
      await bus.publish(makeEvent(`${ns}.a`, {}));
      await sleep(settleMs);
      expect(r.got.length).toBe(1);
    });

    it('keeps a broadcast subscriber going after its handler failed (no redelivery)', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const seen: number[] = [];
      await bus.subscribe({ types: [`${ns}.>`], mode: 'broadcast', maxDeliver: 3 }, async (event) => {
        const n = (event.data as { n: number }).n;
        seen.push(n);
        if (n === 1) throw new Error('boom');
      });
      for (let n = 1; n <= 3; n++) await bus.publish(makeEvent(`${ns}.a`, { n }));
      await waitFor(() => seen.length >= 3, 10_000, 'three deliveries');
      await sleep(settleMs);
      expect(seen).toEqual([1, 2, 3]);
      expect(bus.deadLetters().filter((d) => d.event.type.startsWith(ns))).toEqual([]);
    });

    it('redelivers the same event after a handler failure, then succeeds', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const calls: Received[] = [];
      await bus.subscribe(
        { types: [`${ns}.alert.raised`], group: `${ns}-g`, maxDeliver: 4 },
        async (event, delivery) => {
          calls.push({ event, delivery });
          if (delivery.attempt === 1) throw new Error('transient');
        },
      );
      const e = makeEvent(`${ns}.alert.raised`, { severity: 'high' });
      await bus.publish(e);
      await waitFor(() => calls.length === 2, 10_000, 'the redelivery');
      await sleep(settleMs);
      expect(calls.map((c) => c.event.id)).toEqual([e.id, e.id]);
      expect(calls.map((c) => c.delivery.attempt)).toEqual([1, 2]);
      expect(calls[1]?.event).toEqual(e);
      expect(bus.deadLetters().filter((d) => d.group === `${ns}-g`)).toEqual([]);
    });

    it('dead-letters an event after maxDeliver failed deliveries', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const attempts: number[] = [];
      await bus.subscribe(
        { types: [`${ns}.>`], group: `${ns}-g`, maxDeliver: 3 },
        async (_event, delivery) => {
          attempts.push(delivery.attempt);
          throw new Error(`always fails (${delivery.attempt})`);
        },
      );
      const e = makeEvent(`${ns}.poison.pill`, { x: 1 });
      await bus.publish(e);
      await waitFor(() => bus.deadLetters().some((d) => d.group === `${ns}-g`), 10_000, 'the dead letter');
      await sleep(settleMs);
      expect(attempts).toEqual([1, 2, 3]);
      const dead = bus.deadLetters().filter((d) => d.group === `${ns}-g`);
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ group: `${ns}-g`, attempts: 3, error: 'always fails (3)', event: e });
      expect(Number.isNaN(Date.parse(dead[0]?.time ?? ''))).toBe(false);
    });

    it('delivers in publish order per subscription, across its patterns', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const group = recorder();
      const live = recorder();
      await bus.subscribe({ types: [`${ns}.a.*`, `${ns}.b`], group: `${ns}-g` }, async (event, delivery) => {
        await sleep(Math.random() < 0.2 ? 2 : 0);
        await group.handler(event, delivery);
      });
      await bus.subscribe({ types: [`${ns}.b`, `${ns}.a.*`], mode: 'broadcast' }, live.handler);
      const sent: string[] = [];
      for (let i = 0; i < 60; i++) {
        const e = makeEvent(i % 2 ? `${ns}.a.x` : `${ns}.b`, { i });
        sent.push(e.id);
        await bus.publish(e);
      }
      await waitFor(() => group.got.length === 60 && live.got.length === 60, 10_000, 'all events');
      expect(group.ids()).toEqual(sent);
      expect(live.ids()).toEqual(sent);
    });

    it('drops a second publish of the same event id (idempotent publish)', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const r = recorder();
      await bus.subscribe({ types: [`${ns}.>`], group: `${ns}-g` }, r.handler);
      const e = makeEvent(`${ns}.a`, { v: 1 });
      await bus.publish(e);
      await bus.publish({ ...e });
      await bus.publish(makeEvent(`${ns}.a`, { v: 2 }));
      await waitFor(() => r.got.length >= 2, 10_000, 'two events');
      await sleep(settleMs);
      expect(r.got.map((x) => x.event.data)).toEqual([{ v: 1 }, { v: 2 }]);
    });

    it('publishes an event given serialised as it is, and drops it as a duplicate of the same id', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      const r = recorder();
      await bus.subscribe({ types: [`${ns}.>`], group: `${ns}-g` }, r.handler);
      const e = makeEvent(`${ns}.a`, { v: 1, at: '2026-11-30T10:00:00.000Z' });
      await bus.publish({ id: e.id, type: e.type, json: JSON.stringify(e) });
      await bus.publish(e);
      await expect(bus.publish({ id: 'has space', type: e.type, json: '{}' })).rejects.toMatchObject({
        code: 'BUS_INVALID_EVENT',
      });
      await waitFor(() => r.got.length >= 1, 10_000, 'the event');
      await sleep(settleMs);
      expect(r.got.map((x) => x.event)).toEqual([e]);
    });

    it('close() waits for handlers in flight, then refuses work', async () => {
      const bus = await open();
      const ns = uniqueNamespace();
      let started = false;
      let finished = false;
      await bus.subscribe({ types: [`${ns}.>`], group: `${ns}-g` }, async () => {
        started = true;
        await sleep(300);
        finished = true;
      });
      await bus.publish(makeEvent(`${ns}.slow`, {}));
      await waitFor(() => started, 10_000, 'the handler to start');
      await bus.ping();
      await bus.close();
      expect(finished).toBe(true);
      await expect(bus.publish(makeEvent(`${ns}.slow`, {}))).rejects.toMatchObject({
        code: 'BUS_UNAVAILABLE',
      });
      await expect(bus.ping()).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE' });
      await expect(
        bus.subscribe({ types: [`${ns}.>`], mode: 'broadcast' }, async () => {}),
      ).rejects.toMatchObject({
        code: 'BUS_UNAVAILABLE',
      });
    });
  });
}
