#!/usr/bin/env node
import { dirname, join } from 'node:path';
// The `safecity` command. Runs the TypeScript sources through tsx, so `npx safecity` works right after `npm ci`.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const { runCli } = await import(pathToFileURL(join(root, 'src/app/cli.ts')).href);
await runCli(process.argv);
