/**
 * Test support for the web app's browser tests: Debian's Chromium through playwright-core, a server
 * handle that seeds organisations, people and reports through the real API, and a PNG pixel counter
 * for render checks (MapLibre's way: assert what is drawn, not which calls were made).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const NO_BROWSER = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`;
export const PW = 'a-long-enough-passphrase';

export type Pos = [number, number];

/**
 * A fresh Chromium profile in `dir`; every request off the test server is refused (no internet tiles).
 * `cspViolations` collects what the page's Content-Security-Policy refused (Chromium says so on the console).
 */
export async function launchBrowser(
  dir: string,
): Promise<{ context: BrowserContext; page: Page; cspViolations: string[] }> {
  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
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
      // WebGL without a GPU: MapLibre renders through SwiftShader.
      '--use-gl=angle',
      '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader',
    ],
  });
  await context.route(/^(?!http:\/\/127\.0\.0\.1)/, (route) => route.abort());
  const page = context.pages()[0] ?? (await context.newPage());
  const cspViolations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  return { context, page, cspViolations };
}

/** Calls the platform in-process, as a given bearer token; throws with the body on any error. */
export function apiOf(server: FastifyInstance) {
  const call = async (method: string, url: string, auth: string | undefined, payload?: unknown) => {
    const r = await server.inject({
      method: method as 'GET',
      url,
      headers: {
        ...(auth ? { authorization: auth } : {}),
        ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}),
    });
    if (r.statusCode >= 300) throw new Error(`${method} ${url}: ${r.statusCode} ${r.body}`);
    return r.statusCode === 204 || r.body === '' ? undefined : r.json();
  };
  const login = async (username: string, password = PW) =>
    `Bearer ${(await call('POST', '/api/auth/login', undefined, { username, password })).token}`;
  return { call, login };
}

/** Two organisations (police, metro) with an operator each (alice, mia), created by the first admin. */
export async function seedPeople(server: FastifyInstance, adminPassword: string): Promise<void> {
  const { call, login } = apiOf(server);
  const admin = await login('admin', adminPassword);
  await call('POST', '/api/orgs', admin, { id: 'police', name: 'City Police', kind: 'police' });
  await call('POST', '/api/orgs', admin, { id: 'metro', name: 'Metro', kind: 'transport' });
  for (const [username, orgId] of [
    ['alice', 'police'],
    ['mia', 'metro'],
  ]) {
    await call('POST', '/api/users', admin, { username, orgId, roles: ['operator'], password: PW });
  }
}

/** Clicks the map at a fraction of its width and height. */
export async function clickMap(page: Page, fx: number, fy: number): Promise<void> {
  const box = (await page.locator('#map canvas').boundingBox())!;
  await page.mouse.click(box.x + box.width * fx, box.y + box.height * fy);
}

export async function signIn(page: Page, base: string, username: string): Promise<void> {
  await page.goto(`${base}/?poll=500`);
  await page.waitForSelector('#login-view:not([hidden])');
  await page.fill('#login-username', username);
  await page.fill('#login-password', PW);
  await page.press('#login-password', 'Enter');
  await page.waitForSelector('#app-view[data-ready]');
}

/** Pixels of a PNG screenshot within a small distance of `rgb`. */
export function countColour(png: Buffer, rgb: [number, number, number]): number {
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
      const o = (y * width + x) * 4;
      out[o] = cur[x * bpp]!;
      out[o + 1] = cur[x * bpp + 1]!;
      out[o + 2] = cur[x * bpp + 2]!;
      out[o + 3] = bpp === 4 ? cur[x * bpp + 3]! : 255;
    }
    prev.set(cur);
  }
  return { width, height, pixels: out };
}
