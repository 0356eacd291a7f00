// `npm install` builds the addon: check for libtorch first so a missing library gives one
// clear message instead of a page of compiler errors, then run node-gyp.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findLibtorch } from './libtorch-paths.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(root, 'build', 'Release', 'kdistill.node');
// An addon newer than every native source is kept: `npx kdistill` in this folder runs the install
// script again, and a rebuild there cost minutes and, killed halfway, left no addon at all.
// `npm rebuild kdistill` (e.g. after a libtorch upgrade) or KDISTILL_REBUILD=1 builds anyway.
const sources = ['binding.gyp', ...readdirSync(join(root, 'native')).map((f) => join('native', f))];
if (existsSync(addon) && process.env.npm_command !== 'rebuild' && !process.env.KDISTILL_REBUILD &&
  sources.every((f) => statSync(join(root, f)).mtimeMs <= statSync(addon).mtimeMs)) {
  console.log(`kdistill: the native addon is up to date (${addon}); \`npm rebuild kdistill\` or KDISTILL_REBUILD=1 rebuilds it`);
  process.exit(0);
}

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
// Built in a staging folder and renamed into place, so a build that fails or is killed leaves the
// previous addon whole. Staging folders of builds that died (their pid is gone) are cleared.
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
for (const d of readdirSync(root)) {
  const m = /^\.build-staging-(\d+)$/.exec(d);
  if (m && !alive(Number(m[1]))) rmSync(join(root, d), { recursive: true, force: true });
}
const stage = join(root, `.build-staging-${process.pid}`);
let status = 1;
try {
  mkdirSync(join(stage, 'scripts'), { recursive: true });
  cpSync(join(root, 'binding.gyp'), join(stage, 'binding.gyp'));
  cpSync(join(root, 'native'), join(stage, 'native'), { recursive: true });
  cpSync(join(root, 'scripts', 'libtorch-paths.mjs'), join(stage, 'scripts', 'libtorch-paths.mjs'));
  status = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: stage }).status ?? 1;
  if (status === 0) {
    mkdirSync(dirname(addon), { recursive: true });
    renameSync(join(stage, 'build', 'Release', 'kdistill.node'), addon);
  }
} finally {
  rmSync(stage, { recursive: true, force: true });
}
process.exit(status);
