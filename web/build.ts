/**
 * Builds the operators' web app into web/dist: one esbuild bundle of web/src/main.ts, the page, the styles and
 * MapLibre GL copied as it ships (ESM plus its worker, found beside it at run time), imported from vendor/.
 * Run: `node bin/run-ts.js web/build.ts [outDir]` (about a second).
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const webDir = dirname(fileURLToPath(import.meta.url));

export interface BuildResult {
  outDir: string;
  files: Record<string, number>;
  ms: number;
}

/** Builds the app into `outDir` (default web/dist) and returns the files written with their sizes. */
export async function buildWebApp(outDir = join(webDir, 'dist')): Promise<BuildResult> {
  const started = performance.now();
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'vendor'), { recursive: true });

  const require = createRequire(import.meta.url);
  const maplibreDir = dirname(require.resolve('maplibre-gl/package.json'));
  for (const f of ['maplibre-gl.mjs', 'maplibre-gl-worker.mjs', 'maplibre-gl.css']) {
    copyFileSync(join(maplibreDir, 'dist', f), join(outDir, 'vendor', f));
  }
  copyFileSync(join(maplibreDir, 'LICENSE.txt'), join(outDir, 'vendor', 'maplibre-gl-LICENSE.txt'));

  await esbuild.build({
    entryPoints: [join(webDir, 'src', 'main.ts')],
    outfile: join(outDir, 'app.js'),
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    // MapLibre is loaded as shipped (its worker is resolved relative to its own URL), from vendor/: the
    // import is rewritten here rather than by an inline import map, which the page's CSP would refuse.
    plugins: [
      {
        name: 'maplibre-vendor',
        setup(build) {
          build.onResolve({ filter: /^maplibre-gl$/ }, () => ({
            path: './vendor/maplibre-gl.mjs',
            external: true,
          }));
        },
      },
    ],
    logLevel: 'warning',
  });
  copyFileSync(join(webDir, 'src', 'styles.css'), join(outDir, 'styles.css'));
  const version = JSON.parse(readFileSync(join(webDir, '..', 'package.json'), 'utf8')).version as string;
  const html = readFileSync(join(webDir, 'src', 'index.html'), 'utf8').replaceAll('{{version}}', version);
  writeFileSync(join(outDir, 'index.html'), html);

  const files: Record<string, number> = {};
  for (const f of [
    'index.html',
    'app.js',
    'styles.css',
    'vendor/maplibre-gl.mjs',
    'vendor/maplibre-gl-worker.mjs',
  ]) {
    files[f] = statSync(join(outDir, f)).size;
  }
  return { outDir, files, ms: Math.round(performance.now() - started) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outArg = process.argv.slice(2).find((a) => !a.startsWith('--'));
  const result = await buildWebApp(outArg ? resolve(outArg) : undefined);
  const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(
    `web app built in ${result.ms} ms → ${result.outDir} (${Object.entries(result.files)
      .map(([f, n]) => `${f} ${kb(n)}`)
      .join(', ')})`,
  );
}
