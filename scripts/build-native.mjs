// `npm install` builds the addon: check for libtorch first so a missing library gives one
// clear message instead of a page of compiler errors, then run node-gyp.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findLibtorch } from './libtorch-paths.mjs';

try {
  console.log(`kdistill: building the native addon against ${findLibtorch().source}`);
} catch (e) {
  console.error(`\n${e.message}\n`);
  process.exit(1);
}
let gyp = process.env.npm_config_node_gyp;
if (!gyp) {
  try {
    gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    gyp = '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js';
  }
}
const args = [gyp, 'rebuild', `--jobs=${process.env.JOBS ?? '2'}`];
// Build against the running Node's own headers when they are installed (no header download:
// this works offline).
const prefix = process.env.npm_config_nodedir ?? dirname(dirname(process.execPath));
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
