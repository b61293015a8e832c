import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLive } from './live-updates.ts';

describe('startLive', () => {
  let base: string;
  let stream: ServerResponse | undefined;
  let streamAuth: string | undefined;
  const server = createServer((req, res) => {
    if (req.url === '/stream') {
      streamAuth = req.headers.authorization;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write(': connected\n\n');
      stream = res;
    } else {
      res.writeHead(404, { 'content-type': 'application/problem+json' });
      res.end('{"detail":"no route"}');
    }
  });

  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    stream?.end();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('polls at the given interval and reports failures without stopping', async () => {
    let calls = 0;
    const statuses: { ok: boolean; error?: string }[] = [];
    const live = startLive({
      refresh: async () => {
        calls++;
        if (calls === 2) throw new Error('platform down');
      },
      token: () => 't',
      onStatus: (s) => statuses.push(s),
      pollMs: 250,
      streamUrl: `${base}/none`,
    });
    await expect.poll(() => calls, { timeout: 3000 }).toBeGreaterThanOrEqual(4);
    live.stop();
    const after = calls;
    await new Promise((r) => setTimeout(r, 600));
    expect(calls).toBe(after);
    expect(statuses[0]).toMatchObject({ ok: true, via: 'poll' });
    expect(statuses[1]).toMatchObject({ ok: false, error: 'platform down' });
    expect(statuses[2]).toMatchObject({ ok: true });
  });

  it('refreshes at once on a server-sent event, with the bearer token, and then polls slowly', async () => {
    let calls = 0;
    const live = startLive({
      refresh: async () => {
        calls++;
      },
      token: () => 'secret',
      onStatus: () => {},
      pollMs: 250,
      streamUrl: `${base}/stream`,
    });
    await expect.poll(() => stream !== undefined).toBe(true);
    expect(streamAuth).toBe('Bearer secret');
    await new Promise((r) => setTimeout(r, 700));
    // On the stream, polling backs off to 30 s: no refresh beyond the first ones.
    const settled = calls;
    await new Promise((r) => setTimeout(r, 600));
    expect(calls).toBe(settled);
    stream!.write('event: report.created\ndata: {"id":"r1"}\n\n');
    await expect.poll(() => calls, { timeout: 2000 }).toBe(settled + 1);
    live.stop();
  });

  it('opens the stream again with the token of the moment when the platform ended it, and refreshes at once', async () => {
    let token = 'before-the-change';
    let calls = 0;
    stream = undefined;
    const live = startLive({
      refresh: async () => {
        calls++;
      },
      token: () => token,
      onStatus: () => {},
      pollMs: 60_000,
      streamUrl: `${base}/stream`,
    });
    await expect.poll(() => streamAuth).toBe('Bearer before-the-change');
    await expect.poll(() => calls).toBe(1);
    // The password changed: this tab holds a new token, and the platform ends the stream of the old one.
    token = 'after-the-change';
    const ended = stream!;
    stream = undefined;
    ended.end('event: error\ndata: {"code":"AUTH_TOKEN_EXPIRED"}\n\n');
    // At once, not at the next poll a minute later: a session that is over would answer 401 here.
    await expect.poll(() => calls, { timeout: 2000 }).toBe(2);
    await expect.poll(() => streamAuth, { timeout: 4000 }).toBe('Bearer after-the-change');
    live.stop();
  });

  it('turns a call of now() during a refresh into one more refresh, not two at once', async () => {
    let running = 0;
    let most = 0;
    let calls = 0;
    const live = startLive({
      refresh: async () => {
        running++;
        calls++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 100));
        running--;
      },
      token: () => null,
      onStatus: () => {},
      pollMs: 60_000,
    });
    await Promise.all([live.now(), live.now(), live.now()]);
    live.stop();
    expect(most).toBe(1);
    expect(calls).toBe(2);
  });
});
