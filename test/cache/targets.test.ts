// Method targets in the teacher-output cache: Sobolev's target-class input gradient is built in the
// cache's pass (gradients on for it alone), served equal to the live teacher's, keyed by the output
// settings, rebuilt when stale; a Sobolev target_grad run on the cache never calls the teacher with
// grad and trains to the same weights as one on the live teacher.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setNumThreads, manualSeed } from '../../src/tensor/torch.js';
import { tensor } from '../../src/tensor/factories.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { enableGrad, grad } from '../../src/tensor/autograd.js';
import type { Dataset } from '../../src/data/dataset.js';
import { DataLoader } from '../../src/data/loader.js';
import { normalize } from '../../src/data/augment.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { parseSafetensors } from '../../src/nn/safetensors.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams, type Params } from '../../src/methods/method.js';
import { SOBOLEV_TARGET_GRAD } from '../../src/methods/sobolev.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';
import type { Teacher } from '../../src/teachers/teacher.js';
import { CachedTeacher, TeacherOutputCache, cachedTeacher } from '../../src/teachers/cache.js';
import { train } from '../../src/train/trainer.js';
import { saveModel } from '../../src/nn/safetensors.js';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment } from '../../src/run/experiment.js';
import { assertClose, syntheticData, CountingTeacher } from './helpers.js';

setNumThreads(1);
const SHAPE = [1, 8, 8];
const D = 64;
const T_NAME = SOBOLEV_TARGET_GRAD;

const data = (n: number, seed: number, labelled = true, name = 'synthetic-grad'): Dataset =>
  syntheticData(n, seed, { shape: SHAPE, hotStride: 9, name, labelled });

function teacher(seed: number, checksum = `grad-teacher-${seed}`): CountingTeacher {
  manualSeed(seed);
  const m = createModel({ arch: 'cnn', numClasses: 4, inChannels: 1, inputSize: [8, 8], channels: [4, 4], hidden: 16 });
  return new CountingTeacher(new ModuleTeacher(m, 4, `cnn seed ${seed}`, checksum));
}

function sobolevMethod(p: Params) {
  const spec = getMethod('sobolev');
  return spec.create(resolveParams(spec, { order1: 0, order2: 0, targetGrad: 1, ...p }));
}

function targetsOf(p: Params) {
  const m = sobolevMethod(p);
  assert.ok(m.cachedTargets && m.cachedTargets.length === 1, 'target_grad alone declares a cached target');
  return m.cachedTargets;
}

/** The live teacher's target-class input gradient, written out by hand: ∇x log_softmax(z/T)_y (or z_y). */
function liveGrad(t: Teacher, ds: Dataset, rows: number[], output: 'logits' | 'logprobs', T: number, scale = 1, shift = 0): Float32Array {
  return tidy(() => enableGrad(() => {
    const x = new Float32Array(rows.length * D);
    rows.forEach((r, i) => x.set(ds.x.subarray(r * D, r * D + D).map((v) => (v - shift) / scale), i * D));
    const xt = tensor(x, { shape: [rows.length, ...SHAPE] }).requiresGrad_(true);
    const z = t.logitsWithGrad!(xt);
    const f = output === 'logits' ? z : z.div(T).logSoftmax(1);
    const y = ds.y ? tensor(BigInt64Array.from(rows.map((r) => BigInt(ds.y![r]!))), { shape: [rows.length] }) : z.argmax({ dim: 1 });
    const [g] = grad(f.gather(1, y.reshape([rows.length, 1])).sum(), xt);
    return g!.contiguous().data<Float32Array>();
  }));
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'kd-tcache-'));

test('cached target gradients equal the live ones (labels, argmax without labels, normalize pipeline); no grad call after the build', () => {
  const dir = tmp();
  const ds = data(90, 1);
  const t = teacher(1);
  const targets = targetsOf({ output: 'logprobs', outputTemperature: 2 });
  const notes: string[] = [];
  const a = TeacherOutputCache.open(t, ds, { dir, targets, batchSize: 40, notice: (l) => notes.push(l) });
  assert.equal(a.status, 'built');
  assert.equal(t.gradCalls, 1 + 3, 'one probe of the shape, then ceil(90 / 40) batches');
  assert.match(notes[0]!, /and targets \(sobolev\.target_grad\) on 90 samples/);
  assert.deepEqual(a.targetShapes, { [T_NAME]: SHAPE });
  assert.notEqual(a.path, TeacherOutputCache.pathFor(t, ds, { dir }), 'the targets key the file');
  assert.notEqual(a.path, TeacherOutputCache.pathFor(t, ds, { dir, targets: targetsOf({ output: 'logprobs', outputTemperature: 3 }) }), 'the temperature keys it');
  assert.equal(a.path, TeacherOutputCache.pathFor(t, ds, { dir, targets: targetsOf({ output: 'logprobs', outputTemperature: 2, alpha: 0.3, targetGrad: 5 }) }), 'weights do not');
  const f = parseSafetensors(readFileSync(a.path));
  assert.deepEqual(f.tensors.get(`target.${T_NAME}`)!.shape, [90, ...SHAPE]);
  assert.equal(f.metadata.targets, JSON.stringify([[T_NAME, 'output=logprobs;T=2']]));

  const calls = t.gradCalls;
  const b = TeacherOutputCache.open(t, ds, { dir, targets, notice: () => {} });
  assert.equal(b.status, 'loaded');
  assert.equal(t.gradCalls, calls, 'loading computes nothing');
  const rows = [0, 89, 42, 42, 7];
  const want = liveGrad(t.inner, ds, rows, 'logprobs', 2);
  assertClose(b.gatherTarget(rows, T_NAME), want, 1e-5, 'cached vs live gradient');
  assert.ok(want.some((v) => Math.abs(v) > 1e-4), 'the gradient is not trivially zero');
  assert.throws(() => b.gatherTarget([0], 'other'), /target 'other' is not cached \(cached: sobolev\.target_grad\)/);

  const ct = new CachedTeacher(t, b);
  const x = tensor(new Float32Array(rows.length * D), { shape: [rows.length, ...SHAPE] });
  const got = tidy(() => ct.targetsAt(Int32Array.from(rows), x, [T_NAME])![T_NAME]!.data<Float32Array>());
  assertClose(got, want, 1e-5, 'targetsAt');
  assert.equal(ct.targetsAt(Int32Array.from(rows), x, ['other']), null, 'an uncached name: compute live');
  assert.equal(t.gradCalls, calls, 'no grad call to serve targets');
  x.dispose();

  // unlabeled data: the teacher's argmax, logits output, through a normalize pipeline
  const un = data(30, 2, false, 'synthetic-unlabeled');
  const norm = normalize(0.5, 0.25);
  const u = TeacherOutputCache.open(t, un, { dir, targets: targetsOf({ output: 'logits' }), augment: [norm], notice: () => {} });
  assertClose(u.gatherTarget([3, 29, 0], T_NAME), liveGrad(t.inner, un, [3, 29, 0], 'logits', 1, 0.25, 0.5), 1e-5, 'unlabeled, normalized');
});

test('stale target caches are rebuilt: another teacher\'s file, changed samples, a corrupt target tensor', () => {
  const dir = tmp();
  const ds = data(40, 3);
  const tA = teacher(3, 'gA'), tB = teacher(4, 'gB');
  const targets = targetsOf({});
  const a = TeacherOutputCache.open(tA, ds, { dir, targets, notice: () => {} });
  copyFileSync(a.path, TeacherOutputCache.pathFor(tB, ds, { dir, targets }));
  const notes: string[] = [];
  const b = TeacherOutputCache.open(tB, ds, { dir, targets, notice: (l) => notes.push(l) });
  assert.equal(b.status, 'built');
  assert.match(notes[0]!, /metadata 'teacher' is "gA", expected "gB"; rebuilding/);
  assertClose(b.gatherTarget([3, 4], T_NAME), liveGrad(tB.inner, ds, [3, 4], 'logprobs', 1), 1e-5, 'rebuilt with the right teacher');

  const changed = { ...ds, x: ds.x.slice() };
  changed.x[6 * D + 1] += 0.5;
  const notes2: string[] = [];
  const c = TeacherOutputCache.open(tA, changed, { dir, targets, notice: (l) => notes2.push(l) });
  assert.equal(c.status, 'built');
  assert.match(notes2[0]!, /1 sample of 'synthetic-grad' differ from when it was built; rebuilding/);
  assertClose(c.gatherTarget([6], T_NAME), liveGrad(tA.inner, changed, [6], 'logprobs', 1), 1e-5, 'gradient of the changed sample');

  // flip a bit inside the target tensor's bytes
  const good = readFileSync(c.path);
  const f = parseSafetensors(good);
  const tg = f.tensors.get(`target.${T_NAME}`)!.data<Float32Array>();
  const at = good.indexOf(Buffer.from(tg.buffer, tg.byteOffset, tg.byteLength));
  assert.ok(at > 0, 'the target bytes are in the file');
  const bad = Buffer.from(good);
  bad[at + 4 * D + 2]! ^= 0x10;
  writeFileSync(c.path, bad);
  const notes3: string[] = [];
  const before = tA.gradCalls;
  const d = TeacherOutputCache.open(tA, changed, { dir, targets, notice: (l) => notes3.push(l) });
  assert.equal(d.status, 'built');
  assert.ok(tA.gradCalls > before, 'the targets were recomputed');
  assert.match(notes3[0]!, /checksum mismatch \(corrupt file\); rebuilding/);
  const all = [...Array(40).keys()];
  assert.deepEqual(d.gatherTarget(all, T_NAME), c.gatherTarget(all, T_NAME));

  // more samples: only the new ones are computed (with grad), no shape probe
  const more = data(50, 3);
  more.x.set(changed.x);
  const g0 = tA.gradCalls;
  const e = TeacherOutputCache.open(tA, more, { dir, targets, batchSize: 256, notice: () => {} });
  assert.equal(e.status, 'extended');
  assert.equal(e.computed, 10);
  assert.equal(tA.gradCalls - g0, 1, 'one batch, no probe');
  assertClose(e.gatherTarget([45, 6], T_NAME), liveGrad(tA.inner, more, [45, 6], 'logprobs', 1), 1e-5, 'extended');
});

test('sobolev target_grad with the cached teacher: no teacher call with grad in training, same weights as live', async () => {
  const dir = tmp();
  const ds = data(96, 5);
  const t = teacher(5);
  const params: Params = { output: 'logprobs', outputTemperature: 2, normalizeTarget: true, alpha: 0.5 };
  const run = async (tt: Teacher): Promise<Float32Array[]> => {
    manualSeed(7);
    const student = createModel({ arch: 'cnn', numClasses: 4, inChannels: 1, inputSize: [8, 8], channels: [2, 4], hidden: 8 });
    const loader = new DataLoader(ds, { batchSize: 32, seed: 3, prefetch: 'sync' });
    const method = sobolevMethod(params);
    await train({
      student, teacher: tt, method, numClasses: 4, epochs: 2,
      train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
      optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 },
    });
    return student.parameters().map((p) => p.data<Float32Array>());
  };
  const wLive = await run(t);
  assert.equal(t.gradCalls, 6, 'the live teacher runs with grad every step');
  const ct = cachedTeacher(t, ds, { dir, targets: sobolevMethod(params).cachedTargets!, notice: () => {} });
  const built = t.gradCalls, logits = t.logitCalls;
  const wCached = await run(ct);
  assert.equal(t.gradCalls - built, 0, 'no teacher call with grad after the build');
  assert.equal(t.logitCalls - logits, 0, 'nor without');
  assert.equal(wCached.length, wLive.length);
  wLive.forEach((w, i) => assertClose(wCached[i]!, w, 1e-4, `parameter ${i}`));

  // order1 > 0: no cached target is declared, the teacher runs live as before
  assert.equal(sobolevMethod({ order1: 1 }).cachedTargets, undefined);
  assert.equal(sobolevMethod({ targetGrad: 0 }).cachedTargets, undefined);
});

test('the runner caches the sobolev target gradient under a deterministic pipeline only', async () => {
  const root = tmp();
  manualSeed(1);
  const teacherPath = join(root, 'teacher.safetensors');
  saveModel(teacherPath, createModel({ arch: 'mlp', hidden: [16], numClasses: 10, inputShape: [1, 28, 28] }));
  const run = async (name: string, extra: Record<string, unknown>): Promise<string[]> => {
    const cacheDir = join(root, `cache-${name}`);
    const e = parseExperiment({
      name, epochs: 1, seed: 2, output: join(root, `run-${name}`),
      data: { subset: 128, batchSize: 64, ...(extra.data as object ?? {}) },
      teacher: { checkpoint: teacherPath }, student: { arch: 'mlp', hidden: [8] },
      method: { name: 'sobolev', params: { order1: 0, targetGrad: 1 } }, optimizer: { name: 'sgd', lr: 0.1 },
      teacherCache: { dir: cacheDir, ...(extra.teacherCache as object ?? {}) },
    }, join(root, `${name}.yaml`));
    await runExperiment(e, { mode: 'distill', resume: false });
    return readdirSync(cacheDir).map((f) => join(cacheDir, f));
  };
  const [file] = await run('plain', {});
  const f = parseSafetensors(readFileSync(file!));
  assert.deepEqual(f.tensors.get(`target.${T_NAME}`)!.shape, [128, 1, 28, 28]);
  const [onFile] = await run('on', { data: { augment: { crop: 2 } }, teacherCache: { mode: 'on' } });
  const g = parseSafetensors(readFileSync(onFile!));
  assert.equal(g.metadata.targets, undefined, 'random augmentation: logits cached, the gradient computed live');
  assert.ok(g.tensors.has('logits'));
});
