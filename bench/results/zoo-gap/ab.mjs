// A/B: several worker variants (env), alternating runs of one zoo row; prints wall/cpu/faults medians.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
const root = '/work/wt/zoo-gap';
const [rowName = 'wrn_16_1 1×28×28', repeats = '6', steps = '3', only = ''] = process.argv.slice(2);
const arch = rowName.split(' ')[0];
const input = rowName.includes('3×32') ? [3, 32, 32] : [1, 28, 28];
const row = { name: rowName, student: { arch }, teacher: null, input, batch: 128, loss: { kind: 'kd', T: 4, alpha: 0.9 }, optim: { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 }, warmup: 2, steps: Number(steps) };
const TUNED = { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '1073741824', MALLOC_TOP_PAD_: '1073741824' };
const base = { ...process.env, OPENBLAS_NUM_THREADS: '1' };
let variants = {
  kd: ['node', [`${root}/dist/bench/zoo.js`, '--worker'], base],
  kdSysTuned: ['node', [`${root}/dist/bench/zoo.js`, '--worker'], { ...base, KDISTILL_SYSTEM_ALLOCATOR: '1', ...TUNED }],
  kdColour: ['node', ['/tmp/zgalt/dist/bench/zoo.js', '--worker'], base],
  kdSysStock: ['node', [`${root}/dist/bench/zoo.js`, '--worker'], { ...base, KDISTILL_SYSTEM_ALLOCATOR: '1' }],
  pyStock: ['/usr/bin/python3', [`${root}/bench/python/zoo.py`], base],
  kdTidy: ['node', ['/tmp/zgtidy/dist/bench/zoo.js', '--worker'], base],
  pyTuned: ['/usr/bin/python3', [`${root}/bench/python/zoo.py`], { ...base, ...TUNED }],
};
if (only) variants = Object.fromEntries(Object.entries(variants).filter(([k]) => only.split(',').includes(k)));
function worker([cmd, args, env]) {
  const p = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const rl = createInterface({ input: p.stdout });
  const it = rl[Symbol.asyncIterator]();
  return { p, async next() { for (;;) { const { value } = await it.next(); if (value.startsWith('{')) return JSON.parse(value); } },
    async run(req) { p.stdin.write(JSON.stringify(req) + '\n'); return this.next(); } };
}
const ws = Object.fromEntries(Object.entries(variants).map(([k, v]) => [k, worker(v)]));
for (const w of Object.values(ws)) await w.next();
const res = Object.fromEntries(Object.keys(ws).map((k) => [k, []]));
const names = Object.keys(ws);
for (let r = 0; r < Number(repeats); r++) {
  const order = names.slice(r % names.length).concat(names.slice(0, r % names.length));
  for (const k of order) res[k].push(await ws[k].run({ row, threads: 1, warmup: r === 0 ? 2 : 0, steps: Number(steps) }));
}
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
for (const k of names) {
  const rs = res[k];
  console.log(`${k.padEnd(12)} wall ${med(rs.map((x) => x.msPerStep)).toFixed(1)} cpu ${med(rs.map((x) => x.cpuMsPerStep)).toFixed(1)} (min ${Math.min(...rs.map((x) => x.cpuMsPerStep)).toFixed(1)}) faults ${med(rs.map((x) => x.faultsPerStep)).toFixed(0)}  cpu runs ${rs.map((x) => x.cpuMsPerStep.toFixed(0)).join(' ')}`);
}
for (const w of Object.values(ws)) { w.p.stdin.write('{"quit":true}\n'); w.p.stdin.end(); }
