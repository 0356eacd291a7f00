// `npm run bench`: runs the compiled benchmarks side by side with PyTorch.
//
// Convention: every dist/bench/<name>.js whose name does not start with '_' is a benchmark
// (helpers shared by benchmarks are named _*.ts). Each is a script run in its own process, in
// name order; arguments after the runner's own are passed through to every benchmark.
//
//   npm run bench                          all benchmarks
//   npm run bench -- --only engine         just bench/engine.ts (comma-separated names allowed)
//   npm run bench -- --list                names only
//   npm run bench -- --only engine --sweep (benchmark-specific flags pass through)
//   npm run bench -- --baseline stock      (PyTorch baselines: stock | tuned | both, the default)
//
// Two PyTorch baselines (issue 14): engine, kd-epoch, representation, sobolev, transformer and zoo run their PyTorch
// side twice, once with glibc's stock malloc and once glibc-tuned (MALLOC_ARENA_MAX=1
// MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=1073741824, which keeps PyTorch's tensor
// buffers from being mmapped and faulted in afresh every step), and print kdistill's ratio to
// each side by side (bench/_common.ts). cache, distributed, memory and memory-train still run
// the stock baseline only and ignore --baseline.
//
// The baseline is Debian's PyTorch at /usr/bin/python3 (the `python3` on PATH may be another
// interpreter without torch); without it the runner says how to install it and fails.
import { existsSync, readdirSync } from 'node:fs';
import { join, basename } from 'node:path';
import { spawnSync } from 'node:child_process';

const PYTHON = '/usr/bin/python3';
const dir = join('dist', 'bench');

const args = process.argv.slice(2);
let only = null;
let list = false;
const pass = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--only') only = (args[++i] ?? '').split(',').filter(Boolean);
  else if (a.startsWith('--only=')) only = a.slice(7).split(',').filter(Boolean);
  else if (a === '--list') list = true;
  else pass.push(a);
}
const bi = pass.findIndex((a) => a === '--baseline' || a.startsWith('--baseline='));
const baseline = bi < 0 ? 'both' : pass[bi].includes('=') ? pass[bi].slice(11) : pass[bi + 1];
if (!['stock', 'tuned', 'both'].includes(baseline ?? '')) {
  console.error(`bench: --baseline must be stock, tuned or both, got '${baseline ?? ''}'`);
  process.exit(1);
}

const all = existsSync(dir)
  ? readdirSync(dir).filter((f) => f.endsWith('.js') && !f.startsWith('_')).map((f) => basename(f, '.js')).sort()
  : [];
if (all.length === 0) {
  console.error(`bench: no benchmarks found in ${dir} (did \`tsc -p .\` run?)`);
  process.exit(1);
}
if (list) {
  for (const n of all) console.log(n);
  process.exit(0);
}
const chosen = only ? all.filter((n) => only.includes(n)) : all;
const unknown = only ? only.filter((n) => !all.includes(n)) : [];
if (unknown.length > 0) {
  console.error(`bench: unknown benchmark(s) ${unknown.join(', ')}; available: ${all.join(', ')}`);
  process.exit(1);
}

const probe = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  console.error(
    `bench: the PyTorch baseline is missing: \`${PYTHON} -c 'import torch'\` failed` +
      (probe.error ? ` (${probe.error.message})` : `:\n${(probe.stderr ?? '').trim().split('\n').slice(-1)[0] ?? ''}`) +
      `\nThe benchmarks compare kdistill with PyTorch in the same run. Install Debian's PyTorch:\n` +
      `  sudo apt-get install python3-torch\n` +
      `(it must be importable by ${PYTHON}; a pip-installed torch in another interpreter is not used).`,
  );
  process.exit(2);
}
console.log(`bench: PyTorch ${probe.stdout.trim()} at ${PYTHON}; node ${process.version}; benchmarks: ${chosen.join(', ')}; PyTorch baseline(s): ${baseline}`);

let failed = 0;
for (const name of chosen) {
  console.log(`\n=== ${name} ===`);
  const r = spawnSync(process.execPath, [join(dir, `${name}.js`), ...pass], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`bench: ${name} failed (exit ${r.status ?? r.signal})`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
