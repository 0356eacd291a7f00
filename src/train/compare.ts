// Runs several experiments over several seeds and tabulates test accuracy, NLL, ECE and teacher
// agreement as mean ± std: the form of every result table in the README and experiments/.
// A run whose result.json exists for the same experiment text and seed is not redone.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadExperiment } from '../config/experiment.js';
import { runExperiment } from './experiment.js';
import { formatTable } from './table.js';
import { atomicWrite } from '../util/fs.js';

export interface CompareRow {
  name: string;
  method: string;
  params: number;
  runs: { seed: number; accuracy: number; nll: number; ece: number; agreement?: number }[];
}

export function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

export async function compare(files: string[], seeds: number[], outRoot?: string): Promise<{ rows: CompareRow[]; table: string }> {
  const rows: CompareRow[] = [];
  for (const file of files) {
    let row: CompareRow | null = null;
    for (const seed of seeds) {
      const base = loadExperiment(file);
      const output = resolve(outRoot ? join(outRoot, base.name, `seed${seed}`) : join(base.output, `seed${seed}`));
      const e = loadExperiment(file, { seed, output });
      const resFile = join(output, 'result.json');
      const stamp = join(output, 'experiment.yaml');
      let res: { test: { accuracy: number; nll: number; ece: number; agreement?: number }; studentParameters: number } | null = null;
      if (existsSync(resFile) && existsSync(stamp) && readFileSync(stamp, 'utf8') === e.source) {
        res = JSON.parse(readFileSync(resFile, 'utf8'));
        process.stderr.write(`compare: ${e.name} seed ${seed} already done (${output})\n`);
      } else {
        process.stderr.write(`compare: running ${e.name} seed ${seed}\n`);
        await runExperiment(e, { mode: e.teachers.length ? 'distill' : 'train', resume: true });
        res = JSON.parse(readFileSync(resFile, 'utf8'));
      }
      row ??= { name: e.name, method: e.method.name, params: res!.studentParameters, runs: [] };
      row.runs.push({ seed, ...res!.test });
    }
    rows.push(row!);
  }
  const fmt = (xs: number[], scale = 100, digits = 2): string => {
    const { mean, std } = meanStd(xs);
    return `${(mean * scale).toFixed(digits)} ± ${(std * scale).toFixed(digits)}`;
  };
  const table = formatTable(
    ['experiment', 'method', 'params', `test acc % (n=${seeds.length})`, 'agreement %', 'NLL', 'ECE %'],
    rows.map((r) => [r.name, r.method, r.params.toLocaleString('en-US'), fmt(r.runs.map((x) => x.accuracy)),
      r.runs.every((x) => x.agreement !== undefined) ? fmt(r.runs.map((x) => x.agreement!)) : '–',
      fmt(r.runs.map((x) => x.nll), 1, 4), fmt(r.runs.map((x) => x.ece))]),
  );
  if (outRoot) atomicWrite(join(outRoot, 'results.md'), table + '\n');
  return { rows, table };
}
