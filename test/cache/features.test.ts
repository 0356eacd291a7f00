// Teacher features in the teacher-output cache: built in the logits' pass, served by dataset index
// equal to the live teacher's, keyed by the feature names, rebuilt when stale, refused above the
// size limit, and a FitNet run on the cache trains to the same weights as one on the live teacher.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setNumThreads, manualSeed } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import type { Dataset } from '../../src/data/dataset.js';
import { DataLoader } from '../../src/data/loader.js';
import { normalize } from '../../src/data/augment.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams } from '../../src/methods/method.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';
import type { Teacher } from '../../src/teachers/teacher.js';
import { CachedTeacher, FeatureCacheTooLarge, TeacherOutputCache, cachedTeacher } from '../../src/teachers/cache.js';
import { train } from '../../src/train/trainer.js';
import { assertClose, rowsOf, syntheticData, CountingTeacher } from './helpers.js';

setNumThreads(1);
const SHAPE = [1, 8, 8];
const D = 64;
const NAMES = ['stage1', 'fc1'];

const data = (n: number, seed: number, name = 'synthetic-img'): Dataset => syntheticData(n, seed, { shape: SHAPE, hotStride: 9, name });

function teacher(seed: number, checksum = `feat-teacher-${seed}`): CountingTeacher {
  manualSeed(seed);
  const m = createModel({ arch: 'cnn', numClasses: 4, inChannels: 1, inputSize: [8, 8], channels: [4, 4], hidden: 16 });
  return new CountingTeacher(new ModuleTeacher(m, 4, `cnn seed ${seed}`, checksum));
}

/** The live teacher's logits and features on dataset rows, as float32 arrays. */
function live(t: Teacher, ds: Dataset, rows: number[], names = NAMES): Record<string, Float32Array> {
  return tidy(() => {
    const r = t.features!(rowsOf(ds, rows), names);
    return { logits: r.output.data<Float32Array>(), ...Object.fromEntries(names.map((n) => [n, r.features[n]!.contiguous().data<Float32Array>()])) };
  });
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'kd-fcache-'));

test('features are built with the logits, served equal to the live teacher\'s, and the teacher is not called for them afterwards', () => {
  const dir = tmp();
  const ds = data(100, 1);
  const t = teacher(1);
  const notes: string[] = [];
  const a = TeacherOutputCache.open(t, ds, { dir, features: ['fc1', 'stage1', 'fc1'], batchSize: 40, notice: (l) => notes.push(l) });
  assert.equal(a.status, 'built');
  assert.equal(t.logitCalls, 0, 'one pass through teacher.features gives the logits too');
  assert.equal(t.featureCalls, 1 + 3, 'one probe of the shapes, then ceil(100 / 40) batches');
  assert.equal(t.featureRows, 1 + 100);
  assert.match(notes[0]!, /computing the teacher's outputs and features \(fc1, stage1\) on 100 samples/);
  assert.deepEqual(a.featureShapes, { fc1: [16], stage1: [4, 4, 4] });
  assert.notEqual(a.path, TeacherOutputCache.pathFor(t, ds, { dir }), 'the feature names key the file');
  assert.notEqual(a.path, TeacherOutputCache.pathFor(t, ds, { dir, features: ['fc1'] }));

  const b = TeacherOutputCache.open(t, ds, { dir, features: NAMES, notice: () => {} });
  assert.equal(b.status, 'loaded');
  const calls = t.featureCalls;
  const rows = [0, 99, 42, 42, 7];
  const want = live(t.inner, ds, rows);
  assertClose(b.gather(rows), want.logits!, 1e-5, 'logits');
  for (const n of NAMES) {
    assertClose(b.gatherFeature(rows, n), want[n]!, 1e-5, `feature ${n}`);
    assert.deepEqual(b.gatherFeature(rows, n), a.gatherFeature(rows, n), `${n} round-trips exactly`);
  }
  assert.throws(() => b.gatherFeature([0], 'stage2'), /feature 'stage2' is not cached \(cached: fc1, stage1\)/);

  // CachedTeacher.featuresAt serves the batch from the cache, without calling the teacher
  const ct = new CachedTeacher(t, b);
  const x = rowsOf(ds, rows);
  const got = tidy(() => {
    const r = ct.featuresAt(Int32Array.from(rows), x, ['stage1', 'fc1']);
    assert.deepEqual(r.features.stage1!.shape, [5, 4, 4, 4]);
    return { logits: r.output.data<Float32Array>(), stage1: r.features.stage1!.data<Float32Array>(), fc1: r.features.fc1!.data<Float32Array>() };
  });
  assert.equal(t.featureCalls, calls, 'no teacher call for cached features');
  for (const k of ['logits', 'stage1', 'fc1'] as const) assertClose(got[k], want[k]!, 1e-5, `featuresAt ${k}`);
  // an uncached name goes to the live teacher
  tidy(() => ct.featuresAt(Int32Array.from(rows), x, ['stage2']));
  assert.equal(t.featureCalls, calls + 1);
  assert.throws(() => ct.featuresAt(Int32Array.from([0]), x, NAMES), /batch of 5 with 1 indices/);
  x.dispose();

  // float16 storage and a deterministic pipeline
  const norm = normalize(0.5, 0.25);
  const h = TeacherOutputCache.open(t, ds, { dir, features: NAMES, dtype: 'float16', augment: [norm], notice: () => {} });
  const wantN = live(t.inner, { ...ds, x: ds.x.map((v) => (v - 0.5) / 0.25) }, rows);
  for (const n of NAMES) {
    const g = h.gatherFeature(rows, n);
    for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i]! - wantN[n]![i]!) <= 1e-3 * Math.max(1, Math.abs(wantN[n]![i]!)), `float16 ${n}[${i}]`);
  }
  assert.deepEqual(TeacherOutputCache.open(t, ds, { dir, features: NAMES, dtype: 'float16', augment: [norm], notice: () => {} }).gatherFeature(rows, 'stage1'), h.gatherFeature(rows, 'stage1'));
});

test('stale feature caches are rebuilt: another teacher\'s file, changed samples, a corrupt feature tensor; a grown dataset is extended', () => {
  const dir = tmp();
  const ds = data(48, 2);
  const tA = teacher(2, 'fA'), tB = teacher(3, 'fB');
  const a = TeacherOutputCache.open(tA, ds, { dir, features: NAMES, notice: () => {} });
  const pathB = TeacherOutputCache.pathFor(tB, ds, { dir, features: NAMES });
  copyFileSync(a.path, pathB);
  const notes: string[] = [];
  const b = TeacherOutputCache.open(tB, ds, { dir, features: NAMES, notice: (l) => notes.push(l) });
  assert.equal(b.status, 'built');
  assert.match(notes[0]!, /metadata 'teacher' is "fA", expected "fB"; rebuilding/);
  assertClose(b.gatherFeature([3, 4], 'stage1'), live(tB.inner, ds, [3, 4]).stage1!, 1e-5, 'rebuilt features of the right teacher');

  const changed = { ...ds, x: ds.x.slice() };
  changed.x[6 * D + 1] += 0.5;
  const notes2: string[] = [];
  const c = TeacherOutputCache.open(tA, changed, { dir, features: NAMES, notice: (l) => notes2.push(l) });
  assert.equal(c.status, 'built');
  assert.match(notes2[0]!, /1 sample of 'synthetic-img' differ from when it was built; rebuilding/);
  assertClose(c.gatherFeature([6], 'fc1'), live(tA.inner, changed, [6]).fc1!, 1e-5, 'features of the changed sample');

  // a bit flip in the last tensor's bytes (a feature tensor: they follow the logits) is caught
  const good = readFileSync(c.path);
  const bad = Buffer.from(good);
  bad[bad.length - 3]! ^= 0x08;
  writeFileSync(c.path, bad);
  const notes3: string[] = [];
  const before = tA.featureCalls;
  const d = TeacherOutputCache.open(tA, changed, { dir, features: NAMES, notice: (l) => notes3.push(l) });
  assert.equal(d.status, 'built');
  assert.ok(tA.featureCalls > before);
  assert.match(notes3[0]!, /checksum mismatch \(corrupt file\); rebuilding/);
  assert.deepEqual(d.gatherFeature([...Array(48).keys()], 'stage1'), c.gatherFeature([...Array(48).keys()], 'stage1'));

  // more samples under the same name: only the new ones are computed, the shapes come from the file
  const more = data(60, 2);
  more.x.set(changed.x);
  const rowsBefore = tA.featureRows;
  const e = TeacherOutputCache.open(tA, more, { dir, features: NAMES, notice: () => {} });
  assert.equal(e.status, 'extended');
  assert.equal(e.computed, 12);
  assert.equal(tA.featureRows - rowsBefore, 12, 'no probe when the file gives the shapes');
  assertClose(e.gatherFeature([50, 6], 'stage1'), live(tA.inner, more, [50, 6]).stage1!, 1e-5, 'extended features');
});

test('a feature cache above the size limit is refused before any batch is computed', () => {
  const dir = tmp();
  const ds = data(100, 4);
  const t = teacher(4);
  // (64 + 16) floats per sample × 100 samples × 4 bytes = 32000 bytes
  assert.throws(() => TeacherOutputCache.open(t, ds, { dir, features: NAMES, maxFeatureBytes: 31_999, notice: () => {} }),
    (e: unknown) => e instanceof FeatureCacheTooLarge && /above the limit of 0 MiB; raise KDISTILL_CACHE_MAX_FEATURE_MB/.test((e as Error).message));
  assert.equal(t.featureRows, 1, 'only the shape probe ran');
  assert.equal(TeacherOutputCache.open(t, ds, { dir, features: NAMES, maxFeatureBytes: 32_000, notice: () => {} }).status, 'built');
});

test('FitNet with the cached teacher: no teacher feature pass in training, same weights as with the live teacher', async () => {
  const dir = tmp();
  const ds = data(128, 5);
  const t = teacher(5);
  const run = async (tt: Teacher): Promise<Float32Array[]> => {
    manualSeed(7);
    const student = createModel({ arch: 'cnn', numClasses: 4, inChannels: 1, inputSize: [8, 8], channels: [2, 4], hidden: 8 });
    const loader = new DataLoader(ds, { batchSize: 32, seed: 3, prefetch: 'sync' });
    const spec = getMethod('fitnet');
    const method = spec.create(resolveParams(spec, { pairs: ['stage1', 'fc1'], alpha: 0.5, beta: 10 }));
    const sample = rowsOf(ds, [0, 1]);
    await train({
      student, teacher: tt, method, numClasses: 4, epochs: 2, sample,
      train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
      optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 },
    });
    sample.dispose();
    return [...student.parameters(), ...(method.extraModules?.() ?? []).flatMap((m) => m.parameters())].map((p) => p.data<Float32Array>());
  };
  const wLive = await run(t);
  assert.ok(t.featureCalls >= 8, 'the live teacher runs every step');
  const ct = cachedTeacher(t, ds, { dir, features: NAMES, notice: () => {} });
  const built = t.featureCalls;
  const wCached = await run(ct);
  assert.equal(t.featureCalls - built, 1, 'only setup\'s shape probe (on the sample, not a training batch) runs the teacher');
  assert.equal(wCached.length, wLive.length);
  wLive.forEach((w, i) => assertClose(wCached[i]!, w, 1e-4, `parameter ${i}`));
});
