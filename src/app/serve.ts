/** The CLI's long-running commands: serve the platform, import a road network. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadOrBuildRoadNetwork, ROAD_DATA_ATTRIBUTION } from '../modules/routing/index.ts';
import type { Config } from './config.ts';
import { createPlatform, VERSION } from './platform.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** `safecity serve`: start, print the first admin's password once, stop gracefully on SIGTERM/SIGINT. */
export async function servePlatform(config: Config): Promise<void> {
  if (!existsSync(join(ROOT, 'web/dist/index.html'))) {
    // `npm start` builds the web app first; `npx safecity serve` on a fresh clone builds it here (about a second).
    const { buildWebApp } = (await import(pathToFileURL(join(ROOT, 'web/build.ts')).href)) as {
      buildWebApp: () => Promise<unknown>;
    };
    await buildWebApp();
  }
  const platform = await createPlatform(config);
  const { log } = platform;
  if (platform.generatedAdminPassword) {
    // Printed once, on the console only, never into the structured log.
    process.stdout.write(
      `\n  First start: administrator "admin" created with password:  ${platform.generatedAdminPassword}\n  Change it after logging in (POST /api/auth/password). Set SAFECITY_ADMIN_PASSWORD to choose it.\n\n`,
    );
  }
  const address = await platform.listen();
  log.info(
    {
      address,
      store: platform.store.kind,
      bus: platform.bus.kind,
      dataDir: config.databaseUrl ? undefined : config.dataDir,
    },
    `SafeCity Hub ${VERSION} listening on ${address} (store: ${platform.store.kind}, bus: ${platform.bus.kind})`,
  );
  let signals = 0;
  const stop = (signal: string) => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'shutting down: finishing work in flight');
    const timer = setTimeout(() => {
      log.error({ graceMs: config.shutdownGraceMs }, 'shutdown grace period over: exiting');
      process.exit(1);
    }, config.shutdownGraceMs);
    timer.unref();
    platform
      .shutdown()
      .then(() => {
        log.info('stopped');
        process.exit(0);
      })
      .catch((e) => {
        log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** `safecity roads import`: import an extract into the data folder's routing cache, with progress. */
export async function importRoads(config: Config, source: string, out: (s: string) => void): Promise<void> {
  let last = -1;
  const t0 = performance.now();
  const result = await loadOrBuildRoadNetwork({
    source,
    dataDir: config.dataDir,
    rebuild: true,
    onProgress: (p) => {
      const pct = Math.floor(p.fraction * 100);
      if (pct >= last + 5 || p.fraction === 1) {
        last = pct;
        out(`[${String(pct).padStart(3)} %] ${p.phase}: ${p.message}`);
      }
    },
  });
  const stats = result.engine.stats();
  out(
    `imported ${source}: ${stats.nodes} nodes, ${stats.roadSegments} road segments in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  out(`cached at ${result.cachePath}; start the platform with SAFECITY_ROADS=${source}`);
  out(`Road data ${ROAD_DATA_ATTRIBUTION}`);
}
