// The benchmark table (README.md here) from the finished sweeps, through the library's
// src/report/benchmark.ts (as `kdistill compare runs/benchmark/*-sweep` prints it): test accuracy
// over the final seeds, Δ against scratch with the standard error of the difference, agreement,
// ECE, s/epoch and the hyper-parameters chosen on validation. Reads runs/benchmark/<method>-sweep,
// or with --results the committed copies in results/<method>. A row's s/epoch is marked † when
// logs/load.txt (written by run.sh) shows a 1-minute load average above the machine's 2 cores at
// the start or end of its method. Run: node experiments/benchmark/table.mjs [--results]
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { benchmarkTable, readBenchmark } from '../../dist/src/report/benchmark.js';

const here = new URL('.', import.meta.url).pathname;
const fromResults = process.argv.includes('--results');
const root = fromResults ? join(here, 'results') : join(here, '../../runs/benchmark');
const dirs = readdirSync(root).filter((d) => fromResults || d.endsWith('-sweep')).map((d) => join(root, d));
const { rows, unfinished } = readBenchmark(dirs);

const CORES = 2;
const underLoad = new Set();
const loadFile = join(here, 'logs', 'load.txt');
if (existsSync(loadFile)) {
  for (const line of readFileSync(loadFile, 'utf8').split('\n')) {
    const m = /^(\S+) (?:start|end) .*load average: ([\d.]+)/.exec(line);
    if (m && Number(m[2]) > CORES) underLoad.add(m[1]);
  }
}
// Second sweeps of a method already in the table (more budget than the others had): marked ‡.
const SECOND = new Set(['mlkd-lowweight', 'dkd-warmup1', 'crd-16k']);
const label = (name) => { const n = name.replace(/^bench-/, ''); return SECOND.has(n) ? `${n} ‡` : n; };
console.log(benchmarkTable(rows, { label, timingMark: (n) => (underLoad.has(n.replace(/ ‡$/, '')) ? ' †' : '') }));
if (unfinished.length) console.log(`\nnot finished: ${unfinished.map((d) => d.split('/').pop()).join(', ')}`);
