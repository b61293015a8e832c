/**
 * The operators' web app in a real browser (Debian's Chromium through playwright-core).
 *
 * 1. On the real platform: createPlatform (embedded PGlite in a temp data folder) serving the built
 *    web/dist, as `npm start` does: sign-in, reports and their markings, reports from map clicks, layers,
 *    live refresh, "routing not configured", session expiry.
 * 2. The same with Monaco's roads (SAFECITY_ROADS=monaco, the shared extract): NGSI-LD alerts and crowds
 *    with markings across organisations; routes from map clicks, a closure clicked on the route and the
 *    longer route that avoids it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_APP_CSP } from '../src/api/http/server.ts';
import { loadConfig } from '../src/app/config.ts';
import { createPlatform, type Platform } from '../src/app/platform.ts';
import type { Report } from '../src/modules/reports/index.ts';
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
    let temp = '';
    let platform: Platform;
    let base: string;
    let context: BrowserContext;
    let page: Page;
    let cspViolations: string[] = [];
    let api: ReturnType<typeof apiOf>;

    beforeAll(async () => {
      temp = mkdtempSync(join(tmpdir(), 'safecity-web-'));
      // The platform serves web/dist, as after `npm start`'s build step.
      await buildWebApp();
      const config = loadConfig({
        SAFECITY_MQTT_PORT: '0',
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
      ({ context, page, cspViolations } = await launchBrowser(temp));
    });

    afterAll(async () => {
      await context?.close();
      await platform?.shutdown();
      if (temp) rmSync(temp, { recursive: true, force: true });
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
        expect(r.headers.get('x-content-type-options'), path).toBe('nosniff');
        expect(r.headers.get('content-security-policy'), path).toBe(WEB_APP_CSP);
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

    it('changes the marking of its own report: tightened to AMBER+STRICT, the metro no longer sees it', async () => {
      const drone = page.locator('#report-list li.item', { hasText: 'Drone over Avenida dos Aliados' });
      await drone.getByRole('button', { name: 'Change report Drone over Avenida dos Aliados' }).click();
      await expect.poll(() => page.locator('#report-dialog').isVisible()).toBe(true);
      expect(await page.locator('#report-dialog-title').textContent()).toBe('Change report');
      expect(await page.inputValue('#report-title')).toBe('Drone over Avenida dos Aliados');
      await expect.poll(() => page.inputValue('#report-tlp')).toBe('GREEN');
      expect(await page.inputValue('#report-pap')).toBe('AMBER');
      expect(await page.isChecked('#report-communities input[value="all"]')).toBe(true);
      await page.selectOption('#report-tlp', 'AMBER+STRICT');
      await page.uncheck('#report-communities input[value="all"]');
      await page.click('#report-form button[type=submit]');
      await expect.poll(() => drone.locator('.badge.tlp').textContent()).toBe('TLP:AMBER+STRICT');
      expect(await page.locator('#toast').textContent()).toBe(
        'Report “Drone over Avenida dos Aliados” saved: TLP:AMBER+STRICT applies at once',
      );
      const forMia = await api.call('GET', '/api/reports', await api.login('mia'));
      expect((forMia.items as Report[]).map((r) => r.title)).not.toContain('Drone over Avenida dos Aliados');
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

    it('signs out at once on a password reset, then asks for a password of one’s own', async () => {
      const admin = await api.login('admin', ADMIN_PW);
      const bruno = await api.call('POST', '/api/users', admin, {
        username: 'bruno',
        orgId: 'police',
        roles: ['operator'],
        password: PW,
      });
      await signIn(page, base, 'bruno');
      await api.call('PATCH', `/api/users/${bruno.id}`, admin, { password: 'set-by-the-administrator' });
      await expect.poll(() => page.locator('#login-view').isVisible(), { timeout: 5000 }).toBe(true);
      expect(await page.locator('#login-error').textContent()).toBe(
        'Your session has ended. Please sign in again.',
      );

      await page.fill('#login-username', 'bruno');
      await page.fill('#login-password', 'set-by-the-administrator');
      await page.press('#login-password', 'Enter');
      await expect.poll(() => page.locator('#login-new').isVisible()).toBe(true);
      expect(await page.locator('#login-new-notice').textContent()).toBe(
        'An administrator reset your password. Choose a new one of your own to sign in.',
      );
      expect(await page.locator('#login-submit').textContent()).toBe('Set password and sign in');
      await shot(page, '05-new-password');
      await page.fill('#login-new-password', 'my-own-passphrase-42');
      await page.fill('#login-new-password-again', 'my-own-passphrase-42!');
      await page.click('#login-submit');
      expect(await page.locator('#login-error').textContent()).toBe('The two new passwords differ');
      await page.fill('#login-new-password-again', 'my-own-passphrase-42');
      await page.click('#login-submit');
      await page.waitForSelector('#app-view[data-ready]');
      expect(await page.locator('#whoami').textContent()).toBe('bruno · police');
    });

    it('changes its own password and stays signed in with the new session token; the old one is refused', async () => {
      const before = await page.evaluate(() => sessionStorage.getItem('safecity.token'));
      await page.click('#change-password');
      await expect.poll(() => page.locator('#password-dialog').isVisible()).toBe(true);
      await page.fill('#password-current', 'my-own-passphrase-42');
      await page.fill('#password-new', 'my-second-passphrase-43');
      await page.fill('#password-again', 'my-second-passphrase-43');
      await page.click('#password-form button[type=submit]');
      await expect
        .poll(() => page.locator('#toast').textContent())
        .toBe('Password changed: your other sessions have ended');
      expect(await page.locator('#password-dialog').isVisible()).toBe(false);
      const after = await page.evaluate(() => sessionStorage.getItem('safecity.token'));
      expect(after).not.toBe(before);
      const old = await platform.server.inject({
        method: 'GET',
        url: '/api/auth/me',
        headers: { authorization: `Bearer ${before}` },
      });
      expect(old.statusCode).toBe(401);
      // The old token's stream ended; the app carries on, live, with the new one.
      await new Promise((r) => setTimeout(r, 1500));
      expect(await page.locator('#app-view').isVisible()).toBe(true);
      await expect.poll(() => page.locator('#live-status').textContent()).toMatch(/^Live · /);
      await page.reload();
      await page.waitForSelector('#app-view[data-ready]');
      expect(await page.locator('#whoami').textContent()).toBe('bruno · police');
    });

    it('runs under its Content-Security-Policy without a single violation', () => {
      expect(cspViolations).toEqual([]);
    });
  },
);

// Monaco (the shared road extract): Fontvieille and the casino square, as in the routing API's tests.
const FONTVIEILLE: Pos = [7.417, 43.731];
const CASINO: Pos = [7.4283, 43.7394];

describe.skipIf(NO_BROWSER)(
  `web app: alerts and routing on the real platform with Monaco's roads${skipName}`,
  () => {
    let temp = '';
    let platform: Platform;
    let context: BrowserContext;
    let page: Page;
    let cspViolations: string[] = [];
    let api: ReturnType<typeof apiOf>;

    beforeAll(async () => {
      temp = mkdtempSync(join(tmpdir(), 'safecity-web-'));
      await buildWebApp();
      const config = loadConfig({
        SAFECITY_MQTT_PORT: '0',
        SAFECITY_DATA_DIR: join(temp, 'data'),
        PORT: '0',
        HOST: '127.0.0.1',
        SAFECITY_ADMIN_PASSWORD: ADMIN_PW,
        SAFECITY_ROADS: 'monaco',
      });
      platform = await createPlatform(config, { log: pino({ level: 'silent' }) });
      await platform.routing.whenLoaded();
      const base = await platform.listen();
      api = apiOf(platform.server);
      await seedPeople(platform.server, ADMIN_PW);
      const alice = await api.login('alice');
      const mia = await api.login('mia');
      const entity = (id: string, type: string, at: Pos, attrs: Record<string, unknown>, tlp: string) => ({
        id,
        type,
        location: { type: 'GeoProperty', value: { type: 'Point', coordinates: at } },
        ...Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, { type: 'Property', value: v }])),
        marking: { type: 'Property', value: { tlp } },
      });
      await api.call(
        'POST',
        '/ngsi-ld/v1/entities',
        mia,
        entity(
          'urn:ngsi-ld:Alert:bag',
          'Alert',
          [7.4265, 43.7385],
          {
            category: 'security',
            subCategory: 'suspiciousObject',
            severity: 'high',
            description: 'Unattended bag at the casino square',
            dateIssued: new Date().toISOString(),
          },
          'GREEN',
        ),
      );
      await api.call(
        'POST',
        '/ngsi-ld/v1/entities',
        mia,
        entity(
          'urn:ngsi-ld:Alert:staff',
          'Alert',
          [7.42, 43.735],
          { description: 'Metro staff only' },
          'AMBER+STRICT',
        ),
      );
      await api.call(
        'POST',
        '/ngsi-ld/v1/entities',
        alice,
        entity(
          'urn:ngsi-ld:CrowdFlowObserved:port',
          'CrowdFlowObserved',
          [7.4245, 43.7349],
          { peopleCount: 1800, occupancy: 0.92, congested: true },
          'AMBER',
        ),
      );
      const vehicle = (id: string, at: Pos, attrs: Record<string, unknown>) =>
        api.call('POST', '/ngsi-ld/v1/entities', alice, entity(id, 'Vehicle', at, attrs, 'AMBER'));
      await vehicle('urn:ngsi-ld:Vehicle:p7', [7.4175, 43.7315], {
        name: 'Patrol 7',
        serviceStatus: 'parked',
      });
      await vehicle('urn:ngsi-ld:Vehicle:p12', [7.4275, 43.739], {
        name: 'Patrol 12',
        serviceStatus: 'available',
      });
      await vehicle('urn:ngsi-ld:Vehicle:p3', [7.4245, 43.735], {
        name: 'Patrol 3',
        serviceStatus: 'outOfService',
      });
      ({ context, page, cspViolations } = await launchBrowser(temp));
      await signIn(page, base, 'alice');
    });

    afterAll(async () => {
      await context?.close();
      await platform?.shutdown();
      if (temp) rmSync(temp, { recursive: true, force: true });
    });

    /** Where a position is on the map's canvas, from the visible extent the app writes on the map element. */
    async function pixelOf(p: Pos): Promise<{ x: number; y: number }> {
      const box = (await page.locator('#map canvas').boundingBox())!;
      const [w, south, e, n] = (await page.getAttribute('#map', 'data-bounds'))!.split(',').map(Number) as [
        number,
        number,
        number,
        number,
      ];
      const mercY = (lat: number) => Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360));
      return {
        x: box.x + ((p[0] - w) / (e - w)) * box.width,
        y: box.y + ((mercY(n) - mercY(p[1])) / (mercY(n) - mercY(south))) * box.height,
      };
    }
    async function clickAt(p: Pos) {
      const { x, y } = await pixelOf(p);
      await page.mouse.click(x, y);
    }

    it('fits the map to the road network and credits OpenStreetMap', async () => {
      expect(await page.locator('#network-info').textContent()).toMatch(
        /^Road network: [\d,]+ road segments\. © OpenStreetMap contributors, ODbL$/,
      );
      expect(await page.locator('.maplibregl-ctrl-attrib').textContent()).toContain(
        '© OpenStreetMap contributors, ODbL',
      );
    });

    it('routes between two map clicks, then a closure clicked on the way makes the next route go around it', async () => {
      await page.click('button[data-mode="route"]');
      expect(await page.locator('#mode-hint').textContent()).toBe('Click the start of the route');
      await clickAt(FONTVIEILLE);
      expect(await page.locator('#mode-hint').textContent()).toBe('Click the destination');
      const picked = (await page.inputValue('#route-from')).split(',').map(Number);
      expect(picked[0]).toBeCloseTo(FONTVIEILLE[0], 3);
      expect(picked[1]).toBeCloseTo(FONTVIEILLE[1], 3);
      await clickAt(CASINO);
      const summary = page.locator('#route-summary');
      await expect.poll(() => summary.textContent()).toMatch(/^\d+ min \d+ s · [\d.]+ k?m$/);
      const first = (await summary.textContent())!;
      const steps = await page.locator('.steps li').allTextContents();
      expect(steps[0]).toMatch(/^Start on .+ — [\d.]+ k?m$/);
      expect(steps.at(-1)).toMatch(/^Arrive at /);
      const routeBlue = async () =>
        countColour(await page.locator('#map canvas').screenshot(), [0x00, 0xb3, 0xff]);
      await expect.poll(routeBlue).toBeGreaterThan(200);

      // Close the road half-way along this route, by clicking there with the Closure tool.
      const route = await api.call(
        'GET',
        `/api/routing/route?from=${await page.inputValue('#route-from')}&to=${await page.inputValue('#route-to')}`,
        await api.login('alice'),
      );
      const line = route.geometry.coordinates as Pos[];
      const mid = line[Math.floor(line.length / 2)]!;
      await page.fill('#closure-radius', '40');
      await page.click('button[data-mode="closure"]');
      await clickAt(mid);
      await expect.poll(() => page.locator('#closure-list li.item').count()).toBe(1);
      expect(await page.locator('#closure-list .meta').textContent()).toMatch(
        /^Point \+ 40 m · \d+ road segments · until removed$/,
      );
      await expect.poll(() => summary.textContent()).toContain('(was ');
      expect(minutes((await summary.textContent())!)).toBeGreaterThan(minutes(first));
      const closures = await api.call('GET', '/api/routing/closures', await api.login('alice'));
      expect(closures.items).toHaveLength(1);
      expect(closures.items[0]).toMatchObject({ radiusMeters: 40, geometry: { type: 'Point' } });
      await shot(page, '04-route-closure');

      await page.click('#closure-list button:has-text("Remove")');
      await expect.poll(() => page.locator('#closure-list li.item').count()).toBe(0);
      await expect
        .poll(async () => minutes((await summary.textContent()) ?? ''))
        .toBeCloseTo(minutes(first), 2);
      expect((await api.call('GET', '/api/routing/closures', await api.login('alice'))).items).toEqual([]);
    });

    it('routes from typed coordinates and says why when a point cannot be read or reached', async () => {
      await page.click('#route-clear');
      await page.fill('#route-from', CASINO.join(','));
      await page.fill('#route-to', 'somewhere');
      await page.press('#route-to', 'Enter');
      expect(await page.locator('#route-result .error').textContent()).toBe(
        'Give both ends as lon,lat, or pick them on the map.',
      );
      await page.fill('#route-to', FONTVIEILLE.join(','));
      await page.press('#route-to', 'Enter');
      await expect.poll(() => page.locator('#route-summary').textContent()).toMatch(/^\d+ min \d+ s · /);
      await page.fill('#route-to', '2.35,48.85');
      await page.press('#route-to', 'Enter');
      await expect.poll(() => page.locator('#route-result .error').textContent()).toMatch(/^No route: .+/);
    });

    it('ranks the available units by arrival time at an incident clicked on the map, and shows what is reachable from it', async () => {
      await page.focus('#map canvas');
      await page.keyboard.press('d');
      expect(await page.getAttribute('button[data-mode="dispatch"]', 'aria-pressed')).toBe('true');
      await clickAt([7.4265, 43.7372]);
      const ranking = page.locator('#dispatch-ranking li');
      await expect.poll(() => ranking.count()).toBe(2);
      const rows = await ranking.allTextContents();
      // The same order as the platform's answer for that incident, fastest first, by unit name.
      const at = (await page.inputValue('#dispatch-at')).split(',').map(Number);
      const answer = await api.call('POST', '/api/routing/dispatch', await api.login('alice'), {
        incident: at,
      });
      const names: Record<string, string> = {
        'urn:ngsi-ld:Vehicle:p7': 'Patrol 7',
        'urn:ngsi-ld:Vehicle:p12': 'Patrol 12',
      };
      expect(rows).toEqual(
        answer.ranked.map((r: { id: string }) =>
          expect.stringMatching(new RegExp(`^\\d+ (min \\d+ )?s ${names[r.id]} · [\\d.]+ k?m$`)),
        ),
      );
      expect(minutes(rows[0]!.replace(/^(\d+) s/, '0 min $1 s'))).toBeLessThanOrEqual(
        minutes(rows[1]!.replace(/^(\d+) s/, '0 min $1 s')),
      );
      expect(await page.locator('#dispatch-result .small').textContent()).toBe('1 not available');
      const yellow = async () =>
        countColour(await page.locator('#map canvas').screenshot(), [0xff, 0xd3, 0x3d]);
      await expect.poll(yellow).toBeGreaterThan(100);
      await shot(page, '06-dispatch');

      await page.fill('#reach-minutes', '2');
      await page.click('#reach-show');
      await expect
        .poll(() => page.locator('#reach-result').textContent())
        .toMatch(/^Reachable within 2 min of [\d.]+,[\d.]+: [\d,]+ road junctions\.$/);
      const cyan = async () =>
        countColour(await page.locator('#map canvas').screenshot(), [0x2e, 0xe6, 0xd6]);
      await expect.poll(cyan).toBeGreaterThan(100);
      await page.fill('#reach-minutes', '500');
      await page.click('#reach-show');
      expect(await page.locator('#reach-result').textContent()).toBe(
        'Give the position as lon,lat (or click an incident) and 1–120 minutes.',
      );
    });

    it('lists the NGSI-LD alerts alice may see with their TLP, and draws alerts and crowds', async () => {
      const alerts = page.locator('#alert-list li.item');
      await expect.poll(() => alerts.count()).toBe(1);
      expect(await alerts.locator('.title').textContent()).toBe('Unattended bag at the casino square');
      expect(await alerts.locator('.badge.tlp').textContent()).toBe('TLP:GREEN');
      expect(await alerts.locator('.meta').textContent()).toMatch(
        /^security · suspiciousObject · \d+ (s|min) ago$/,
      );
      const canvas = page.locator('#map canvas');
      await expect
        .poll(async () => countColour(await canvas.screenshot(), [0xff, 0x7b, 0x00]))
        .toBeGreaterThan(50);
      expect(countColour(await canvas.screenshot(), [0xff, 0x5c, 0x5c])).toBeGreaterThan(50);
      await shot(page, '05-alerts');
    });

    it('shows an alert’s details when its title is clicked', async () => {
      await page.click('#alert-list .title');
      await expect
        .poll(() => page.locator('.maplibregl-popup h4').textContent())
        .toBe('Alert: Unattended bag at the casino square');
      expect(await page.locator('.maplibregl-popup dl').textContent()).toContain('severityhigh');
      expect(await page.locator('.maplibregl-popup .badge.tlp').textContent()).toBe('TLP:GREEN');
    });

    it('runs under its Content-Security-Policy without a single violation', () => {
      expect(cspViolations).toEqual([]);
    });
  },
);

function minutes(summary: string): number {
  const m = /^(\d+) min (\d+) s/.exec(summary);
  return m ? Number(m[1]) + Number(m[2]) / 60 : Number.NaN;
}
