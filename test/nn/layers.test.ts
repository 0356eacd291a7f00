// Every layer against PyTorch golden values (test/fixtures/nn/layers.json): outputs, gradients
// w.r.t. input and parameters, updated running statistics, and PyTorch-identical seeded init.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, tidy } from '../../src/index.js';
import * as nn from '../../src/nn/index.js';
import { assertClose, fromEnc, loadFixture, stateFromEnc, type Enc } from './helpers.js';

interface LayerCase {
  seed: number; mode: 'train' | 'eval'; steps: number; forwardSeed?: number;
  init?: Record<string, Enc>; state: Record<string, Enc>;
  input: Enc; output: Enc; gradOutput: Enc; gradInput?: Enc;
  gradParams: Record<string, Enc>; stateAfter: Record<string, Enc>;
}
const fx = loadFixture<Record<string, LayerCase>>('layers.json');

const builders: Record<string, () => nn.Module> = {
  linear: () => new nn.Linear(5, 3),
  linear_nobias_3d: () => new nn.Linear(4, 2, { bias: false }),
  conv2d: () => new nn.Conv2d(4, 6, 3, { stride: 2, padding: 1, groups: 2 }),
  conv2d_rect_nobias: () => new nn.Conv2d(3, 4, [3, 2], { stride: [1, 2], padding: [1, 0], dilation: [2, 1], bias: false }),
  conv2d_same: () => new nn.Conv2d(2, 3, 3, { padding: 'same' }),
  batchnorm1d_train: () => new nn.BatchNorm1d(3),
  batchnorm1d_eval: () => new nn.BatchNorm1d(3),
  batchnorm1d_3d_train: () => new nn.BatchNorm1d(3),
  batchnorm2d_train: () => new nn.BatchNorm2d(3),
  batchnorm2d_eval: () => new nn.BatchNorm2d(3),
  batchnorm2d_cumulative_train: () => new nn.BatchNorm2d(3, { momentum: null }),
  batchnorm2d_noaffine_train: () => new nn.BatchNorm2d(3, { affine: false, momentum: 0.3 }),
  batchnorm2d_nostats_eval: () => new nn.BatchNorm2d(3, { trackRunningStats: false }),
  layernorm: () => new nn.LayerNorm([4, 5]),
  layernorm_noaffine: () => new nn.LayerNorm(5, 1e-3, { elementwiseAffine: false }),
  embedding: () => new nn.Embedding(10, 4, { paddingIdx: 0 }),
  dropout_train: () => new nn.Dropout(0.4),
  dropout_eval: () => new nn.Dropout(0.4),
  maxpool2d: () => new nn.MaxPool2d(3, { stride: 2, padding: 1 }),
  maxpool2d_ceil: () => new nn.MaxPool2d(2, { ceilMode: true }),
  avgpool2d: () => new nn.AvgPool2d(3, { stride: 2, padding: 1, countIncludePad: false }),
  avgpool2d_plain: () => new nn.AvgPool2d(2),
  adaptiveavgpool2d: () => new nn.AdaptiveAvgPool2d([3, 2]),
  flatten: () => new nn.Flatten(),
  relu: () => new nn.ReLU(),
  gelu: () => new nn.GELU(),
  silu: () => new nn.SiLU(),
  tanh: () => new nn.Tanh(),
  sigmoid: () => new nn.Sigmoid(),
  identity: () => new nn.Identity(),
  sequential: () => new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 3)),
};

test('every fixture case has a builder and vice versa', () => {
  assert.deepEqual(Object.keys(builders).sort(), Object.keys(fx).sort());
});

for (const [name, c] of Object.entries(fx)) {
  test(`${name} matches PyTorch (${c.mode})`, () => {
    tidy(() => {
      torch.manualSeed(c.seed);
      const m = builders[name]!();
      if (c.init) {
        // Same seed, same draws: the default initialisation is PyTorch's, number for number.
        const sd = m.stateDict();
        assert.deepEqual([...sd.keys()].sort(), Object.keys(c.init).sort());
        for (const [k, e] of Object.entries(c.init)) assertClose(sd.get(k)!, e, `${name} init ${k}`, 1e-6, 1e-7);
      }
      m.loadStateDict(stateFromEnc(c.state));
      if (c.mode === 'train') m.train(); else m.eval();
      const x = fromEnc(c.input);
      if (x.dtype === 'float32') x.requiresGrad_(true);
      // Extra steps only advance running statistics (the cumulative-average case).
      for (let i = 1; i < c.steps; i++) torch.noGrad(() => m.call(x));
      if (c.forwardSeed !== undefined) torch.manualSeed(c.forwardSeed);
      const y = m.call(x);
      assertClose(y, c.output, `${name} output`);
      y.mul(fromEnc(c.gradOutput)).sum().backward();
      if (c.gradInput) assertClose(x.grad!, c.gradInput, `${name} grad input`);
      const params = new Map(m.namedParameters());
      assert.deepEqual([...params.keys()].filter((k) => params.get(k)!.grad !== null).sort(), Object.keys(c.gradParams).sort(), `${name}: params with gradients`);
      for (const [k, e] of Object.entries(c.gradParams)) assertClose(params.get(k)!.grad!, e, `${name} grad ${k}`);
      const bufs = new Map(m.namedBuffers());
      assert.deepEqual([...bufs.keys()].sort(), Object.keys(c.stateAfter).sort(), `${name}: buffers`);
      for (const [k, e] of Object.entries(c.stateAfter)) assertClose(bufs.get(k)!, e, `${name} ${k} after forward`);
    });
  });
}

test('batch norm: running statistics move only in training, and eval uses them', () => {
  tidy(() => {
    const bn = new nn.BatchNorm2d(2);
    const x = torch.randn([4, 2, 3, 3]).mul(3).add(5);
    bn.eval();
    const before = bn.runningMean!.clone();
    bn.call(x);
    assert.ok(bn.runningMean!.equal(before));
    assert.equal(bn.numBatchesTracked!.item(), 0);
    bn.train();
    bn.call(x);
    bn.call(x);
    assert.equal(bn.numBatchesTracked!.item(), 2);
    // Two momentum-0.1 steps towards the batch mean (≈5): 0.19 of the way.
    const expected = x.mean({ dim: [0, 2, 3] }).mul(1 - 0.9 * 0.9);
    assertClose(bn.runningMean!, expected, 'running mean after 2 steps');
    bn.resetRunningStats();
    assert.equal(bn.numBatchesTracked!.item(), 0);
    assert.equal(bn.runningVar!.sum().item(), 2);
  });
});

test('batch norm refuses one value per channel in training, as PyTorch', () => {
  tidy(() => {
    const bn = new nn.BatchNorm1d(3);
    assert.throws(() => bn.call(torch.randn([1, 3])), /expected more than 1 value per channel when training, got input size \[1, 3\]/);
    bn.eval();
    assert.deepEqual(bn.call(torch.randn([1, 3])).shape, [1, 3]);
    assert.throws(() => bn.call(torch.randn([2, 4])), /BatchNorm1d: expected input \[N, C\] or \[N, C, L\] with C = 3, got \[2, 4\]/);
    assert.throws(() => new nn.BatchNorm2d(2).call(torch.randn([2, 2, 3])), /\[N, C, H, W\]/);
  });
});

test('state-dict keys use PyTorch names', () => {
  tidy(() => {
    assert.deepEqual([...new nn.BatchNorm2d(4).stateDict().keys()], ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    assert.equal(new nn.BatchNorm2d(4).stateDict().get('num_batches_tracked')!.dtype, 'int64');
    assert.deepEqual([...new nn.Sequential(new nn.Conv2d(1, 2, 3), new nn.ReLU(), new nn.Linear(2, 2)).stateDict().keys()],
      ['0.weight', '0.bias', '2.weight', '2.bias']);
    assert.deepEqual([...new nn.Linear(3, 2, { bias: false }).stateDict().keys()], ['weight']);
  });
});

test('layers reject bad arguments and inputs with messages that name them', () => {
  tidy(() => {
    assert.throws(() => new nn.Linear(0, 3), /Linear: inFeatures must be a positive integer, got 0/);
    assert.throws(() => new nn.Conv2d(3, 4, 3, { groups: 2 }), /divisible by groups \(2\)/);
    assert.throws(() => new nn.Conv2d(3, 4, [3, 0]), /kernelSize/);
    assert.throws(() => new nn.Dropout(1.5), /Dropout: p must be in \[0, 1\], got 1.5/);
    assert.throws(() => new nn.Embedding(5, 2, { paddingIdx: 5 }), /paddingIdx/);
    const seq = new nn.Sequential(new nn.Linear(4, 3));
    assert.throws(() => seq.call(torch.randn([2, 5])), /Linear '0': expected input \[\.\.\., 4\], got \[2, 5\]/);
    assert.throws(() => new nn.Conv2d(3, 4, 3).call(torch.randn([1, 2, 5, 5])), /Conv2d: expected input \[N, 3, H, W\], got \[1, 2, 5, 5\]/);
    assert.throws(() => new nn.Embedding(5, 2).call(torch.tensor([1, 2])), /indices must be int64 or int32, got float32/);
    assert.throws(() => seq.at(3), /index 3 out of range/);
  });
});

test('dropout: identity in eval, scaled mask in training, seeded by manualSeed', () => {
  tidy(() => {
    const d = new nn.Dropout(0.5);
    const x = torch.ones([1000]);
    torch.manualSeed(3);
    const a = d.call(x);
    torch.manualSeed(3);
    const b = d.call(x);
    assert.ok(a.equal(b));
    const kept = a.gt(0).sum().item();
    assert.ok(kept > 400 && kept < 600, `kept ${kept}`);
    assert.equal(a.max().item(), 2);
    d.eval();
    assert.ok(d.call(x).equal(x));
  });
});

test('Residual adds the shortcut and checks shapes; Sequential length/at/append', () => {
  tidy(() => {
    const lin = new nn.Linear(3, 3);
    const r = new nn.Residual(lin);
    const x = torch.randn([2, 3]);
    assertClose(r.call(x), lin.call(x).add(x), 'residual');
    assert.deepEqual([...r.stateDict().keys()], ['body.weight', 'body.bias']);
    assert.throws(() => new nn.Residual(new nn.Linear(3, 2)).call(x), /body output \[2, 2\] and shortcut \[2, 3\] differ/);
    const s = new nn.Sequential(new nn.ReLU());
    s.append(new nn.Tanh());
    assert.equal(s.length, 2);
    assert.ok(s.at(-1) instanceof nn.Tanh);
  });
});

test('init helpers follow the PyTorch formulas', () => {
  tidy(() => {
    const w = torch.empty([200, 50]);
    nn.init.kaimingNormal_(w, { mode: 'fan_out', nonlinearity: 'relu' });
    const std = w.std().item();
    assert.ok(Math.abs(std - Math.sqrt(2 / 200)) < 0.01 * 2, `std ${std}`);
    nn.init.xavierUniform_(w);
    const bound = Math.sqrt(6 / 250);
    assert.ok(w.abs().max().item() <= bound);
    nn.init.truncNormal_(w, 0, 1, -0.5, 0.5);
    assert.ok(w.abs().max().item() <= 0.5);
    assert.ok(Math.abs(w.mean().item()) < 0.05);
    assert.equal(nn.init.calculateGain('leaky_relu', Math.sqrt(5)), Math.sqrt(2 / 6.000000000000001));
    assert.deepEqual(nn.init.calculateFanInAndFanOut(torch.empty([8, 4, 3, 3])), { fanIn: 36, fanOut: 72 });
    assert.throws(() => nn.init.kaimingUniform_(torch.empty([3])), /at least 2 dimensions/);
    w.dispose();
  });
});
