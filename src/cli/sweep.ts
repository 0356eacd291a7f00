// `kdistill sweep <experiment.yaml>`: hyper-parameter search (src/run/sweep.ts, docs/sweep.md).
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseSearchFlag, SWEEP_METRICS, validationSize, type SweepMetric, type SweepParam, type SweepSpec } from '../config/sweep.js';
import { sweep } from '../api.js';
import { writeSweepReport } from '../report/sweep.js';
import { benchmarkTable, readBenchmark } from '../report/benchmark.js';

export async function sweepCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      grid: { type: 'string', multiple: true },
      range: { type: 'string', multiple: true },
      'log-range': { type: 'string', multiple: true },
      'int-range': { type: 'string', multiple: true },
      trials: { type: 'string' },
      'random-seed': { type: 'string' },
      val: { type: 'string' },
      metric: { type: 'string' },
      'early-stop': { type: 'string' },
      jobs: { type: 'string' },
      threads: { type: 'string' },
      seeds: { type: 'string', default: '1,2,3' },
      out: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new Error("expects one experiment file, e.g. kdistill sweep kd.yaml --grid 'method.params.temperature=[1,2,4,8]'");
  const int = (flag: string, v: string | undefined, least: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < least) throw new Error(`--${flag} must be an integer ≥ ${least}, got '${v}'`);
    return n;
  };
  const params: SweepParam[] = [];
  for (const flag of ['grid', 'range', 'log-range', 'int-range'] as const) for (const a of values[flag] ?? []) params.push(parseSearchFlag(flag, a));
  const cli: Partial<SweepSpec> = { params };
  const trials = int('trials', values.trials, 1);
  if (trials !== undefined) cli.trials = trials;
  const seed = int('random-seed', values['random-seed'], 0);
  if (seed !== undefined) cli.seed = seed;
  if (values.val !== undefined) cli.validation = validationSize(Number(values.val), (m) => { throw new Error(`--val ${m.replace(/got .*/, `got '${values.val}'`)}`); });
  if (values.metric !== undefined) {
    if (!(SWEEP_METRICS as readonly string[]).includes(values.metric)) throw new Error(`--metric must be one of ${SWEEP_METRICS.join(', ')}, got '${values.metric}'`);
    cli.metric = values.metric as SweepMetric;
  }
  if (values['early-stop'] !== undefined) {
    if (values['early-stop'] !== 'median' && values['early-stop'] !== 'off') throw new Error(`--early-stop must be 'median' or 'off', got '${values['early-stop']}'`);
    cli.earlyStop = values['early-stop'];
  }
  const threads = int('threads', values.threads, 1) ?? 1;
  const jobs = int('jobs', values.jobs, 1) ?? Math.max(1, Math.floor(availableParallelism() / threads));
  const seeds = values.seeds === 'none' ? [] : values.seeds!.split(',').map((s) => Number(s.trim()));
  if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`--seeds must be a comma-separated list of integers (or 'none'), got '${values.seeds}'`);
  const r = await sweep(positionals[0]!, { cli, seeds, jobs, threads, ...(values.out ? { out: resolve(values.out) } : {}) });
  const html = writeSweepReport(r.dir);
  process.stdout.write(`${r.table}\n\nsweep: ${r.dir} (sweep.json, sweep.md, ${html})\n`);
  return 0;
}

/** True when every argument is a folder: `kdistill compare` then tabulates finished sweeps. */
export function areFolders(args: string[]): boolean {
  return args.length > 0 && args.every((a) => existsSync(a) && statSync(a).isDirectory());
}

/**
 * `kdistill compare <sweep-dir>… [--baseline NAME]`: the benchmark table of finished sweeps (their
 * chosen settings on the final seeds), nothing trained; sweeps whose final seeds have not finished
 * are named below the table.
 */
export function compareSweepsCommand(dirs: string[], baseline?: string): number {
  const { rows, unfinished } = readBenchmark(dirs.map((p) => resolve(p)));
  if (rows.length === 0) throw new Error(`none of the sweep folders has finished its final seeds yet: ${unfinished.join(', ')}`);
  const table = benchmarkTable(rows, baseline !== undefined ? { baseline } : {});
  const missing = unfinished.length ? `\nnot finished (no final seeds yet): ${unfinished.join(', ')}` : '';
  process.stdout.write(`${table}\ntest metrics: mean ± std over each sweep's final seeds; Δ ± the standard error of the difference; beyond seed noise: |Δ| > 2 SE${missing}\n`);
  return 0;
}
