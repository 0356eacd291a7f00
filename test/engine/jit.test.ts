// TorchScript: a module scripted and saved by PyTorch (test/fixtures/engine/tiny_mlp.pt) loads,
// runs in eval mode with PyTorch's outputs, stays differentiable w.r.t. its inputs, and shows its
// parameters, buffers and named submodules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { torch, tidy, ScriptModule } from '../../src/index.js';
import { assertTensorClose, fixtureDir, fromEnc, loadFixture, type Enc } from './helpers.js';

interface MlpFixture {
  x: Enc; out: Enc; gradOut: Enc; gradX: Enc; features: Enc; h: Enc; headOut: Enc;
  namedParameters: [string, number[]][];
  namedBuffers: string[];
  namedModules: string[];
  params: Record<string, Enc>;
}
const fx = loadFixture<MlpFixture>('tiny_mlp.json');
const path = join(fixtureDir, 'tiny_mlp.pt');

test('torch.jit.load returns a callable module in eval mode with PyTorch outputs', () => {
  const m = torch.jit.load(path);
  assert.ok(m instanceof ScriptModule);
  assert.equal(m.training, false);
  assert.ok(m.methodNames().includes('forward'));
  assert.ok(m.methodNames().includes('features'));
  tidy(() => {
    const x = fromEnc(fx.x);
    const out = m.forward(x) as InstanceType<typeof torch.Tensor>;
    // eval mode: dropout is off and batch norm uses running statistics, so the output is
    // deterministic and matches PyTorch's eval-mode output
    assertTensorClose(out, fx.out, 'forward');
    const again = m.forward(x) as InstanceType<typeof torch.Tensor>;
    assert.ok(out.equal(again));
    assertTensorClose(m.callMethod('features', x) as InstanceType<typeof torch.Tensor>, fx.features, 'features()');
  });
});

test('TorchScript outputs are differentiable w.r.t. inputs (same input gradient as PyTorch)', () => {
  const m = torch.jit.load(path);
  tidy(() => {
    const x = fromEnc(fx.x, true);
    const out = m.forward(x) as InstanceType<typeof torch.Tensor>;
    assert.equal(out.requiresGrad, true);
    const [gx] = torch.autograd.grad(out, x, { gradOutputs: fromEnc(fx.gradOut) });
    assertTensorClose(gx!, fx.gradX, 'd out / d x');
  });
});

test('namedParameters, namedBuffers and namedModules list what PyTorch lists', () => {
  const m = torch.jit.load(path);
  const params = m.namedParameters();
  assert.deepEqual(params.map(([n, t]) => [n, t.shape]), fx.namedParameters);
  for (const [n, t] of params) assertTensorClose(t, fx.params[n]!, `parameter ${n}`);
  assert.deepEqual(m.namedBuffers().map(([n]) => n), fx.namedBuffers);
  assert.deepEqual(m.namedModules().map(([n]) => n), fx.namedModules);
  const kinds = new Map(m.namedModules());
  assert.equal(kinds.get('body.0'), 'Linear');
  assert.equal(kinds.get('body.1'), 'BatchNorm1d');
  assert.equal(kinds.get('head'), 'Linear');
});

test('submodule(path) runs on its own and shares the parent parameters', () => {
  const m = torch.jit.load(path);
  const head = m.submodule('head');
  tidy(() => {
    assertTensorClose(head.forward(fromEnc(fx.h)) as InstanceType<typeof torch.Tensor>, fx.headOut, 'head(h)');
    const lin = m.submodule('body.0');
    assert.deepEqual(lin.namedParameters().map(([n]) => n), ['weight', 'bias']);
    // changing a parameter through the submodule changes the parent's output
    const before = m.forward(fromEnc(fx.x)) as InstanceType<typeof torch.Tensor>;
    const [, bias] = head.namedParameters().find(([n]) => n === 'bias')!;
    torch.noGrad(() => bias.add_(1));
    const after = m.forward(fromEnc(fx.x)) as InstanceType<typeof torch.Tensor>;
    const diff = after.sub(before);
    assert.ok(diff.sub(1).abs().max().item() < 1e-6, 'every output moved by the bias change');
    assert.throws(() => m.submodule('body.7'), /no submodule 'body.7'/);
    assert.throws(() => m.callMethod('nope', fromEnc(fx.x)), /no method 'nope'/);
  });
});

test('train() switches dropout and batch norm to training behaviour; eval() back', () => {
  const m = torch.jit.load(path);
  tidy(() => {
    const x = fromEnc(fx.x);
    const runningMean = () => m.namedBuffers().find(([n]) => n === 'body.1.running_mean')![1].clone();
    const rm0 = runningMean();
    m.train();
    assert.equal(m.training, true);
    assert.equal(m.submodule('body.3').training, true, 'train() reaches submodules');
    torch.manualSeed(3);
    const a = m.forward(x) as InstanceType<typeof torch.Tensor>;
    assert.ok(!a.allclose(fromEnc(fx.out), 1e-4, 1e-5), 'training-mode output differs from eval-mode output');
    assert.ok(!runningMean().equal(rm0), 'a training-mode forward updates the running statistics');
    m.eval();
    assert.equal(m.submodule('body.3').training, false);
    const rm1 = runningMean();
    const b1 = m.forward(x) as InstanceType<typeof torch.Tensor>;
    const b2 = m.forward(x) as InstanceType<typeof torch.Tensor>;
    assert.ok(b1.equal(b2), 'eval mode is deterministic');
    assert.ok(runningMean().equal(rm1), 'eval mode leaves the running statistics alone');
  });
});

test('loading a missing or corrupt file is a JS error', () => {
  assert.throws(() => torch.jit.load(join(fixtureDir, 'does-not-exist.pt')), /no such file/);
  assert.throws(() => torch.jit.load(join(fixtureDir, 'ops.json')), /torch\.jit\.load\(.*ops\.json\)/);
});
