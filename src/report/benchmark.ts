// The benchmark table from finished sweep folders (experiments/benchmark/README.md): per sweep, the
// test accuracy of its chosen setting over the final seeds, Δ against a baseline row with the
// standard error of the difference (and whether |Δ| exceeds twice it), agreement with the teacher,
// ECE, seconds per training epoch and the hyper-parameters chosen on the validation split.
// `kdistill compare <sweep-dir>…` prints it; experiments/benchmark/table.mjs writes the README's.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { SweepRecord } from '../run/sweep.js';
import { meanStd } from '../run/compare.js';
import { formatTable } from '../train/table.js';

export interface BenchmarkRun { seed: number; accuracy: number; agreement?: number; ece: number; secondsPerEpoch: number | null }

export interface BenchmarkRow {
  /** The sweep's experiment name. */
  name: string;
  /** The method of the final runs (their result.json), e.g. 'scratch'. */
  method: string;
  dir: string;
  runs: BenchmarkRun[];
  /** The swept parameters' chosen values. */
  chosen: Record<string, unknown>;
}

/**
 * A final seed's run folder: `best/seed<N>` in a sweep folder as `kdistill sweep` writes it, or
 * `seed<N>` beside sweep.json in a copy of its records (experiments/benchmark/results/<method>).
 */
function runDir(dir: string, seed: number): string | null {
  for (const d of [join(dir, 'best', `seed${seed}`), join(dir, `seed${seed}`)]) if (existsSync(join(d, 'result.json'))) return d;
  return null;
}

function readJson<T>(file: string): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new Error(`${file}: not readable as JSON (${(e as Error).message})`);
  }
}

/** Mean of the epochs' `seconds` in a run's log.jsonl (null without a log or epochs). */
function secondsPerEpoch(dir: string): number | null {
  const file = join(dir, 'log.jsonl');
  if (!existsSync(file)) return null;
  const secs = readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"type":"epoch"'))
    .map((l) => (JSON.parse(l) as { seconds?: number }).seconds).filter((s): s is number => typeof s === 'number');
  return secs.length ? meanStd(secs).mean : null;
}

/**
 * One sweep folder's row, or null when its final seeds have not finished (the sweep is still
 * running, or ran with --seeds none). A folder that is no sweep's, or a sweep.json without the
 * fields a sweep writes, fails naming the folder or file.
 */
export function readBenchmarkRow(dir: string): BenchmarkRow | null {
  const file = join(dir, 'sweep.json');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a folder (expected a sweep folder with sweep.json)`);
  if (!existsSync(file)) {
    // A sweep writes sweep.json once its trials are done; until then its folder holds only trials/.
    if (existsSync(join(dir, 'trials'))) return null;
    throw new Error(`${dir}: no sweep.json here (not a kdistill sweep folder)`);
  }
  const r = readJson<Partial<SweepRecord>>(file);
  if (typeof r.name !== 'string' || !Array.isArray(r.trials)) throw new Error(`${file}: not a sweep record (no 'name' or 'trials')`);
  if (!r.final || !r.best) return null;
  const runs: BenchmarkRun[] = [];
  let method = '';
  for (const x of r.final.runs) {
    if (typeof x.accuracy !== 'number' || typeof x.ece !== 'number') throw new Error(`${file}: final run of seed ${x.seed} has no test accuracy/ece`);
    const d = runDir(dir, x.seed);
    if (d && !method) method = readJson<{ method?: string }>(join(d, 'result.json')).method ?? '';
    runs.push({ seed: x.seed, accuracy: x.accuracy, ece: x.ece, ...(typeof x.agreement === 'number' ? { agreement: x.agreement } : {}), secondsPerEpoch: d ? secondsPerEpoch(d) : null });
  }
  if (runs.length === 0) return null;
  return { name: r.name, method, dir, runs, chosen: r.best.settings };
}

export interface BenchmarkTableOptions {
  /** The row Δ is taken against, by name (after `label`); default: the row whose method is scratch. */
  baseline?: string;
  /** The name shown for a row (e.g. without the experiments' common prefix). */
  label?: (name: string) => string;
  /** A mark after a row's s/epoch (e.g. '†' for timings measured under load), by shown name. */
  timingMark?: (name: string) => string;
}

const pct = (xs: number[]): string => {
  const { mean, std } = meanStd(xs);
  return `${(mean * 100).toFixed(2)} ± ${(std * 100).toFixed(2)}`;
};

/** Δ of a against b in points ± the standard error of the difference of their means; beyond = |Δ| > 2 SE. */
export function deltaOf(a: number[], b: number[]): { delta: number; se: number; beyond: boolean } {
  const ma = meanStd(a), mb = meanStd(b);
  const delta = ma.mean - mb.mean;
  const se = Math.sqrt(ma.std ** 2 / a.length + mb.std ** 2 / b.length);
  return { delta, se, beyond: Math.abs(delta) > 2 * se };
}

/** The markdown table of the rows, best test accuracy first. */
export function benchmarkTable(rows: BenchmarkRow[], o: BenchmarkTableOptions = {}): string {
  const label = o.label ?? ((n: string) => n);
  const named = rows.map((r) => ({ ...r, shown: label(r.name) }));
  let base = null as (typeof named)[number] | null;
  if (o.baseline !== undefined) {
    base = named.find((r) => r.shown === o.baseline) ?? null;
    if (!base) throw new Error(`baseline '${o.baseline}' is not among the rows (${named.map((r) => r.shown).join(', ')})`);
  } else {
    const scratch = named.filter((r) => r.method === 'scratch');
    base = scratch.length === 1 ? scratch[0]! : null;
  }
  const acc = (r: BenchmarkRow): number[] => r.runs.map((x) => x.accuracy);
  const sorted = [...named].sort((a, b) => meanStd(acc(b)).mean - meanStd(acc(a)).mean);
  const body = sorted.map((r) => {
    let delta = '–', beyond = '–';
    if (base && r !== base) {
      const d = deltaOf(acc(r), acc(base));
      delta = `${d.delta >= 0 ? '+' : ''}${(d.delta * 100).toFixed(2)} ± ${(d.se * 100).toFixed(2)}`;
      beyond = d.beyond ? 'yes' : 'no';
    }
    const agr = r.runs.every((x) => x.agreement !== undefined) ? pct(r.runs.map((x) => x.agreement!)) : '–';
    const secs = r.runs.map((x) => x.secondsPerEpoch);
    const time = secs.every((s): s is number => s !== null) ? meanStd(secs).mean.toFixed(1) + (o.timingMark?.(r.shown) ?? '') : '–';
    const chosen = Object.entries(r.chosen).map(([k, v]) => `${k.replace(/^method\.params\./, '').replace(/^optimizer\./, '')} ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ');
    return [r.shown, String(r.runs.length), pct(acc(r)), delta, beyond, agr, pct(r.runs.map((x) => x.ece)), time, chosen];
  });
  const vs = base ? base.shown : 'baseline';
  return formatTable(['method', 'seeds', 'test acc %', `Δ vs ${vs} (points)`, 'beyond seed noise?', 'agreement %', 'ECE %', 's/epoch', 'chosen on validation'], body);
}

/** Rows of the sweep folders whose final seeds finished, and the names of those that have not. */
export function readBenchmark(dirs: string[]): { rows: BenchmarkRow[]; unfinished: string[] } {
  const rows: BenchmarkRow[] = [], unfinished: string[] = [];
  for (const d of dirs) {
    const row = readBenchmarkRow(d);
    if (row) rows.push(row); else unfinished.push(d);
  }
  return { rows, unfinished };
}
