import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../app/config.ts';
import { createPlatform, type Platform } from '../../app/platform.ts';
import { SERVER_SKIP, type ServerTestEnv, seedWorld, serverTestEnv } from '../../app/testing.ts';
import { openStream, until } from '../stream/testing.ts';

const ADMIN_PASSWORD = 'long-secret-for-tests';
const PW = 'correct-horse-staple-9';
// Monaco: the port (Hercule) and the casino square; Fontvieille.
const PORT_HERCULE = '7.4245,43.7349';
const CASINO = '7.4283,43.7394';
const FONTVIEILLE = '7.4170,43.7310';

describe('routing API on the real Monaco network (embedded platform)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'safecity-routing-api-'));
  const config = loadConfig({
    SAFECITY_MQTT_PORT: '0',
    SAFECITY_DATA_DIR: dir,
    SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
    SAFECITY_ROADS: 'monaco',
    PORT: '0',
  });
  let platform: Platform;
  const auth: Record<string, string> = {};

  const call = (method: 'GET' | 'POST' | 'DELETE' | 'PATCH', url: string, who: string, payload?: unknown) =>
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
    platform = await createPlatform(config, { log: pino({ level: 'silent' }) });
    await platform.routing.whenLoaded();
    Object.assign(
      auth,
      await seedWorld(platform, ADMIN_PASSWORD, PW, {
        orgs: [
          ['police', 'police'],
          ['metro', 'transport'],
          ['fire', 'fire'],
        ],
        users: [
          ['dispatcher', 'police', 'operator'],
          ['watcher', 'police', 'viewer'],
          ['patrol', 'police', 'responder'],
          ['guard', 'metro', 'operator'],
          ['chief', 'police', 'admin'],
          ['finn', 'fire', 'responder'],
        ],
      }),
    );
    const crisis = await call('POST', '/api/communities', 'admin', {
      id: 'crisis',
      name: 'Crisis cell',
      members: ['police', 'fire'],
    });
    expect(crisis.statusCode, crisis.body).toBe(201);
  });
  afterAll(async () => {
    await platform?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports the network, its size and the OpenStreetMap attribution', async () => {
    const res = await call('GET', '/api/routing/network', 'watcher');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.status.state).toBe('ready');
    expect(body.attribution).toBe('© OpenStreetMap contributors, ODbL');
    expect(body.stats.nodes).toBeGreaterThan(1000);
    const [minLon, minLat, maxLon, maxLat] = body.bbox;
    expect(minLon).toBeLessThan(7.42);
    expect(maxLon).toBeGreaterThan(7.43);
    expect(minLat).toBeLessThan(43.73);
    expect(maxLat).toBeGreaterThan(43.74);
  });

  it('draws the roads of a bounding box for the offline base map, with a limit', async () => {
    const res = await call('GET', '/api/routing/roads?bbox=7.42,43.73,7.43,43.74', 'watcher');
    expect(res.statusCode).toBe(200);
    const fc = res.json();
    expect(fc.type).toBe('FeatureCollection');
    expect(fc.features.length).toBeGreaterThan(50);
    expect(fc.truncated).toBe(false);
    expect(fc.attribution).toBe('© OpenStreetMap contributors, ODbL');
    const named = fc.features.filter((f: { properties: { name: string | null } }) => f.properties.name);
    expect(named.length).toBeGreaterThan(0);
    for (const f of fc.features.slice(0, 20)) {
      expect(f.geometry.type).toBe('LineString');
      expect(f.geometry.coordinates.length).toBeGreaterThanOrEqual(2);
    }
    const few = (
      await call('GET', '/api/routing/roads?bbox=7.42,43.73,7.43,43.74&limit=5', 'watcher')
    ).json();
    expect([few.features.length, few.truncated]).toEqual([5, true]);
    expect((await call('GET', '/api/routing/roads?bbox=7.43,43.73,7.42,43.74', 'watcher')).statusCode).toBe(
      400,
    );
    expect((await call('GET', '/api/routing/roads?bbox=1,2,3', 'watcher')).statusCode).toBe(400);
  });

  it('answers a route as a GeoJSON LineString Feature with duration_s, distance_m and steps', async () => {
    const res = await call('GET', `/api/routing/route?from=${PORT_HERCULE}&to=${CASINO}`, 'watcher');
    expect(res.statusCode).toBe(200);
    const f = res.json();
    expect(f.type).toBe('Feature');
    expect(f.geometry.type).toBe('LineString');
    expect(f.geometry.coordinates.length).toBeGreaterThan(2);
    expect(f.properties.duration_s).toBeGreaterThan(10);
    expect(f.properties.duration_s).toBeLessThan(900);
    expect(f.properties.distance_m).toBeGreaterThan(300);
    expect(f.properties.steps[0].maneuver.type).toBe('depart');
    expect(f.properties.steps.at(-1).maneuver.type).toBe('arrive');
  });

  it('honours a closure at the very next route, and lifts it', async () => {
    const before = (
      await call('GET', `/api/routing/route?from=${PORT_HERCULE}&to=${CASINO}`, 'dispatcher')
    ).json();
    const coords = before.geometry.coordinates as [number, number][];
    const middle = coords[Math.floor(coords.length / 2)] as [number, number];
    const closure = await call('POST', '/api/routing/closures', 'dispatcher', {
      geometry: { type: 'Point', coordinates: middle },
      radius_m: 25,
      reason: 'suspicious package',
    });
    expect(closure.statusCode).toBe(201);
    const { id, segments } = closure.json();
    expect(segments).toBeGreaterThan(0);
    // Marked like any object: the organisation's default, and its owner, in the answer.
    expect(closure.json()).toMatchObject({
      ownerOrg: 'police',
      marking: { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } },
      reason: 'suspicious package',
    });
    expect(closure.headers.location).toBe(`/api/routing/closures/${id}`);

    const after = (
      await call('GET', `/api/routing/route?from=${PORT_HERCULE}&to=${CASINO}`, 'dispatcher')
    ).json();
    if (after.properties.reachable) {
      expect(after.properties.duration_s).toBeGreaterThan(before.properties.duration_s);
      const near = (after.geometry.coordinates as [number, number][]).filter(
        ([lon, lat]) => Math.hypot((lon - middle[0]) * 80_000, (lat - middle[1]) * 111_000) < 5,
      );
      expect(near).toEqual([]);
    }
    const list = (await call('GET', '/api/routing/closures', 'watcher')).json();
    expect(list.items.map((c: { id: string }) => c.id)).toContain(id);
    const theirs = (await call('GET', '/api/routing/closures', 'guard')).json();
    expect(theirs.items.map((c: { id: string }) => c.id)).not.toContain(id);

    expect((await call('DELETE', `/api/routing/closures/${id}`, 'dispatcher')).statusCode).toBe(204);
    const lifted = (
      await call('GET', `/api/routing/route?from=${PORT_HERCULE}&to=${CASINO}`, 'dispatcher')
    ).json();
    expect(lifted.properties.duration_s).toBe(before.properties.duration_s);
    expect((await call('DELETE', `/api/routing/closures/${id}`, 'dispatcher')).statusCode).toBe(404);
  });

  it('slows a road down by a factor and records it in the audit log', async () => {
    const before = (
      await call('GET', `/api/routing/route?from=${FONTVIEILLE}&to=${CASINO}`, 'dispatcher')
    ).json();
    const slow = await call('POST', '/api/routing/slowdowns', 'dispatcher', {
      geometry: {
        type: 'Polygon',
        coordinates: [
          [
            [7.4, 43.72],
            [7.44, 43.72],
            [7.44, 43.75],
            [7.4, 43.75],
            [7.4, 43.72],
          ],
        ],
      },
      factor: 0.5,
    });
    expect(slow.statusCode).toBe(201);
    const after = (
      await call('GET', `/api/routing/route?from=${FONTVIEILLE}&to=${CASINO}`, 'dispatcher')
    ).json();
    expect(after.properties.duration_s).toBeGreaterThan(before.properties.duration_s * 1.8);
    expect((await call('DELETE', `/api/routing/slowdowns/${slow.json().id}`, 'dispatcher')).statusCode).toBe(
      204,
    );
    // The owner organisation's administrator reads the records of its closures and slow-downs.
    const audit = (await call('GET', `/api/audit?object=${slow.json().id}`, 'chief')).json();
    expect(audit.items.map((r: { action: string }) => r.action).sort()).toEqual(['create', 'delete']);
  });

  it('answers many-to-many tables with zero on the diagonal', async () => {
    const pts = [PORT_HERCULE, CASINO, FONTVIEILLE].map((s) => s.split(',').map(Number));
    const res = await call('POST', '/api/routing/table', 'watcher', { sources: pts, targets: pts });
    expect(res.statusCode).toBe(200);
    const d = res.json().durations_s as number[][];
    expect(d.map((row, i) => row[i])).toEqual([0, 0, 0]);
    expect(d[0]?.[1]).toBeGreaterThan(0);
  });

  it('ranks given units by arrival time, with the route of the first', async () => {
    const res = await call('POST', '/api/routing/dispatch', 'dispatcher', {
      incident: CASINO.split(',').map(Number),
      units: [
        { id: 'far', position: FONTVIEILLE.split(',').map(Number), status: 'available' },
        { id: 'near', position: [7.4275, 43.7385], status: 'available' },
        { id: 'busy', position: [7.428, 43.739], status: 'onRoute' },
      ],
      k: 1,
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.ranked.map((r: { id: string }) => r.id)).toEqual(['near', 'far']);
    expect(body.ranked[0].route.geometry.type).toBe('LineString');
    expect(body.ranked[1].route).toBeUndefined();
    expect(body.excluded.map((u: { id: string }) => u.id)).toEqual(['busy']);
  });

  it('dispatches the vehicles of the context broker, only those the caller may see (two organisations)', async () => {
    const vehicle = (id: string, coords: number[], tlp: string) => ({
      id: `urn:ngsi-ld:Vehicle:${id}`,
      type: 'Vehicle',
      location: { type: 'GeoProperty', value: { type: 'Point', coordinates: coords } },
      serviceStatus: { type: 'Property', value: 'parked' },
      vehicleType: { type: 'Property', value: 'car' },
      marking: { type: 'Property', value: { tlp } },
    });
    for (const [who, v] of [
      ['dispatcher', vehicle('police-1', [7.4275, 43.7385], 'AMBER+STRICT')],
      ['dispatcher', vehicle('police-2', [7.417, 43.731], 'AMBER+STRICT')],
      ['guard', vehicle('metro-1', [7.428, 43.739], 'AMBER+STRICT')],
    ] as const) {
      const res = await platform.server.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/entities',
        headers: { authorization: auth[who] as string, 'content-type': 'application/json' },
        payload: JSON.stringify(v),
      });
      expect(res.statusCode, res.body).toBe(201);
    }
    const ranked = async (who: string) =>
      (await call('POST', '/api/routing/dispatch', who, { incident: CASINO.split(',').map(Number), k: 0 }))
        .json()
        .ranked.map((r: { id: string }) => r.id);
    expect(await ranked('dispatcher')).toEqual([
      'urn:ngsi-ld:Vehicle:police-1',
      'urn:ngsi-ld:Vehicle:police-2',
    ]);
    expect(await ranked('watcher')).toEqual(['urn:ngsi-ld:Vehicle:police-1', 'urn:ngsi-ld:Vehicle:police-2']);
    expect(await ranked('guard')).toEqual(['urn:ngsi-ld:Vehicle:metro-1']);
    expect(await ranked('finn')).toEqual([]);
  });

  it('closes roads from a TLP:GREEN roadClosed Alert in the context broker, and reopens them when it is deleted', async () => {
    const url = `/api/routing/route?from=${FONTVIEILLE}&to=${CASINO}`;
    const before = (await call('GET', url, 'watcher')).json();
    const coords = before.geometry.coordinates as [number, number][];
    const at = coords[Math.floor(coords.length / 2)];
    const alert = {
      id: 'urn:ngsi-ld:Alert:closure-1',
      type: 'Alert',
      category: { type: 'Property', value: 'traffic' },
      subCategory: { type: 'Property', value: 'roadClosed' },
      location: { type: 'GeoProperty', value: { type: 'Point', coordinates: at } },
      marking: { type: 'Property', value: { tlp: 'GREEN' } },
    };
    const created = await platform.server.inject({
      method: 'POST',
      url: '/ngsi-ld/v1/entities',
      headers: { authorization: auth.dispatcher as string, 'content-type': 'application/json' },
      payload: JSON.stringify(alert),
    });
    expect(created.statusCode, created.body).toBe(201);
    let closed = false;
    for (let i = 0; i < 100 && !closed; i++) {
      const now = (await call('GET', url, 'watcher')).json();
      closed = !now.properties.reachable || now.properties.duration_s > before.properties.duration_s;
      if (!closed) await new Promise((r) => setTimeout(r, 50));
    }
    expect(closed).toBe(true);
    const closures = (await call('GET', '/api/routing/closures', 'watcher')).json().items;
    expect(closures.map((c: { source: string }) => c.source)).toContain(
      'entity::urn:ngsi-ld:Alert:closure-1',
    );

    const deleted = await platform.server.inject({
      method: 'DELETE',
      url: '/ngsi-ld/v1/entities/urn:ngsi-ld:Alert:closure-1',
      headers: { authorization: auth.dispatcher as string },
    });
    expect(deleted.statusCode).toBe(204);
    let reopened = false;
    for (let i = 0; i < 100 && !reopened; i++) {
      reopened =
        (await call('GET', url, 'watcher')).json().properties.duration_s === before.properties.duration_s;
      if (!reopened) await new Promise((r) => setTimeout(r, 50));
    }
    expect(reopened).toBe(true);
  });

  describe('gap 3: GREEN becomes public', () => {
    const ALERT = 'urn:ngsi-ld:Alert:crisis-closure';
    const ngsi = (method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) =>
      platform.server.inject({
        method,
        url: `/ngsi-ld/v1${url}`,
        headers: {
          authorization: auth.dispatcher as string,
          ...(payload ? { 'content-type': 'application/json' } : {}),
        },
        ...(payload ? { payload: JSON.stringify(payload) } : {}),
      });
    const derived = async (who: string) =>
      (
        (await call('GET', '/api/routing/closures', who)).json().items as { source: string; id: string }[]
      ).filter((c) => c.source === `entity::${ALERT}`);
    const eventually = async (what: () => Promise<boolean>) => {
      for (let i = 0; i < 100 && !(await what()); i++) await new Promise((r) => setTimeout(r, 50));
      return what();
    };

    it('a TLP:GREEN Alert shared with one community closes the road for every route, but only that community sees the closure', async () => {
      const url = `/api/routing/route?from=${FONTVIEILLE}&to=${CASINO}`;
      const before = (await call('GET', url, 'guard')).json();
      const coords = before.geometry.coordinates as [number, number][];
      const created = await ngsi('POST', '/entities', {
        id: ALERT,
        type: 'Alert',
        subCategory: { type: 'Property', value: 'roadClosed' },
        location: {
          type: 'GeoProperty',
          value: { type: 'Point', coordinates: coords[Math.floor(coords.length / 2)] },
        },
        marking: { type: 'Property', value: { tlp: 'GREEN', audience: { communities: ['crisis'] } } },
      });
      expect(created.statusCode, created.body).toBe(201);
      expect(await eventually(async () => (await derived('finn')).length === 1)).toBe(true);

      // The community (police, fire) sees it, with its marking and owner; metro does not, by any path.
      const [seen] = await derived('finn');
      expect(seen).toMatchObject({
        kind: 'closure',
        ownerOrg: 'police',
        marking: { tlp: 'GREEN', audience: { orgs: [], communities: ['crisis'], users: [] } },
        reason: `Alert ${ALERT}`,
      });
      const id = (seen as { id: string }).id;
      expect(await derived('watcher')).toHaveLength(1);
      expect(await derived('guard')).toEqual([]);
      const single = await call('GET', `/api/routing/closures/${id}`, 'guard');
      expect([single.statusCode, single.json().code]).toEqual([404, 'ROUTING_CLOSURE_NOT_FOUND']);
      expect((await call('GET', `/api/routing/closures/${id}`, 'finn')).json()).toMatchObject({ id });
      const network = async (who: string) => (await call('GET', '/api/routing/network', who)).json().stats;
      expect((await network('finn')).closures).toBe((await network('guard')).closures + 1);

      // Safety: metro's routes avoid the closed road too, and the answer names nothing about it.
      const after = await call('GET', url, 'guard');
      expect(after.json().properties.duration_s).toBeGreaterThan(before.properties.duration_s);
      expect(after.body).not.toContain(id);
      expect(after.body).not.toContain('Alert');
    });

    it("follows the Alert's marking, and lifts the closure when the Alert is deleted", async () => {
      const [before] = await derived('finn');
      const remarked = await ngsi('PATCH', `/entities/${ALERT}/attrs`, {
        marking: { type: 'Property', value: { tlp: 'AMBER+STRICT' } },
      });
      expect(remarked.statusCode, remarked.body).toBe(204);
      expect(await eventually(async () => (await derived('finn')).length === 0)).toBe(true);
      const [now] = await derived('watcher');
      expect(now).toMatchObject({ id: before?.id, marking: { tlp: 'AMBER+STRICT' } });

      expect((await ngsi('DELETE', `/entities/${ALERT}`)).statusCode).toBe(204);
      expect(await eventually(async () => (await derived('watcher')).length === 0)).toBe(true);
    });
  });

  describe('gap 4: closes roads for first responders through a CLEAR Alert (routing part)', () => {
    it("a derived closure records its Alert's creator, and the gate's audit names them", async () => {
      const ALERT = 'urn:ngsi-ld:Alert:clear-closure';
      const headers = { authorization: auth.dispatcher as string, 'content-type': 'application/json' };
      const created = await platform.server.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/entities',
        headers,
        payload: JSON.stringify({
          id: ALERT,
          type: 'Alert',
          subCategory: { type: 'Property', value: 'hazardOnRoad' },
          location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [7.4245, 43.7349] } },
          marking: { type: 'Property', value: { tlp: 'CLEAR' } },
        }),
      });
      expect(created.statusCode, created.body).toBe(201);
      const me = (await call('GET', '/api/auth/me', 'dispatcher')).json();
      let closure: { id: string; createdBy: string; ownerOrg: string } | undefined;
      for (let i = 0; i < 100 && !closure; i++) {
        closure = (await call('GET', '/api/routing/closures', 'guard'))
          .json()
          .items.find((c: { source: string }) => c.source === `entity::${ALERT}`);
        if (!closure) await new Promise((r) => setTimeout(r, 50));
      }
      expect(closure).toMatchObject({ createdBy: me.userId, ownerOrg: 'police' });
      const audit = (await call('GET', `/api/audit?object=${closure?.id}`, 'chief')).json().items;
      expect(audit).toMatchObject([
        {
          action: 'create',
          actorId: null,
          ownerOrg: 'police',
          objectKind: 'closure',
          details: {
            derived: true,
            createdBy: me.userId,
            source: `entity::${ALERT}`,
            marking: { tlp: 'CLEAR' },
          },
        },
      ]);
      const deleted = await platform.server.inject({
        method: 'DELETE',
        url: `/ngsi-ld/v1/entities/${ALERT}`,
        headers: { authorization: auth.dispatcher as string },
      });
      expect(deleted.statusCode).toBe(204);
    });
  });

  describe("gap 9: any responder lifts another organisation's closure", () => {
    it('only writers and responders of the owner organisation who see it lift it', async () => {
      const made = await call('POST', '/api/routing/closures', 'dispatcher', {
        geometry: { type: 'Point', coordinates: [7.4245, 43.7349] },
        marking: { tlp: 'GREEN', audience: { communities: ['crisis'] } },
      });
      expect(made.statusCode, made.body).toBe(201);
      const { id } = made.json();
      const lift = async (who: string) => {
        const res = await call('DELETE', `/api/routing/closures/${id}`, who);
        return res.statusCode === 204 ? [204] : [res.statusCode, res.json().code];
      };
      expect(await lift('finn')).toEqual([403, 'ACCESS_DENIED']);
      expect(await lift('guard')).toEqual([404, 'ROUTING_CLOSURE_NOT_FOUND']);
      expect(await lift('watcher')).toEqual([403, 'AUTH_ROLE_REQUIRED']);
      expect(await lift('patrol')).toEqual([204]);
      const audit = (await call('GET', `/api/audit?object=${id}`, 'chief')).json().items;
      expect(
        audit.map((r: { action: string; ownerOrg: string; actorOrg: string }) => [
          r.action,
          r.ownerOrg,
          r.actorOrg,
        ]),
      ).toEqual([
        ['create', 'police', 'police'],
        ['delete', 'police', 'police'],
      ]);
    });
  });

  it('tells live streams of a closure only its readers, with its marking, and nothing of its content', async () => {
    const address = await platform.listen();
    const finn = await openStream(address, auth.finn as string, '?kinds=closure,slowdown');
    const guard = await openStream(address, auth.guard as string, '?kinds=closure,slowdown');
    await until(() => finn.events.length > 0 && guard.events.length > 0, 'ready');
    const made = await call('POST', '/api/routing/closures', 'patrol', {
      geometry: { type: 'Point', coordinates: [7.4245, 43.7349] },
      reason: 'armed suspect',
      marking: { tlp: 'GREEN', audience: { communities: ['crisis'] } },
    });
    expect(made.statusCode, made.body).toBe(201);
    const { id } = made.json();
    expect((await call('DELETE', `/api/routing/closures/${id}`, 'patrol')).statusCode).toBe(204);
    await until(() => finn.events.filter((e) => e.data.id === id).length === 2, 'finn told');
    const about = { kind: 'closure', id, ownerOrg: 'police', marking: 'TLP:GREEN; owner=police' };
    expect(finn.events.filter((e) => e.data.id === id)).toEqual([
      { event: 'closure.changed', data: about },
      { event: 'closure.removed', data: about },
    ]);
    expect(JSON.stringify(finn.events)).not.toContain('armed');
    expect(guard.events.filter((e) => e.event !== 'ready')).toEqual([]);
    finn.close();
    guard.close();
  });

  it('answers the area reachable within N minutes as a polygon', async () => {
    const res = await call('GET', `/api/routing/isochrone?from=${CASINO}&minutes=2`, 'watcher');
    expect(res.statusCode).toBe(200);
    const f = res.json();
    expect(['Polygon', 'MultiPolygon']).toContain(f.geometry.type);
    expect(f.properties.seconds).toBe(120);
  });

  it('rejects bad input with clear 4xx problems, never a crash', async () => {
    const bad = async (method: 'GET' | 'POST', url: string, who: string, payload?: unknown) => {
      const res = await call(method, url, who, payload);
      return [res.statusCode, res.json().code];
    };
    expect(await bad('GET', `/api/routing/route?from=abc&to=${CASINO}`, 'watcher')).toEqual([
      400,
      'PLATFORM_VALIDATION_FAILED',
    ]);
    expect(await bad('GET', `/api/routing/route?from=200,10&to=${CASINO}`, 'watcher')).toEqual([
      400,
      'ROUTING_INVALID_COORDINATE',
    ]);
    expect(await bad('GET', `/api/routing/route?from=0,0&to=${CASINO}`, 'watcher')).toEqual([
      422,
      'ROUTING_POINT_OUTSIDE_NETWORK',
    ]);
    expect(
      await bad('POST', '/api/routing/closures', 'dispatcher', {
        geometry: { type: 'Polygon', coordinates: [[1, 2]] },
      }),
    ).toEqual([400, 'ROUTING_INVALID_GEOMETRY']);
    expect(
      await bad('POST', '/api/routing/closures', 'dispatcher', { geometry: { type: 'Circle' } }),
    ).toEqual([400, 'ROUTING_INVALID_GEOMETRY']);
    expect(
      await bad('POST', '/api/routing/closures', 'dispatcher', {
        geometry: { type: 'Point', coordinates: [7.42, 43.73] },
        extra: 1,
      }),
    ).toEqual([400, 'PLATFORM_VALIDATION_FAILED']);
    expect(
      await bad('POST', '/api/routing/closures', 'dispatcher', {
        geometry: { type: 'Point', coordinates: [7.42, 43.73] },
        expiresAt: '2001-01-01T00:00:00Z',
      }),
    ).toEqual([400, 'ROUTING_INVALID_ARGUMENT']);
    expect(
      await bad('POST', '/api/routing/closures', 'watcher', {
        geometry: { type: 'Point', coordinates: [7.42, 43.73] },
      }),
    ).toEqual([403, 'AUTH_ROLE_REQUIRED']);
    expect(
      await bad('POST', '/api/routing/closures', 'dispatcher', {
        geometry: { type: 'Point', coordinates: [7.42, 43.73] },
        marking: 'TLP:GREEN',
      }),
    ).toEqual([400, 'PLATFORM_VALIDATION_FAILED']);
    expect(
      await bad('POST', '/api/routing/closures', 'dispatcher', {
        geometry: { type: 'Point', coordinates: [7.42, 43.73] },
        marking: { tlp: 'GREEN', audience: { orgs: ['nobody'] } },
      }),
    ).toEqual([404, 'ACCESS_ORG_NOT_FOUND']);
    expect(
      await bad('POST', '/api/routing/closures', 'dispatcher', {
        geometry: { type: 'Point', coordinates: [7.42, 43.73] },
        marking: { tlp: 'PURPLE' },
      }),
    ).toEqual([400, 'ACCESS_INVALID_TLP']);
    const many = Array.from({ length: 200 }, () => [7.42, 43.73]);
    expect(await bad('POST', '/api/routing/table', 'watcher', { sources: many, targets: many })).toEqual([
      400,
      'ROUTING_INVALID_ARGUMENT',
    ]);
    const anonymous = await platform.server.inject({
      method: 'GET',
      url: `/api/routing/route?from=${CASINO}&to=${PORT_HERCULE}`,
    });
    expect(anonymous.statusCode).toBe(401);
  });

  it('keeps closures across a restart', async () => {
    const route = (
      await call('GET', `/api/routing/route?from=${FONTVIEILLE}&to=${CASINO}`, 'dispatcher')
    ).json();
    const coords = route.geometry.coordinates as [number, number][];
    const c = await call('POST', '/api/routing/closures', 'dispatcher', {
      geometry: { type: 'Point', coordinates: coords[Math.floor(coords.length / 3)] },
      radius_m: 40,
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    });
    expect(c.statusCode).toBe(201);
    expect(c.json().segments).toBeGreaterThan(0);
    await platform.shutdown();
    platform = await createPlatform(config, { log: pino({ level: 'silent' }) });
    await platform.routing.whenLoaded();
    expect(platform.routing.status).toMatchObject({ state: 'ready', fromCache: true });
    const list = (await call('GET', '/api/routing/closures', 'dispatcher')).json();
    const kept = list.items.find((x: { id: string }) => x.id === c.json().id);
    expect(kept.segments).toBeGreaterThan(0);
  });
});

describe.skipIf(SERVER_SKIP)(
  `routing on two instances (PostgreSQL + NATS)${SERVER_SKIP ? ` (skipped: ${SERVER_SKIP})` : ''}`,
  () => {
    let a: Platform;
    let b: Platform;
    let server: ServerTestEnv;
    const dir = mkdtempSync(join(tmpdir(), 'safecity-routing-two-'));
    const token: Record<string, string> = {};

    beforeAll(async () => {
      server = await serverTestEnv('routing');
      const env = {
        ...server.env,
        SAFECITY_ADMIN_PASSWORD: ADMIN_PASSWORD,
        SAFECITY_ROADS: 'monaco',
        SAFECITY_DATA_DIR: dir,
      };
      a = await createPlatform(loadConfig({ SAFECITY_MQTT_PORT: '0', ...env, SAFECITY_INSTANCE_ID: 'a' }), {
        log: pino({ level: 'silent' }),
      });
      b = await createPlatform(loadConfig({ SAFECITY_MQTT_PORT: '0', ...env, SAFECITY_INSTANCE_ID: 'b' }), {
        log: pino({ level: 'silent' }),
      });
      await a.routing.whenLoaded();
      await b.routing.whenLoaded();
      const res = await a.server.inject({
        method: 'POST',
        url: '/api/auth/login',
        payload: { username: 'admin', password: ADMIN_PASSWORD },
      });
      token.admin = `Bearer ${res.json().token}`;
    });
    afterAll(async () => {
      await a?.shutdown();
      await b?.shutdown();
      await server?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('a closure accepted by instance A changes the routes of instance B', async () => {
      const get = (p: Platform, url: string) =>
        p.server.inject({ method: 'GET', url, headers: { authorization: token.admin as string } });
      const url = `/api/routing/route?from=${FONTVIEILLE}&to=${CASINO}`;
      const before = (await get(b, url)).json();
      const coords = before.geometry.coordinates as [number, number][];
      const closure = await a.server.inject({
        method: 'POST',
        url: '/api/routing/closures',
        headers: { authorization: token.admin as string },
        payload: {
          geometry: { type: 'Point', coordinates: coords[Math.floor(coords.length / 2)] },
          radius_m: 25,
        },
      });
      expect(closure.statusCode).toBe(201);
      let changed = false;
      for (let i = 0; i < 50 && !changed; i++) {
        const now = (await get(b, url)).json();
        changed = !now.properties.reachable || now.properties.duration_s > before.properties.duration_s;
        if (!changed) await new Promise((r) => setTimeout(r, 50));
      }
      expect(changed).toBe(true);
      const lift = await a.server.inject({
        method: 'DELETE',
        url: `/api/routing/closures/${closure.json().id}`,
        headers: { authorization: token.admin as string },
      });
      expect(lift.statusCode).toBe(204);
      let restored = false;
      for (let i = 0; i < 50 && !restored; i++) {
        restored = (await get(b, url)).json().properties.duration_s === before.properties.duration_s;
        if (!restored) await new Promise((r) => setTimeout(r, 50));
      }
      expect(restored).toBe(true);
    });

    it('a closure derived on one instance from a community Alert is listed on the other only to that community', async () => {
      const auth = await seedWorld(a, ADMIN_PASSWORD, PW, {
        orgs: [
          ['police', 'police'],
          ['fire', 'fire'],
          ['metro', 'transport'],
        ],
        users: [
          ['pat', 'police', 'operator'],
          ['finn', 'fire', 'responder'],
          ['guard', 'metro', 'operator'],
        ],
      });
      const community = await a.server.inject({
        method: 'POST',
        url: '/api/communities',
        headers: { authorization: auth.admin as string },
        payload: { id: 'crisis', name: 'Crisis cell', members: ['police', 'fire'] },
      });
      expect(community.statusCode, community.body).toBe(201);
      const alert = await a.server.inject({
        method: 'POST',
        url: '/ngsi-ld/v1/entities',
        headers: { authorization: auth.pat as string, 'content-type': 'application/json' },
        payload: JSON.stringify({
          id: 'urn:ngsi-ld:Alert:two-instances',
          type: 'Alert',
          subCategory: { type: 'Property', value: 'roadClosed' },
          location: { type: 'GeoProperty', value: { type: 'Point', coordinates: [7.4245, 43.7349] } },
          marking: { type: 'Property', value: { tlp: 'GREEN', audience: { communities: ['crisis'] } } },
        }),
      });
      expect(alert.statusCode, alert.body).toBe(201);
      const listed = async (who: string) =>
        (
          await b.server.inject({
            method: 'GET',
            url: '/api/routing/closures',
            headers: { authorization: auth[who] as string },
          })
        )
          .json()
          .items.filter((c: { source: string }) => c.source === 'entity::urn:ngsi-ld:Alert:two-instances');
      let seen: unknown[] = [];
      for (let i = 0; i < 100 && seen.length === 0; i++) {
        seen = await listed('finn');
        if (seen.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen).toMatchObject([{ ownerOrg: 'police', marking: { tlp: 'GREEN' } }]);
      expect(await listed('guard')).toEqual([]);
    });
  },
);
