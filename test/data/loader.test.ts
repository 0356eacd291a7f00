import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Dataset } from '../../src/data/dataset.js';
import { DataLoader, type Batch } from '../../src/data/loader.js';
import { horizontalFlip, normalize, randomCrop } from '../../src/data/augment.js';

/** n images [1, 4, 4]; every pixel of image i is i + 1 except pixel (0, 0), which is 0; label i % 3. */
function images(n: number, labeled = true): Dataset {
  const x = new Float32Array(n * 16);
  for (let i = 0; i < n; i++) x.fill(i + 1, i * 16 + 1, (i + 1) * 16);
  const y = labeled ? Int32Array.from({ length: n }, (_, i) => i % 3) : null;
  return { name: 'imgs', sampleShape: [1, 4, 4], x, y, size: n, numClasses: 3 };
}

async function collect(it: AsyncIterable<Batch> | Iterable<Batch>): Promise<{ idx: number[][]; x: number[][]; y: (bigint[] | null)[] }> {
  const out = { idx: [] as number[][], x: [] as number[][], y: [] as (bigint[] | null)[] };
  for await (const b of it) {
    out.idx.push(Array.from(b.indices));
    out.x.push(Array.from(b.x.data() as Float32Array));
    out.y.push(b.y ? Array.from(b.y.data() as BigInt64Array) : null);
    b.x.dispose();
    b.y?.dispose();
  }
  return out;
}

test('loader: batches are tensors of the right shape, dtype and content', async () => {
  const ds = images(10);
  const dl = new DataLoader(ds, { batchSize: 4, seed: 1, prefetch: 'sync' });
  assert.equal(dl.numBatches, 3);
  const b = dl.batch(0, 0);
  assert.deepEqual(b.x.shape, [4, 1, 4, 4]);
  assert.equal(b.x.dtype, 'float32');
  assert.deepEqual(b.y!.shape, [4]);
  assert.equal(b.y!.dtype, 'int64');
  const xs = b.x.data() as Float32Array;
  b.indices.forEach((r, k) => {
    assert.equal(xs[k * 16 + 5], r + 1);
    assert.equal(Number((b.y!.data() as BigInt64Array)[k]), r % 3);
  });
  b.x.dispose();
  b.y!.dispose();
  const last = await collect(dl.epoch(0, { startBatch: 2 }));
  assert.equal(last.idx[0]!.length, 2); // 10 = 4 + 4 + 2
  assert.equal(new DataLoader(ds, { batchSize: 4, dropLast: true }).numBatches, 2);
});

test('loader: each epoch is a permutation; same seed same order; epochs and seeds differ', async () => {
  const ds = images(50);
  const mk = (seed: number) => new DataLoader(ds, { batchSize: 8, seed, prefetch: 'sync' });
  const e0 = (await collect(mk(3).epoch(0))).idx;
  assert.deepEqual(e0.flat().sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual((await collect(mk(3).epoch(0))).idx, e0);
  assert.notDeepEqual((await collect(mk(3).epoch(1))).idx, e0);
  assert.notDeepEqual((await collect(mk(4).epoch(0))).idx, e0);
  // The order of epoch 5 does not depend on having iterated epochs 0..4.
  const fresh = mk(3);
  const other = mk(3);
  for (let e = 0; e < 5; e++) await collect(other.epoch(e));
  assert.deepEqual(Array.from(fresh.order(5)), Array.from(other.order(5)));
  const plain = new DataLoader(ds, { batchSize: 8, shuffle: false, prefetch: 'sync' });
  assert.deepEqual((await collect(plain.epoch(3))).idx.flat(), Array.from({ length: 50 }, (_, i) => i));
});

test('loader: resuming at batch k replays the tail of the epoch exactly, augmentation included', async () => {
  const ds = images(40);
  const opts = { batchSize: 6, seed: 9, augment: [randomCrop(1), horizontalFlip(), normalize(0.5, 2)] };
  const full = await collect(new DataLoader(ds, { ...opts, prefetch: 'sync' }).epoch(2));
  const k = 3;
  for (const prefetch of ['sync', 'worker'] as const) {
    const dl = new DataLoader(ds, { ...opts, prefetch });
    const tail = await collect(dl.epoch(2, { startBatch: k }));
    assert.deepEqual(tail.idx, full.idx.slice(k), prefetch);
    assert.deepEqual(tail.x, full.x.slice(k), prefetch);
    assert.deepEqual(tail.y, full.y.slice(k), prefetch);
    await dl.close();
  }
  const sync = await collect(new DataLoader(ds, { ...opts, prefetch: 'sync' }).epochSync(2, { startBatch: k }));
  assert.deepEqual(sync.x, full.x.slice(k));
  // Augmentation did something, and differs between batches of the same content across epochs.
  assert.notDeepEqual(full.x[0], Array.from(ds.x.subarray(0, 16)));
});

test('loader: worker prefetch yields bit-identical batches to synchronous mode, over several epochs', async () => {
  const ds = images(100);
  const opts = { batchSize: 16, seed: 2, augment: [randomCrop(2), horizontalFlip(0.5)] };
  const w = new DataLoader(ds, { ...opts, prefetch: 'worker', prefetchDepth: 3 });
  const s = new DataLoader(ds, { ...opts, prefetch: 'sync' });
  assert.equal(w.mode, 'worker');
  for (let e = 0; e < 3; e++) assert.deepEqual(await collect(w.epoch(e)), await collect(s.epoch(e)));
  // Leaving an epoch early (batches still in flight) and starting another is fine.
  for await (const b of w.epoch(7)) { b.x.dispose(); b.y?.dispose(); break; }
  assert.deepEqual(await collect(w.epoch(8)), await collect(s.epoch(8)));
  await w.close();
  // Still usable after close(): a new worker starts on demand.
  assert.deepEqual(await collect(w.epoch(1, { startBatch: 5 })), await collect(s.epoch(1, { startBatch: 5 })));
  await w.close();
});

test('loader: unlabeled data, options validation and auto mode', async () => {
  const un = new DataLoader(images(5, false), { batchSize: 2, prefetch: 'sync' });
  const got = await collect(un.epoch(0));
  assert.deepEqual(got.y, [null, null, null]);
  assert.throws(() => new DataLoader(images(5), { batchSize: 0 }), /positive integer/);
  assert.throws(() => new DataLoader(images(5), { batchSize: 2, prefetch: 'worker', augment: (x) => x.fill(0) }), /functions cannot cross threads/);
  assert.throws(() => un.batchIndices(0, 3), /batch 3 out of range/);
  await assert.rejects(async () => { for await (const b of un.epoch(0, { startBatch: 4 })) b.x.dispose(); }, /startBatch 4 out of range/);
  // Little work per batch is not worth a thread; a big augmented batch is (on ≥2 cores).
  assert.equal(new DataLoader(images(5), { batchSize: 2 }).mode, 'sync');
  const big: Dataset = { name: 'big', sampleShape: [1, 28, 28], x: new Float32Array(256 * 784), y: null, size: 256, numClasses: 0 };
  assert.equal(new DataLoader(big, { batchSize: 128 }).mode, 'sync');
  const auto = new DataLoader(big, { batchSize: 128, augment: [randomCrop(2), horizontalFlip()] });
  assert.equal(auto.mode, (await import('node:os')).availableParallelism() >= 2 ? 'worker' : 'sync');
  // A function augmentation keeps 'auto' on the main thread.
  assert.equal(new DataLoader(big, { batchSize: 128, augment: (x) => x.fill(0) }).mode, 'sync');
});
