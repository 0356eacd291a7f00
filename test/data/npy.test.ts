import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeNpy, encodeNpy, readNpy, readNpyDataset, writeNpy } from '../../src/data/npy.js';
import { DataError } from '../../src/data/errors.js';
import { Rng } from '../../src/data/rng.js';
import { arrayBufferGrowth, fx, throwsData } from './fixtures.js';
const arr = (d: unknown): (number | bigint)[] => Array.from(d as ArrayLike<number | bigint>);

test('npy: reads what NumPy wrote, every supported dtype and header version', () => {
  const f4 = readNpy(fx('npy/f4.npy'));
  assert.deepEqual([f4.dtype, f4.shape, arr(f4.data)], ['float32', [2, 3], [0, 0.25, 0.5, 0.75, 1, 1.25]]);
  assert.ok(f4.data instanceof Float32Array);
  assert.deepEqual(arr(readNpy(fx('npy/f8.npy')).data), [0.1, -2, 1e300, 3.5]);
  assert.deepEqual(arr(readNpy(fx('npy/i4.npy')).data), [1, -2, 2 ** 31 - 1]);
  const i8 = readNpy(fx('npy/i8.npy'));
  assert.deepEqual([i8.dtype, i8.shape, arr(i8.data)], ['int64', [2, 2], [1n, -2n, 2n ** 40n, -(2n ** 40n)]]);
  const u1 = readNpy(fx('npy/u1.npy'));
  assert.deepEqual([u1.dtype, u1.shape, arr(u1.data)], ['uint8', [5, 1, 1], [0, 1, 2, 3, 4]]);
  const b1 = readNpy(fx('npy/b1.npy'));
  assert.deepEqual([b1.dtype, arr(b1.data)], ['bool', [1, 0, 1]]);
  const sc = readNpy(fx('npy/scalar.npy'));
  assert.deepEqual([sc.shape, arr(sc.data)], [[], [2.5]]);
  assert.deepEqual(arr(readNpy(fx('npy/v2.npy')).data), [0, 1, 2, 3]);
  assert.deepEqual(arr(readNpy(fx('npy/v3.npy')).data), [0, 1, 2, 3]);
});

test('npy: writer output is byte-identical to NumPy and round-trips', () => {
  const f4 = readNpy(fx('npy/f4.npy'));
  assert.deepEqual(Buffer.from(encodeNpy(f4)), readFileSync(fx('npy/f4.npy')));
  assert.deepEqual(Buffer.from(encodeNpy(readNpy(fx('npy/b1.npy')))), readFileSync(fx('npy/b1.npy')));
  const dir = mkdtempSync(join(tmpdir(), 'kdistill-npy-'));
  try {
    const p = join(dir, 'a.npy');
    writeNpy(p, { data: new BigInt64Array([5n, -6n]), shape: [2, 1] });
    const back = readNpy(p);
    assert.deepEqual([back.dtype, back.shape, arr(back.data)], ['int64', [2, 1], [5n, -6n]]);
    // A shape long enough to need a version 2.0 header.
    const big = encodeNpy({ data: new Uint8Array(0), shape: Array(30000).fill(0) });
    assert.equal(big[6], 2);
    assert.equal(decodeNpy(big, 'big.npy').shape.length, 30000);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('npy: dataset from x.npy and y.npy', () => {
  const ds = readNpyDataset({ x: fx('npy/x.npy'), y: fx('npy/y.npy'), name: 'toy' });
  assert.deepEqual([ds.name, ds.size, ds.sampleShape, ds.numClasses], ['toy', 8, [3], 3]);
  assert.equal(ds.x[4], Math.fround(0.4));
  assert.deepEqual(arr(ds.y!), [0, 1, 2, 0, 1, 2, 0, 1]);
  assert.equal(ds.sources!.length, 2);
  throwsData(() => readNpyDataset({ x: fx('npy/x.npy'), y: fx('npy/f4.npy') }), 'f4.npy', /labels must have shape \(8,\)/);
  throwsData(() => readNpyDataset({ x: fx('npy/x.npy'), y: fx('npy/y.npy'), numClasses: 2 }), 'y.npy', /label 2 at index 2 is out of range/);
});

test('npy: unsupported, corrupt and lying files fail with errors naming the file', () => {
  const cases: [string, RegExp][] = [
    ['npy/fortran.npy', /Fortran-order arrays are not supported/],
    ['npy/big-endian.npy', /big-endian dtype '>f4' is not supported/],
    ['npy/complex.npy', /unsupported NPY dtype '<c8'/],
    ['npy/structured.npy', /structured NPY dtypes are not supported/],
    ['npy/truncated.npy', /truncated NPY data: shape \(2, 3\) of '<f4' needs 24 bytes, file has 19/],
    ['npy/trailing.npy', /trailing data/],
    ['npy/bad-magic.npy', /not an NPY file/],
    ['npy/bad-version.npy', /unsupported NPY format version 9.0/],
    ['npy/header-overrun.npy', /truncated NPY header: it claims 60000 bytes/],
    ['npy/bad-header.npy', /no tuple 'shape'|unexpected NPY header keys/],
    ['npy/lying-shape.npy', /over the \d+-byte limit/],
    ['npy/lying-shape-1g.npy', /needs 1073741824 bytes, file has 12/],
  ];
  for (const [f, re] of cases) throwsData(() => readNpy(fx(f)), f, re);
  const grew = arrayBufferGrowth(() => readNpy(fx('npy/lying-shape-1g.npy')));
  assert.ok(grew < 16, `array buffers grew ${grew.toFixed(1)} MiB`);
});

test('npy: seeded fuzz of truncations and bit flips never escapes as a non-DataError', () => {
  const rng = new Rng(5);
  const seeds = ['f4.npy', 'i8.npy', 'v3.npy', 'b1.npy'].map((f) => readFileSync(fx('npy/' + f)));
  for (let k = 0; k < 600; k++) {
    const src = seeds[k % seeds.length]!;
    const b = Uint8Array.from(src.subarray(0, rng.nextInt(3) ? src.length : rng.nextInt(src.length + 1)));
    for (let f = 1 + rng.nextInt(3); f > 0 && b.length > 0; f--) {
      const at = rng.nextInt(b.length);
      b[at] = rng.nextInt(4) === 0 ? 0x39 /* '9' */ : b[at]! ^ (1 << rng.nextInt(8));
    }
    try {
      const a = decodeNpy(b, `fuzz-${k}.npy`);
      assert.equal(a.data.length, a.shape.reduce((x, y) => x * y, 1));
    } catch (e) {
      assert.ok(e instanceof DataError && e.message.startsWith(`fuzz-${k}.npy: `), `case ${k}: ${String(e)}`);
    }
  }
});
