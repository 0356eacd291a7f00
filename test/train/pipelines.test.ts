// Input pipelines (issue 14): the student is scored through the data.normalize it trained on,
// everywhere (per-epoch eval, result.json, the report, kdistill eval, export's config.json); a
// teacher gets its own inputs (teacher.normalize, else what its run recorded, else raw), is
// measured on transfer samples before training (run.json's teacherCheck, a warning near chance),
// and must have the data's class order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setNumThreads } from '../../src/tensor/torch.js';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment } from '../../src/api.js'; // writes report.json as the CLI does
import { loadModel, saveModel } from '../../src/nn/safetensors.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { readCsv } from '../../src/data/csv.js';
import { predict } from '../../src/train/evaluate.js';
import { evalCommand } from '../../src/cli/eval.js';
import { exportStudent } from '../../src/export/index.js';
import type { Dataset } from '../../src/data/dataset.js';
import type { Module } from '../../src/nn/module.js';
import { printedBy } from '../cli/stdout.js';

setNumThreads(1);
const root = mkdtempSync(join(tmpdir(), 'kd-pipelines-'));
const trainCsv = join(root, 'train.csv'), testCsv = join(root, 'test.csv');
// Features with offsets of tens and a class signal of 4 (raw); normalised, each is around 0 with
// spread ~1: a model fed the other kind of input than it trained on is far off.
const OFFSET = [0, 6, -4, 2];
const NORM = { mean: OFFSET.map((o) => o + 1.83), std: [1.9, 1.9, 1.9, 1.9] };
const OTHER_NORM = { mean: [0, 0, 0, 0], std: [10, 10, 10, 10] };

/** n rows of 4 features: offset + uniform noise, plus 4 on the class's feature; 3 classes labelled a, b, c. */
function writeCsv(file: string, n: number, seed: number): void {
  let s = seed;
  const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const lines = ['f0,f1,f2,f3,label'];
  for (let i = 0; i < n; i++) {
    const k = i % 3;
    lines.push([0, 1, 2, 3].map((j) => (OFFSET[j]! + rnd() + (j === k ? 4 : 0)).toFixed(4)).join(',') + `,${'abc'[k]}`);
  }
  writeFileSync(file, lines.join('\n') + '\n');
}

const base = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name, seed: 1, epochs: 3, output: join(root, name),
  data: { dataset: 'csv', path: trainCsv, testPath: testCsv, batchSize: 32, ...(extra.data as object ?? {}) },
  student: { arch: 'mlp', hidden: [16] }, optimizer: { name: 'adam', lr: 0.02 }, teacherCache: { dir: join(root, 'cache') },
  ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'data')),
});
const run = async (raw: Record<string, unknown>, mode: 'train' | 'distill'): Promise<string> => {
  await runExperiment(parseExperiment(raw, join(root, `${raw.name as string}.yaml`)), { mode, resume: false });
  return raw.output as string;
};
const json = (f: string): any => JSON.parse(readFileSync(f, 'utf8')); // eslint-disable-line @typescript-eslint/no-explicit-any

/** Accuracy of a model on the test file's rows, normalised by hand as given (raw without). */
function accuracyOn(m: Module, norm: { mean: number[]; std: number[] } | null): number {
  const ds = readCsv(testCsv);
  const x = Float32Array.from(ds.x, (v, i) => (norm ? (v - norm.mean[i % 4]!) / norm.std[i % 4]! : v));
  const p = m.inEvalMode(() => predict((t) => m.call(t), { ...ds, x } as Dataset));
  let ok = 0;
  for (let i = 0; i < p.n; i++) {
    let best = 0;
    for (let j = 1; j < p.c; j++) if (p.logProbs[i * p.c + j]! > p.logProbs[i * p.c + best]!) best = j;
    if (best === ds.y![i]) ok++;
  }
  return ok / p.n;
}

/** Runs fn with stderr captured. */
async function stderrOf(fn: () => Promise<unknown>): Promise<string> {
  let out = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => { out += chunk; return true; }) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = write;
  }
  return out;
}

let rawTeacher: string, normTeacher: string;
before(async () => {
  process.env.KDISTILL_QUIET = '1';
  writeCsv(trainCsv, 300, 1);
  writeCsv(testCsv, 150, 2);
  rawTeacher = join(await run(base('teacher-raw', { epochs: 15, method: { name: 'scratch' } }), 'train'), 'model.safetensors');
  normTeacher = join(await run(base('teacher-norm', { method: { name: 'scratch' }, data: { normalize: NORM } }), 'train'), 'model.safetensors');
});
after(() => rmSync(root, { recursive: true, force: true }));

test('a student trained with data.normalize is scored on normalised test inputs: result.json, the report, kdistill eval and export agree', async () => {
  const dir = join(root, 'teacher-norm');
  const res = json(join(dir, 'result.json'));
  const { model } = loadModel(join(dir, 'model.safetensors'));
  const byHand = accuracyOn(model, NORM);
  assert.ok(byHand > 0.9, `the model learned the task (${byHand})`);
  // Before the fix the test set went in raw: a different (here: far lower) accuracy.
  // Exactly equal: the same normalisation arithmetic and the same evaluation batches as the run's.
  assert.equal(res.test.accuracy, byHand, 'result.json: the saved model on normalised inputs');
  assert.notEqual(accuracyOn(model, null), byHand, 'raw inputs would give another number');
  const report = json(join(dir, 'report.json'));
  assert.equal(report.models.find((m: { role: string }) => m.role === 'student').accuracy, byHand, 'the report');
  const { value: code, printed } = await printedBy(() => evalCommand([dir]));
  assert.equal(code, 0);
  assert.ok(printed.includes(`${(byHand * 100).toFixed(2)}%`), `kdistill eval prints ${(byHand * 100).toFixed(2)}%: ${printed}`);
  const ex = await exportStudent(dir, { formats: ['safetensors'], verify: false });
  assert.deepEqual(ex.config.normalization, NORM, "config.json: the normalisation the student's inputs need");
  assert.equal(ex.config.inputRange, null, 'CSV features have no fixed range (not [0, 1])');
  assert.deepEqual(ex.config.classes, ['a', 'b', 'c']);
});

test("a teacher gets its own inputs: raw for a raw-trained teacher, its run's normalize for a kdistill one; teacherCheck in run.json; the cache keys on it", async () => {
  const teacherOwn = accuracyOn(loadModel(rawTeacher).model, null);
  assert.ok(teacherOwn > 0.9, `raw teacher: ${teacherOwn}`);
  // The student normalises; the raw-trained teacher must still see raw inputs (before: it saw
  // normalised ones in training, raw ones in its evaluation, and the student learned noise).
  const err = await stderrOf(() => run(base('kd-raw-teacher', { teacher: { checkpoint: rawTeacher }, data: { normalize: NORM } }), 'distill'));
  assert.doesNotMatch(err, /warning/);
  const dir = join(root, 'kd-raw-teacher');
  const check = json(join(dir, 'run.json')).teacherCheck;
  assert.ok(check.accuracy > 0.9 && !check.nearChance, `teacher on its transfer samples: ${JSON.stringify(check)}`);
  assert.equal(check.samples, 300);
  const teacherRow = json(join(dir, 'report.json')).models.find((m: { role: string }) => m.role === 'teacher');
  // The teacher gets x·std + mean of the normalised inputs: x to within an ulp or so, so only a
  // test example that close to a decision boundary could flip (none here, as a rule): one is allowed.
  assert.ok(Math.abs(teacherRow.accuracy - teacherOwn) <= 1 / 150, `the report's teacher row (${teacherRow.accuracy}): the teacher on raw test inputs (${teacherOwn})`);
  assert.match(teacherRow.source, /its inputs: raw inputs/);
  const res = json(join(dir, 'result.json'));
  assert.ok(res.test.accuracy > 0.8, `the student learned from the teacher: ${res.test.accuracy}`);
  assert.equal(res.test.accuracy, accuracyOn(loadModel(join(dir, 'model.safetensors')).model, NORM));

  // A kdistill teacher trained with NORM gets NORM, whatever the student's normalisation.
  const err2 = await stderrOf(() => run(base('kd-norm-teacher', { teacher: { checkpoint: normTeacher }, data: { normalize: OTHER_NORM } }), 'distill'));
  assert.doesNotMatch(err2, /warning/);
  assert.ok(json(join(root, 'kd-norm-teacher', 'run.json')).teacherCheck.accuracy > 0.9);
  // Given explicitly, the same normalisation is the same pipeline: the same cache file.
  const files = (): string[] => readdirSync(join(root, 'cache')).sort();
  const before2 = files();
  await run(base('kd-norm-teacher-explicit', { teacher: { checkpoint: normTeacher, normalize: NORM }, data: { normalize: OTHER_NORM } }), 'distill');
  assert.deepEqual(files(), before2, 'teacher.normalize equal to the recorded one: same cache');
  // Another teacher pipeline is another cache file, and a teacher at chance is warned about loudly
  // (this one makes feature 0 look high on every sample: class a for all).
  const SKEWED = { mean: NORM.mean.map((m, j) => (j === 0 ? m - 10 : m)), std: NORM.std };
  const err3 = await stderrOf(() => run(base('kd-wrong-pipeline', { teacher: { checkpoint: normTeacher, normalize: SKEWED }, data: { normalize: OTHER_NORM } }), 'distill'));
  assert.equal(files().length, before2.length + 1, 'keyed by the teacher pipeline');
  const warning = /the teacher \(checkpoint .*\) is at chance: \d+\.\d+% of 300 transfer samples right \(always guessing the commonest class: 33\.33%.*teacher\.normalize/s;
  assert.match(err3, new RegExp(`^warning: .*kd-wrong-pipeline\\.yaml: ${warning.source}`, 's'));
  assert.match(json(join(root, 'kd-wrong-pipeline', 'result.json')).warnings[0], warning, 'result.json keeps it');
  const bad = json(join(root, 'kd-wrong-pipeline', 'run.json')).teacherCheck;
  assert.equal(bad.nearChance, true);
  assert.ok(Math.abs(bad.threshold - (1 / 3 + 4 * Math.sqrt((1 / 3) * (2 / 3) / 300))) < 1e-12);
});

test("a teacher's recorded class order must be the data's: a mismatch stops the run before training", async () => {
  // The teacher run recorded classes a, b, c; this data lists them in another order.
  await assert.rejects(run(base('kd-permuted', { teacher: { checkpoint: rawTeacher }, data: { classNames: ['b', 'a', 'c'] } }), 'distill'),
    /kd-permuted\.yaml: 'teacher': the teacher was trained with classes \[a, b, c\], the data has \[b, a, c\] \(class 0 is 'a' for the teacher, 'b' in the data\).*data\.classNames/);
  // Integer labels written as floats: a teacher of the old text order ('10.0' before '2.0')
  // against ids by value.
  const many = join(root, 'many.csv');
  writeFileSync(many, Array.from({ length: 48 }, (_, i) => `${i % 12},${(i * 5) % 7},${i % 12}.0`).join('\n') + '\n');
  const old = join(root, 'old-teacher.safetensors');
  const textOrder = Array.from({ length: 12 }, (_, i) => `${i}.0`).sort();
  saveModel(old, createModel({ arch: 'mlp', hidden: [4], numClasses: 12, inputShape: [2] }), { classNames: JSON.stringify(textOrder) });
  await assert.rejects(run(base('kd-text-order', { teacher: { checkpoint: old }, data: { path: many, testPath: many } }), 'distill'),
    /the teacher was trained with classes \[0\.0, 1\.0, 10\.0, 11\.0, 2\.0, .*class 2 is '10\.0' for the teacher, '2' in the data/);
  // data.classNames in the teacher's order makes them agree.
  await run(base('kd-text-order-ok', { epochs: 1, teacher: { checkpoint: old }, data: { path: many, testPath: many, classNames: textOrder } }), 'distill');
  const y = readCsv(many, { classNames: textOrder }).y!;
  assert.equal(y[10], textOrder.indexOf('10.0'));
});
