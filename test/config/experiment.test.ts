// Experiment files are validated whole before anything runs; mistakes name their path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadExperiment, parseExperiment } from '../../src/config/experiment.js';
import { makeSchedule } from '../../src/optim/schedules.js';

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
