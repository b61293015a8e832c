/**
 * Gap 8 of issue 7 ("open channels out"), HTTP side: a subscription's endpoint is checked by the egress
 * policy when it is created or changed, and again on every delivery after DNS resolution, with the
 * connection pinned to the checked address. A refused delivery is a failed notification with its reason.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openTestPgliteStore } from '../../adapters/storage/testing.ts';
import type { AppError } from '../../kernel/errors.ts';
import type { Store } from '../../ports/store.ts';
import { EgressPolicy } from '../egress/index.ts';
import { type ContextLive, type ContextLiveDeps, createContextLive } from './context-live.ts';
import { createCoreQueryPort } from './core-query-port.ts';
import type { LivePrincipal } from './subscription-service.ts';
import {
  DEFAULT_VOCAB,
  entityChange,
  LIVE_TEST_MIGRATIONS,
  type LiveTestWorld,
  loopbackEgress,
  openLiveWorld,
  type Receiver,
  startReceiver,
  testLdContext,
} from './testing.ts';

const vehicle = (n: number) => ({
  id: `urn:ngsi-ld:Vehicle:${n}`,
  type: [`${DEFAULT_VOCAB}Vehicle`],
  [`${DEFAULT_VOCAB}speed`]: { type: 'Property', value: n },
});

async function refusal(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    return e as AppError;
  }
  throw new Error('expected a refusal');
}

describe('gap 8 — open channels out: notification endpoints under the egress policy', () => {
  let store: Store;
  let world: LiveTestWorld;
  let orgB: LivePrincipal;
  let live: ContextLive | undefined;
  let rx: Receiver;
  const ld = testLdContext();

  beforeAll(async () => {
    store = await openTestPgliteStore(LIVE_TEST_MIGRATIONS);
    world = await openLiveWorld(store);
    orgB = await world.as('org-b-operator');
    rx = await startReceiver();
  });
  afterEach(async () => {
    await live?.stop();
    live = undefined;
    await store.db.deleteFrom('context_live_subscription' as never).execute();
    await store.db.deleteFrom('context_live_outbox' as never).execute();
    await store.db.deleteFrom('shared_object' as never).execute();
  });
  afterAll(async () => {
    await rx?.close();
    await store?.close();
  });

  async function start(extra: Partial<ContextLiveDeps> = {}): Promise<ContextLive> {
    live = createContextLive({
      store,
      gate: world.gate,
      ld,
      query: createCoreQueryPort(ld),
      retry: { firstDelayMs: 50, maxDelayMs: 100 },
      ...extra,
    });
    await live.start();
    return live;
  }

  const subscription = (uri: string) => ({
    type: 'Subscription',
    entities: [{ type: 'Vehicle' }],
    notification: { endpoint: { uri } },
  });

  async function view(l: ContextLive, id: string): Promise<Record<string, unknown>> {
    const v = await l.subscriptions.view(await l.subscriptions.get('', orgB, id), undefined);
    return v.notification as Record<string, unknown>;
  }

  async function failed(l: ContextLive, id: string): Promise<Record<string, unknown>> {
    for (let i = 0; i < 100; i++) {
      const n = await view(l, id);
      if (n.status === 'failed') return n;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('the notification never failed');
  }

  it('refuses at create and update, by default, the platform host, link-local and metadata endpoints', async () => {
    const l = await start();
    const cases: Array<[string, string]> = [
      [
        rx.url,
        `${rx.url} is refused by the egress policy: address 127.0.0.1 (loopback) is not in the egress allow-list (unset: public, private)`,
      ],
      [
        'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
        'http://169.254.169.254/latest/meta-data/iam/security-credentials/ is refused by the egress policy: address 169.254.169.254 (cloud metadata) is always refused',
      ],
      [
        'http://metadata.google.internal/computeMetadata/v1/',
        'http://metadata.google.internal/computeMetadata/v1/ is refused by the egress policy: metadata.google.internal is a cloud metadata service: always refused',
      ],
      [
        'https://[fe80::1]:8443/n',
        'https://[fe80::1]:8443/n is refused by the egress policy: address fe80::1 (link-local) is always refused',
      ],
    ];
    const got: Array<[string, string]> = [];
    for (const [uri] of cases) {
      const e = await refusal(l.subscriptions.create('', orgB, subscription(uri), undefined));
      expect(e.code).toBe('EGRESS_DESTINATION_REFUSED');
      got.push([uri, e.message]);
    }
    expect(got).toEqual(cases);
    expect((await l.subscriptions.list('', orgB, { limit: 10, offset: 0 })).total).toBe(0);

    const ok = await l.subscriptions.create('', orgB, subscription('https://receiver.example/n'), undefined);
    const e = await refusal(
      l.subscriptions.update(
        '',
        orgB,
        ok.spec.id,
        { notification: { endpoint: { uri: 'http://0.0.0.0:5432/' } } },
        undefined,
      ),
    );
    expect([e.code, e.message]).toEqual([
      'EGRESS_DESTINATION_REFUSED',
      'http://0.0.0.0:5432/ is refused by the egress policy: address 0.0.0.0 (unspecified) is always refused',
    ]);
    const kept = await l.subscriptions.get('', orgB, ok.spec.id);
    expect(kept.spec.notification.endpoint.uri).toBe('https://receiver.example/n');
  });

  it('checks again at delivery after DNS resolution: a rebound name is a failed notification, not a delivery', async () => {
    const answers: Record<string, string[]> = { 'receiver.city.example': ['127.0.0.1'] };
    // Without the answer cache, the next delivery sees the next answer (as after the cache's 5 s).
    const egress = loopbackEgress({ resolver: async (host) => answers[host] ?? [], resolveCacheMs: 0 });
    const l = await start({ egress });
    const port = new URL(rx.url).port;
    // The name is fictitious: only the pinned, checked address can carry the notification to the receiver.
    const sub = await l.subscriptions.create(
      '',
      orgB,
      subscription(`http://receiver.city.example:${port}/notify`),
      undefined,
    );
    const before = rx.received.length;
    await l.engine.handleChange('updated', entityChange(vehicle(1)));
    await rx.waitFor(before + 1);
    expect(rx.received[before]?.headers.host).toBe(`receiver.city.example:${port}`);

    answers['receiver.city.example'] = ['169.254.169.254'];
    await l.engine.handleChange('updated', entityChange(vehicle(2)));
    const n = await failed(l, sub.spec.id);
    expect(n).toMatchObject({
      timesSent: 2,
      timesFailed: 1,
      status: 'failed',
      lastFailureReason: `http://receiver.city.example:${port}/notify is refused by the egress policy: address 169.254.169.254 (cloud metadata) of receiver.city.example is always refused`,
    });
    expect(rx.received).toHaveLength(before + 1);

    // The held notification leaves once the name answers an allowed address again.
    answers['receiver.city.example'] = ['127.0.0.1'];
    const [, second] = (await rx.waitFor(before + 2)).slice(before);
    expect(second?.body.data).toMatchObject([{ id: 'urn:ngsi-ld:Vehicle:2' }]);
  });

  it('applies a deny rule added after the subscription was created (localhost resolves to 127.0.0.1)', async () => {
    const open = await start({ egress: loopbackEgress() });
    const port = new URL(rx.url).port;
    const sub = await open.subscriptions.create(
      '',
      orgB,
      subscription(`http://localhost:${port}/notify`),
      undefined,
    );
    await open.stop();
    const l = await start({ egress: loopbackEgress({ deny: '127.0.0.0/8' }) });
    const before = rx.received.length;
    await l.engine.handleChange('updated', entityChange(vehicle(3)));
    const n = await failed(l, sub.spec.id);
    expect(n.lastFailureReason).toMatch(
      new RegExp(
        `^http://localhost:${port}/notify is refused by the egress policy: address 127\\.0\\.0\\.1 \\(loopback\\) of localhost matches SAFECITY_EGRESS_DENY entry "127\\.0\\.0\\.0/8"$`,
      ),
    );
    expect(rx.received).toHaveLength(before);
  });

  it('tells the subscriber why a delivery failed, but not socket details that would map the network', async () => {
    const l = await start({ egress: loopbackEgress() });
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const down = await l.subscriptions.create(
      '',
      orgB,
      subscription(`http://127.0.0.1:${closedPort}/notify`),
      undefined,
    );
    await l.engine.handleChange('updated', entityChange(vehicle(4)));
    expect((await failed(l, down.spec.id)).lastFailureReason).toBe('the receiver could not be reached');
    await l.subscriptions.delete('', orgB, down.spec.id);
    rx.status = 503;
    try {
      const refusing = await l.subscriptions.create('', orgB, subscription(rx.url), undefined);
      await l.engine.handleChange('updated', entityChange(vehicle(5)));
      expect((await failed(l, refusing.spec.id)).lastFailureReason).toBe('receiver answered HTTP 503');
    } finally {
      rx.status = 200;
    }
  });

  it('a policy without lists is the default one', async () => {
    const l = await start({ egress: new EgressPolicy() });
    await expect(l.subscriptions.create('', orgB, subscription(rx.url), undefined)).rejects.toThrow(
      /\(loopback\) is not in the egress allow-list/,
    );
  });
});
