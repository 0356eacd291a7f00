// Hinton, Vinyals & Dean (2015), §3 on MNIST, next to the paper's numbers: `kdistill demo --paper
// hinton` trains a short version from the committed teacher and prints the table;
// `kdistill demo --paper hinton --from runs/hinton-mnist` tabulates finished runs of the
// experiment files in experiments/hinton-mnist (reproduce.sh there trains them over 3 seeds).
import { parseArgs } from 'node:util';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../tensor/native.js';
import { parseExperiment } from '../config/experiment.js';
import { runExperiment } from '../api.js';
import { loadMnist } from '../data/fashion-mnist.js';
import { predict } from '../train/evaluate.js';
import { argmaxAll } from '../train/metrics.js';
import { checkpointTeacher } from '../teachers/sources.js';
import { formatTable } from '../train/table.js';
import { meanStd } from '../run/compare.js';

export const HINTON_TEACHER = join(packageRoot, 'assets', 'hinton-mnist-teacher.safetensors');

/** What result.json holds that the table reads. */
interface HintonResult {
  seed: number;
  test: { accuracy: number } | null;
  biasAdjustment?: { offset: number; classes: number[]; classErrorsBefore: number; classErrorsAfter: number; classSamples: number; testBefore: { accuracy: number } };
}

/** The runs of each row: the teacher, and the students of experiments/hinton-mnist over seeds. */
export interface HintonRuns {
  teacherErrors: number | null;
  scratch: HintonResult[];
  distilled: HintonResult[];
  /** The same student distilled at the temperature chosen on validation (experiments/hinton-mnist/kd-t2.yaml); optional. */
  distilledTunedT?: HintonResult[];
  omit3: HintonResult[];
  only78: HintonResult[];
}

const TEST_SIZE = 10000;
const errors = (r: HintonResult, before = false): number =>
  Math.round((1 - (before ? r.biasAdjustment!.testBefore.accuracy : r.test!.accuracy)) * TEST_SIZE);

function cell(xs: number[], fmt: (v: number) => string, fmtStd = fmt): string {
  if (xs.length === 0) return 'not run';
  const { mean, std } = meanStd(xs);
  return xs.length > 1 ? `${fmt(mean)} ± ${fmtStd(std)}` : fmt(mean);
}
/** Error counts: whole means as integers, others with one decimal; the spread always with one (± 0.0, not ± 0). */
const counts = (xs: number[]): string => cell(xs, (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)), (v) => v.toFixed(1));
const pctErr = (v: number): string => `${(v / 100).toFixed(1)} %`;

/** The paper's table with kdistill's numbers beside it (test errors of 10,000; mean ± std over the runs given). */
export function hintonTable(r: HintonRuns): string {
  const withBias = (rs: HintonResult[]): HintonResult[] => rs.filter((x) => x.biasAdjustment);
  const o3 = withBias(r.omit3), o78 = withBias(r.only78);
  const seeds = (rs: HintonResult[]): string => (rs.length ? rs.map((x) => x.seed).join(',') : '–');
  const offsets = (rs: HintonResult[]): string => (rs.length ? ` (offset ${cell(rs.map((x) => x.biasAdjustment!.offset), (v) => v.toFixed(2))})` : '');
  const rows: string[][] = [
    ['teacher 1200-1200, dropout, max-norm, ±2 px jitter', '67', r.teacherErrors === null ? 'not run' : String(r.teacherErrors), '0'],
    ['student 800-800 from labels', '146', counts(r.scratch.map((x) => errors(x))), seeds(r.scratch)],
    ['student 800-800 distilled, T = 20', '74', counts(r.distilled.map((x) => errors(x))), seeds(r.distilled)],
    ...(r.distilledTunedT?.length ? [['… at T = 2, chosen on validation (not in the paper)', '–', counts(r.distilledTunedT.map((x) => errors(x))), seeds(r.distilledTunedT)]] : []),
    ['distilled without any 3 in the transfer set', '206 (133 of 1,010 threes)',
      o3.length ? `${counts(o3.map((x) => errors(x, true)))} (${counts(o3.map((x) => x.biasAdjustment!.classErrorsBefore))} of 1,010 threes)` : 'not run', seeds(o3)],
    ['… with the bias of class 3 raised', '109 (14 of 1,010 threes), +3.5',
      o3.length ? `${counts(o3.map((x) => errors(x)))} (${counts(o3.map((x) => x.biasAdjustment!.classErrorsAfter))} of 1,010 threes)${offsets(o3)}` : 'not run', seeds(o3)],
    ['distilled on 7s and 8s only', '47.3 % error', o78.length ? cell(o78.map((x) => errors(x, true)), pctErr) : 'not run', seeds(o78)],
    ['… with the biases of 7 and 8 lowered', '13.2 % error, −7.6', o78.length ? `${cell(o78.map((x) => errors(x)), pctErr)}${offsets(o78)}` : 'not run', seeds(o78)],
  ];
  return formatTable(['MNIST test set (10,000 images)', 'paper: test errors', 'kdistill: test errors', 'seeds'], rows) +
    '\nkdistill: mean ± std over the seeds; bias offsets fitted on a 5,000-image validation split (the paper chose them on the test set).';
}

/** Reads <dir>/<name>/seed<k>/result.json for the rows' experiment names, and the teacher's run. */
export function readHintonRuns(dir: string): HintonRuns {
  const read = (name: string): HintonResult[] => {
    const d = join(dir, name);
    if (!existsSync(d)) return [];
    return readdirSync(d).filter((s) => /^seed\d+$/.test(s) && existsSync(join(d, s, 'result.json')))
      .map((s) => JSON.parse(readFileSync(join(d, s, 'result.json'), 'utf8')) as HintonResult)
      .filter((x) => x.test)
      .sort((a, b) => a.seed - b.seed);
  };
  const t = join(dir, 'teacher', 'result.json');
  const teacher = existsSync(t) ? JSON.parse(readFileSync(t, 'utf8')) as HintonResult : null;
  return { teacherErrors: teacher?.test ? errors(teacher) : null, scratch: read('scratch'), distilled: read('kd-t20'), distilledTunedT: read('kd-t2'), omit3: read('omit3'), only78: read('only78') };
}

/** The teacher's test errors, counted by kdistill on the MNIST test set (the check that it scores what its run said). */
function teacherErrors(): number {
  const test = loadMnist({ split: 'test' });
  const t = checkpointTeacher(HINTON_TEACHER);
  const pred = argmaxAll(predict((x) => t.logits(x), test));
  let e = 0;
  for (let i = 0; i < test.size; i++) if (pred[i] !== test.y![i]) e++;
  return e;
}

/**
 * The short version: the four student rows from the committed teacher, one seed, a few epochs
 * (the full runs use 40), so it shows the shape of the result in minutes, not its final numbers.
 */
export async function runHintonDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      from: { type: 'string' }, epochs: { type: 'string', default: '3' }, seed: { type: 'string', default: '1' },
      output: { type: 'string', default: 'runs/demo-hinton' }, paper: { type: 'string' },
    },
  });
  if (values.from) {
    if (!existsSync(values.from)) throw new Error(`--from ${values.from}: no such folder (run experiments/hinton-mnist/reproduce.sh first)`);
    const runs = readHintonRuns(values.from);
    // The teacher row is counted here, on the committed asset, not copied from its run's record.
    if (existsSync(HINTON_TEACHER)) runs.teacherErrors = teacherErrors();
    process.stdout.write(hintonTable(runs) + '\n');
    return 0;
  }
  const epochs = Number(values.epochs), seed = Number(values.seed);
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`--epochs must be a positive integer, got '${values.epochs}'`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got '${values.seed}'`);
  if (!existsSync(HINTON_TEACHER)) throw new Error(`the Hinton teacher ${HINTON_TEACHER} is missing; train it with: kdistill train experiments/hinton-mnist/teacher.yaml`);
  const out = values.output!;
  process.stderr.write(`kdistill demo --paper hinton: Hinton, Vinyals & Dean (2015) §3 on MNIST, teacher ${HINTON_TEACHER}\n` +
    `  students 800-800 trained ${epochs} epochs (the full experiments: 40, 3 seeds; see experiments/hinton-mnist/README.md)\n`);
  // The settings of experiments/hinton-mnist/*.yaml (learning rates as chosen there on validation), shortened.
  const common = {
    seed, epochs, threads: 1, student: { arch: 'mlp', hidden: [800, 800] },
    data: { dataset: 'mnist', batchSize: 128, heldOut: 5000 },
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true }, schedule: { name: 'cosine' },
  };
  const kd = { teacher: { checkpoint: HINTON_TEACHER }, method: { name: 'kd', params: { temperature: 20, alpha: 1.0 } } };
  const run = async (name: string, extra: Record<string, unknown>): Promise<HintonResult> => {
    const e = parseExperiment({ ...common, ...extra, name: `hinton-${name}`, output: join(out, name, `seed${seed}`) }, 'demo');
    await runExperiment(e, { mode: e.teachers.length ? 'distill' : 'train', resume: false });
    return JSON.parse(readFileSync(join(out, name, `seed${seed}`, 'result.json'), 'utf8')) as HintonResult;
  };
  const runs: HintonRuns = {
    teacherErrors: teacherErrors(),
    scratch: [await run('scratch', { method: { name: 'scratch' }, optimizer: { ...common.optimizer, lr: 0.1 } })],
    distilled: [await run('kd-t20', kd)],
    omit3: [await run('omit3', { ...kd, data: { ...common.data, excludeClasses: [3] }, biasAdjust: { classes: [3], offset: 'fit' } })],
    only78: [await run('only78', { ...kd, data: { ...common.data, onlyClasses: [7, 8] }, biasAdjust: { classes: [7, 8], offset: 'fit' } })],
  };
  process.stdout.write('\n' + hintonTable(runs) + `\n(short runs: ${epochs} epochs, seed ${seed}; runs in ${out}/)\n`);
  return 0;
}
