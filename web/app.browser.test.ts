/**
 * The operators' web app in a real browser (Debian's Chromium through playwright-core) against the real
 * platform API (access, reports, authentication on embedded PGlite) and the built bundle served by the
 * platform's own HTTP server. Routing and NGSI-LD are stood in for by small fakes in this file until their
 * surfaces land; the fakes only serve the UI flows (see FakeCity below).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestPgliteStore } from '../src/adapters/storage/testing.ts';
import { buildServer } from '../src/api/http/server.ts';
import { platformApi } from '../src/api/platform/platform-api.ts';
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
import type { Store } from '../src/ports/store.ts';
import { buildWebApp } from './build.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SKIP = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`;
const ADMIN_PW = 'correct-horse-battery-staple';
const PW = 'a-long-enough-passphrase';
/** The fake road network's extent: central Porto. */
const BBOX: [number, number, number, number] = [-8.64, 41.135, -8.58, 41.165];

type Pos = [number, number];

/** Stand-in for the routing and NGSI-LD surfaces: straight-line routes that detour around closures. */
class FakeCity {
  routing = true;
  closures = new Map<string, { id: string; geometry: { type: string; coordinates: Pos[][] } }>();
  entities = [
    {
      type: 'Feature',
      id: 'urn:ngsi-ld:Alert:a1',
      geometry: { type: 'Point', coordinates: [-8.605, 41.158] },
      properties: {
        type: 'Alert',
        category: 'security',
        subCategory: 'suspiciousObject',
        severity: 'high',
        description: 'Unattended bag at São Bento station',
        dateIssued: new Date().toISOString(),
        marking: { tlp: 'AMBER', pap: 'GREEN' },
      },
    },
    {
      type: 'Feature',
      id: 'urn:ngsi-ld:CrowdFlowObserved:c1',
      geometry: { type: 'Point', coordinates: [-8.615, 41.146] },
      properties: { type: 'CrowdFlowObserved', peopleCount: 1800, occupancy: 0.92, congested: true },
    },
  ];

  plugin = async (app: FastifyInstance) => {
    const on = () => {
      if (!this.routing) throw new AppError('PLATFORM_ROUTE_NOT_FOUND', 'no route (routing off)');
    };
    app.get('/api/routing/network', async () => {
      on();
      return { name: 'test grid', bbox: BBOX, attribution: '© OpenStreetMap contributors, ODbL' };
    });
    app.get<{ Querystring: { from: string; to: string } }>('/api/routing/route', async (req) => {
      on();
      const from = req.query.from.split(',').map(Number) as Pos;
      const to = req.query.to.split(',').map(Number) as Pos;
      const coords: Pos[] = [from];
      for (const c of this.closures.values()) {
        const ring = c.geometry.coordinates[0]!;
        const center: Pos = [avg(ring.map((p) => p[0])), avg(ring.map((p) => p[1]))];
        const r = Math.max(...ring.map((p) => metres(p, center)));
        if (distanceToSegment(center, from, to) < r) {
          // Around the closure: a vertex beside it, twice its radius off the straight line.
          const dy = ((2.5 * r) / 111_320) * (from[0] < to[0] ? 1 : -1);
          coords.push([center[0], center[1] + dy]);
        }
      }
      coords.push(to);
      let d = 0;
      for (let i = 1; i < coords.length; i++) d += metres(coords[i - 1]!, coords[i]!);
      return {
        type: 'Feature',
        geometry: { type: 'LineString', coordinates: coords },
        properties: { duration_s: d / 10, distance_m: d, steps: [{ name: 'Rua de Teste', distance_m: d }] },
      };
    });
    app.get('/api/routing/closures', async () => {
      on();
      return { items: [...this.closures.values()] };
    });
    app.post<{ Body: { geometry: { type: string; coordinates: Pos[][] } } }>(
      '/api/routing/closures',
      async (req, reply) => {
        on();
        const id = `cl-${this.closures.size + 1}`;
        this.closures.set(id, { id, geometry: req.body.geometry });
        reply.status(201);
        return { id };
      },
    );
    app.delete<{ Params: { id: string } }>('/api/routing/closures/:id', async (req, reply) => {
      on();
      if (!this.closures.delete(req.params.id))
        throw new AppError('ROUTING_CLOSURE_NOT_FOUND', 'no such closure');
      reply.status(204);
    });
    app.get<{ Querystring: { type: string } }>('/ngsi-ld/v1/entities', async (req, reply) => {
      reply.type('application/geo+json');
      return {
        type: 'FeatureCollection',
        features: this.entities.filter((e) => e.properties.type === req.query.type),
      };
    });
  };
}

describe.skipIf(SKIP)(`web app in Chromium${SKIP ? ` (skipped: ${SKIP})` : ''}`, () => {
  let store: Store;
  let server: FastifyInstance;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let reports: ReportService;
  let access: AccessService;
  const city = new FakeCity();
  const temp = mkdtempSync(join(tmpdir(), 'safecity-web-'));
  const shots = process.env.WEB_SCREENSHOT_DIR;

  beforeAll(async () => {
    const built = await buildWebApp(join(temp, 'dist'));
    store = await openTestPgliteStore({ ...accessMigrations, ...auditMigrations });
    access = new AccessService({ store });
    reports = new ReportService(access);
    const authenticator = createAuthenticator({ service: access });
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
        { name: 'fake-city', plugin: city.plugin },
      ],
      webRoot: built.outDir,
    });
    base = await server.listen({ port: 0, host: '127.0.0.1' });
    const admin = await login('admin', ADMIN_PW);
    for (const [id, kind] of [
      ['police', 'police'],
      ['metro', 'transport'],
    ] as const) {
      await call('POST', '/api/orgs', admin, { id, name: id === 'police' ? 'City Police' : 'Metro', kind });
    }
    await call('POST', '/api/users', admin, {
      username: 'alice',
      orgId: 'police',
      roles: ['operator'],
      password: PW,
    });
    await call('POST', '/api/users', admin, {
      username: 'mia',
      orgId: 'metro',
      roles: ['operator'],
      password: PW,
    });

    const mia = await login('mia', PW);
    await call('POST', '/api/reports', mia, {
      title: 'Gate 3 camera offline',
      body: 'Camera feed lost at 02:10, technician dispatched.',
      category: 'infrastructure',
      location: { type: 'Point', coordinates: [-8.6, 41.15] },
      marking: { tlp: 'AMBER', pap: 'GREEN', audience: { orgs: ['police'], communities: [], users: [] } },
    });
    await call('POST', '/api/reports', mia, {
      title: 'Metro internal only',
      category: 'other',
      marking: { tlp: 'AMBER+STRICT', audience: { orgs: [], communities: [], users: [] } },
    });
    await call('POST', '/api/reports', mia, {
      title: '<img src=x onerror="document.title=\'pwned\'">',
      category: 'other',
      marking: { tlp: 'GREEN', audience: { orgs: [], communities: ['all'], users: [] } },
    });

    context = await chromium.launchPersistentContext(join(temp, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--use-gl=angle',
        '--use-angle=swiftshader',
        '--enable-unsafe-swiftshader',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    // Nothing may come from the internet: any request off the test server fails the page.
    await context.route(/^(?!http:\/\/127\.0\.0\.1)/, (route) => route.abort());
  });

  afterAll(async () => {
    await context?.close();
    await server?.close();
    await store?.close();
    rmSync(temp, { recursive: true, force: true });
  });

  async function call(method: string, url: string, auth: string | undefined, payload?: unknown) {
    const r = await server.inject({
      method: method as 'GET',
      url,
      ...(auth ? { headers: { authorization: auth } } : {}),
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });
    if (r.statusCode >= 300) throw new Error(`${method} ${url}: ${r.statusCode} ${r.body}`);
    return r.statusCode === 204 ? undefined : r.json();
  }
  async function login(username: string, password: string) {
    return `Bearer ${(await call('POST', '/api/auth/login', undefined, { username, password })).token}`;
  }
  async function shot(name: string) {
    if (shots) await page.screenshot({ path: join(shots, `${name}.png`) });
  }
  /** Clicks the map at a fraction of its width and height. */
  async function clickMap(fx: number, fy: number) {
    const box = (await page.locator('#map canvas').boundingBox())!;
    await page.mouse.click(box.x + box.width * fx, box.y + box.height * fy);
  }

  it('refuses a wrong password with the server’s reason and signs in with the keyboard', async () => {
    await page.goto(`${base}/?poll=500`);
    await expect.poll(() => page.locator('#login-view').isVisible()).toBe(true);
    await page.keyboard.type('alice');
    await page.keyboard.press('Tab');
    await page.keyboard.type('not-the-password');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#login-error').textContent()).toMatch(/^Sign-in failed: .+/);
    await shot('01-login-error');

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
    expect(titles).toContain('Gate 3 camera offline');
    expect(titles).not.toContain('Metro internal only');
    expect(titles).toContain('<img src=x onerror="document.title=\'pwned\'">');
    expect(await page.locator('#report-list img').count()).toBe(0);
    expect(await page.title()).not.toBe('pwned');

    const gate = items.filter({ hasText: 'Gate 3 camera offline' });
    const tlp = gate.locator('.badge.tlp');
    expect(await tlp.textContent()).toBe('TLP:AMBER');
    expect(await tlp.evaluate((el) => getComputedStyle(el).color)).toBe('rgb(255, 192, 0)');
    expect(await tlp.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(0, 0, 0)');
    expect(await gate.locator('.badge.pap').textContent()).toBe('PAP:GREEN');
    expect(await gate.locator('.meta').textContent()).toMatch(/^infrastructure · metro · /);
  });

  it('shows NGSI-LD alerts in the panel and the road data attribution on the map', async () => {
    const alert = page.locator('#alert-list li.item');
    await expect.poll(() => alert.count()).toBe(1);
    expect(await alert.locator('.title').textContent()).toBe('Unattended bag at São Bento station');
    expect(await alert.locator('.badge.tlp').textContent()).toBe('TLP:AMBER');
    expect(await page.locator('.maplibregl-ctrl-attrib').textContent()).toContain(
      '© OpenStreetMap contributors, ODbL',
    );
    await shot('02-cop');
  });

  it('creates a report where the operator clicks the map, and it shows on the map and in the list', async () => {
    await page.click('button[data-mode="report"]');
    expect(await page.getAttribute('button[data-mode="report"]', 'aria-pressed')).toBe('true');
    await clickMap(0.4, 0.3);
    await expect.poll(() => page.locator('#report-dialog').isVisible()).toBe(true);
    const loc = await page.inputValue('#report-location');
    const [lon, lat] = loc.split(',').map(Number) as Pos;
    expect(lon).toBeGreaterThan(BBOX[0]);
    expect(lon).toBeLessThan(BBOX[2]);
    expect(lat).toBeGreaterThan(BBOX[1]);
    expect(lat).toBeLessThan(BBOX[3]);
    await page.fill('#report-title', 'Drone over Avenida dos Aliados');
    await page.fill('#report-body', 'Small quadcopter hovering over the crowd.');
    await page.selectOption('#report-category', 'suspicious-activity');
    await page.selectOption('#report-tlp', 'GREEN');
    await page.selectOption('#report-pap', 'AMBER');
    await page.check('#report-communities input[value="all"]');
    await shot('03-report-dialog');
    await page.click('#report-form button[type=submit]');
    await expect.poll(() => page.locator('#report-dialog').isVisible()).toBe(false);
    await expect.poll(() => page.locator('#toast').textContent()).toContain('shared as TLP:GREEN');

    const listed = await call('GET', '/api/reports', await login('alice', PW));
    const mine = (listed.items as Report[]).find((r) => r.title === 'Drone over Avenida dos Aliados')!;
    expect(mine.location?.coordinates).toEqual([lon, lat]);
    expect(mine.marking.tlp).toBe('GREEN');
    expect(mine.marking.pap).toBe('AMBER');
    expect(mine.marking.audience.communities).toEqual(['all']);
    expect(mine.ownerOrg).toBe('police');
    const item = page.locator('#report-list li.item', { hasText: 'Drone over Avenida dos Aliados' });
    await expect.poll(() => item.locator('.badge.tlp').textContent()).toBe('TLP:GREEN');
  });

  it('hides and shows a layer: the report’s TLP:GREEN ring disappears from the map and comes back', async () => {
    const greenPixels = async () => {
      const png = await page.locator('#map canvas').screenshot();
      return countColour(png, [0x33, 0xff, 0x00]);
    };
    await expect.poll(greenPixels, { timeout: 10_000 }).toBeGreaterThan(20);
    await page.locator('#layer-reports').press('Space');
    expect(await page.isChecked('#layer-reports')).toBe(false);
    await expect.poll(greenPixels).toBe(0);
    await page.locator('#layer-reports').press('Space');
    await expect.poll(greenPixels).toBeGreaterThan(20);
  });

  it('refreshes live: a report shared by another organisation appears without a reload', async () => {
    const mia = await login('mia', PW);
    await call('POST', '/api/reports', mia, {
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

  it('routes between two map clicks, then a closure on the way makes the next route go around it', async () => {
    await page.click('button[data-mode="route"]');
    expect(await page.locator('#mode-hint').textContent()).toBe('Click the start of the route');
    await clickMap(0.25, 0.6);
    expect(await page.locator('#mode-hint').textContent()).toBe('Click the destination');
    await clickMap(0.75, 0.6);
    const summary = page.locator('#route-summary');
    await expect.poll(() => summary.textContent()).toMatch(/^\d+ min \d+ s · \d+\.\d km$/);
    const first = await summary.textContent();
    expect(await page.locator('.steps li').first().textContent()).toMatch(/^Rua de Teste — /);

    await page.fill('#closure-radius', '200');
    await page.click('button[data-mode="closure"]');
    await clickMap(0.5, 0.6);
    await expect.poll(() => page.locator('#closure-list li.item').count()).toBe(1);
    await expect.poll(() => summary.textContent()).toContain('(was ');
    const second = (await summary.textContent())!;
    expect(minutes(second)).toBeGreaterThan(minutes(first!));
    expect(city.closures.size).toBe(1);
    const closure = [...city.closures.values()][0]!;
    expect(closure.geometry.type).toBe('Polygon');
    expect(closure.geometry.coordinates[0]!.length).toBe(33);
    await shot('04-route-closure');

    await page.click('#closure-list button:has-text("Remove")');
    await expect.poll(() => city.closures.size).toBe(0);
    await expect
      .poll(async () => minutes((await summary.textContent()) ?? ''))
      .toBeCloseTo(minutes(first!), 1);
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

  it('says routing is not configured when the platform has no road network', async () => {
    city.routing = false;
    await page.reload();
    await page.waitForSelector('#app-view[data-ready]');
    expect(await page.locator('#network-info').textContent()).toBe(
      'Routing is not configured on this platform (no road network loaded).',
    );
    await page.click('button[data-mode="closure"]');
    await clickMap(0.5, 0.5);
    expect(await page.locator('#route-result').textContent()).toBe(
      'Routing is not configured on this platform.',
    );
    city.routing = true;
  });

  it('sends the operator back to sign-in when the session is no longer valid', async () => {
    await page.evaluate(() => sessionStorage.setItem('safecity.token', 'not-a-token'));
    await page.reload();
    await expect.poll(() => page.locator('#login-view').isVisible()).toBe(true);
    expect(await page.locator('#app-view').isVisible()).toBe(false);
  });
});

function minutes(summary: string): number {
  const m = /^(\d+) min (\d+) s/.exec(summary);
  return m ? Number(m[1]) + Number(m[2]) / 60 : Number.NaN;
}

function avg(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
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

/** Pixels of a PNG screenshot within a small distance of `rgb` (decoded with the browser-free zlib). */
function countColour(png: Buffer, rgb: [number, number, number]): number {
  const { width, height, pixels } = decodePng(png);
  let n = 0;
  for (let i = 0; i < width * height; i++) {
    const r = pixels[i * 4]!;
    const g = pixels[i * 4 + 1]!;
    const b = pixels[i * 4 + 2]!;
    if (Math.abs(r - rgb[0]) < 40 && Math.abs(g - rgb[1]) < 40 && Math.abs(b - rgb[2]) < 40) n++;
  }
  return n;
}

/** Decodes an 8-bit RGB/RGBA non-interlaced PNG (what Chromium's screenshots are) into RGBA pixels. */
function decodePng(png: Buffer): { width: number; height: number; pixels: Uint8Array } {
  let pos = 8;
  let width = 0;
  let height = 0;
  let colourType = 6;
  const idat: Buffer[] = [];
  while (pos < png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.toString('ascii', pos + 4, pos + 8);
    const data = png.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      colourType = data[9]!;
    } else if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
  }
  const bpp = colourType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const out = new Uint8Array(width * height * 4);
  const prev = new Uint8Array(stride);
  const cur = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x]!;
      const a = x >= bpp ? cur[x - bpp]! : 0;
      const b = prev[x]!;
      const c = x >= bpp ? prev[x - bpp]! : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      cur[x] = (v + pred) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      out.set(
        [cur[x * bpp]!, cur[x * bpp + 1]!, cur[x * bpp + 2]!, bpp === 4 ? cur[x * bpp + 3]! : 255],
        (y * width + x) * 4,
      );
    }
    prev.set(cur);
  }
  return { width, height, pixels: out };
}
