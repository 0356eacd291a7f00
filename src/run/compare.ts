// Runs several experiments over several seeds and tabulates their test metrics (accuracy, NLL,
// ECE, teacher agreement; or the multi-label ones), parameters and inference speed as mean ± std:
// the form of every result table in the README and experiments/.
// A run whose result.json exists for the same experiment text and seed is not redone.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadExperiment } from '../config/experiment.js';
import { runExperiment, type RunOptions } from './experiment.js';
import { formatTable } from '../train/table.js';
import { atomicWrite } from '../util/fs.js';

export interface CompareRow {
  name: string;
  method: string;
  params: number;
  /** Test metrics and batch-1 ms/sample of each seed's run, as its result.json holds them. */
  runs: ({ seed: number; msPerSample?: number } & Record<string, number>)[];
}

export function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

interface ResultFile { test: Record<string, number> | null; studentParameters: number; msPerSample?: number; method?: string; name?: string }

// Columns by what the results hold: single-label (accuracy…) or multi-label (micro F1…) runs.
// [key in result.json's test, header, scale, digits]
const SINGLE: [string, string, number, number][] = [['accuracy', 'test acc %', 100, 2], ['agreement', 'agreement %', 100, 2], ['nll', 'NLL', 1, 4], ['ece', 'ECE %', 100, 2]];
const MULTI: [string, string, number, number][] = [['microF1', 'micro F1', 1, 4], ['macroF1', 'macro F1', 1, 4], ['subsetAccuracy', 'subset acc %', 100, 2], ['mAP', 'mAP', 1, 4], ['threshold', 'threshold', 1, 2]];

/**
 * When the experiments that have a teacher all distil from one teacher checkpoint and the run that
 * trained it left its result.json beside it, that teacher heads the table (one run: its own seed).
 */
function teacherRow(files: string[]): CompareRow | null {
  const teachers = files.map((f) => loadExperiment(f).teachers).filter((ts) => ts.length > 0);
  const ckpts = new Set(teachers.map((ts) => (ts.length === 1 && 'checkpoint' in ts[0]! ? ts[0].checkpoint : '')));
  const [ckpt] = [...ckpts];
  if (ckpts.size !== 1 || !ckpt) return null;
  const resFile = join(dirname(ckpt), 'result.json');
  if (!existsSync(resFile)) return null;
  const res = JSON.parse(readFileSync(resFile, 'utf8')) as ResultFile & { seed: number };
  if (!res.test) return null;
  return { name: `teacher (${res.name ?? ckpt})`, method: res.method ?? '', params: res.studentParameters, runs: [{ seed: res.seed, ...res.test, ...(res.msPerSample !== undefined ? { msPerSample: res.msPerSample } : {}) }] };
}

/** `o.report` writes each run's report (see RunOptions). */
export async function compare(files: string[], seeds: number[], outRoot?: string, o: Pick<RunOptions, 'report'> = {}): Promise<{ rows: CompareRow[]; table: string }> {
  const rows: CompareRow[] = [];
  const teacher = teacherRow(files);
  if (teacher) rows.push(teacher);
  for (const file of files) {
    let row: CompareRow | null = null;
    for (const seed of seeds) {
      const base = loadExperiment(file);
      const output = resolve(outRoot ? join(outRoot, base.name, `seed${seed}`) : join(base.output, `seed${seed}`));
      const e = loadExperiment(file, { seed, output });
      const resFile = join(output, 'result.json');
      const stamp = join(output, 'experiment.yaml');
      if (existsSync(resFile) && existsSync(stamp) && readFileSync(stamp, 'utf8') === e.source) {
        process.stderr.write(`compare: ${e.name} seed ${seed} already done (${output})\n`);
      } else {
        process.stderr.write(`compare: running ${e.name} seed ${seed}\n`);
        await runExperiment(e, { ...o, mode: e.teachers.length ? 'distill' : 'train', resume: true });
      }
      const res = JSON.parse(readFileSync(resFile, 'utf8')) as ResultFile;
      row ??= { name: e.name, method: e.method.name, params: res.studentParameters, runs: [] };
      row.runs.push({ seed, ...(res.test ?? {}), ...(res.msPerSample !== undefined ? { msPerSample: res.msPerSample } : {}) });
    }
    rows.push(row!);
  }
  const fmt = (xs: number[], scale: number, digits: number): string => {
    const { mean, std } = meanStd(xs);
    return xs.length > 1 ? `${(mean * scale).toFixed(digits)} ± ${(std * scale).toFixed(digits)}` : (mean * scale).toFixed(digits);
  };
  const cols = rows.some((r) => r.runs.some((x) => x.microF1 !== undefined)) ? MULTI : SINGLE;
  const cell = (r: CompareRow, key: string, scale: number, digits: number): string =>
    (r.runs.every((x) => typeof x[key] === 'number') ? fmt(r.runs.map((x) => x[key]!), scale, digits) : '–');
  const table = formatTable(
    ['experiment', 'method', 'params', 'ms/sample', 'runs', ...cols.map(([, h]) => h)],
    rows.map((r) => [r.name, r.method, r.params.toLocaleString('en-US'), cell(r, 'msPerSample', 1, 3), String(r.runs.length), ...cols.map(([k, , sc, d]) => cell(r, k, sc, d))]),
  ) + `\nmean ± std over the runs (seeds ${seeds.join(', ')}); ms/sample: median at batch size 1, 1 process`;
  if (outRoot) atomicWrite(join(outRoot, 'results.md'), table + '\n');
  return { rows, table };
}
