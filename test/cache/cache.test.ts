// The teacher-output cache: built once and reused, the same logits as the live teacher, keyed
// through Dataset.origin for subsets, and rebuilt (with a notice, not a crash) when stale or
// corrupt. Small synthetic data keeps it fast.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setNumThreads, manualSeed } from '../../src/tensor/torch.js';
import { tensor } from '../../src/tensor/factories.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import type { Dataset } from '../../src/data/dataset.js';
import { subset, split } from '../../src/data/splits.js';
import { DataLoader } from '../../src/data/loader.js';
import { normalize, randomCrop, horizontalFlip } from '../../src/data/augment.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams } from '../../src/methods/method.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';
import type { Teacher } from '../../src/teachers/teacher.js';
import { CachedTeacher, TeacherOutputCache, cachedTeacher, planTeacherCache, isDeterministic } from '../../src/teachers/cache.js';
import { train } from '../../src/train/trainer.js';
import { parseExperiment } from '../../src/config/experiment.js';
import { assertClose, rowsOf, syntheticData, CountingTeacher } from './helpers.js';

setNumThreads(1);
const SHAPE = [1, 6, 6];
const D = 36;

const data = (n: number, seed: number, name = 'synthetic'): Dataset => syntheticData(n, seed, { shape: SHAPE, hotStride: 1, name });

function teacher(seed: number, checksum = `test-teacher-${seed}`): CountingTeacher {
  manualSeed(seed);
  const m = createModel({ arch: 'mlp', hidden: [16], numClasses: 4, inputShape: SHAPE });
  return new CountingTeacher(new ModuleTeacher(m, 4, `mlp seed ${seed}`, checksum));
}

/** Live teacher logits on dataset rows (no augmentation), as float32. */
function live(t: Teacher, ds: Dataset, rows: number[]): Float32Array {
  return tidy(() => t.logits(rowsOf(ds, rows)).data<Float32Array>());
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'kd-cache-'));
const quiet = (lines: string[]) => (l: string): void => { lines.push(l); };

test('the cache is built in one batched pass, reused by the next open, and serves the live teacher\'s logits', () => {
  const dir = tmp();
  const ds = data(300, 1);
  const t = teacher(1);
  const notes: string[] = [];
  const a = TeacherOutputCache.open(t, ds, { dir, batchSize: 128, notice: quiet(notes) });
  assert.equal(a.status, 'built');
  assert.equal(a.computed, 300);
  assert.equal(t.logitCalls, 3, 'ceil(300 / 128) teacher passes');
  assert.equal(t.logitRows, 300);
  assert.ok(existsSync(a.path) && a.path.startsWith(dir));
  assert.equal(notes.length, 1);
  assert.match(notes[0]!, /computing the teacher's outputs on 300 samples/);

  const b = TeacherOutputCache.open(t, ds, { dir, notice: quiet(notes) });
  assert.equal(b.status, 'loaded');
  assert.equal(t.logitCalls, 3, 'a valid cache needs no teacher pass');
  assert.equal(notes.length, 1, 'loading is silent');

  const rows = [5, 0, 299, 17, 17, 123];
  assertClose(b.gather(rows), live(t.inner, ds, rows), 1e-5, 'cached vs live logits');
  assert.deepEqual(b.gather(rows), a.gather(rows), 'the file round-trips exactly');
  // no stray temp files from the atomic write
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('training with the cached teacher never runs the teacher and matches training with the live one', async () => {
  const dir = tmp();
  const ds = data(256, 2);
  const t = teacher(2);
  const run = async (tt: Teacher): Promise<Float32Array[]> => {
    manualSeed(5);
    const student = createModel({ arch: 'mlp', hidden: [8], numClasses: 4, inputShape: SHAPE });
    const loader = new DataLoader(ds, { batchSize: 64, seed: 3, prefetch: 'sync' });
    const spec = getMethod('kd');
    await train({
      student, teacher: tt, method: spec.create(resolveParams(spec, { temperature: 4, alpha: 0.9 })), numClasses: 4, epochs: 3,
      train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
      optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 },
    });
    return student.parameters().map((p) => p.data<Float32Array>());
  };
  const wLive = await run(t);
  const liveCalls = t.logitCalls;
  assert.ok(liveCalls >= 12, 'the live teacher runs every step');
  const ct = cachedTeacher(t, ds, { dir, notice: () => {} });
  const built = t.logitCalls - liveCalls;
  const wCached = await run(ct);
  assert.equal(t.logitCalls - liveCalls, built, 'no teacher pass during 3 cached epochs');
  wLive.forEach((w, i) => assertClose(wCached[i]!, w, 1e-4, `parameter ${i}`));
});

test('a subset is keyed through origin: it reuses the full set\'s cache, and a later full run only adds what is missing', () => {
  const dir = tmp();
  const full = data(200, 3, 'synthetic/train');
  const t = teacher(3);
  const part = subset(full, [150, 3, 77, 9], 'synthetic/train[4]');
  assert.equal(part.origin!.name, 'synthetic/train');

  // subset first: computes 4 samples
  const a = TeacherOutputCache.open(t, part, { dir, notice: () => {} });
  assert.equal(a.status, 'built');
  assert.equal(t.logitRows, 4);
  assertClose(a.gather([0, 1, 2, 3]), live(t.inner, full, [150, 3, 77, 9]), 1e-5, 'subset rows map to origin rows');

  // the full set then computes only the other 196, in the same file
  const b = TeacherOutputCache.open(t, full, { dir, notice: () => {} });
  assert.equal(b.status, 'extended');
  assert.equal(b.computed, 196);
  assert.equal(b.path, a.path);
  assert.equal(t.logitRows, 200);

  // a split of a split still resolves to the source rows, with no teacher pass
  const s = split(full, { heldOut: 50, seed: 4 });
  const c = TeacherOutputCache.open(t, s.heldOut, { dir, notice: () => {} });
  assert.equal(c.status, 'loaded');
  assert.equal(t.logitRows, 200);
  const rows = Array.from(s.heldOut.origin!.indices.subarray(0, 10));
  assertClose(c.gather([...Array(10).keys()]), live(t.inner, full, rows), 1e-5, 'held-out split via origin');
});

test('a stale cache is rebuilt with a one-line notice: another teacher\'s file, or changed samples under the same name', () => {
  const dir = tmp();
  const ds = data(64, 4);
  const tA = teacher(4, 'checksum-A');
  const tB = teacher(5, 'checksum-B');
  const a = TeacherOutputCache.open(tA, ds, { dir, notice: () => {} });
  const pathB = TeacherOutputCache.pathFor(tB, ds, { dir });
  assert.notEqual(pathB, a.path, 'the teacher checksum keys the file');
  copyFileSync(a.path, pathB); // e.g. a file copied or renamed by hand
  const notes: string[] = [];
  const b = TeacherOutputCache.open(tB, ds, { dir, notice: quiet(notes) });
  assert.equal(b.status, 'built');
  assert.match(notes[0]!, /metadata 'teacher' is "checksum-A", expected "checksum-B"; rebuilding/);
  assertClose(b.gather([0, 1, 2]), live(tB.inner, ds, [0, 1, 2]), 1e-5, 'rebuilt with the right teacher');

  // same dataset name, different pixels
  const changed = { ...ds, x: ds.x.slice() };
  changed.x[5 * D + 7] += 0.5;
  const notes2: string[] = [];
  const c = TeacherOutputCache.open(tA, changed, { dir, notice: quiet(notes2) });
  assert.equal(c.status, 'built');
  assert.match(notes2[0]!, /1 sample of 'synthetic' differ from when it was built; rebuilding/);
  assertClose(c.gather([5]), live(tA.inner, changed, [5]), 1e-5, 'rebuilt on the new samples');
});

test('a corrupt cache (truncated, bit-flipped, garbage) is rebuilt, not a crash', () => {
  const dir = tmp();
  const ds = data(64, 6);
  const t = teacher(6);
  const a = TeacherOutputCache.open(t, ds, { dir, notice: () => {} });
  const good = readFileSync(a.path);
  const expect = a.gather([...Array(64).keys()]);
  const cases: [string, Buffer, RegExp][] = [
    ['truncated', good.subarray(0, good.length - 100), /unreadable \(not a valid safetensors file: .*truncated/],
    ['bit flip in the data', (() => { const b = Buffer.from(good); b[b.length - 7]! ^= 0x10; return b; })(), /checksum mismatch \(corrupt file\)/],
    ['garbage', Buffer.from('definitely not a cache file'), /unreadable/],
    ['empty', Buffer.alloc(0), /unreadable/],
  ];
  for (const [what, bytes, re] of cases) {
    writeFileSync(a.path, bytes);
    const notes: string[] = [];
    const before = t.logitCalls;
    const c = TeacherOutputCache.open(t, ds, { dir, notice: quiet(notes) });
    assert.equal(c.status, 'built', what);
    assert.ok(t.logitCalls > before, `${what}: the teacher ran again`);
    assert.equal(notes.length, 2, `${what}: one notice for the problem, one for the rebuild`);
    assert.match(notes[0]!, re, what);
    assert.match(notes[0]!, /rebuilding$/, what);
    assert.deepEqual(c.gather([...Array(64).keys()]), expect, `${what}: same logits after the rebuild`);
    assert.equal(TeacherOutputCache.open(t, ds, { dir, notice: () => {} }).status, 'loaded', `${what}: the rebuilt file is valid`);
  }
});

test('deterministic augmentation keys the cache and is applied; float16 storage halves the file within rounding', () => {
  const dir = tmp();
  const ds = data(40, 7);
  const t = teacher(7);
  const norm = normalize(0.5, 0.25);
  const plain = TeacherOutputCache.open(t, ds, { dir, notice: () => {} });
  const normed = TeacherOutputCache.open(t, ds, { dir, augment: [norm], notice: () => {} });
  assert.notEqual(normed.path, plain.path);
  const x = ds.x.map((v) => (v - 0.5) / 0.25);
  assertClose(normed.gather([0, 1, 2]), live(t.inner, { ...ds, x }, [0, 1, 2]), 1e-5, 'outputs on normalised inputs');
  assert.throws(() => TeacherOutputCache.open(t, ds, { dir, augment: [randomCrop(2)] }), /random augmentations cannot be cached/);

  const half = TeacherOutputCache.open(t, ds, { dir, dtype: 'float16', notice: () => {} });
  assert.notEqual(half.path, plain.path);
  assert.ok(readFileSync(half.path).length < readFileSync(plain.path).length);
  const h = half.gather([...Array(40).keys()]), f = plain.gather([...Array(40).keys()]);
  for (let i = 0; i < f.length; i++) assert.ok(Math.abs(h[i]! - f[i]!) <= 1e-3 * Math.max(1, Math.abs(f[i]!)), `float16 value ${i}`);
  assert.deepEqual(TeacherOutputCache.open(t, ds, { dir, dtype: 'float16', notice: () => {} }).gather([0, 1]), half.gather([0, 1]), 'float16 reload serves the stored values');
});

test("with random augmentation 'auto' leaves the cache off; 'on' caches un-augmented outputs; features need the live teacher", () => {
  const crop = randomCrop(2), flip = horizontalFlip(), norm = normalize(0.5, 0.25);
  assert.equal(isDeterministic(norm), true);
  assert.equal(isDeterministic(crop), false);
  assert.equal(isDeterministic(randomCrop(0)), true);
  assert.equal(isDeterministic(flip), false);
  assert.equal(isDeterministic(() => {}), false);

  assert.deepEqual(planTeacherCache('auto', []).use, true);
  assert.deepEqual(planTeacherCache('auto', [norm]), { use: true, augment: [norm], reason: 'teacher cache on' });
  const auto = planTeacherCache('auto', [crop, flip, norm]);
  assert.equal(auto.use, false);
  assert.match(auto.reason, /2 random augmentations/);
  const on = planTeacherCache('on', [crop, norm]);
  assert.equal(on.use, true);
  assert.deepEqual(on.augment, [norm], 'only the deterministic part is applied to cached inputs');
  assert.equal(planTeacherCache('off', []).use, false);
  assert.equal(planTeacherCache('auto', [norm], { needsFeatures: true }).use, true, 'features are cached under a deterministic pipeline');
  assert.equal(planTeacherCache('on', [crop], { needsFeatures: true }).use, false, 'but not under random augmentation, even with on');
});

test('CachedTeacher: training rows come from the cache, anything else from the live teacher', () => {
  const dir = tmp();
  const ds = data(32, 8);
  const t = teacher(8);
  const ct = new CachedTeacher(t, TeacherOutputCache.open(t, ds, { dir, notice: () => {} }));
  assert.equal(ct.checksum, t.checksum);
  const calls = t.logitCalls;
  const x = tensor(ds.x.slice(0, 2 * D), { shape: [2, ...SHAPE] });
  const viaCache = tidy(() => ct.logitsAt(Int32Array.from([0, 1]), x).data<Float32Array>());
  assert.equal(t.logitCalls, calls);
  const viaLive = tidy(() => ct.logits(x).data<Float32Array>());
  assert.equal(t.logitCalls, calls + 1);
  assertClose(viaCache, viaLive, 1e-5, 'cache vs live');
  assert.throws(() => ct.logitsAt(Int32Array.from([0, 1, 2]), x), /batch of 2 with 3 indices/);
  assert.throws(() => ct.cache.gather([32]), /outside the cached dataset/);
  x.dispose();
});

test("the experiment key teacherCache: auto | on | off, or {mode, dtype, dir}", () => {
  const ok = { epochs: 1, student: { arch: 'mlp', hidden: [8] }, optimizer: { name: 'sgd', lr: 0.1 } };
  assert.deepEqual(parseExperiment(ok, '/x/exp.yaml').teacherCache, { mode: 'auto', dtype: 'float32' });
  assert.deepEqual(parseExperiment({ ...ok, teacherCache: 'on' }, '/x/exp.yaml').teacherCache, { mode: 'on', dtype: 'float32' });
  assert.deepEqual(parseExperiment({ ...ok, teacherCache: false }, '/x/exp.yaml').teacherCache, { mode: 'off', dtype: 'float32' });
  assert.deepEqual(parseExperiment({ ...ok, teacherCache: { dtype: 'float16', dir: 'c' } }, '/x/exp.yaml').teacherCache, { mode: 'auto', dtype: 'float16', dir: '/x/c' });
  assert.throws(() => parseExperiment({ ...ok, teacherCache: 'sometimes' }, 'exp.yaml'), /'teacherCache' must be one of auto, on, off/);
  assert.throws(() => parseExperiment({ ...ok, teacherCache: { mode: 'on', dtyp: 'float16' } }, 'exp.yaml'), /'teacherCache\.dtyp' is not a known key/);
  assert.throws(() => parseExperiment({ ...ok, teacherCache: { dtype: 'int8' } }, 'exp.yaml'), /'teacherCache\.dtype' must be one of float32, float16/);
});
