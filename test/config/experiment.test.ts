// Experiment files are validated whole before anything runs; mistakes name their path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadExperiment, parseExperiment } from '../../src/config/experiment.js';
import { makeSchedule } from '../../src/optim/schedules.js';
import { checkResumable, runSettings } from '../../src/train/resume.js';

const ok = { epochs: 2, student: { arch: 'mlp', hidden: [8] }, optimizer: { name: 'sgd', lr: 0.1 } };

function err(raw: unknown): string {
  try {
    parseExperiment(raw, 'exp.yaml');
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail('expected a validation error');
}

test('a valid experiment fills defaults', () => {
  const e = parseExperiment(ok, 'exp.yaml');
  assert.equal(e.data.dataset, 'fashion-mnist');
  assert.equal(e.data.batchSize, 128);
  assert.equal(e.method.name, 'scratch');
  assert.equal(e.seed, 0);
});

test('mistakes are reported with their path and what is allowed', () => {
  assert.match(err({ ...ok, epoch: 3 }), /exp\.yaml: 'epoch' is not a known key \(did you mean 'epochs'\?\)/);
  assert.match(err({ ...ok, data: { batchSize: 0 } }), /'data\.batchSize' must be >= 1/);
  assert.match(err({ ...ok, data: { transfer: 'heldout' } }), /'data\.transfer' must be one of train, held-out, unlabeled/);
  assert.match(err({ ...ok, optimizer: { name: 'sgd' } }), /'optimizer\.lr' is required/);
  assert.match(err({ ...ok, optimizer: { name: 'adam', lr: 0.1, momentum: 0.9 } }), /'optimizer\.momentum' applies to sgd only/);
  assert.match(err({ ...ok, schedule: { name: 'cosin' } }), /unknown schedule name 'cosin'/);
  assert.match(err({ ...ok, teacher: { checkpoint: 'a', torchscript: 'b' } }), /'teacher' needs exactly one of/);
  assert.match(err({ ...ok, epochs: 1.5 }), /'epochs' must be an integer/);
  assert.match(err({ ...ok, data: { augment: { flip: 'yes' } } }), /'data\.augment\.flip' must be true or false/);
});

test('distributed: the gradient exchange overlaps backward unless told otherwise; bad values name their key', () => {
  assert.deepEqual(parseExperiment(ok, 'exp.yaml').distributed, { overlap: true, bucketMb: 25, firstBucketMb: 1 });
  assert.deepEqual(parseExperiment({ ...ok, distributed: { overlap: false, bucketMb: 4 } }, 'exp.yaml').distributed, { overlap: false, bucketMb: 4, firstBucketMb: 1 });
  assert.match(err({ ...ok, distributed: { overlap: 'no' } }), /'distributed\.overlap' must be true or false/);
  assert.match(err({ ...ok, distributed: { bucketMB: 4 } }), /'distributed\.bucketMB' is not a known key \(did you mean 'bucketMb'\?\)/);
  assert.match(err({ ...ok, distributed: { bucketMb: 0 } }), /'distributed\.bucketMb' must be >= 0\.001/);
});

test('a run recorded before the distributed: settings existed still resumes; they may change on resume', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-cfg-'));
  const e = parseExperiment({ ...ok, output: dir }, join(dir, 'exp.yaml'));
  const now = { data: { sizes: {}, sources: [], testSources: [] }, teacher: null };
  const { distributed: _, ...before } = runSettings(e);
  writeFileSync(join(dir, 'checkpoint.safetensors'), '');
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ ...now, settings: before }));
  checkResumable(e, now);
  checkResumable({ ...e, distributed: { ...e.distributed, overlap: false } }, now);
  // What a step computes may not change.
  assert.throws(() => checkResumable({ ...e, seed: 3 }, now), /seed: 0 → 3/);
});

test('YAML syntax errors give the line; duplicate keys are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-cfg-'));
  const f = join(dir, 'bad.yaml');
  writeFileSync(f, 'epochs: 2\nstudent: {arch: mlp\n');
  assert.throws(() => loadExperiment(f), (e: Error) => e.message.startsWith(f) && /line \d+/.test(e.message));
  writeFileSync(f, 'epochs: 2\nepochs: 3\nstudent: {arch: mlp}\n');
  assert.throws(() => loadExperiment(f), /not valid YAML/);
  assert.throws(() => loadExperiment(join(dir, 'missing.yaml')), /experiment file not found/);
});

test('schedules: warm-up, cosine, steps and one-cycle', () => {
  const cos = makeSchedule({ name: 'cosine', warmupEpochs: 1 }, 10);
  assert.equal(cos(0), 0);
  assert.ok(Math.abs(cos(0.5) - 0.5 * (0.5 * (1 + Math.cos(Math.PI * 0.05)))) < 1e-12);
  assert.ok(Math.abs(cos(5) - 0.5) < 1e-12);
  const ms = makeSchedule({ name: 'multistep', milestones: [3, 6], gamma: 0.1 }, 10);
  assert.equal(ms(2.9), 1);
  assert.ok(Math.abs(ms(3) - 0.1) < 1e-15);
  assert.ok(Math.abs(ms(7) - 0.01) < 1e-15);
  const oc = makeSchedule({ name: 'onecycle', pctStart: 0.3 }, 10);
  assert.ok(Math.abs(oc(0) - 1 / 25) < 1e-12);
  assert.ok(Math.abs(oc(3) - 1) < 1e-12);
  assert.ok(oc(10) < 1e-5);
});

test('csv: a negative labelColumn, bad classNames and a bad teacher normalize are refused by validation (issue 14)', () => {
  const csv = { dataset: 'csv', path: 'train.csv' };
  // Before: -1 was taken to count from the end without a word.
  assert.match(err({ ...ok, data: { ...csv, labelColumn: -1 } }), /'data\.labelColumn' must be a column name or a 0-based index \(0 is the first column; the default is the last\), got -1/);
  assert.equal(parseExperiment({ ...ok, data: { ...csv, labelColumn: 0 } }, 'exp.yaml').data.labelColumn, 0);
  const named = parseExperiment({ ...ok, data: { ...csv, classNames: [2, 'ten', 0] } }, 'exp.yaml');
  assert.deepEqual(named.data.classNames, ['2', 'ten', '0'], 'numbers in YAML are labels as written');
  assert.match(err({ ...ok, data: { ...csv, classNames: ['a'] } }), /'data\.classNames' must be a list of at least 2 class labels/);
  assert.match(err({ ...ok, data: { ...csv, classNames: ['a', 'b', 'a'] } }), /'data\.classNames' lists 'a' twice/);
  assert.match(err({ ...ok, data: { classNames: ['a', 'b'] } }), /'data\.classNames' applies to csv data only/);
  assert.match(err({ ...ok, data: { ...csv, classNames: ['a', 'b'], numClasses: 3 } }), /'data\.numClasses' is 3 but data\.classNames lists 2 classes/);
  const t = parseExperiment({ ...ok, teacher: { onnx: 't.onnx', normalize: { mean: [0.5], std: [0.25] } } }, 'exp.yaml');
  assert.deepEqual(t.teachers[0]!.normalize, { mean: [0.5], std: [0.25] });
  assert.match(err({ ...ok, teacher: { checkpoint: 't.safetensors', normalize: { mean: [0.5], std: [0] } } }), /'teacher\.normalize\.std' must be > 0/);
  assert.match(err({ ...ok, teachers: [{ checkpoint: 'a' }, { checkpoint: 'b', normalize: { mean: [1, 2] } }] }), /'teachers\.1\.normalize'/);
});
