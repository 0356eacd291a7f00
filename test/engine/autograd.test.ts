// Autograd: requiresGrad, backward/.grad, noGrad, and functional grad() with createGraph for
// second- and third-order derivatives, compared with PyTorch (test/fixtures/engine/autograd.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, F, tidy, Tensor } from '../../src/index.js';
import { assertTensorClose, fromEnc, loadFixture, type Enc } from './helpers.js';

const fx = loadFixture<Record<string, Record<string, Enc>>>('autograd.json');

test('backward() fills .grad of leaves and accumulates across calls', () => {
  tidy(() => {
    const x = torch.tensor([1, 2, 3], { dtype: 'float64', requiresGrad: true });
    assert.equal(x.requiresGrad, true);
    assert.equal(x.isLeaf, true);
    assert.equal(x.grad, null);
    const y = x.mul(x).sum(); // dy/dx = 2x
    assert.equal(y.isLeaf, false);
    assert.equal(y.gradFn, 'SumBackward0');
    y.backward();
    assert.deepEqual([...x.grad!.toFloat64Array()], [2, 4, 6]);
    x.mul(3).sum().backward();
    assert.deepEqual([...x.grad!.toFloat64Array()], [5, 7, 9]);
    x.grad = null;
    assert.equal(x.grad, null);
  });
});

test('backward with an explicit gradient and retainGraph for a second pass', () => {
  tidy(() => {
    const x = torch.tensor([1, -2], { dtype: 'float64', requiresGrad: true });
    const y = x.exp();
    y.backward(torch.tensor([1, 10], { dtype: 'float64' }), { retainGraph: true });
    y.backward(torch.tensor([1, 10], { dtype: 'float64' }));
    const g = x.grad!.toFloat64Array();
    assert.ok(Math.abs(g[0]! - 2 * Math.E) < 1e-12);
    assert.ok(Math.abs(g[1]! - 20 * Math.exp(-2)) < 1e-12);
    // The graph is freed after a pass without retainGraph: a third pass is a JS error.
    assert.throws(() => y.backward(torch.tensor([1, 1], { dtype: 'float64' })), /backward through the graph a second time/);
  });
});

test('noGrad(fn) records nothing; enableGrad inside it records again', () => {
  tidy(() => {
    const w = torch.ones([2], { requiresGrad: true });
    const y = torch.noGrad(() => w.mul(2));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
    assert.equal(torch.isGradEnabled(), true);
    const z = torch.noGrad(() => {
      assert.equal(torch.isGradEnabled(), false);
      return torch.enableGrad(() => w.mul(2));
    });
    assert.equal(z.requiresGrad, true);
    // the previous mode is restored even when fn throws
    assert.throws(() => torch.noGrad(() => { throw new Error('boom'); }), /boom/);
    assert.equal(torch.isGradEnabled(), true);
  });
});

test('detach() cuts the graph; grad() of an unused input is null with allowUnused, an error without', () => {
  tidy(() => {
    const a = torch.tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const b = torch.tensor([3, 4], { dtype: 'float64', requiresGrad: true });
    const d = a.detach();
    assert.equal(d.requiresGrad, false);
    const y = a.mul(2).sum();
    const [ga, gb] = torch.autograd.grad(y, [a, b], { allowUnused: true, retainGraph: true });
    assert.deepEqual([...ga!.toFloat64Array()], [2, 2]);
    assert.equal(gb, null);
    assert.throws(() => torch.autograd.grad(y, [a, b]), /not have been used in the graph/);
    // grad() does not touch .grad
    assert.equal(a.grad, null);
  });
});

test('Hessian-vector product via grad(createGraph) matches PyTorch', () => {
  const c = fx.hvp!;
  tidy(() => {
    const x = fromEnc(c.x!, true);
    const W = fromEnc(c.W!);
    const v = fromEnc(c.v!);
    const f = x.matmul(W).tanh().pow(2).sum().add(x.sin().mul(x).sum());
    assertTensorClose(f, c.f!, 'f');
    const [g] = torch.autograd.grad(f, x, { createGraph: true });
    assert.equal(g!.requiresGrad, true, 'createGraph keeps the gradient differentiable');
    assertTensorClose(g!, c.g!, 'df/dx');
    const [hv] = torch.autograd.grad(g!.mul(v).sum(), x);
    assertTensorClose(hv!, c.hv!, 'H v');
    // without createGraph the first gradient is a constant: differentiating it again fails
    const f2 = x.matmul(W).tanh().pow(2).sum();
    const [g2] = torch.autograd.grad(f2, x);
    assert.equal(g2!.requiresGrad, false);
  });
});

test('gradient penalty ||dCE/dx||² through an MLP, differentiated w.r.t. the weights', () => {
  const c = fx.gradient_penalty!;
  tidy(() => {
    const x = fromEnc(c.x!, true);
    const W1 = fromEnc(c.W1!, true);
    const b1 = fromEnc(c.b1!, true);
    const W2 = fromEnc(c.W2!, true);
    const y = fromEnc(c.y!);
    const loss = F.crossEntropy(F.linear(F.gelu(F.linear(x, W1, b1)), W2), y);
    assertTensorClose(loss, c.loss!, 'loss');
    const [gx] = torch.autograd.grad(loss, x, { createGraph: true });
    assertTensorClose(gx!, c.gx!, 'dL/dx');
    const pen = gx!.pow(2).sum();
    assertTensorClose(pen, c.penalty!, 'penalty');
    const [gW1, gb1, gW2] = torch.autograd.grad(pen, [W1, b1, W2]);
    assertTensorClose(gW1!, c.gW1!, 'dP/dW1');
    assertTensorClose(gb1!, c.gb1!, 'dP/db1');
    assertTensorClose(gW2!, c.gW2!, 'dP/dW2');
  });
});

test('third-order derivative by repeated grad(createGraph)', () => {
  const c = fx.third_order!;
  tidy(() => {
    const x = fromEnc(c.x!, true);
    const f = x.exp().mul(x.cos()).sum();
    const [d1] = torch.autograd.grad(f, x, { createGraph: true });
    const [d2] = torch.autograd.grad(d1!.sum(), x, { createGraph: true });
    const [d3] = torch.autograd.grad(d2!.sum(), x);
    assertTensorClose(d1!, c.d1!, "f'");
    assertTensorClose(d2!, c.d2!, "f''");
    assertTensorClose(d3!, c.d3!, "f'''");
  });
});

test('double backward through conv2d, log_softmax and KL (batchmean)', () => {
  const c = fx.conv_double_backward!;
  tidy(() => {
    const x = fromEnc(c.x!, true);
    const w = fromEnc(c.w!, true);
    const t = fromEnc(c.t!);
    const z = F.conv2d(x, w).flatten(1);
    const kl = F.klDiv(F.logSoftmax(z, 1), F.softmax(t, 1), { reduction: 'batchmean' });
    assertTensorClose(kl, c.kl!, 'kl');
    const [gx] = torch.autograd.grad(kl, x, { createGraph: true });
    assertTensorClose(gx!, c.gx!, 'dKL/dx');
    const [gw] = torch.autograd.grad(gx!.abs().sum(), w);
    assertTensorClose(gw!, c.gw!, 'd|dKL/dx|/dw');
  });
});

test('backward(createGraph) then grad of the .grad gives the same Hessian-vector product', () => {
  const c = fx.hvp!;
  tidy(() => {
    const x = fromEnc(c.x!, true);
    const W = fromEnc(c.W!);
    const v = fromEnc(c.v!);
    const f = x.matmul(W).tanh().pow(2).sum().add(x.sin().mul(x).sum());
    f.backward(undefined, { createGraph: true });
    const g = x.grad!;
    const [hv] = torch.autograd.grad(g.mul(v).sum(), x);
    assertTensorClose(hv!, c.hv!, 'H v via backward(createGraph)');
    x.grad = null; // break the reference cycle grad -> graph -> x
  });
});

test('retainGrad keeps the gradient of a non-leaf', () => {
  tidy(() => {
    const x = torch.tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const h = x.mul(3).retainGrad();
    h.pow(2).sum().backward();
    assert.deepEqual([...h.grad!.toFloat64Array()], [6, 12]);
    assert.ok(h.grad instanceof Tensor);
  });
});
