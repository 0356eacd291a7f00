// Fake quantization against PyTorch 1.13 (test/fixtures/quantize/quantize.json, written by
// scripts/fixtures/quantize.py): observers' qparams, forward and straight-through backward per
// tensor and per channel, and a conv → batch-norm pair folded as PyTorch's QAT ConvBn2d.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { torch, tidy, Tensor } from '../../src/index.js';
import * as nn from '../../src/nn/index.js';
import {
  ActivationFakeQuant, calibrate, DEFAULT_QUANTIZE, fakeQuantWeight, prepareQuantization, quantizedLayer, quantizeSpecOf, setQuantization, weightQParams,
  type QuantizeSpec,
} from '../../src/nn/quantize.js';
import { packageRoot } from '../../src/tensor/native.js';
import { assertClose, fromEnc, type Enc } from './helpers.js';

interface ActCase { name: string; batches: Enc[]; minVal: number; maxVal: number; scale: Enc; zeroPoint: Enc; output: Enc; gradOutput: Enc; gradInput: Enc }
interface WeightCase { name: string; perChannel: boolean; symmetric: boolean; weight: Enc; scale: Enc; zeroPoint: Enc; output: Enc; gradOutput: Enc; gradInput: Enc }
interface ConvBnCase {
  init: Record<'weight' | 'bnWeight' | 'bnBias' | 'runningMean' | 'runningVar', Enc>;
  input: Enc; output: Enc; gradOutput: Enc; gradInput: Enc; gradWeight: Enc; gradBnWeight: Enc; gradBnBias: Enc;
  after: { runningMean: Enc; runningVar: Enc }; evalOutput: Enc;
}
const fx = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'quantize', 'quantize.json'), 'utf8')) as {
  activations: ActCase[]; weights: WeightCase[]; convBn: ConvBnCase;
};

// qparams and fake-quantized values come from the same float32 operations as PyTorch's, so they
// agree to float32 rounding; 1e-6 relative leaves room for one ulp, far below one step (scale).
const EXACT = { rtol: 1e-6, atol: 1e-9 };

function vjp(fn: (x: Tensor) => Tensor, x0: Enc, gout: Enc): { y: Tensor; grad: Tensor } {
  const x = fromEnc(x0).requiresGrad_(true);
  const y = fn(x);
  y.mul(fromEnc(gout)).sum().backward();
  return { y, grad: x.grad! };
}

for (const c of fx.activations) {
  test(`activation fake-quant (${c.name}): observer range, scale, zero point, output and STE gradient equal PyTorch's`, () => tidy(() => {
    const q = new ActivationFakeQuant(c.name === 'moving-average' ? 'moving-average' : 'minmax', c.name === 'moving-average' ? 0.25 : 0.01);
    q.setEnabled(true);
    q.train();
    for (const b of c.batches.slice(0, -1)) q.call(fromEnc(b));
    const { y, grad } = vjp((x) => q.call(x), c.batches[c.batches.length - 1]!, c.gradOutput);
    assert.equal(q.minVal.item(), Math.fround(c.minVal), 'min_val');
    assert.equal(q.maxVal.item(), Math.fround(c.maxVal), 'max_val');
    const p = q.qparamValues();
    assert.equal(p.scale, Math.fround(c.scale.data[0]!), 'scale (float32)');
    assert.equal(p.zeroPoint, c.zeroPoint.data[0], 'zero point');
    assertClose(y, c.output, 'output', EXACT.rtol, EXACT.atol);
    // The STE gradient is the output gradient masked to 0 where clamped (float32 values, 9-digit decimals).
    assertClose(grad, c.gradInput, 'input gradient', EXACT.rtol, EXACT.atol);
  }));
}

test('the moving-average case clamps part of its last batch (so the STE mask is exercised)', () => {
  const c = fx.activations.find((a) => a.name === 'moving-average')!;
  assert.ok(c.gradInput.data.filter((v) => v === 0).length > 0);
});

for (const c of fx.weights) {
  test(`weight fake-quant (${c.name}): scale, zero point, output and STE gradient equal PyTorch's`, () => tidy(() => {
    const spec = { perChannel: c.perChannel, weightScheme: c.symmetric ? 'symmetric' as const : 'affine' as const };
    const q = weightQParams(fromEnc(c.weight), spec);
    assertClose(q.scale.reshape([-1]), c.scale, 'scale', EXACT.rtol, EXACT.atol);
    assert.deepEqual(Array.from(q.zeroPoint.reshape([-1]).data<Int32Array>()), c.zeroPoint.data, 'zero points');
    const { y, grad } = vjp((w) => fakeQuantWeight(w, spec), c.weight, c.gradOutput);
    assertClose(y, c.output, 'output', EXACT.rtol, EXACT.atol);
    assertClose(grad, c.gradInput, 'gradient', EXACT.rtol, EXACT.atol);
  }));
}

test('conv → batch norm under QAT (folded): training output, gradients, running stats and eval output equal PyTorch ConvBn2d', () => tidy(() => {
  const c = fx.convBn;
  const conv = new nn.Conv2d(3, 4, 3, { padding: 1, bias: false });
  const bn = new nn.BatchNorm2d(4);
  const m = new nn.Sequential(conv, bn);
  m.loadStateDict(new Map([
    ['0.weight', fromEnc(c.init.weight)], ['1.weight', fromEnc(c.init.bnWeight)], ['1.bias', fromEnc(c.init.bnBias)],
    ['1.running_mean', fromEnc(c.init.runningMean)], ['1.running_var', fromEnc(c.init.runningVar)], ['1.num_batches_tracked', torch.zeros([], { dtype: 'int64' })],
  ]), false);
  const [lq] = prepareQuantization(m, { ...DEFAULT_QUANTIZE, observer: 'minmax' });
  assert.equal(lq!.bn, bn, 'the conv is paired with the batch norm after it');
  setQuantization(m, true);
  m.train();
  const { y, grad } = vjp((x) => m.call(x), c.input, c.gradOutput);
  // Float32 convolutions and batch statistics summed in another order than PyTorch's: 1e-4 relative / 1e-5 absolute.
  assertClose(y, c.output, 'training output', 1e-4, 1e-5);
  assertClose(grad, c.gradInput, 'input gradient', 1e-4, 1e-5);
  assertClose(conv.weight.grad!, c.gradWeight, 'conv weight gradient', 1e-4, 1e-5);
  assertClose(bn.weight!.grad!, c.gradBnWeight, 'bn weight gradient', 1e-4, 1e-5);
  assertClose(bn.bias!.grad!, c.gradBnBias, 'bn bias gradient', 1e-4, 1e-5);
  assertClose(bn.runningMean!, c.after.runningMean, 'running mean', 1e-5, 1e-6);
  assertClose(bn.runningVar!, c.after.runningVar, 'running var', 1e-5, 1e-6);
  m.eval();
  const ye = torch.noGrad(() => m.call(fromEnc(c.input)));
  assertClose(ye, c.evalOutput, 'eval output', 1e-4, 1e-5);
  // In eval the pair is one conv with the folded int8 weight and bias: what the export writes.
  const ql = quantizedLayer(conv);
  const w = torch.tensor(Float32Array.from(ql.weight.values, (v, i) => v * ql.weight.scale[Math.floor(i / 27)]!), { shape: ql.weight.shape });
  const xq = torch.noGrad(() => lq!.input.call(fromEnc(c.input)));
  const direct = torch.noGrad(() => conv.compute(xq, w, torch.tensor(ql.bias!, { shape: [4] })));
  assertClose(direct, c.evalOutput, 'folded conv with the exported int8 weight', 1e-4, 1e-5);
}));

test('quantization off (the float warm-up) leaves a layer exactly as it was, and observes nothing', () => tidy(() => {
  torch.manualSeed(3);
  const lin = new nn.Linear(6, 3);
  const x = torch.randn([4, 6]);
  const before = torch.noGrad(() => lin.call(x)).data<Float32Array>().slice();
  const [q] = prepareQuantization(lin);
  const off = torch.noGrad(() => lin.call(x)).data<Float32Array>();
  assert.deepEqual(Array.from(off), Array.from(before));
  assert.equal(q!.input.observed, false);
  setQuantization(lin, true);
  const on = torch.noGrad(() => lin.call(x)).data<Float32Array>();
  assert.notDeepEqual(Array.from(on), Array.from(before));
  assert.equal(q!.input.observed, true);
}));

test('quantizers added to a model in eval mode are in eval mode too (they do not record ranges outside calibration)', () => tidy(() => {
  const lin = new nn.Linear(3, 2).eval();
  const [q] = prepareQuantization(lin);
  assert.equal(q!.input.training, false);
  setQuantization(lin, true);
  calibrate(() => torch.noGrad(() => lin.call(torch.tensor([[0, 1, 2]]))));
  torch.noGrad(() => lin.call(torch.tensor([[-5, 10, 20]])));
  assert.deepEqual([q!.input.minVal.item(), q!.input.maxVal.item()], [0, 2]);
}));

test('eval mode does not move the observed range; quantization on in eval before any batch is refused', () => tidy(() => {
  const q = new ActivationFakeQuant('minmax');
  q.setEnabled(true);
  q.eval();
  assert.throws(() => q.call(torch.randn([2, 3])), /no batch has been observed yet/);
  q.train();
  q.call(torch.tensor([[0, 1, 2]]));
  q.eval();
  q.call(torch.tensor([[-5, 10, 20]]));
  assert.deepEqual([q.minVal.item(), q.maxVal.item()], [0, 2]);
}));

test('a saved quantization-aware model loads back with its quantizers, observers and folding', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'kdistill-quant-'));
  try {
    tidy(() => {
      torch.manualSeed(5);
      const model = nn.createModel({ arch: 'cnn', numClasses: 3, inChannels: 1, inputSize: [8, 8], channels: [4], hidden: 8, dropout: 0 });
      prepareQuantization(model, { ...DEFAULT_QUANTIZE, perChannel: false });
      setQuantization(model, true);
      model.train();
      torch.noGrad(() => model.call(torch.randn([4, 1, 8, 8])));
      model.eval();
      const x = torch.randn([2, 1, 8, 8]);
      const want = torch.noGrad(() => model.call(x)).data<Float32Array>().slice();
      nn.saveModel(join(dir, 'm.safetensors'), model);
      const { model: back } = nn.loadModel(join(dir, 'm.safetensors'));
      back.eval();
      assert.deepEqual(Array.from(torch.noGrad(() => back.call(x)).data<Float32Array>()), Array.from(want));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('quantize specs: defaults, and bad fields named with what they take', () => {
  const s: QuantizeSpec = quantizeSpecOf({ perChannel: false });
  assert.equal(s.perChannel, false);
  assert.equal(s.observer, 'moving-average');
  assert.throws(() => quantizeSpecOf({ weights: 'int4' }), /quantize\.weights must be 'int8', got "int4"/);
  assert.throws(() => quantizeSpecOf({ observr: 'minmax' }), /unknown field observr/);
});
