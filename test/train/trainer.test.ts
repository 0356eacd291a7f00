// The trainer end to end on small real data: a resumed run equals an uninterrupted one, KD
// trains a student that learns, loss terms are logged by name, NaN stops with a clear error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setNumThreads, manualSeed } from '../../src/tensor/torch.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { take } from '../../src/data/splits.js';
import { DataLoader } from '../../src/data/loader.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams, type Method } from '../../src/methods/method.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';
import { train, NonFiniteLossError, type TrainOptions } from '../../src/train/trainer.js';
import type { Dataset } from '../../src/data/dataset.js';
import type { Module } from '../../src/nn/module.js';

setNumThreads(1);
const trainSet = take(loadFashionMnist({ split: 'train' }), 1024, 7, { stratified: true });
const testSet = take(loadFashionMnist({ split: 'test' }), 500, 7, { stratified: true });

function method(name: string, params = {}): Method {
  const s = getMethod(name);
  return s.create(resolveParams(s, params));
}

function options(data: Dataset, student: Module, m: Method, extra: Partial<TrainOptions> = {}): TrainOptions {
  const loader = new DataLoader(data, { batchSize: 64, seed: 3, prefetch: 'sync' });
  return {
    student, teacher: null, method: m, numClasses: 10, epochs: 2, evalSet: testSet,
    train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 }, schedule: { name: 'cosine' }, ...extra,
  };
}

function weights(m: Module): Float32Array[] {
  return m.parameters().map((p) => p.data<Float32Array>());
}

test('an interrupted and resumed run ends with the same weights and log as an uninterrupted one', async () => {
  const spec = { arch: 'mlp', hidden: [32], numClasses: 10, inputShape: [1, 28, 28], dropout: 0.2 };
  manualSeed(11);
  const a = createModel(spec);
  const dirA = mkdtempSync(join(tmpdir(), 'kd-a-'));
  await train(options(trainSet, a, method('scratch'), { outDir: dirA }));

  manualSeed(11);
  const b = createModel(spec);
  const dirB = mkdtempSync(join(tmpdir(), 'kd-b-'));
  const first = await train(options(trainSet, b, method('scratch'), { outDir: dirB, stopAfterSteps: 7, checkpointEvery: 5 }));
  assert.equal(first.interrupted, true);
  // a fresh process would rebuild the model from scratch with another seed: simulate that
  manualSeed(999);
  const c = createModel(spec);
  const second = await train(options(trainSet, c, method('scratch'), { outDir: dirB, resume: true }));
  assert.equal(second.interrupted, false);
  const wa = weights(a), wc = weights(c);
  for (let i = 0; i < wa.length; i++) assert.deepEqual(wc[i], wa[i], `parameter ${i} differs after resume`);
  assert.equal(readFileSync(join(dirB, 'log.jsonl'), 'utf8').replace(/"seconds":[0-9.e-]+/g, ''),
    readFileSync(join(dirA, 'log.jsonl'), 'utf8').replace(/"seconds":[0-9.e-]+/g, ''));
  assert.ok(existsSync(join(dirB, 'checkpoint.safetensors')));
});

test('a run interrupted exactly at the end of an epoch resumes with the same epoch record (lr included)', async () => {
  // 1,024 samples in batches of 64: step 16 is the last of epoch 1, before its record is written.
  const spec = { arch: 'mlp', hidden: [16], numClasses: 10, inputShape: [1, 28, 28] };
  manualSeed(5);
  const dirA = mkdtempSync(join(tmpdir(), 'kd-a-'));
  await train(options(trainSet, createModel(spec), method('scratch'), { outDir: dirA }));
  manualSeed(5);
  const dirB = mkdtempSync(join(tmpdir(), 'kd-b-'));
  assert.equal((await train(options(trainSet, createModel(spec), method('scratch'), { outDir: dirB, stopAfterSteps: 16 }))).interrupted, true);
  await train(options(trainSet, createModel(spec), method('scratch'), { outDir: dirB, resume: true }));
  const epochs = (d: string) => readFileSync(join(d, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; lr: number }).filter((r) => r.type === 'epoch');
  assert.ok(epochs(dirB)[0]!.lr > 0, 'the epoch record carries its last step\'s lr, not 0');
  assert.equal(epochs(dirB)[0]!.lr, epochs(dirA)[0]!.lr);
});

test('KD trains a student that learns and agrees with its teacher; every loss term is logged', async () => {
  manualSeed(1);
  const teacherNet = createModel({ arch: 'mlp', hidden: [128], numClasses: 10, inputShape: [1, 28, 28] });
  await train(options(trainSet, teacherNet, method('scratch'), { epochs: 3 }));
  const teacher = new ModuleTeacher(teacherNet, 10, 'test teacher', 'test');
  const student = createModel({ arch: 'mlp', hidden: [16], numClasses: 10, inputShape: [1, 28, 28] });
  const dir = mkdtempSync(join(tmpdir(), 'kd-e2e-'));
  const r = await train(options(trainSet, student, method('kd', { temperature: 4, alpha: 0.9 }), { teacher, outDir: dir, epochs: 6, optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 } }));
  assert.ok(r.final, 'evaluated');
  assert.ok(r.final.accuracy > 0.6, `student accuracy ${r.final.accuracy}`);
  assert.ok((r.final.agreement ?? 0) > 0.6, `agreement ${r.final.agreement}`);
  const steps = readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const s = steps.find((x) => x.type === 'step')!;
  for (const k of ['ce', 'kd', 'loss', 'lr']) assert.equal(typeof s[k], 'number', `step record lacks ${k}`);
  assert.equal(steps.filter((x) => x.type === 'epoch').length, 6);
  assert.ok(teacherNet.parameters().every((p) => !p.requiresGrad), 'the teacher is frozen');
});

test('a non-finite loss stops the run naming the step and the term', async () => {
  const student = createModel({ arch: 'mlp', hidden: [8], numClasses: 10, inputShape: [1, 28, 28] });
  const bad: Method = { losses: (ctx) => ({ ce: ctx.studentLogits.mean().mul(Number.NaN) }) };
  await assert.rejects(train(options(trainSet, student, bad, { epochs: 1 })), (e: Error) =>
    e instanceof NonFiniteLossError && /step 0/.test(e.message) && /\bce\b/.test(e.message));
  // with onNonFinite: 'skip' the run completes and records the skips
  const r = await train(options(trainSet, student, bad, { epochs: 1, onNonFinite: 'skip' }));
  assert.equal(r.steps, 16);
});
