// Reproducibility and resources: the same experiment and seed give a bit-identical log and model on
// one thread, and run.json records what is needed to repeat the run; a checkpoint write that fails
// for lack of disk space leaves the previous checkpoint loadable and says so; NaN/Inf in gradients
// and teacher outputs stop the run naming step, batch and term.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setNumThreads, manualSeed } from '../../src/tensor/torch.js';
import { native } from '../../src/tensor/native.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { DataLoader } from '../../src/data/loader.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams, type Method } from '../../src/methods/method.js';
import { runExperimentFile } from '../../src/run/index.js';
import { train, NonFiniteLossError, type TrainOptions } from '../../src/train/trainer.js';
import { makeOptimizer } from '../../src/optim/optimizer.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import type { Teacher } from '../../src/teachers/teacher.js';
import type { Module } from '../../src/nn/module.js';
import { ROOT, stripTiming, writeExperiment, writeTinyFashionMnist } from './helpers.js';

setNumThreads(1);
const base = mkdtempSync(join(tmpdir(), 'kd-repro-'));
const dataDir = writeTinyFashionMnist(join(base, 'data'), 256, 100);

test('the same experiment and seed twice: bit-identical log and model; run.json says how to repeat it', async () => {
  const outs: string[] = [];
  for (const name of ['one', 'two']) {
    const file = writeExperiment(join(base, name), dataDir, { epochs: 2, checkpointEvery: 3 });
    await runExperimentFile(file, { mode: 'train', resume: false });
    outs.push(join(base, name, 'out'));
  }
  const [a, b] = outs as [string, string];
  assert.equal(stripTiming(readFileSync(join(b, 'log.jsonl'), 'utf8')), stripTiming(readFileSync(join(a, 'log.jsonl'), 'utf8')));
  assert.ok(readFileSync(join(a, 'model.safetensors')).equals(readFileSync(join(b, 'model.safetensors'))), 'model files identical');
  const run = JSON.parse(readFileSync(join(a, 'run.json'), 'utf8')) as Record<string, any>;
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(run.seed, 5);
  assert.equal(run.threads, 1);
  assert.equal(run.versions.kdistill, pkg.version);
  assert.equal(run.versions.libtorch, native.torchVersion);
  assert.match(run.config, /^seed: 5$/m, 'the experiment file as written');
  const sources = [...run.data.sources, ...run.data.testSources] as { path: string; sha256: string; bytes: number }[];
  assert.equal(sources.length, 4, 'train and test images and labels');
  for (const s of sources) assert.match(s.sha256, /^[0-9a-f]{64}$/, `checksum of ${s.path}`);
  assert.ok(existsSync(join(a, 'experiment.yaml')));
});

// ---- trainer-level faults ----------------------------------------------------------------------

const small = (() => {
  const d = loadFashionMnist({ dir: dataDir });
  return d;
})();
const testSet = loadFashionMnist({ dir: dataDir, split: 'test' });

function options(student: Module, m: Method, extra: Partial<TrainOptions> = {}): TrainOptions {
  const loader = new DataLoader(small, { batchSize: 32, seed: 3, prefetch: 'sync' });
  return {
    student, teacher: null, method: m, numClasses: 10, epochs: 2, evalSet: testSet,
    train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 }, ...extra,
  };
}
const scratch = (): Method => { const s = getMethod('scratch'); return s.create(resolveParams(s, {})); };
const mlp = (): Module => createModel({ arch: 'mlp', hidden: [16], numClasses: 10, inputShape: [1, 28, 28] });

test('a checkpoint write that fails for lack of space keeps the previous checkpoint and says so', async () => {
  manualSeed(7);
  const dir = mkdtempSync(join(tmpdir(), 'kd-enospc-'));
  const realWrite = fs.writeSync;
  let full = false;
  // Disk full from the second epoch's end on: large writes (the checkpoint, not log lines) fail.
  const fake = function (this: unknown, fd: number, buf: NodeJS.ArrayBufferView, ...rest: unknown[]): number {
    if (full && buf.byteLength > 4096) {
      const e = new Error('ENOSPC: no space left on device, write') as NodeJS.ErrnoException;
      e.code = 'ENOSPC';
      throw e;
    }
    return (realWrite as (...a: unknown[]) => number).call(this, fd, buf, ...rest);
  };
  (fs as { writeSync: unknown }).writeSync = fake;
  syncBuiltinESMExports();
  try {
    await assert.rejects(train(options(mlp(), scratch(), { outDir: dir, onEpoch: (r) => { if (r.epoch === 1) full = true; } })), (e: Error) =>
      /no space left on device/.test(e.message) && /previous checkpoint there is untouched and still usable/.test(e.message) && e.message.includes(join(dir, 'checkpoint.safetensors')));
  } finally {
    (fs as { writeSync: unknown }).writeSync = realWrite;
    syncBuiltinESMExports();
  }
  assert.ok(!readdirSync(dir).some((f) => f.endsWith('.tmp')), 'no temp file left behind');
  const m = mlp();
  const state = loadCheckpoint(join(dir, 'checkpoint.safetensors'), [m], makeOptimizer({ name: 'sgd', lr: 0.05, momentum: 0.9 }, m.parameters()));
  assert.deepEqual([state.epoch, state.batch], [1, 0], 'the end-of-epoch-1 checkpoint is intact');
  // once space is back the run resumes and finishes
  const r = await train(options(mlp(), scratch(), { outDir: dir, resume: true }));
  assert.equal(r.epochs.length, 2);
});

test('a non-finite gradient stops the run naming step, batch and term; skip skips it', async () => {
  manualSeed(8);
  const student = mlp();
  // finite loss, infinite gradient: d/dx sqrt(x) at 0
  const bad: Method = { losses: (ctx) => ({ ce: ctx.studentLogits.mean().mul(0), root: ctx.studentLogits.mul(0).sum().sqrt() }) };
  const dir = mkdtempSync(join(tmpdir(), 'kd-nan-'));
  const before = student.parameters().map((p) => p.data<Float32Array>().slice());
  await assert.rejects(train(options(student, bad, { epochs: 1, outDir: dir })), (e: Error) =>
    e instanceof NonFiniteLossError && /non-finite gradient from term root\b/.test(e.message) && /step 0, batch 0/.test(e.message));
  student.parameters().forEach((p, i) => assert.deepEqual(p.data<Float32Array>(), before[i], 'weights untouched'));
  const r = await train(options(student, bad, { epochs: 1, onNonFinite: 'skip', outDir: dir }));
  assert.equal(r.steps, 8);
  const skips = readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"skip"'));
  assert.equal(skips.length, 8);
  assert.match(skips[0]!, /non-finite gradient from term root/);
});

test('a non-finite teacher output stops the run naming step, batch and the teacher', async () => {
  manualSeed(9);
  let calls = 0;
  const teacher: Teacher = {
    description: 'flaky teacher', checksum: 'x', numClasses: 10, numParameters: 0,
    // the third batch comes back with an Inf
    logits: (x) => { const z = x.flatten(1).narrow(1, 0, 10); return ++calls === 3 ? z.add(Infinity) : z.mul(1); },
  };
  const s = getMethod('kd');
  const kd = s.create(resolveParams(s, {}));
  await assert.rejects(train(options(mlp(), kd, { teacher, epochs: 1, evalSet: undefined })), (e: Error) =>
    e instanceof NonFiniteLossError && /non-finite teacher output \(flaky teacher\) at epoch 1, step 2, batch 2/.test(e.message));
});
