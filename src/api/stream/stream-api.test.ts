import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.ts';
import { createPlatform, type Platform } from '../../app/platform.ts';
import { seedWorld } from '../../app/testing.ts';
import { openStream, until } from './testing.ts';

const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';

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
          ['chief', 'police', 'admin'],
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
    // Every event carries the object's marking in the label form, and its owner; a reader who lost sight of
    // the object is told under the label it saw, never the new one.
    expect(guard.events.filter((e) => e.data.id === id).map((e) => e.data)).toEqual([
      { kind: 'report', id, ownerOrg: 'police', marking: 'TLP:AMBER+STRICT; owner=police' },
      { kind: 'report', id, ownerOrg: 'police', marking: 'TLP:AMBER+STRICT; owner=police' },
    ]);
    expect(officer.events.filter((e) => e.data.id === id).map((e) => e.data.marking)).toEqual([
      'TLP:AMBER+STRICT; owner=police',
      'TLP:AMBER+STRICT; owner=police',
      'TLP:RED; owner=police',
      'TLP:RED; owner=police',
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
    expect(open).toEqual({
      event: 'entity.changed',
      data: {
        kind: 'entity',
        id: 'urn:ngsi-ld:CrowdFlowObserved:open',
        tenant: '',
        type: ['CrowdFlowObserved'],
        ownerOrg: 'police',
        marking: 'TLP:GREEN; owner=police',
      },
    });
    expect(JSON.stringify(guard.events)).not.toContain('peopleCount');
    guard.close();
  });

  it('carries every kind declared at the gate: an object change of another module reaches who may see it', async () => {
    // A kind another module declares (closures do), and an event of the documented shape on the bus.
    platform.gate.defineKind('closure', { label: 'closure' });
    const unknown = await fetch(`${address}/api/stream?kinds=report,nonsense`, {
      headers: { authorization: auth.guard as string },
    });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { detail: string }).detail).toContain('unknown kind nonsense');

    const guard = await openStream(address, auth.guard as string, '?kinds=closure');
    const officer = await openStream(address, auth.officer as string);
    await until(() => guard.events.length > 0 && officer.events.length > 0, 'ready');
    expect(guard.events[0]?.data.kinds).toEqual(['closure']);
    // By default, every kind declared at the gate.
    expect(officer.events[0]?.data.kinds).toEqual(platform.gate.kinds());
    expect(officer.events[0]?.data.kinds).toEqual(expect.arrayContaining(['closure', 'entity', 'report']));
    const change = (id: string, tlp: string, readKeys: string[], previousReadKeys: string[] = []) =>
      platform.bus.publish({
        id: crypto.randomUUID(),
        type: 'routing.closure.changed',
        time: new Date().toISOString(),
        source: 'test',
        data: {
          kind: 'closure',
          id,
          ownerOrg: 'police',
          readKeys,
          previousReadKeys,
          marking: { tlp, audience: { orgs: [], communities: [], users: [] } },
        },
      });
    await change('c-police', 'AMBER+STRICT', ['org:police']);
    await change('c-public', 'CLEAR', ['public']);
    await change('c-police', 'AMBER+STRICT', [], ['org:police']);
    await until(() => officer.events.filter((e) => e.event.startsWith('closure.')).length === 3, 'officer');
    await until(() => guard.events.some((e) => e.data.id === 'c-public'), 'guard');
    expect(officer.events.filter((e) => e.event.startsWith('closure.'))).toEqual([
      {
        event: 'closure.changed',
        data: {
          kind: 'closure',
          id: 'c-police',
          ownerOrg: 'police',
          marking: 'TLP:AMBER+STRICT; owner=police',
        },
      },
      {
        event: 'closure.changed',
        data: { kind: 'closure', id: 'c-public', ownerOrg: 'police', marking: 'TLP:CLEAR; owner=police' },
      },
      {
        event: 'closure.removed',
        data: {
          kind: 'closure',
          id: 'c-police',
          ownerOrg: 'police',
          marking: 'TLP:AMBER+STRICT; owner=police',
        },
      },
    ]);
    expect(guard.events.filter((e) => e.event !== 'ready').map((e) => [e.event, e.data.id])).toEqual([
      ['closure.changed', 'c-public'],
    ]);
    guard.close();
    officer.close();
  });

  it('follows the directory at once: a client declared or dropped while its stream is open', async () => {
    // Found by the randomized reference model: streams decided with the keys of when they were opened (or
    // last re-checked, every 10 s), so a dropped client went on being told of its former patron's TLP:AMBER
    // objects, and a new client was not told, while every request already answered under the change.
    const guard = await openStream(address, auth.guard as string, '?kinds=report');
    await until(() => guard.events.length > 0, 'ready');
    const clients = (list: string[]) =>
      call('PATCH', '/api/orgs/police', 'chief', { clients: list }).then((r) =>
        expect(r.statusCode).toBe(200),
      );
    const report = async (title: string) => {
      const r = await call('POST', '/api/reports', 'officer', {
        title,
        category: 'other',
        marking: { tlp: 'AMBER' },
      });
      expect(r.statusCode).toBe(201);
      return r.json().id as string;
    };
    await clients(['metro']);
    const shared = await report('for metro too');
    await until(() => guard.events.some((e) => e.data.id === shared), 'the new client told');
    await clients([]);
    const mine = await report('police only');
    const after = await report('police only, again');
    // The officer's stream would have the two; the guard, no longer a client, is told of neither.
    const officer = await openStream(address, auth.officer as string, '?kinds=report');
    await until(() => officer.events.length > 0, 'ready');
    await call('PATCH', `/api/reports/${after}`, 'officer', { title: 'changed' });
    await until(() => officer.events.some((e) => e.data.id === after), 'officer told');
    expect(guard.events.some((e) => e.data.id === mine || e.data.id === after)).toBe(false);
    guard.close();
    officer.close();
  });

  it('ends open streams when the instance shuts down', async () => {
    const s = await openStream(address, auth.guard as string);
    await until(() => s.events.length > 0, 'ready');
    await platform.shutdown();
    await until(() => s.ended(), 'stream ended');
    expect(s.events.at(-1)?.event).toBe('closing');
  });
});
