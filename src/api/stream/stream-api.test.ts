import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.ts';
import { createPlatform, type Platform } from '../../app/platform.ts';
import { seedWorld } from '../../app/testing.ts';

const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';

interface Received {
  event: string;
  data: Record<string, unknown>;
}

/** Opens /api/stream with a bearer token and collects its events. */
async function openStream(address: string, authorization: string, query = '') {
  const controller = new AbortController();
  const res = await fetch(`${address}/api/stream${query}`, {
    headers: { authorization },
    signal: controller.signal,
  });
  const events: Received[] = [];
  let ended = false;
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  void (async () => {
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut = buffer.indexOf('\n\n');
        while (cut >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
          cut = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // aborted
    }
    ended = true;
  })();
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    events,
    ended: () => ended,
    close: () => controller.abort(),
  };
}

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('live stream of changes, under the marking policy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'safecity-stream-'));
  let platform: Platform;
  let address: string;
  const auth: Record<string, string> = {};
  const call = (method: 'POST' | 'PATCH' | 'DELETE', url: string, who: string, payload?: unknown) =>
    platform.server.inject({
      method,
      url,
      headers: {
        authorization: auth[who] as string,
        ...(payload ? { 'content-type': 'application/json' } : {}),
      },
      ...(payload ? { payload: JSON.stringify(payload) } : {}),
    });

  beforeAll(async () => {
    platform = await createPlatform(
      loadConfig({
        SAFECITY_MQTT_PORT: '0',
        SAFECITY_DATA_DIR: dir,
        SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
        PORT: '0',
        HOST: '127.0.0.1',
      }),
      { log: pino({ level: 'silent' }) },
    );
    address = await platform.listen();
    Object.assign(
      auth,
      await seedWorld(platform, ADMIN_PASSWORD, PW, {
        orgs: [
          ['police', 'police'],
          ['metro', 'transport'],
        ],
        users: [
          ['officer', 'police', 'operator'],
          ['guard', 'metro', 'operator'],
        ],
      }),
    );
  });
  afterAll(async () => {
    await platform?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('needs a token, and answers text/event-stream', async () => {
    const anonymous = await fetch(`${address}/api/stream`);
    expect(anonymous.status).toBe(401);
    const s = await openStream(address, auth.guard as string);
    expect([s.status, s.contentType]).toEqual([200, 'text/event-stream; charset=utf-8']);
    await until(() => s.events.some((e) => e.event === 'ready'), 'ready');
    s.close();
  });

  it('tells each reader only of what it may see, and tells a reader who loses sight of an object', async () => {
    const officer = await openStream(address, auth.officer as string);
    const guard = await openStream(address, auth.guard as string);
    await until(() => officer.events.length > 0 && guard.events.length > 0, 'both ready');

    const created = await call('POST', '/api/reports', 'officer', {
      title: 'Armed suspect',
      body: 'platform 2',
      category: 'other',
      marking: { tlp: 'AMBER+STRICT' },
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().id as string;
    await until(
      () => officer.events.some((e) => e.event === 'report.changed' && e.data.id === id),
      'officer told',
    );
    // Content never travels on the stream.
    expect(JSON.stringify(officer.events)).not.toContain('Armed suspect');

    // Shared with metro: the guard is told now.
    expect(
      (
        await call('PATCH', `/api/reports/${id}`, 'officer', {
          marking: { tlp: 'AMBER+STRICT', audience: { orgs: ['metro'] } },
        })
      ).statusCode,
    ).toBe(200);
    await until(
      () => guard.events.some((e) => e.event === 'report.changed' && e.data.id === id),
      'guard told after sharing',
    );
    expect(guard.events.filter((e) => e.data.id === id).map((e) => e.event)).toEqual(['report.changed']);

    // Tightened to RED: the guard is told it is gone, and nothing after that.
    expect(
      (await call('PATCH', `/api/reports/${id}`, 'officer', { marking: { tlp: 'RED' } })).statusCode,
    ).toBe(200);
    await until(
      () => guard.events.some((e) => e.event === 'report.removed' && e.data.id === id),
      'guard told removed',
    );
    expect(
      (await call('PATCH', `/api/reports/${id}`, 'officer', { title: 'Armed suspect (update)' })).statusCode,
    ).toBe(200);
    await until(
      () => officer.events.filter((e) => e.data.id === id).length >= 4,
      'officer told of every change',
    );
    expect(guard.events.filter((e) => e.data.id === id).map((e) => e.event)).toEqual([
      'report.changed',
      'report.removed',
    ]);

    expect((await call('DELETE', `/api/reports/${id}`, 'officer')).statusCode).toBe(204);
    await until(
      () => officer.events.some((e) => e.event === 'report.removed' && e.data.id === id),
      'officer told deleted',
    );
    officer.close();
    guard.close();
  });

  it('streams NGSI-LD entity changes under their markings', async () => {
    const guard = await openStream(address, auth.guard as string, '?kinds=entity');
    await until(() => guard.events.length > 0, 'ready');
    for (const [id, tlp] of [
      ['urn:ngsi-ld:CrowdFlowObserved:secret', 'AMBER+STRICT'],
      ['urn:ngsi-ld:CrowdFlowObserved:open', 'GREEN'],
    ]) {
      const res = await platform.server.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/entities',
        headers: { authorization: auth.officer as string, 'content-type': 'application/json' },
        payload: JSON.stringify({
          id,
          type: 'CrowdFlowObserved',
          peopleCount: { type: 'Property', value: 120 },
          marking: { type: 'Property', value: { tlp } },
        }),
      });
      expect(res.statusCode, res.body).toBe(201);
    }
    await until(
      () => guard.events.some((e) => e.data.id === 'urn:ngsi-ld:CrowdFlowObserved:open'),
      'open entity',
    );
    expect(guard.events.some((e) => e.data.id === 'urn:ngsi-ld:CrowdFlowObserved:secret')).toBe(false);
    const open = guard.events.find((e) => e.data.id === 'urn:ngsi-ld:CrowdFlowObserved:open');
    expect(open).toMatchObject({
      event: 'entity.changed',
      data: { kind: 'entity', type: ['CrowdFlowObserved'] },
    });
    guard.close();
  });

  it('ends open streams when the instance shuts down', async () => {
    const s = await openStream(address, auth.guard as string);
    await until(() => s.events.length > 0, 'ready');
    await platform.shutdown();
    await until(() => s.ended(), 'stream ended');
    expect(s.events.at(-1)?.event).toBe('closing');
  });
});
