/**
 * The operators' web app in a real browser (Debian's Chromium through playwright-core).
 *
 * 1. On the real platform: createPlatform (embedded PGlite in a temp data folder) serving the built
 *    web/dist, as `npm start` does: sign-in, reports and their markings, reports from map clicks, layers,
 *    live refresh, "routing not configured", session expiry.
 * 2. Alerts and routing: the platform's HTTP layer with the real platform API and the real NGSI-LD plugin
 *    (entities with markings), and a small stand-in for the routing API (FakeRouting, below) until the
 *    platform serves routing: straight-line routes that detour around closures.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../src/adapters/bus/index.ts';
import { openTestPgliteStore } from '../src/adapters/storage/testing.ts';
import { buildServer } from '../src/api/http/server.ts';
import { ngsiLdPlugin } from '../src/api/ngsi-ld/index.ts';
import { platformApi } from '../src/api/platform/index.ts';
import { loadConfig } from '../src/app/config.ts';
import { createPlatform, type Platform } from '../src/app/platform.ts';
import { AppError } from '../src/kernel/errors.ts';
import {
  AccessService,
  accessMigrations,
  bootstrapAccess,
  createAuthenticator,
  type Report,
  ReportService,
} from '../src/modules/access/index.ts';
import { auditMigrations } from '../src/modules/audit/index.ts';
import { ContextResolver, ContextService, contextMigrations } from '../src/modules/context/index.ts';
import type { Store } from '../src/ports/store.ts';
import {
  apiOf,
  clickMap,
  countColour,
  launchBrowser,
  NO_BROWSER,
  type Pos,
  PW,
  seedPeople,
  signIn,
} from './browser-harness.ts';
import { buildWebApp } from './build.ts';

const ADMIN_PW = 'correct-horse-battery-staple';
const SHOTS = process.env.WEB_SCREENSHOT_DIR;
const skipName = NO_BROWSER ? ` (skipped: ${NO_BROWSER})` : '';

async function shot(page: Page, name: string) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

describe.skipIf(NO_BROWSER)(
  `web app on the real platform (createPlatform, embedded PGlite)${skipName}`,
  () => {
    const temp = mkdtempSync(join(tmpdir(), 'safecity-web-'));
    let platform: Platform;
    let base: string;
    let context: BrowserContext;
    let page: Page;
    let api: ReturnType<typeof apiOf>;

    beforeAll(async () => {
      // The platform serves web/dist, as after `npm start`'s build step.
      await buildWebApp();
      const config = loadConfig({
        SAFECITY_DATA_DIR: join(temp, 'data'),
        PORT: '0',
        HOST: '127.0.0.1',
        SAFECITY_ADMIN_PASSWORD: ADMIN_PW,
      });
      platform = await createPlatform(config, { log: pino({ level: 'silent' }) });
      base = await platform.listen();
      api = apiOf(platform.server);
      await seedPeople(platform.server, ADMIN_PW);
      const mia = await api.login('mia');
      await api.call('POST', '/api/reports', mia, {
        title: 'Gate 3 camera offline',
        body: 'Camera feed lost at 02:10, technician dispatched.',
        category: 'infrastructure',
        location: { type: 'Point', coordinates: [-8.6, 41.15] },
        marking: { tlp: 'AMBER', pap: 'GREEN', audience: { orgs: ['police'], communities: [], users: [] } },
      });
      await api.call('POST', '/api/reports', mia, {
        title: 'Metro internal only',
        category: 'other',
        marking: { tlp: 'AMBER+STRICT', audience: { orgs: [], communities: [], users: [] } },
      });
      await api.call('POST', '/api/reports', mia, {
        title: '<img src=x onerror="document.title=\'pwned\'">',
        category: 'other',
        marking: { tlp: 'GREEN', audience: { orgs: [], communities: ['all'], users: [] } },
      });
      ({ context, page } = await launchBrowser(temp));
    });

    afterAll(async () => {
      await context?.close();
      await platform?.shutdown();
      rmSync(temp, { recursive: true, force: true });
    });

    it('serves the app at / with MapLibre and its worker from the platform itself', async () => {
      for (const [path, type] of [
        ['/', 'text/html'],
        ['/app.js', 'javascript'],
        ['/vendor/maplibre-gl.mjs', 'javascript'],
        ['/vendor/maplibre-gl-worker.mjs', 'javascript'],
        ['/vendor/maplibre-gl.css', 'text/css'],
      ]) {
        const r = await fetch(`${base}${path}`);
        expect(r.status, path).toBe(200);
        expect(r.headers.get('content-type'), path).toContain(type);
      }
    });

    it('refuses a wrong password with the server’s reason and signs in with the keyboard', async () => {
      await page.goto(`${base}/?poll=500`);
      await expect.poll(() => page.locator('#login-view').isVisible()).toBe(true);
      await page.keyboard.type('alice');
      await page.keyboard.press('Tab');
      await page.keyboard.type('not-the-password');
      await page.keyboard.press('Enter');
      await expect
        .poll(() => page.locator('#login-error').textContent())
        .toBe('Sign-in failed: Invalid username or password');
      await shot(page, '01-login-error');

      await page.fill('#login-password', PW);
      await page.keyboard.press('Enter');
      await page.waitForSelector('#app-view[data-ready]');
      expect(await page.locator('#whoami').textContent()).toBe('alice · police');
      expect(await page.getAttribute('#app-view', 'data-ready')).toBe('map');
    });

    it('lists the reports the policy lets alice see, with TLP and PAP badges, text never run as HTML', async () => {
      const items = page.locator('#report-list li.item');
      await expect.poll(() => items.count()).toBe(2);
      const titles = await page.locator('#report-list .title').allTextContents();
      expect(titles.sort()).toEqual([
        '<img src=x onerror="document.title=\'pwned\'">',
        'Gate 3 camera offline',
      ]);
      expect(await page.locator('#report-list img').count()).toBe(0);
      expect(await page.title()).not.toBe('pwned');

      const gate = items.filter({ hasText: 'Gate 3 camera offline' });
      const tlp = gate.locator('.badge.tlp');
      expect(await tlp.textContent()).toBe('TLP:AMBER');
      expect(await tlp.evaluate((el) => getComputedStyle(el).color)).toBe('rgb(255, 192, 0)');
      expect(await tlp.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(0, 0, 0)');
      expect(await gate.locator('.badge.pap').textContent()).toBe('PAP:GREEN');
      expect(await gate.locator('.meta').textContent()).toMatch(/^infrastructure · metro · /);
      const xss = items.filter({ hasText: 'onerror' });
      expect(await xss.locator('.badge.tlp').evaluate((el) => getComputedStyle(el).color)).toBe(
        'rgb(51, 255, 0)',
      );
    });

    it('creates a report where the operator clicks the map, with the marking the operator chose', async () => {
      await page.click('button[data-mode="report"]');
      expect(await page.getAttribute('button[data-mode="report"]', 'aria-pressed')).toBe('true');
      await clickMap(page, 0.4, 0.3);
      await expect.poll(() => page.locator('#report-dialog').isVisible()).toBe(true);
      const [lon, lat] = (await page.inputValue('#report-location')).split(',').map(Number) as Pos;
      expect(Number.isFinite(lon) && Number.isFinite(lat)).toBe(true);
      await page.fill('#report-title', 'Drone over Avenida dos Aliados');
      await page.fill('#report-body', 'Small quadcopter hovering over the crowd.');
      await page.selectOption('#report-category', 'suspicious-activity');
      await page.selectOption('#report-tlp', 'GREEN');
      await page.selectOption('#report-pap', 'AMBER');
      await page.check('#report-communities input[value="all"]');
      await shot(page, '03-report-dialog');
      await page.click('#report-form button[type=submit]');
      await expect.poll(() => page.locator('#report-dialog').isVisible()).toBe(false);
      await expect.poll(() => page.locator('#toast').textContent()).toContain('shared as TLP:GREEN');

      const listed = await api.call('GET', '/api/reports', await api.login('alice'));
      const mine = (listed.items as Report[]).find((r) => r.title === 'Drone over Avenida dos Aliados')!;
      expect(mine.location?.coordinates).toEqual([lon, lat]);
      expect(mine.marking).toMatchObject({ tlp: 'GREEN', pap: 'AMBER' });
      expect(mine.marking.audience.communities).toEqual(['all']);
      expect(mine.ownerOrg).toBe('police');
      const item = page.locator('#report-list li.item', { hasText: 'Drone over Avenida dos Aliados' });
      await expect.poll(() => item.locator('.badge.tlp').textContent()).toBe('TLP:GREEN');
      // The metro operator sees it too: GREEN to the community "all".
      const forMia = await api.call('GET', '/api/reports', await api.login('mia'));
      expect((forMia.items as Report[]).map((r) => r.title)).toContain('Drone over Avenida dos Aliados');
    });

    it('refuses a report whose location cannot be read and says why, keeping the dialog open', async () => {
      await page.click('#new-report-here');
      await page.fill('#report-location', 'not a place');
      await page.fill('#report-title', 'Somewhere');
      await page.click('#report-form button[type=submit]');
      expect(await page.locator('#report-error').textContent()).toBe(
        'Location must be lon,lat in degrees, e.g. -8.61,41.15',
      );
      expect(await page.locator('#report-dialog').isVisible()).toBe(true);
      await page.click('#report-cancel');
      expect(await page.locator('#report-dialog').isVisible()).toBe(false);
    });

    it('hides and shows a layer: the report’s TLP:GREEN ring disappears from the map and comes back', async () => {
      const greenPixels = async () =>
        countColour(await page.locator('#map canvas').screenshot(), [0x33, 0xff, 0x00]);
      await expect.poll(greenPixels, { timeout: 10_000 }).toBeGreaterThan(20);
      await shot(page, '02-cop');
      await page.locator('#layer-reports').press('Space');
      expect(await page.isChecked('#layer-reports')).toBe(false);
      await expect.poll(greenPixels).toBe(0);
      await page.locator('#layer-reports').press('Space');
      await expect.poll(greenPixels).toBeGreaterThan(20);
    });

    it('refreshes live: a report shared by another organisation appears without a reload', async () => {
      await api.call('POST', '/api/reports', await api.login('mia'), {
        title: 'Crowd surge at Trindade',
        category: 'crowd',
        marking: { tlp: 'CLEAR', audience: { orgs: [], communities: ['all'], users: [] } },
      });
      const item = page.locator('#report-list li.item', { hasText: 'Crowd surge at Trindade' });
      await expect.poll(() => item.count(), { timeout: 5000 }).toBe(1);
      expect(await item.locator('.badge.tlp').evaluate((el) => getComputedStyle(el).color)).toBe(
        'rgb(255, 255, 255)',
      );
      expect(await page.locator('#live-status').textContent()).toMatch(/^Live · /);
    });

    it('says routing is not configured when the platform has no road network', async () => {
      await expect
        .poll(() => page.locator('#network-info').textContent())
        .toBe('Routing is not configured on this platform (no road network loaded).');
      await page.click('button[data-mode="closure"]');
      await clickMap(page, 0.5, 0.5);
      expect(await page.locator('#route-result').textContent()).toBe(
        'Routing is not configured on this platform.',
      );
    });

    it('deletes its own organisation’s report after a confirmation, and offers no delete on others’', async () => {
      const drone = page.locator('#report-list li.item', { hasText: 'Drone over Avenida dos Aliados' });
      expect(
        await page.locator('#report-list li.item', { hasText: 'Gate 3' }).locator('button.link').count(),
      ).toBe(0);
      page.once('dialog', (d) => void d.dismiss());
      await drone.getByRole('button', { name: 'Delete report Drone over Avenida dos Aliados' }).click();
      expect(await drone.count()).toBe(1);
      page.once('dialog', (d) => void d.accept());
      await drone.getByRole('button', { name: 'Delete report Drone over Avenida dos Aliados' }).click();
      await expect.poll(() => drone.count()).toBe(0);
      const listed = await api.call('GET', '/api/reports', await api.login('alice'));
      expect((listed.items as Report[]).map((r) => r.title)).not.toContain('Drone over Avenida dos Aliados');
    });

    it('sends the operator back to sign-in when the session is no longer valid', async () => {
      await page.evaluate(() => sessionStorage.setItem('safecity.token', 'not-a-token'));
      await page.reload();
      await expect.poll(() => page.locator('#login-view').isVisible()).toBe(true);
      expect(await page.locator('#app-view').isVisible()).toBe(false);
    });
  },
);

/** The network's extent in the stand-in: central Porto. */
const BBOX: [number, number, number, number] = [-8.64, 41.135, -8.58, 41.165];

/**
 * Stand-in for the routing API (same shapes as src/api/routing): straight-line routes at 10 m/s that
 * detour around closures given as a point and a radius.
 */
class FakeRouting {
  closures = new Map<
    string,
    { id: string; geometry: { type: string; coordinates: Pos }; radiusMeters: number }
  >();

  plugin = async (app: FastifyInstance) => {
    app.get('/api/routing/network', async () => ({
      status: { state: 'ready' },
      stats: { roadSegments: 1234 },
      bbox: BBOX,
      attribution: '© OpenStreetMap contributors, ODbL',
    }));
    app.get<{ Querystring: { from: string; to: string } }>('/api/routing/route', async (req) => {
      const from = req.query.from.split(',').map(Number) as Pos;
      const to = req.query.to.split(',').map(Number) as Pos;
      const coords: Pos[] = [from];
      for (const c of this.closures.values()) {
        const center = c.geometry.coordinates;
        const r = c.radiusMeters;
        if (distanceToSegment(center, from, to) < r)
          coords.push([center[0], center[1] + (2.5 * r) / 111_320]);
      }
      coords.push(to);
      let d = 0;
      for (let i = 1; i < coords.length; i++) d += metres(coords[i - 1]!, coords[i]!);
      return {
        type: 'Feature',
        geometry: { type: 'LineString', coordinates: coords },
        properties: {
          reachable: true,
          duration_s: d / 10,
          distance_m: d,
          steps: [
            { name: 'Rua de Teste', distanceM: d, durationS: d / 10, maneuver: { type: 'depart' } },
            { name: 'Rua de Teste', distanceM: 0, durationS: 0, maneuver: { type: 'arrive' } },
          ],
        },
      };
    });
    app.get('/api/routing/closures', async () => ({ items: [...this.closures.values()] }));
    app.post<{ Body: { geometry: { type: string; coordinates: Pos }; radius_m: number } }>(
      '/api/routing/closures',
      async (req, reply) => {
        const id = `cl-${this.closures.size + 1}`;
        this.closures.set(id, { id, geometry: req.body.geometry, radiusMeters: req.body.radius_m });
        reply.status(201);
        return { id };
      },
    );
    app.delete<{ Params: { id: string } }>('/api/routing/closures/:id', async (req, reply) => {
      if (!this.closures.delete(req.params.id))
        throw new AppError('ROUTING_CLOSURE_NOT_FOUND', 'no such closure');
      reply.status(204);
    });
  };
}

describe.skipIf(NO_BROWSER)(`web app: NGSI-LD alerts and routing${skipName}`, () => {
  const temp = mkdtempSync(join(tmpdir(), 'safecity-web-'));
  const routing = new FakeRouting();
  let store: Store;
  let server: FastifyInstance;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    const built = await buildWebApp(join(temp, 'dist'));
    store = await openTestPgliteStore({ ...accessMigrations, ...auditMigrations, ...contextMigrations });
    const bus = createMemoryBus();
    const access = new AccessService({ store });
    const reports = new ReportService(access);
    const authenticator = createAuthenticator({ service: access });
    const contextService = new ContextService({
      store,
      bus,
      resolver: new ContextResolver({ allowRemote: false }),
    });
    await bootstrapAccess(access, { adminPassword: ADMIN_PW });
    server = await buildServer({
      logger: pino({ level: 'silent' }),
      bodyLimit: 1_048_576,
      instanceId: 'web-test',
      version: 'test',
      authenticate: (h) => authenticator.authenticate(h),
      healthChecks: [],
      isReady: () => true,
      surfaces: [
        { name: 'platform', plugin: platformApi, options: { access, reports, authenticator } },
        {
          name: 'ngsi-ld',
          plugin: ngsiLdPlugin,
          options: { service: contextService },
          prefix: '/ngsi-ld/v1',
        },
        { name: 'routing (stand-in)', plugin: routing.plugin },
      ],
      webRoot: built.outDir,
    });
    await seedPeople(server, ADMIN_PW);
    const { call, login } = apiOf(server);
    const alice = await login('alice');
    const mia = await login('mia');
    const entity = (id: string, type: string, at: Pos, attrs: Record<string, unknown>, tlp: string) => ({
      id,
      type,
      location: { type: 'GeoProperty', value: { type: 'Point', coordinates: at } },
      ...Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, { type: 'Property', value: v }])),
      marking: { type: 'Property', value: { tlp } },
    });
    await call(
      'POST',
      '/ngsi-ld/v1/entities',
      mia,
      entity(
        'urn:ngsi-ld:Alert:bag',
        'Alert',
        [-8.611, 41.146],
        {
          category: 'security',
          subCategory: 'suspiciousObject',
          severity: 'high',
          description: 'Unattended bag at São Bento station',
          dateIssued: new Date().toISOString(),
        },
        'GREEN',
      ),
    );
    await call(
      'POST',
      '/ngsi-ld/v1/entities',
      mia,
      entity(
        'urn:ngsi-ld:Alert:staff',
        'Alert',
        [-8.6, 41.15],
        { description: 'Metro staff only' },
        'AMBER+STRICT',
      ),
    );
    await call(
      'POST',
      '/ngsi-ld/v1/entities',
      alice,
      entity(
        'urn:ngsi-ld:CrowdFlowObserved:aliados',
        'CrowdFlowObserved',
        [-8.6115, 41.1485],
        { peopleCount: 1800, occupancy: 0.92, congested: true },
        'AMBER',
      ),
    );
    const base = await server.listen({ port: 0, host: '127.0.0.1' });
    ({ context, page } = await launchBrowser(temp));
    await signIn(page, base, 'alice');
  });

  afterAll(async () => {
    await context?.close();
    await server?.close();
    await store?.close();
    rmSync(temp, { recursive: true, force: true });
  });

  it('lists the NGSI-LD alerts alice may see with their TLP, and shows road data attribution', async () => {
    const alerts = page.locator('#alert-list li.item');
    await expect.poll(() => alerts.count()).toBe(1);
    expect(await alerts.locator('.title').textContent()).toBe('Unattended bag at São Bento station');
    expect(await alerts.locator('.badge.tlp').textContent()).toBe('TLP:GREEN');
    expect(await alerts.locator('.meta').textContent()).toMatch(/^security · suspiciousObject · \d+ s ago$/);
    expect(await page.locator('.maplibregl-ctrl-attrib').textContent()).toContain(
      '© OpenStreetMap contributors, ODbL',
    );
  });

  it('draws the entities: the congested crowd in red, the alert in orange; a click shows the details', async () => {
    const canvas = page.locator('#map canvas');
    await expect
      .poll(async () => countColour(await canvas.screenshot(), [0xff, 0x7b, 0x00]))
      .toBeGreaterThan(50);
    expect(countColour(await canvas.screenshot(), [0xff, 0x5c, 0x5c])).toBeGreaterThan(50);
    await page.click('#alert-list .title');
    await expect
      .poll(() => page.locator('.maplibregl-popup h4').textContent())
      .toBe('Alert: Unattended bag at São Bento station');
    expect(await page.locator('.maplibregl-popup dl').textContent()).toContain('severityhigh');
  });

  it('routes between two map clicks, then a closure on the way makes the next route go around it', async () => {
    await page.keyboard.press('Escape');
    await page.click('button[data-mode="route"]');
    expect(await page.locator('#mode-hint').textContent()).toBe('Click the start of the route');
    await clickMap(page, 0.25, 0.6);
    expect(await page.locator('#mode-hint').textContent()).toBe('Click the destination');
    await clickMap(page, 0.75, 0.6);
    const summary = page.locator('#route-summary');
    await expect.poll(() => summary.textContent()).toMatch(/^\d+ min \d+ s · [\d.]+ k?m$/);
    const first = (await summary.textContent())!;
    expect(await page.locator('.steps li').allTextContents()).toEqual([
      expect.stringMatching(/^Start on Rua de Teste — [\d.]+ k?m$/),
      'Arrive at Rua de Teste',
    ]);

    await page.fill('#closure-radius', '200');
    await page.click('button[data-mode="closure"]');
    await clickMap(page, 0.5, 0.6);
    await expect.poll(() => page.locator('#closure-list li.item').count()).toBe(1);
    await expect.poll(() => summary.textContent()).toContain('(was ');
    expect(minutes((await summary.textContent())!)).toBeGreaterThan(minutes(first));
    const closure = [...routing.closures.values()][0]!;
    expect(closure.geometry.type).toBe('Point');
    expect(closure.radiusMeters).toBe(200);
    expect(await page.locator('#closure-list .meta').textContent()).toMatch(
      /^Point \+ 200 m · until removed$/,
    );
    await shot(page, '04-route-closure');

    await page.click('#closure-list button:has-text("Remove")');
    await expect.poll(() => routing.closures.size).toBe(0);
    await expect
      .poll(async () => minutes((await summary.textContent()) ?? ''))
      .toBeCloseTo(minutes(first), 1);
  });

  it('routes from typed coordinates and says why when a point cannot be read', async () => {
    await page.click('#route-clear');
    await page.fill('#route-from', '-8.62,41.15');
    await page.fill('#route-to', 'somewhere');
    await page.press('#route-to', 'Enter');
    expect(await page.locator('#route-result .error').textContent()).toBe(
      'Give both ends as lon,lat, or pick them on the map.',
    );
    await page.fill('#route-to', '-8.59,41.15');
    await page.press('#route-to', 'Enter');
    await expect.poll(() => page.locator('#route-summary').textContent()).toMatch(/ · 2\.5 km$/);
  });
});

function minutes(summary: string): number {
  const m = /^(\d+) min (\d+) s/.exec(summary);
  return m ? Number(m[1]) + Number(m[2]) / 60 : Number.NaN;
}

function metres(a: Pos, b: Pos): number {
  const k = Math.PI / 180;
  const x = (b[0] - a[0]) * k * Math.cos(((a[1] + b[1]) / 2) * k);
  const y = (b[1] - a[1]) * k;
  return Math.sqrt(x * x + y * y) * 6_371_008.8;
}

function distanceToSegment(p: Pos, a: Pos, b: Pos): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i <= 100; i++) {
    const t = i / 100;
    best = Math.min(best, metres(p, [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]));
  }
  return best;
}
