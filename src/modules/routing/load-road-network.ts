/**
 * Where road networks come from: an OSM PBF file (or a URL fetched into the data folder), built once
 * and cached in the data folder as a binary typed-array file keyed by the source's size, mtime, profile
 * and format version; later starts reload the cache.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { AppError } from '../../kernel/index.ts';
import { buildRoadNetwork } from './build-road-network.ts';
import { readNetworkFile, writeNetworkFile } from './network-file.ts';
import { importOsmPbfBuffer, type ProgressCallback, readOsmPbfFile } from './osm-import.ts';
import { type ProfileName, profileByName } from './profile.ts';
import { NETWORK_FORMAT_VERSION, type RoadNetwork } from './road-network.ts';
import { type EngineOptions, RoutingEngine } from './routing-engine.ts';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Folder of the shared road extracts: env SAFECITY_ROADS_DIR, default ../shared/data/roads from the repo root. */
export function roadsDir(): string {
  const env = process.env.SAFECITY_ROADS_DIR;
  return env ? resolve(REPO_ROOT, env) : resolve(REPO_ROOT, '../shared/data/roads');
}

/** A bare extract name ("porto") means <roadsDir>/porto.osm.pbf; anything else is a path or URL. */
export function resolveRoadSource(source: string): string {
  if (/^https?:\/\//i.test(source)) return source;
  if (/^[a-z0-9_-]+$/i.test(source)) return join(roadsDir(), `${source}.osm.pbf`);
  return isAbsolute(source) ? source : resolve(source);
}

export interface ImportOsmOptions {
  profile?: ProfileName;
  onProgress?: ProgressCallback;
}

function profileOf(name: string | undefined) {
  const p = profileByName(name ?? 'car');
  if (!p) throw new AppError('ROUTING_UNKNOWN_PROFILE', `Unknown profile ${name}`, { profile: name });
  return p;
}

/** Imports and builds (no cache) a network from an .osm.pbf file. */
export async function importOsmPbf(path: string, options: ImportOsmOptions = {}): Promise<RoadNetwork> {
  const profile = profileOf(options.profile);
  const data = readOsmPbfFile(path);
  await yieldToLoop();
  const raw = importOsmPbfBuffer(data, { profile, onProgress: options.onProgress });
  await yieldToLoop();
  return buildRoadNetwork(raw, {
    source: basename(path),
    profile: profile.name,
    onProgress: options.onProgress,
  });
}

export interface LoadOptions extends EngineOptions {
  /** path to an .osm.pbf, an extract name in the roads folder ("porto"), or an http(s) URL */
  source: string;
  /** folder for downloads and the cached graph (created if missing) */
  dataDir: string;
  profile?: ProfileName;
  onProgress?: ProgressCallback;
  /** ignore an existing cache and rebuild */
  rebuild?: boolean;
}

export interface LoadResult {
  engine: RoutingEngine;
  fromCache: boolean;
  cachePath: string;
  loadMs: number;
}

async function download(url: string, dataDir: string, onProgress?: ProgressCallback): Promise<string> {
  const name = basename(new URL(url).pathname).replace(/[^A-Za-z0-9._-]/g, '_') || 'download.osm.pbf';
  const dir = join(dataDir, 'downloads');
  const target = join(dir, `${createHash('sha256').update(url).digest('hex').slice(0, 10)}-${name}`);
  if (existsSync(target)) return target;
  onProgress?.({ phase: 'download', fraction: 0, message: `downloading ${url}` });
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new AppError('ROUTING_DOWNLOAD_FAILED', `Cannot fetch ${url}`, { url }, { cause: e });
  }
  if (!res.ok)
    throw new AppError('ROUTING_DOWNLOAD_FAILED', `Fetching ${url} answered ${res.status}`, { url });
  const bytes = new Uint8Array(await res.arrayBuffer());
  mkdirSync(dir, { recursive: true });
  writeFileSync(target, bytes);
  onProgress?.({ phase: 'download', fraction: 0, message: `downloaded ${bytes.byteLength} bytes` });
  return target;
}

/** Loads the cached network for the source, or imports, builds and caches it; returns a ready engine. */
export async function loadOrBuildRoadNetwork(options: LoadOptions): Promise<LoadResult> {
  const t0 = performance.now();
  const profile = profileOf(options.profile);
  let path = resolveRoadSource(options.source);
  if (/^https?:\/\//i.test(path)) path = await download(path, options.dataDir, options.onProgress);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (e) {
    throw new AppError('ROUTING_SOURCE_NOT_FOUND', `No road data at ${path}`, { path }, { cause: e });
  }
  const key = createHash('sha256')
    .update(`${resolve(path)}|${st.size}|${st.mtimeMs}|${profile.name}|${NETWORK_FORMAT_VERSION}`)
    .digest('hex')
    .slice(0, 12);
  const cachePath = join(
    options.dataDir,
    'routing',
    `${basename(path).replace(/\.osm\.pbf$/, '')}.${profile.name}.${key}.graph`,
  );
  const engineOptions: EngineOptions = {};
  if (options.maxSnapMeters !== undefined) engineOptions.maxSnapMeters = options.maxSnapMeters;
  if (options.clock !== undefined) engineOptions.clock = options.clock;
  if (!options.rebuild && existsSync(cachePath)) {
    try {
      options.onProgress?.({ phase: 'load', fraction: 0.5, message: `loading cached graph ${cachePath}` });
      const net = readNetworkFile(cachePath);
      const engine = new RoutingEngine(net, engineOptions);
      options.onProgress?.({ phase: 'load', fraction: 1, message: 'ready' });
      return { engine, fromCache: true, cachePath, loadMs: performance.now() - t0 };
    } catch {
      // an unreadable or outdated cache is rebuilt from the source below
    }
  }
  const net = await importOsmPbf(path, {
    profile: profile.name,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  options.onProgress?.({ phase: 'cache', fraction: 1, message: `writing ${cachePath}` });
  writeNetworkFile(cachePath, net);
  const engine = new RoutingEngine(net, engineOptions);
  return { engine, fromCache: false, cachePath, loadMs: performance.now() - t0 };
}
