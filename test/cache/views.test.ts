// The view cache (issue 21): replayable augmented views are a pure function of (augmentation seed,
// epoch, sample), the cache serves the teacher's outputs on them so that training matches the live
// teacher, top-k storage keeps the top k and the rest's mass, and a stale or damaged file is rebuilt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setNumThreads, manualSeed } from '../../src/tensor/torch.js';
import { tidy } from '../../src/tensor/scope.js';
import type { Dataset } from '../../src/data/dataset.js';
import { subset } from '../../src/data/splits.js';
import { DataLoader } from '../../src/data/loader.js';
import { horizontalFlip, normalize, randomCrop, type AugmentSpec } from '../../src/data/augment.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams } from '../../src/methods/method.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';
import { TeacherViewCache, ViewCachedTeacher, planViewCache, type ViewCacheOptions } from '../../src/teachers/view-cache.js';
import { train } from '../../src/train/trainer.js';
import { parseExperiment } from '../../src/config/experiment.js';
import { syntheticData, CountingTeacher } from './helpers.js';

setNumThreads(1);
const SHAPE = [1, 8, 8];
const AUGS: AugmentSpec[] = [randomCrop(2), horizontalFlip(), normalize(0.5, 0.3)];
const data = (n: number, seed: number, name = 'synthetic-img'): Dataset => syntheticData(n, seed, { shape: SHAPE, hotStride: 9, name });
const tmp = (): string => mkdtempSync(join(tmpdir(), 'kd-views-'));

/** A small CNN teacher (conv + batch norm + pooling: the layers whose batched arithmetic could depend on the batch). */
function cnnTeacher(seed: number, classes = 4): CountingTeacher {
  manualSeed(seed);
  const m = createModel({ arch: 'cnn', channels: [4, 8], hidden: 16, numClasses: classes, inputShape: SHAPE });
  return new CountingTeacher(new ModuleTeacher(m, classes, `cnn seed ${seed}`, `test-cnn-${seed}-${classes}`));
}

/** Every sample's view in `epoch`, by dataset row, from a loader's batches. */
async function viewsOf(dl: DataLoader, epoch: number): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for await (const b of dl.epoch(epoch)) {
    const x = b.x.data<Float32Array>();
    const d = x.length / b.indices.length;
    b.indices.forEach((r, k) => out.set(r, Buffer.from(x.buffer, x.byteOffset + k * d * 4, d * 4).toString('hex')));
    b.x.dispose();
    b.y?.dispose();
  }
  return out;
}

test('a replayed view depends on (augmentation seed, epoch, sample) only: not on the run seed, batch size, worker thread or subset', async () => {
  const ds = data(60, 1);
  const base = await viewsOf(new DataLoader(ds, { batchSize: 8, seed: 1, augment: AUGS, augmentSeed: 7, prefetch: 'sync' }), 2);
  assert.equal(base.size, 60);
  const other = await viewsOf(new DataLoader(ds, { batchSize: 13, seed: 99, augment: AUGS, augmentSeed: 7, prefetch: 'worker' }), 2);
  assert.deepEqual(other, base, 'another run seed (order), batch size and the worker thread give the same views');
  // A subset's rows are named by their source index, so sample 10 has the same view there.
  const sub = subset(ds, Int32Array.of(40, 10, 3), 'sub');
  const subViews = await viewsOf(new DataLoader(sub, { batchSize: 2, seed: 5, augment: AUGS, augmentSeed: 7, prefetch: 'sync' }), 2);
  assert.equal(subViews.get(1), base.get(10));
  assert.equal(subViews.get(0), base.get(40));
  // The views do change with the epoch and the augmentation seed (crop ±2 and flip: 50 outcomes
  // per sample, so 60 samples all alike by chance is impossible in practice).
  const e3 = await viewsOf(new DataLoader(ds, { batchSize: 8, seed: 1, augment: AUGS, augmentSeed: 7, prefetch: 'sync' }), 3);
  const s8 = await viewsOf(new DataLoader(ds, { batchSize: 8, seed: 1, augment: AUGS, augmentSeed: 8, prefetch: 'sync' }), 2);
  assert.ok([...base].filter(([r, v]) => e3.get(r) !== v).length > 30, 'epochs differ');
  assert.ok([...base].filter(([r, v]) => s8.get(r) !== v).length > 30, 'augmentation seeds differ');
  // Without augmentSeed the loader keeps its batch-seeded augmentation (committed experiments unchanged).
  const plain = await viewsOf(new DataLoader(ds, { batchSize: 8, seed: 1, augment: AUGS, prefetch: 'sync' }), 2);
  assert.ok([...base].filter(([r, v]) => plain.get(r) !== v).length > 30);
});

test('a replayed view is bit-identical in another process', () => {
  const ds = data(20, 3);
  const hashViews = async (batchSize: number, seed: number): Promise<string> => {
    const v = await viewsOf(new DataLoader(ds, { batchSize, seed, augment: AUGS, augmentSeed: 11, prefetch: 'sync' }), 4);
    return createHash('sha256').update([...v.keys()].sort((a, b) => a - b).map((r) => v.get(r)).join()).digest('hex');
  };
  // The child rebuilds the same data and views from the compiled modules with another order and batch size.
  const dist = resolve('dist');
  const script = `
    import { DataLoader } from '${dist}/src/data/loader.js';
    import { randomCrop, horizontalFlip, normalize } from '${dist}/src/data/augment.js';
    import { syntheticData } from '${dist}/test/cache/helpers.js';
    import { createHash } from 'node:crypto';
    const ds = syntheticData(20, 3, { shape: [1, 8, 8], hotStride: 9, name: 'synthetic-img' });
    const dl = new DataLoader(ds, { batchSize: 3, seed: 1234, augment: [randomCrop(2), horizontalFlip(), normalize(0.5, 0.3)], augmentSeed: 11, prefetch: 'sync' });
    const out = new Map();
    for (const b of dl.epochSync(4)) {
      const x = b.x.data(); const d = x.length / b.indices.length;
      b.indices.forEach((r, k) => out.set(r, Buffer.from(x.buffer, x.byteOffset + k * d * 4, d * 4).toString('hex')));
    }
    process.stdout.write(createHash('sha256').update([...out.keys()].sort((a, b) => a - b).map((r) => out.get(r)).join()).digest('hex'));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return hashViews(7, 1).then((mine) => assert.equal(r.stdout, mine));
});

function kdRun(teacher: ViewCachedTeacher | CountingTeacher, ds: Dataset, epochs: number, o: { shuffle: boolean; batchSize: number }): Promise<Float32Array[]> {
  manualSeed(5);
  const student = createModel({ arch: 'mlp', hidden: [12], numClasses: 4, inputShape: SHAPE });
  const spec = getMethod('kd');
  const method = spec.create(resolveParams(spec, { temperature: 4, alpha: 0.9 }));
  const loader = new DataLoader(ds, { batchSize: o.batchSize, seed: 3, shuffle: o.shuffle, augment: AUGS, augmentSeed: 7, prefetch: 'sync' });
  return train({
    student, teacher, method, numClasses: 4, epochs, optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 },
    train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
  }).then(() => student.parameters().map((p) => p.data<Float32Array>().slice()));
}

const maxDiff = (a: Float32Array[], b: Float32Array[]): number => Math.max(...a.map((w, i) => Math.max(...w.map((v, j) => Math.abs(v - b[i]![j]!)))));

test('training with the view cache gives bit-identical weights to the live teacher when the batches are the same', async () => {
  const ds = data(200, 2);
  const notes: string[] = [];
  const t = cnnTeacher(4);
  // Built whole epochs in source order in batches of 40, as the unshuffled loader of batch 40
  // below batches them: the teacher then runs the same arithmetic on the same views (replayed
  // bit-identically, test above) on one thread, so it returns the same float32 logits, which the
  // float32 cache stores unchanged — and the students' updates are the same operations on the same numbers.
  const cache = TeacherViewCache.open(t, ds, { dir: tmp(), augment: AUGS, augmentSeed: 7, epochs: 3, batchSize: 40, notice: (l) => notes.push(l) });
  assert.equal(cache.status, 'built');
  assert.equal(cache.computed, 600);
  assert.equal(t.logitRows, 600, 'one pass over 3 epochs × 200 views');
  const same = { shuffle: false, batchSize: 40 };
  const cached = await kdRun(new ViewCachedTeacher(t, cache, (l) => notes.push(l)), ds, 3, same);
  assert.equal(t.logitRows, 600, 'training ran no live teacher pass');
  const live = await kdRun(cnnTeacher(4), ds, 3, same);
  cached.forEach((w, i) => assert.deepEqual(w, live[i], `parameter ${i} differs`));

  // A fourth epoch is past the cache: the live teacher runs it, with one notice, and training still matches.
  const longer = await kdRun(new ViewCachedTeacher(t, cache, (l) => notes.push(l)), ds, 4, same);
  assert.equal(t.logitRows, 800, 'epoch 4 ran the live teacher on its 200 samples');
  assert.equal(notes.filter((l) => /holds 3 epochs of views; from epoch 4 on the teacher runs live/.test(l)).length, 1);
  const liveLonger = await kdRun(cnnTeacher(4), ds, 4, same);
  longer.forEach((w, i) => assert.deepEqual(w, liveLonger[i], `parameter ${i} differs after the live epoch`));
});

test('with shuffled batches the view cache matches the live teacher to the last bits of the teacher\'s GEMMs', async () => {
  const ds = data(200, 2);
  const t = cnnTeacher(4);
  const o = { dir: tmp(), augment: AUGS, augmentSeed: 7, epochs: 3, batchSize: 64, notice: () => {} };
  const cache = TeacherViewCache.open(t, ds, o);
  // Per view, the cached logits (batches of 64) against the live teacher on that view alone: the
  // CPU kernels block a batch differently by its size, so the sums may round differently, by a few
  // ulps of the logits (|z| < 4 here, ulp 2.4e-7). 2e-6 allows 8 ulps and is 1000× below any real
  // difference of view (next check).
  const loader = new DataLoader(ds, { batchSize: 1, seed: 0, shuffle: false, augment: AUGS, augmentSeed: 7, prefetch: 'sync' });
  let worst = 0;
  for (const e of [0, 2]) {
    for (const b of loader.epochSync(e)) {
      const z = tidy(() => t.logits(b.x).data<Float32Array>());
      const c = cache.gather(e, b.indices);
      z.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - c[j]!)); });
      b.x.dispose();
      b.y?.dispose();
    }
  }
  assert.ok(worst <= 2e-6, `cached vs live logits: max |diff| ${worst}`);
  const otherSeed = TeacherViewCache.open(t, ds, { ...o, augmentSeed: 8 });
  const rows = Array.from({ length: 200 }, (_, i) => i);
  assert.ok(Math.max(...cache.gather(0, rows).map((v, j) => Math.abs(v - otherSeed.gather(0, rows)[j]!))) > 2e-3, 'other views give other logits');

  // Training: 3 epochs × 7 shuffled steps of SGD (lr 0.1, momentum 0.9). Teacher logits off by
  // ≤ 2e-6 move the soft targets by ≤ 2e-6 / T and the weights by roughly lr × steps × that, ~1e-6;
  // 1e-5 is the bound. The control — the teacher on the views of another augmentation seed, a
  // wrong signal — must move them far more, so this check can fail.
  const shuffled = { shuffle: true, batchSize: 32 };
  const cached = await kdRun(new ViewCachedTeacher(t, cache), ds, 3, shuffled);
  const live = await kdRun(cnnTeacher(4), ds, 3, shuffled);
  const wrong = await kdRun(new ViewCachedTeacher(t, otherSeed), ds, 3, shuffled);
  const d = maxDiff(cached, live), dWrong = maxDiff(wrong, live);
  assert.ok(d <= 1e-5, `weights differ by ${d}`);
  assert.ok(dWrong > 100 * 1e-5, `the control differs by only ${dWrong}`);
});

test('top-k storage keeps the top k logits exactly and the rest\'s total mass', () => {
  const ds = data(50, 6);
  const t = cnnTeacher(7, 12);
  const o: ViewCacheOptions = { dir: tmp(), augment: AUGS, augmentSeed: 1, epochs: 2, notice: () => {} };
  const full = TeacherViewCache.open(t, ds, o);
  const K = 3;
  const top = TeacherViewCache.open(t, ds, { ...o, topK: K });
  assert.notEqual(top.path, full.path, 'top-k has its own file');
  const reread = TeacherViewCache.open(t, ds, { ...o, topK: K });
  assert.equal(reread.status, 'loaded');
  const rows = Array.from({ length: 50 }, (_, i) => i);
  for (const e of [0, 1]) {
    const z = full.gather(e, rows), r = top.gather(e, rows), r2 = reread.gather(e, rows);
    assert.deepEqual(r2, r, 'the file gives back what was built');
    for (let i = 0; i < 50; i++) {
      const zi = Array.from(z.subarray(i * 12, i * 12 + 12)), ri = Array.from(r.subarray(i * 12, i * 12 + 12));
      const order = zi.map((v, c) => c).sort((a, b) => zi[b]! - zi[a]! || a - b);
      // Float32 storage of float32 logits: the top k are copied, so equal exactly.
      for (const c of order.slice(0, K)) assert.equal(ri[c], zi[c], `epoch ${e} sample ${i} class ${c}`);
      const lse = (v: number[]): number => { const m = Math.max(...v); return m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0)); };
      const restMass = (v: number[]): number => order.slice(K).reduce((s, c) => s + Math.exp(v[c]! - lse(v)), 0);
      // The rest's log-sum-exp is computed in float64 and stored in float32 (relative error 2^-24 on a
      // value of magnitude < 20 here, ~1e-6 absolute), then each rest class's share is rounded to
      // float32 again (another ~1e-6): the mass agrees to a relative 1e-5, far below a wrong mass.
      const want = restMass(zi), got = restMass(ri);
      assert.ok(Math.abs(got - want) <= 1e-5 * want, `epoch ${e} sample ${i}: rest mass ${got} vs ${want}`);
    }
  }
  assert.throws(() => TeacherViewCache.open(t, ds, { ...o, topK: 12 }), /topK must be an integer in \[1, 11\]/);
});

test('the view cache is shared across epoch counts and extended; a damaged or stale file is rebuilt with a notice', () => {
  const dir = tmp();
  const ds = data(40, 9);
  const t = cnnTeacher(2);
  const notes: string[] = [];
  const o: ViewCacheOptions = { dir, augment: AUGS, augmentSeed: 5, epochs: 2, notice: (l) => notes.push(l) };
  const a = TeacherViewCache.open(t, ds, o);
  const first = a.gather(1, [0, 1, 2]);
  assert.equal(TeacherViewCache.pathFor(t, ds, { ...o, epochs: 9 }), a.path, 'the epoch count is not in the key');
  assert.notEqual(TeacherViewCache.pathFor(t, ds, { ...o, augmentSeed: 6 }), a.path, 'the augmentation seed is');
  assert.notEqual(TeacherViewCache.pathFor(t, ds, { ...o, augment: [randomCrop(1)] }), a.path, 'and so is the recipe');

  const b = TeacherViewCache.open(t, ds, { ...o, epochs: 4 });
  assert.equal(b.status, 'extended');
  assert.equal(b.computed, 80, 'only epochs 3 and 4 computed');
  assert.deepEqual(b.gather(1, [0, 1, 2]), first);
  const c = TeacherViewCache.open(t, ds, { ...o, epochs: 3 });
  assert.equal(c.status, 'loaded', 'a 4-epoch file serves a 3-epoch run');
  assert.equal(c.epochs, 4);

  // One flipped byte in the logits: the checksum catches it.
  const bytes = readFileSync(a.path);
  bytes[bytes.length - 5]! ^= 0x40;
  writeFileSync(a.path, bytes);
  notes.length = 0;
  const d = TeacherViewCache.open(t, ds, o);
  assert.equal(d.status, 'built');
  assert.match(notes[0]!, /checksum mismatch \(corrupt file\); rebuilding/);
  assert.deepEqual(d.gather(1, [0, 1, 2]), first);
  // A truncated file does not parse.
  writeFileSync(a.path, bytes.subarray(0, 100));
  notes.length = 0;
  assert.equal(TeacherViewCache.open(t, ds, o).status, 'built');
  assert.match(notes[0]!, /unreadable/);
  // The data changed under the same name: the per-sample hashes catch it.
  const changed = { ...ds, x: ds.x.slice() };
  changed.x[5] = 0.123;
  notes.length = 0;
  assert.equal(TeacherViewCache.open(t, changed, o).status, 'built');
  assert.match(notes[0]!, /1 sample of 'synthetic-img' differ from when it was built; rebuilding/);
  assert.ok(existsSync(a.path));
});

test('teacherCache modes: auto and views use the view cache with replayable augmentation; on keeps un-augmented outputs', () => {
  assert.equal(planViewCache('auto', AUGS, { augmentSeed: 1 }).views, true);
  const noSeed = planViewCache('auto', AUGS);
  assert.equal(noSeed.use, false, 'not replayable: as before, no cache');
  const on = planViewCache('on', AUGS, { augmentSeed: 1 });
  assert.deepEqual([on.use, on.views, on.augment], [true, false, [normalize(0.5, 0.3)]]);
  assert.match(on.reason, /auto or views would cache each augmented view/);
  assert.equal(planViewCache('auto', AUGS, { augmentSeed: 1, needsFeatures: true }).use, false, 'features are not stored per view');
  assert.deepEqual(planViewCache('views', [normalize(0.5, 0.3)], { augmentSeed: 1 }).views, false, 'deterministic: the plain cache');
  assert.throws(() => planViewCache('views', AUGS), /set data\.augment\.seed/);
  assert.equal(planViewCache('off', AUGS, { augmentSeed: 1 }).use, false);

  const exp = (extra: Record<string, unknown>) => parseExperiment({ epochs: 1, teacher: { checkpoint: 't.safetensors' }, student: { arch: 'mlp' }, method: { name: 'kd' }, ...extra }, '/tmp/x.yaml');
  assert.throws(() => exp({ teacherCache: 'views' }), /'teacherCache' is 'views', which caches .*set data\.augment\.seed/);
  assert.throws(() => exp({ teacherCache: { topK: 5 } }), /'teacherCache.topK' applies to the view cache/);
  assert.throws(() => exp({ data: { augment: { seed: -1 } } }), /'data.augment.seed' must be >= 0/);
  const e = exp({ data: { augment: { crop: 2, seed: 3 } }, teacherCache: { mode: 'views', topK: 5, epochs: 2 } });
  assert.deepEqual([e.data.augment, e.teacherCache.topK, e.teacherCache.epochs], [{ crop: 2, flip: false, seed: 3 }, 5, 2]);
  assert.deepEqual(exp({}).data.augment, { crop: 0, flip: false }, 'no seed key when absent: older experiments record as before');
});
