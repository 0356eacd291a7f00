// Learning together: deep mutual learning (two identical students stay identical; fresh peers
// learn), one-way online KD (the jointly trained teacher learns; only its own CE reaches it) and
// adversarial KD (each GAN term reaches only its side; the discriminator is never exported).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed, setNumThreads } from '../../src/tensor/torch.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { take } from '../../src/data/splits.js';
import { DataLoader } from '../../src/data/loader.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { loadModel, saveModel } from '../../src/nn/safetensors.js';
import type { Module } from '../../src/nn/module.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams, type Method, type Params } from '../../src/methods/method.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';
import { train, type TrainOptions } from '../../src/train/trainer.js';
import type { Dataset } from '../../src/data/dataset.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { tensor } from '../../src/tensor/factories.js';

setNumThreads(1);
const data = take(loadFashionMnist({ split: 'train' }), 512, 5, { stratified: true });
const evalSet = take(loadFashionMnist({ split: 'test' }), 300, 5, { stratified: true });
const SPEC = { arch: 'mlp', hidden: [16], numClasses: 10, inputShape: [1, 28, 28] };

function method(name: string, p: Params = {}): Method {
  const s = getMethod(name);
  return s.create(resolveParams(s, p));
}

function options(d: Dataset, student: Module, m: Method, extra: Partial<TrainOptions> = {}): TrainOptions {
  const loader = new DataLoader(d, { batchSize: 64, seed: 1, prefetch: 'sync' });
  return {
    student, teacher: null, method: m, numClasses: 10, epochs: 2, evalSet,
    train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 }, ...extra,
  };
}

const flat = (m: Module): number[][] => m.parameters().map((p) => Array.from(p.data<Float32Array>()));

test('DML: two identical students (same init, one seed) stay identical through training', async () => {
  manualSeed(21);
  const student = createModel(SPEC);
  const m = method('dml', { peerInit: 'copy' });
  const before = flat(student);
  const dir = mkdtempSync(join(tmpdir(), 'kd-dml-'));
  await train(options(data, student, m, { outDir: dir }));
  const [peer] = m.extraModules!();
  assert.ok(peer, 'one peer by default');
  assert.notDeepEqual(flat(student), before, 'the students trained');
  assert.deepEqual(flat(peer!), flat(student), 'the peer equals the student bit for bit');
});

test('DML: fresh peers start different, learn, and log their own terms; the exported student has no peer', async () => {
  manualSeed(22);
  const student = createModel(SPEC);
  const m = method('dml', { peers: 2 });
  const r = await train(options(data, student, m, { epochs: 2 }));
  const peers = m.extraModules!();
  assert.equal(peers.length, 2);
  assert.notDeepEqual(flat(peers[0]!), flat(student));
  const keys = Object.keys(r.epochs[0]!.train).sort();
  assert.deepEqual(keys, ['ce', 'kl', 'loss', 'peer1_ce', 'peer1_kl', 'peer2_ce', 'peer2_kl']);
  assert.ok(r.epochs[1]!.train.peer1_ce! < r.epochs[0]!.train.peer1_ce!, 'the peer learns');
  assert.equal(student.stateDict().size, createModel(SPEC).stateDict().size);
});

function gradsOf(m: Module): boolean {
  return m.parameters().some((p) => p.grad !== null && p.grad.abs().sum().item() > 0);
}
function zeroGrads(...ms: Module[]): void {
  for (const m of ms) for (const p of m.parameters()) p.grad?.zero_();
}

test('one-way online KD: the teacher trains jointly, only its own CE reaches it, and it is not exported', async () => {
  manualSeed(23);
  const student = createModel(SPEC);
  const m = method('online-kd-oneway', { teacher: '{"arch": "mlp", "hidden": [32]}' });
  m.setup!({ student, teacher: null, numClasses: 10, datasetSize: null });
  const [t] = m.extraModules!();
  const x = data.x.subarray(0, 8 * 784);
  const xb = tensor(x, { shape: [8, 1, 28, 28] });
  const yb = tensor(Array.from(data.y!.subarray(0, 8), Number), { dtype: 'int64' });
  const terms = m.losses({ student, teacher: null, batch: { x: xb, y: yb }, indices: null, info: { epoch: 0, epochs: 1, step: 0, numClasses: 10 },
    studentLogits: student.call(xb), teacherLogits: null, studentFeatures: {}, teacherFeatures: {} });
  assert.deepEqual(Object.keys(terms), ['ce', 'kd', 'teacher_ce']);
  terms.kd!.backward(undefined, { retainGraph: true });
  assert.ok(!gradsOf(t!) && gradsOf(student), 'kd reaches the student only (detached teacher logits)');
  zeroGrads(student, t!);
  terms.teacher_ce!.backward();
  assert.ok(gradsOf(t!) && !gradsOf(student), "the teacher's CE reaches the teacher only");
  const r = await train(options(data, student, m, { epochs: 2 }));
  assert.ok(r.epochs[1]!.train.teacher_ce! < r.epochs[0]!.train.teacher_ce!, 'the online teacher learns');
});

test('adversarial KD: disc updates only the discriminator, adv only the student; the exported student has no discriminator', async () => {
  manualSeed(24);
  const teacherNet = createModel({ arch: 'mlp', hidden: [32], numClasses: 10, inputShape: [1, 28, 28] });
  const teacher = new ModuleTeacher(teacherNet, 10, 'test teacher', 't');
  const student = createModel(SPEC);
  const m = method('adversarial-kd', { conditional: true });
  m.setup!({ student, teacher, numClasses: 10, datasetSize: null });
  const [D] = m.extraModules!();
  const xb: Tensor = tensor(data.x.subarray(0, 8 * 784), { shape: [8, 1, 28, 28] });
  const yb = tensor(Array.from(data.y!.subarray(0, 8), Number), { dtype: 'int64' });
  const terms = m.losses({ student, teacher, batch: { x: xb, y: yb }, indices: null, info: { epoch: 0, epochs: 1, step: 0, numClasses: 10 },
    studentLogits: student.call(xb), teacherLogits: teacher.logits(xb), studentFeatures: {}, teacherFeatures: {} });
  assert.deepEqual(Object.keys(terms), ['ce', 'kd', 'adv', 'disc']);
  terms.disc!.backward(undefined, { retainGraph: true });
  assert.ok(gradsOf(D!) && !gradsOf(student), 'disc reaches D only');
  zeroGrads(student, D!);
  terms.adv!.backward(undefined, { retainGraph: true });
  assert.ok(!gradsOf(D!) && gradsOf(student), 'adv reaches the student only');

  const dir = mkdtempSync(join(tmpdir(), 'kd-adv-'));
  const dBefore = flat(D!);
  const r = await train(options(data, student, m, { teacher, epochs: 1, outDir: dir }));
  assert.ok(['adv', 'disc', 'kd', 'ce'].every((k) => typeof r.epochs[0]!.train[k] === 'number'), 'GAN terms logged separately');
  assert.notDeepEqual(flat(D!), dBefore, 'the discriminator trained');
  const names = [...student.stateDict().keys()];
  const dNames = D!.namedParameters().map(([n]) => n);
  assert.ok(names.every((n) => !n.startsWith('fc1') && !n.startsWith('fc2') && !n.startsWith('out')) && dNames.length === 6);
  assert.equal(names.length, createModel(SPEC).stateDict().size, 'the student holds only its own tensors');
  const file = join(dir, 'student.safetensors');
  saveModel(file, student);
  const { model } = loadModel(file);
  assert.deepEqual([...model.stateDict().keys()].sort(), [...names].sort(), 'the exported file holds the student only');
});
