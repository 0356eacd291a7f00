// The model zoo against the PyTorch reference definitions in scripts/fixtures/nn.py: parameter
// counts, state-dict names, seeded initialisation, outputs/gradients with shared weights, plus
// feature capture, train/eval behaviour and spec validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, tidy, Tensor } from '../../src/index.js';
import * as nn from '../../src/nn/index.js';
import { assertClose, assertNear, fromEnc, loadFixture, type Enc } from './helpers.js';

interface ZooCase {
  spec: nn.ModelSpec; numParameters: number; stateKeys: string[];
  initFingerprint: Record<string, [number, number]>; weightsFingerprint: Record<string, [number, number]>;
  input: Enc; outputEval: Enc; outputTrain: Enc; gradOutput: Enc; gradInput: Enc;
  gradFingerprint: Record<string, [number, number]>; buffersAfter: Record<string, [number, number]>;
}
const fx = loadFixture<{ models: ZooCase[]; paramCounts100: Record<string, number> }>('zoo.json');

function fingerprint(t: Tensor): [number, number] {
  const d = t.toFloat64Array();
  let s = 0, q = 0;
  for (const v of d) { s += v; q += v * v; }
  return [s, q];
}
function checkFingerprint(actual: Tensor, exp: [number, number], what: string, rtol = 1e-4): void {
  const [s, q] = fingerprint(actual);
  // Sums can cancel to near zero, so their tolerance scales with the magnitude (√ sum of squares).
  assertNear(s, exp[0], `${what} sum`, 0, rtol * Math.sqrt(exp[1]) * 10 + 1e-6);
  assertNear(q, exp[1], `${what} sum of squares`, rtol);
}

/** The fixture script's weights: by sorted name, from the global generator. */
function setWeights(m: nn.Module, seed: number): void {
  torch.manualSeed(seed);
  const sd = m.stateDict();
  torch.noGrad(() => {
    for (const k of [...sd.keys()].sort()) {
      if (k.endsWith('num_batches_tracked')) continue;
      const t = sd.get(k)!;
      const v = k.endsWith('running_var') ? torch.rand(t.shape).add(0.5) : torch.randn(t.shape).mul(0.1);
      t.copy_(v);
    }
  });
}

for (const c of fx.models) {
  test(`${c.spec.arch} ${JSON.stringify(c.spec)} matches the PyTorch reference`, () => {
    tidy(() => {
      torch.manualSeed(0);
      const m = nn.createModel(c.spec);
      assert.equal(m.numParameters(), c.numParameters);
      const sd = m.stateDict();
      assert.deepEqual([...sd.keys()].sort(), c.stateKeys);
      // Same construction order and initialisers as the reference: the same numbers.
      for (const [k, f] of Object.entries(c.initFingerprint)) checkFingerprint(sd.get(k)!, f, `init ${k}`);
      setWeights(m, 1);
      for (const [k, f] of Object.entries(c.weightsFingerprint)) checkFingerprint(sd.get(k)!, f, `weights ${k}`, 1e-5);
      const x = fromEnc(c.input);
      m.eval();
      torch.noGrad(() => assertClose(m.call(x), c.outputEval, 'eval output', 1e-3, 1e-4));
      m.train();
      const xg = x.clone().requiresGrad_(true);
      const y = m.call(xg);
      assertClose(y, c.outputTrain, 'train output', 1e-3, 1e-4);
      y.mul(fromEnc(c.gradOutput)).sum().backward();
      assertClose(xg.grad!, c.gradInput, 'grad input', 1e-3, 1e-4);
      const params = new Map(m.namedParameters());
      for (const [k, f] of Object.entries(c.gradFingerprint)) checkFingerprint(params.get(k)!.grad!, f, `grad ${k}`, 1e-3);
      const bufs = new Map(m.namedBuffers());
      for (const [k, f] of Object.entries(c.buffersAfter)) checkFingerprint(bufs.get(k)!, f, `buffer ${k} after a train step`, 1e-4);
    });
  });
}

test('parameter counts equal the PyTorch reference definitions (3×32×32, 100 classes)', () => {
  for (const [arch, n] of Object.entries(fx.paramCounts100)) {
    const m = nn.createModel({ arch, numClasses: 100 });
    assert.equal(m.numParameters(), n, arch);
    m.dispose();
  }
});

test('every listed arch builds for 1×28×28 Fashion-MNIST and its documented features run', () => {
  for (const info of nn.listModels()) {
    if (['resnet110', 'resnet56', 'resnet44', 'wrn_28_10', 'wrn_28_4', 'vgg16', 'vgg19'].includes(info.arch)) continue; // slow on 2 cores; same code paths as the smaller ones
    tidy(() => {
      // The text encoder takes token ids, not images: a small vocabulary and length instead.
      const spec = info.arch === 'mlp' ? { arch: 'mlp', inputShape: [1, 28, 28], hidden: [32, 16], numClasses: 10 }
        : info.arch === 'bert' ? { arch: 'bert', vocabSize: 50, maxLen: 16, layers: 2, hidden: 16, heads: 2, ffn: 32, numClasses: 10 }
          : { arch: info.arch, numClasses: 10, inChannels: 1, inputSize: [28, 28] };
      const m = nn.createModel(spec);
      assert.deepEqual(m.spec.arch, info.arch);
      const names = [...m.featureNames, m.embeddingName, m.headName];
      // Archs with a variable number of stages document a pattern ('layer1', '…', 'layer<k>').
      if (!info.features.includes('…')) assert.deepEqual(m.featureNames, info.features, info.arch);
      assert.equal(m.headName, info.head);
      const shapes = m.featureShapes(names);
      assert.deepEqual(shapes[m.headName], [10], info.arch);
      assert.equal(shapes[m.embeddingName]!.length, 1, `${info.arch}: embedding is flat`);
      for (const n of m.featureNames) assert.ok(shapes[n]!.every((d) => d > 0), `${info.arch} ${n}`);
      m.dispose();
    });
  }
});

test('forwardWithFeatures returns stage outputs with the expected shapes (resnet8, 1×28×28)', () => {
  tidy(() => {
    const m = nn.createModel({ arch: 'resnet8', numClasses: 10, inChannels: 1, inputSize: [28, 28] });
    const x = torch.randn([3, 1, 28, 28]);
    const { output, features } = m.forwardWithFeatures(x, ['relu', 'layer1', 'layer2', 'layer3', 'layer3.0.preact', 'flatten']);
    assert.deepEqual(output.shape, [3, 10]);
    assert.deepEqual(features.layer1!.shape, [3, 16, 28, 28]);
    assert.deepEqual(features.layer2!.shape, [3, 32, 14, 14]);
    assert.deepEqual(features.layer3!.shape, [3, 64, 7, 7]);
    assert.deepEqual(features.flatten!.shape, [3, 64]);
    // preact is the block sum before relu: relu(preact) is the stage output.
    assertClose(features['layer3.0.preact']!.relu(), features.layer3!, 'relu(preact)');
    assert.ok(features['layer3.0.preact']!.lt(0).any().item(), 'pre-activation has negatives');
    assertClose((m as nn.CifarResNet).fc.call(features.flatten!), output, 'head on embedding');
    assert.throws(() => m.forwardWithFeatures(x, ['layer4']), /no submodule named 'layer4'/);
  });
});

test('forwardWithFeatures works for a zoo model nested in another module', () => {
  tidy(() => {
    class Wrapper extends nn.Module {
      readonly student: nn.ZooModel;
      constructor() {
        super();
        this.student = this.registerModule('student', nn.createModel({ arch: 'mlp', inputShape: [4], hidden: [6, 5], numClasses: 3 }));
      }
      forward(x: Tensor): Tensor { return this.student.call(x); }
    }
    const w = new Wrapper();
    const x = torch.randn([2, 4]);
    const inner = w.student.forwardWithFeatures(x, ['layer2']);
    assert.deepEqual(inner.features.layer2!.shape, [2, 5]);
    const outer = w.forwardWithFeatures(x, ['student.layer1']);
    assert.deepEqual(outer.features['student.layer1']!.shape, [2, 6]);
    assert.deepEqual([...w.stateDict().keys()][0], 'student.layer1.linear.weight');
  });
});

test('train/eval: batch norm and dropout behave differently, eval is deterministic', () => {
  tidy(() => {
    const m = nn.createModel({ arch: 'mlp', inputShape: [8], hidden: [16], numClasses: 3, dropout: 0.5, batchNorm: true });
    const x = torch.randn([6, 8]);
    m.eval();
    const a = m.call(x), b = m.call(x);
    assert.ok(a.equal(b));
    assert.equal(m.training, false);
    assert.ok(m.namedModules().every(([, c]) => !c.training));
    m.train();
    const bn = m.namedModules().find(([n]) => n === 'layer1.bn')![1] as nn.BatchNorm1d;
    const before = bn.runningMean!.clone();
    const c = m.call(x);
    assert.ok(!c.equal(a));
    assert.ok(!bn.runningMean!.equal(before));
    assert.equal(bn.numBatchesTracked!.item(), 1);
    // featureShapes probes in eval mode and restores the modes it found.
    m.featureShapes();
    assert.ok(m.namedModules().every(([, mod]) => mod.training));
    assert.equal(bn.numBatchesTracked!.item(), 1);
  });
});

test('freeze stops gradients; state dicts load with clear errors on mismatch', () => {
  tidy(() => {
    const a = nn.createModel({ arch: 'lenet5', numClasses: 10 });
    const b = nn.createModel({ arch: 'lenet5', numClasses: 10 });
    b.loadStateDict(a.stateDict());
    const x = torch.randn([2, 1, 28, 28]);
    a.eval(); b.eval();
    assert.ok(a.call(x).equal(b.call(x)));
    a.freeze();
    assert.ok(a.parameters().every((p) => !p.requiresGrad));
    const other = nn.createModel({ arch: 'lenet5', numClasses: 7 });
    assert.throws(() => other.loadStateDict(a.stateDict()), /'fc3.weight' has shape \[10x84\], the model needs \[7x84\]/);
    const partial = new Map(a.stateDict());
    partial.delete('conv1.bias');
    partial.set('extra.weight', torch.zeros([1]));
    assert.throws(() => b.loadStateDict(partial), (e: Error) => /missing 'conv1.bias'/.test(e.message) && /unexpected 'extra.weight'/.test(e.message));
    partial.delete('extra.weight');
    b.loadStateDict(partial, false); // non-strict: missing entries are left as they are
  });
});

test('createModel validates every field, naming it', () => {
  const bad: [unknown, RegExp][] = [
    [null, /model spec must be an object/],
    [{ arch: 'resnet9', numClasses: 10 }, /unknown 'arch' "resnet9"; known: resnet8, resnet14.*wrn_40_2.*vgg8.*lenet5.*mlp/],
    [{ numClasses: 10 }, /unknown 'arch' undefined/],
    [{ arch: 'resnet8' }, /'numClasses' is required/],
    [{ arch: 'resnet8', numClasses: 1.5 }, /'numClasses' must be an integer ≥ 2, got 1.5/],
    [{ arch: 'resnet8', numClasses: 10, inChannels: 0 }, /'inChannels' must be an integer ≥ 1, got 0/],
    [{ arch: 'resnet8', numClasses: 10, inputSize: [28] }, /'inputSize' must be an array of 2 integers ≥ 1, got \[28\]/],
    [{ arch: 'resnet8', numClasses: 10, hidden: [3] }, /unknown field 'hidden'; allowed: arch, numClasses, inChannels, inputSize, inputShape/],
    [{ arch: 'resnet8', numClasses: 10, inChannels: 3, inputShape: [1, 28, 28] }, /'inputShape' \[1,28,28\] contradicts/],
    [{ arch: 'wrn_40_2', numClasses: 10, dropRate: 1 }, /'dropRate' must be a number in \[0, 1\), got 1/],
    [{ arch: 'vgg8', numClasses: 10, batchNorm: 'yes' }, /'batchNorm' must be true or false, got "yes"/],
    [{ arch: 'vgg8', numClasses: 10, inputSize: 4 }, /'inputSize' must be at least 8×8/],
    [{ arch: 'lenet5', numClasses: 10, activation: 'swish' }, /'activation' must be one of relu, gelu/],
    [{ arch: 'lenet5', numClasses: 10, inputSize: [8, 8] }, /at least 12×12/],
    [{ arch: 'mlp', numClasses: 10 }, /'inputShape' is required/],
    [{ arch: 'mlp', numClasses: 10, inputShape: [784], hidden: [256, 0] }, /'hidden' must be an array of any number of integers ≥ 1/],
    [{ arch: 'mlp', numClasses: 10, inputShape: [784], dropout: -0.1 }, /'dropout' must be a number in \[0, 1\)/],
  ];
  for (const [spec, re] of bad) assert.throws(() => nn.createModel(spec), re, JSON.stringify(spec));
});

test('specs are normalised (defaults filled, inputShape accepted) and survive JSON', () => {
  tidy(() => {
    const m = nn.createModel({ arch: 'resnet8x4', numClasses: 10, inputShape: [1, 28, 28] });
    assert.deepEqual(m.spec, { arch: 'resnet8x4', numClasses: 10, inChannels: 1, inputSize: [28, 28] });
    const again = nn.createModel(JSON.parse(JSON.stringify(m.spec)));
    assert.equal(again.numParameters(), m.numParameters());
    const mlp = nn.createModel({ arch: 'mlp', inputShape: [1, 28, 28], hidden: [256, 256], numClasses: 10 });
    assert.deepEqual(mlp.spec, { arch: 'mlp', numClasses: 10, inputShape: [1, 28, 28], hidden: [256, 256], activation: 'relu', dropout: 0, inputDropout: 0, batchNorm: false });
    assert.equal(mlp.numParameters(), 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10);
    assert.deepEqual(mlp.call(torch.randn([2, 784])).shape, [2, 10]);
    assert.throws(() => mlp.call(torch.randn([2, 783])), /MLP: expected input \[N, 1, 28, 28\] \(784 features per sample\), got \[2, 783\]/);
    const info = nn.listModels();
    assert.ok(info.some((i) => i.arch === 'resnet32x4' && i.features.includes('layer3')));
    assert.ok(info.every((i) => i.options.numClasses && i.description.length > 10));
  });
});
