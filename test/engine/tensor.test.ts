// Tensors: dtypes, typed-array round trips, factories, seeded random numbers (the same numbers
// PyTorch draws for the same seed: test/fixtures/engine/random.json), devices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, F, tidy, Tensor } from '../../src/index.js';
import { assertBitEqual, assertTensorClose, loadFixture, type Enc } from './helpers.js';

test('typed arrays round-trip for float32, float64, int64 and bool', () => {
  tidy(() => {
    const f32 = new Float32Array([1.5, -2.25, 3.1415927, 1e-30]);
    const a = torch.tensor(f32, { shape: [2, 2] });
    assert.equal(a.dtype, 'float32');
    assert.deepEqual(a.shape, [2, 2]);
    assert.deepEqual(a.data<Float32Array>(), f32);

    const f64 = new Float64Array([Math.PI, -Math.E, 1e-300, 12345678.123456789]);
    const b = torch.tensor(f64);
    assert.equal(b.dtype, 'float64');
    assert.deepEqual(b.data<Float64Array>(), f64);

    const i64 = new BigInt64Array([0n, -1n, 9007199254740993n, -(2n ** 62n)]);
    const c = torch.tensor(i64, { shape: [4, 1] });
    assert.equal(c.dtype, 'int64');
    assert.deepEqual(c.data<BigInt64Array>(), i64, 'int64 values beyond 2^53 survive');

    const bools = torch.tensor([[true, false], [false, true]]);
    assert.equal(bools.dtype, 'bool');
    assert.deepEqual([...bools.data<Uint8Array>()], [1, 0, 0, 1]);
    const fromBytes = torch.tensor(new Uint8Array([0, 1, 1]), { dtype: 'bool' });
    assert.equal(fromBytes.dtype, 'bool');

    // a subarray view with a byte offset is copied from the right place
    const big = new Float64Array([9, 8, 7, 6, 5]);
    assert.deepEqual([...torch.tensor(big.subarray(2, 4)).toFloat64Array()], [7, 6]);

    // data() returns a copy: mutating it leaves the tensor alone
    const d = b.data<Float64Array>();
    d[0] = 0;
    assert.equal(b.toFloat64Array()[0], Math.PI);
  });
});

test('nested arrays, dtype conversion, item() and tolist()', () => {
  tidy(() => {
    const t = torch.tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float64' });
    assert.deepEqual(t.shape, [2, 3]);
    assert.deepEqual(t.tolist(), [[1, 2, 3], [4, 5, 6]]);
    assert.equal(t.sum().item(), 21);
    const l = t.to('int64');
    assert.equal(l.dtype, 'int64');
    assert.equal(t.long().dtype, 'int64');
    assert.equal(t.float().dtype, 'float32');
    assert.equal(l.double().dtype, 'float64');
    assert.equal(t.gt(2).dtype, 'bool');
    assert.equal(t.gt(2).sum().item(), 4);
    assert.equal(torch.tensor(2.5).ndim, 0);
    assert.equal(torch.tensor(2.5).item(), 2.5);
    assert.equal(torch.tensor([true]).item(), 1);
    assert.deepEqual(torch.tensor([1.7, -1.7], { dtype: 'int64' }).tolist(), [1, -1]);
    // int64 + float scalar promotes to float, int64 / int64 true-divides as in PyTorch
    assert.equal(l.add(0.5).dtype, 'float32');
    assert.equal(l.div(l).dtype, 'float32');
    assert.throws(() => torch.tensor([[1, 2], [3]]), /ragged/);
    assert.throws(() => t.item(), /6 elements/);
  });
});

test('factories: zeros, ones, full, arange, eye, linspace and *_like', () => {
  tidy(() => {
    assert.deepEqual([...torch.zeros([2, 2]).toFloat64Array()], [0, 0, 0, 0]);
    assert.equal(torch.zeros([2]).dtype, 'float32');
    assert.equal(torch.ones([3], { dtype: 'float64' }).dtype, 'float64');
    assert.deepEqual([...torch.full([2], 7.5).toFloat64Array()], [7.5, 7.5]);
    assert.equal(torch.full([2], 3, { dtype: 'int64' }).dtype, 'int64');
    const r = torch.arange(5);
    assert.equal(r.dtype, 'int64');
    assert.deepEqual(r.tolist(), [0, 1, 2, 3, 4]);
    assert.deepEqual(torch.arange(1, 2, 0.25).tolist(), [1, 1.25, 1.5, 1.75]);
    assert.equal(torch.arange(1, 2, 0.25).dtype, 'float32');
    assert.deepEqual(torch.arange(0, 3, 1, { dtype: 'float64' }).tolist(), [0, 1, 2]);
    assert.deepEqual(torch.eye(2, 3).tolist(), [[1, 0, 0], [0, 1, 0]]);
    assert.deepEqual(torch.eye(2).tolist(), [[1, 0], [0, 1]]);
    assert.deepEqual(torch.linspace(0, 1, 3).tolist(), [0, 0.5, 1]);
    const x = torch.ones([2, 3], { dtype: 'float64' });
    assert.deepEqual(torch.zerosLike(x).shape, [2, 3]);
    assert.equal(torch.zerosLike(x).dtype, 'float64');
    assert.equal(torch.fullLike(x, 2).sum().item(), 12);
    assert.equal(torch.zeros([2], { requiresGrad: true }).requiresGrad, true);
  });
});

test('random numbers: same seed, same numbers as PyTorch (global generator and a Generator)', () => {
  const fx = loadFixture<Record<string, Enc | number>>('random.json');
  tidy(() => {
    torch.manualSeed(fx.seed as number);
    const randn = torch.randn([6]);
    const rand = torch.rand([5]);
    const randint = torch.randint(0, 10, [7]);
    const drop = F.dropout(torch.ones([3, 8]), 0.5, true);
    // these are the kernels and generator PyTorch uses: bit-for-bit the same draws
    assertTensorClose(randn, fx.randn as Enc, 'randn', { rtol: 0, atol: 0 });
    assertTensorClose(rand, fx.rand as Enc, 'rand', { rtol: 0, atol: 0 });
    assertTensorClose(randint, fx.randint as Enc, 'randint');
    assertTensorClose(drop, fx.dropout as Enc, 'dropout', { rtol: 0, atol: 0 });
    const g = new torch.Generator(fx.generatorSeed as number);
    assertTensorClose(torch.randn([4], { generator: g, dtype: 'float64' }), fx.generatorRandn as Enc, 'Generator randn', { rtol: 0, atol: 0 });
  });
});

test('seeding makes randn, rand, randint, randperm and dropout repeatable; generators are independent', () => {
  tidy(() => {
    const draw = (): Tensor[] => [torch.randn([50]), torch.rand([50]), torch.randint(-5, 5, [50]), torch.randperm(20),
      F.dropout(torch.ones([50]), 0.3, true)];
    torch.manualSeed(11);
    const a = draw();
    torch.manualSeed(11);
    const b = draw();
    const c = draw();
    a.forEach((t, i) => assertBitEqual(t, b[i]!, `draw ${i}`));
    assert.ok(!a[0]!.equal(c[0]!), 'the stream moves on without reseeding');
    // dropout in eval mode is the identity, and scales by 1/(1-p) in training
    const kept = a[4]!.toFloat64Array().filter((v) => v !== 0);
    assert.ok(kept.every((v) => Math.abs(v - 1 / 0.7) < 1e-6));
    assert.ok(F.dropout(torch.ones([5]), 0.3, false).equal(torch.ones([5])));

    // a separate Generator is unaffected by the global seed and by other draws
    const g1 = new torch.Generator(5);
    const x1 = torch.rand([10], { generator: g1 });
    torch.manualSeed(999);
    torch.randn([100]);
    const g2 = new torch.Generator(0).manualSeed(5);
    assertBitEqual(torch.rand([10], { generator: g2 }), x1, 'Generator(5)');
    // save and restore of a generator state replays the same numbers
    const st = g2.getState();
    const y1 = torch.randn([5], { generator: g2 });
    g2.setState(st);
    assertBitEqual(torch.randn([5], { generator: g2 }), y1, 'restored generator state');
    const gs = torch.getRngState();
    const z1 = torch.randn([5]);
    torch.setRngState(gs);
    assertBitEqual(torch.randn([5]), z1, 'restored global state');
    // randint bounds
    const ri = torch.randint(3, 6, [1000], { generator: g1 }).toFloat64Array();
    assert.ok(ri.every((v) => v >= 3 && v < 6) && new Set(ri).size === 3);
  });
});

test('threads: setNumThreads/getNumThreads; invalid counts are refused', () => {
  const before = torch.getNumThreads();
  try {
    torch.setNumThreads(1);
    assert.equal(torch.getNumThreads(), 1);
    torch.setNumThreads(2);
    assert.equal(torch.getNumThreads(), 2);
    assert.throws(() => torch.setNumThreads(0), RangeError);
    assert.throws(() => torch.setNumThreads(1.5), RangeError);
  } finally {
    torch.setNumThreads(before);
  }
});

test('devices: tensors live on the cpu; to("cpu") copies, an unknown device is a JS error', () => {
  tidy(() => {
    const x = torch.ones([2]);
    assert.equal(x.device, 'cpu');
    const y = x.to('cpu');
    assert.equal(y.device, 'cpu');
    assert.ok(y.equal(x));
    assert.throws(() => x.to('tpu:0'), (e: unknown) => e instanceof Error && /device/i.test(e.message));
  });
});

test('broadcasting and scalars in comparisons and arithmetic follow PyTorch shapes', () => {
  tidy(() => {
    const a = torch.arange(6, undefined, 1, { dtype: 'float64' }).reshape(2, 3);
    const col = torch.tensor([[10], [20]], { dtype: 'float64' });
    assert.deepEqual(a.add(col).tolist(), [[10, 11, 12], [23, 24, 25]]);
    assert.deepEqual(a.ge(col.div(10).mul(2)).tolist(), [[0, 0, 1], [0, 1, 1]]);
    assert.deepEqual(a.remainder(4).tolist(), [[0, 1, 2], [3, 0, 1]]);
    assert.deepEqual(a.div(4, 'floor').tolist(), [[0, 0, 0], [0, 1, 1]]);
    assert.deepEqual(a.T.shape, [3, 2]);
    assert.deepEqual(a.unsqueeze(0).expand(4, 2, 3).shape, [4, 2, 3]);
    const { values, indices } = a.topk(2, { dim: 1 });
    assert.deepEqual(values.tolist(), [[2, 1], [5, 4]]);
    assert.deepEqual(indices.tolist(), [[2, 1], [2, 1]]);
  });
});
