// Golden tests of learning together against PyTorch references written from the papers
// (scripts/fixtures/whom.py): codistillation's per-model loss terms and gradients (Anil et al.
// 2018, Algorithm 1), its burn-in and stale copies, and DML's sequential update (Zhang et al.
// 2018, Algorithm 1) against the simultaneous one, through the trainer for one SGD step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed, setNumThreads } from '../../src/tensor/torch.js';
import { tensor } from '../../src/tensor/factories.js';
import { tidy } from '../../src/tensor/scope.js';
import { crossEntropy } from '../../src/tensor/functional.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { packageRoot } from '../../src/tensor/native.js';
import { createModel } from '../../src/nn/zoo/index.js';
import type { Module } from '../../src/nn/module.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams, type LossContext, type Method, type Params } from '../../src/methods/method.js';
import { train } from '../../src/train/trainer.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { take } from '../../src/data/splits.js';
import { DataLoader } from '../../src/data/loader.js';
import { assertClose } from '../losses/golden.js';

setNumThreads(1);

interface Param { shape: number[]; data: number[] }
type Weights = Record<string, Param>;
interface Fixture {
  x: Param; y: number[]; classes: number;
  codistill: { hidden: number[][]; weight: number; models: Weights[]; terms: { ce: number; distill: number }[]; grads: Record<string, number[]>[] };
  dml: {
    lr: number; hidden: number[]; init: Weights[];
    sequential: { terms: Record<string, number>; after: Record<string, number[]>[] };
    simultaneous: { terms: Record<string, number>; after: Record<string, number[]>[] };
  };
}
const fx = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'whom', 'whom.json'), 'utf8')) as Fixture;
const D = fx.x.shape[1]!, C = fx.classes;
const mlpSpec = (hidden: number[]) => ({ arch: 'mlp', hidden, numClasses: C, inputShape: [D] });

function method(name: string, p: Params = {}): Method {
  const s = getMethod(name);
  return s.create(resolveParams(s, p));
}

function load(m: Module, w: Weights): void {
  tidy(() => m.loadStateDict(new Map(Object.entries(w).map(([k, v]) => [k, tensor(v.data, { shape: v.shape })]))));
}

const batch = (): { x: Tensor; y: Tensor } => ({ x: tensor(fx.x.data, { shape: fx.x.shape }), y: tensor(fx.y, { dtype: 'int64' }) });

function ctxAt(student: Module, x: Tensor, y: Tensor, step: number): LossContext {
  return {
    student, teacher: null, batch: { x, y }, indices: null, info: { epoch: 0, epochs: 1, step, numClasses: C },
    studentLogits: student.call(x), teacherLogits: null, studentFeatures: {}, teacherFeatures: {},
  };
}

const CODISTILL = (extra: Params = {}): Params => ({
  models: 3, weight: fx.codistill.weight,
  peerArch: JSON.stringify(fx.codistill.hidden.slice(1).map((h) => mlpSpec(h))), ...extra,
});

/** Student and method with the fixture's three models loaded. */
function cohort(extra: Params = {}): { student: Module; m: Method; peers: Module[] } {
  const student = createModel(mlpSpec(fx.codistill.hidden[0]!));
  const m = method('codistill', CODISTILL(extra));
  m.setup!({ student, teacher: null, numClasses: C, datasetSize: null });
  const peers = m.extraModules!().slice(0, 2);
  [student, ...peers].forEach((net, i) => load(net, fx.codistill.models[i]!));
  return { student, m, peers };
}

test('codistill: every model\'s CE and distillation term, and the gradients of their sum, match the PyTorch reference', () => {
  for (const refreshSteps of [0, 5]) {
    const { student, m, peers } = cohort({ refreshSteps });
    tidy(() => {
      const { x, y } = batch();
      const terms = m.losses(ctxAt(student, x, y, 0));
      assert.deepEqual(Object.keys(terms), ['ce', 'distill', 'peer1_ce', 'peer1_distill', 'peer2_ce', 'peer2_distill']);
      fx.codistill.terms.forEach((t, i) => {
        const p = i === 0 ? '' : `peer${i}_`;
        assertClose(terms[`${p}ce`]!.item(), t.ce, 1e-5, 1e-6, `model ${i} ce (refreshSteps ${refreshSteps})`);
        assertClose(terms[`${p}distill`]!.item(), t.distill, 1e-5, 1e-6, `model ${i} distill (refreshSteps ${refreshSteps})`);
      });
      Object.values(terms).reduce((a, b) => a.add(b)).backward();
      [student, ...peers].forEach((net, i) => {
        for (const [name, p] of net.namedParameters()) {
          const want = fx.codistill.grads[i]![name]!;
          const got = Array.from(p.grad!.toFloat64Array());
          const scale = Math.max(...want.map(Math.abs));
          got.forEach((g, j) => assertClose(g, want[j]!, 1e-5, 1e-6 + 1e-5 * scale, `model ${i} ${name} grad[${j}]`));
        }
      });
    });
  }
});

test('codistill: no distillation term during burn-in; it starts at burnInSteps', () => {
  const { student, m, peers } = cohort({ burnInSteps: 2 });
  tidy(() => {
    const { x, y } = batch();
    for (const step of [0, 1]) {
      const terms = m.losses(ctxAt(student, x, y, step));
      assert.deepEqual(Object.keys(terms), ['ce', 'peer1_ce', 'peer2_ce'], `step ${step}: CE only`);
      const grads = (): number[][] => [student, ...peers].flatMap((n) => n.parameters().map((p) => Array.from(p.grad!.toFloat64Array())));
      for (const n of [student, ...peers]) for (const p of n.parameters()) p.grad = null;
      Object.values(terms).reduce((a, b) => a.add(b)).backward();
      const all = grads();
      for (const n of [student, ...peers]) for (const p of n.parameters()) p.grad = null;
      [student, ...peers].map((n) => crossEntropy(n.call(x), y)).reduce((a, b) => a.add(b)).backward();
      assert.deepEqual(all, grads(), `step ${step}: each model's gradient is its own CE's alone`);
    }
    const terms = m.losses(ctxAt(student, x, y, 2));
    assert.deepEqual(Object.keys(terms), ['ce', 'distill', 'peer1_ce', 'peer1_distill', 'peer2_ce', 'peer2_distill']);
    assertClose(terms.distill!.item(), fx.codistill.terms[0]!.distill, 1e-5, 1e-6, 'first distillation step');
  });
});

test('codistill: stale copies give the same targets until the next refresh; live peers do not', () => {
  const changed = fx.codistill.models.map((w) => Object.fromEntries(Object.entries(w).map(([k, v]) => [k, { ...v, data: v.data.map((a) => a * 0.5 + 0.1) }])));
  for (const refreshSteps of [3, 0]) {
    const { student, m, peers } = cohort({ burnInSteps: 1, refreshSteps });
    tidy(() => {
      const { x, y } = batch();
      const at = (step: number): number => m.losses(ctxAt(student, x, y, step)).distill!.item();
      const first = at(1); // a refresh: the copies are the current models
      assertClose(first, fx.codistill.terms[0]!.distill, 1e-5, 1e-6, 'refresh step');
      peers.forEach((p, i) => load(p, changed[i + 1]!)); // the peers move; the student does not
      const between = [at(2), at(3)];
      const refreshed = at(4); // 1 + 3: the copies take the moved peers
      if (refreshSteps === 3) {
        assert.deepEqual(between, [first, first], "between refreshes the student's target (and so its term) does not change");
        assert.notEqual(refreshed, first, 'after the refresh the target follows the peers');
      } else {
        assert.notEqual(between[0], first, "live: the target follows the peers at once");
        assert.equal(refreshed, between[0]);
      }
    });
  }
});

test('codistill trains in the trainer: peers learn, stale copies are not optimised, the student holds only its own tensors', async () => {
  manualSeed(31);
  const data = take(loadFashionMnist({ split: 'train' }), 512, 5, { stratified: true });
  const spec = { arch: 'mlp', hidden: [16], numClasses: 10, inputShape: [1, 28, 28] };
  const student = createModel(spec);
  const m = method('codistill', { burnInSteps: 3, refreshSteps: 5 });
  const loader = new DataLoader(data, { batchSize: 64, seed: 1, prefetch: 'sync' });
  const r = await train({
    student, teacher: null, method: m, numClasses: 10, epochs: 2,
    train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 },
  });
  const extras = m.extraModules!();
  assert.equal(extras.length, 1 + 2, 'one peer and two stale copies');
  assert.deepEqual(Object.keys(r.epochs[0]!.train).sort(), ['ce', 'distill', 'loss', 'peer1_ce', 'peer1_distill']);
  assert.ok(r.epochs[1]!.train.peer1_ce! < r.epochs[0]!.train.peer1_ce!, 'the peer learns');
  // 16 steps: the last refresh was at step 13 (3 + 2·5), after which the models moved on.
  const stale0 = extras[1]!.parameters().map((p) => Array.from(p.data<Float32Array>()));
  assert.notDeepEqual(stale0, student.parameters().map((p) => Array.from(p.data<Float32Array>())), 'the copy is stale');
  assert.ok(extras[1]!.parameters().every((p) => p.grad === null), 'no gradient reaches the copies');
  assert.equal(student.stateDict().size, createModel(spec).stateDict().size);
});

async function dmlStep(update: 'sequential' | 'simultaneous'): Promise<{ terms: Record<string, number>; after: number[][][] }> {
  const student = createModel(mlpSpec(fx.dml.hidden));
  const m = method('dml', { update });
  m.setup!({ student, teacher: null, numClasses: C, datasetSize: null });
  const [peer] = m.extraModules!();
  load(student, fx.dml.init[0]!);
  load(peer!, fx.dml.init[1]!);
  const r = await train({
    student, teacher: null, method: m, numClasses: C, epochs: 1,
    train: { batchesPerEpoch: 1, batches: () => [batch()] },
    optimizer: { name: 'sgd', lr: fx.dml.lr },
  });
  return { terms: r.epochs[0]!.train, after: [student, peer!].map((n) => n.parameters().map((p) => Array.from(p.data<Float32Array>()))) };
}

test('DML: sequential updates (Algorithm 1) match PyTorch for one SGD step and differ from simultaneous ones, which match theirs', async () => {
  const names = createModel(mlpSpec(fx.dml.hidden)).namedParameters().map(([n]) => n);
  const got = { sequential: await dmlStep('sequential'), simultaneous: await dmlStep('simultaneous') };
  for (const mode of ['sequential', 'simultaneous'] as const) {
    const want = fx.dml[mode];
    for (const [k, v] of Object.entries(want.terms)) assertClose(got[mode].terms[k]!, v, 1e-5, 1e-6, `${mode} ${k}`);
    assertClose(got[mode].terms.loss!, Object.values(want.terms).reduce((a, b) => a + b), 1e-5, 1e-6, `${mode} loss`);
    got[mode].after.forEach((params, i) => params.forEach((p, j) => {
      const w = want.after[i]![names[j]!]!;
      p.forEach((a, e) => assertClose(a, w[e]!, 1e-5, 1e-6, `${mode} member ${i} ${names[j]}[${e}] after the step`));
    }));
  }
  assert.notEqual(got.sequential.terms.peer1_kl, got.simultaneous.terms.peer1_kl, "the peer's mimicry term sees the updated student");
  assert.notDeepEqual(got.sequential.after[1], got.simultaneous.after[1], 'the peer moves differently');
  assert.deepEqual(got.sequential.after[0], got.simultaneous.after[0], 'the student, updated first, moves the same way');
});

test('codistill with stale copies and sequential DML resume mid-interval to the same weights and log as an uninterrupted run', async () => {
  const data = take(loadFashionMnist({ split: 'train' }), 384, 7, { stratified: true });
  const spec = { arch: 'mlp', hidden: [8], numClasses: 10, inputShape: [1, 28, 28] };
  const loader = new DataLoader(data, { batchSize: 64, seed: 2, prefetch: 'sync' });
  const run = async (name: string, p: Params, seed: number, dir: string, extra: { stopAfterSteps?: number; resume?: boolean }) => {
    manualSeed(seed);
    const student = createModel(spec);
    const m = method(name, p);
    const r = await train({
      student, teacher: null, method: m, numClasses: 10, epochs: 2, outDir: dir, ...extra,
      train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
      optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 },
    });
    return { r, nets: [student, ...m.extraModules!()].map((n) => n.parameters().map((q) => Array.from(q.data<Float32Array>()))) };
  };
  const log = (dir: string): string => readFileSync(join(dir, 'log.jsonl'), 'utf8').replace(/"seconds":[0-9.e-]+/g, '');
  // Refreshes at steps 2, 5, 8, …; the checkpoint at step 4 falls between two of them.
  for (const [name, p] of [['codistill', { burnInSteps: 2, refreshSteps: 3 }], ['dml', { update: 'sequential' }]] as const) {
    const dirA = mkdtempSync(join(tmpdir(), 'kd-together-a-')), dirB = mkdtempSync(join(tmpdir(), 'kd-together-b-'));
    const whole = await run(name, p, 41, dirA, {});
    assert.equal((await run(name, p, 41, dirB, { stopAfterSteps: 4 })).r.interrupted, true);
    const resumed = await run(name, p, 999, dirB, { resume: true });
    assert.deepEqual(resumed.nets, whole.nets, `${name}: every model (and copy) ends with the same weights`);
    assert.equal(log(dirB), log(dirA), `${name}: same log`);
  }
});
