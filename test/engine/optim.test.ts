// Optimizers: libtorch's SGD (momentum, dampening, Nesterov, weight decay), Adam (amsgrad) and
// AdamW follow PyTorch's trajectories step by step, including learning rates changed between
// steps and per-group learning rates; state survives a save/load round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, tidy, Tensor, SGD, Adam, AdamW, Optimizer } from '../../src/index.js';
import { assertArrayClose, fromEnc, loadFixture, type Enc } from './helpers.js';

interface Step { loss: number; w: number[]; b: number[] }
interface OptimFixture {
  X: Enc; Y: Enc; W0: Enc; B0: Enc; steps: number;
  cases: { kind: 'sgd' | 'adam' | 'adamw'; options: Record<string, unknown>; lrs: number[] | null; trajectory: Step[] }[];
  groups: Step[];
}
const fx = loadFixture<OptimFixture>('optim.json');
const TOL = { rtol: 1e-10, atol: 1e-12 };

function make(kind: string, params: Tensor[], options: Record<string, unknown>): Optimizer {
  if (kind === 'sgd') return new SGD(params, options as { lr: number });
  if (kind === 'adam') return new Adam(params, options);
  return new AdamW(params, options);
}

function lossOf(X: Tensor, Y: Tensor, w: Tensor, b: Tensor): Tensor {
  return X.matmul(w).add(b).sub(Y).pow(2).mean();
}

/** Runs one step: zeroGrad, loss, backward, step; returns the loss before the step. */
function step(opt: Optimizer, X: Tensor, Y: Tensor, w: Tensor, b: Tensor): number {
  return tidy(() => {
    opt.zeroGrad();
    const loss = lossOf(X, Y, w, b);
    loss.backward();
    opt.step();
    return loss.item();
  });
}

for (const [ci, c] of fx.cases.entries()) {
  const label = `${c.kind} ${JSON.stringify(c.options)}${c.lrs ? ' with a learning rate changed every step' : ''}`;
  test(`optimizer #${ci} ${label} follows PyTorch's trajectory`, () => {
    tidy(() => {
      const X = fromEnc(fx.X), Y = fromEnc(fx.Y);
      const w = fromEnc(fx.W0, true), b = fromEnc(fx.B0, true);
      const opt = make(c.kind, [w, b], c.options);
      for (let s = 0; s < fx.steps; s++) {
        if (c.lrs) {
          opt.setLr(c.lrs[s]!);
          assert.equal(opt.lr, c.lrs[s]);
        }
        const loss = step(opt, X, Y, w, b);
        const want = c.trajectory[s]!;
        assertArrayClose([loss], [want.loss], `step ${s} loss`, TOL);
        assertArrayClose(w.toFloat64Array(), want.w, `step ${s} w`, TOL);
        assertArrayClose(b.toFloat64Array(), want.b, `step ${s} b`, TOL);
      }
    });
  });
}

test('parameter groups keep their own learning rates; setLr(lr, group) changes one', () => {
  tidy(() => {
    const X = fromEnc(fx.X), Y = fromEnc(fx.Y);
    const w = fromEnc(fx.W0, true), b = fromEnc(fx.B0, true);
    const opt = new SGD([{ params: [w], lr: 0.1 }, { params: [b], lr: 0.01 }], { lr: 0.5, momentum: 0.5 });
    assert.deepEqual(opt.lrs(), [0.1, 0.01]);
    for (let s = 0; s < fx.steps; s++) {
      const loss = step(opt, X, Y, w, b);
      assertArrayClose([loss], [fx.groups[s]!.loss], `step ${s} loss`, TOL);
      assertArrayClose(w.toFloat64Array(), fx.groups[s]!.w, `step ${s} w`, TOL);
      assertArrayClose(b.toFloat64Array(), fx.groups[s]!.b, `step ${s} b`, TOL);
    }
    opt.setLr(0.3, 1);
    assert.deepEqual(opt.lrs(), [0.1, 0.3]);
    assert.throws(() => opt.setLr(0.3, 5), /no parameter group 5/);
    assert.throws(() => opt.setLr(-1), RangeError);
  });
});

test('optimizer state save/load round trip: a restored Adam continues bit-identically', () => {
  tidy(() => {
    const X = fromEnc(fx.X), Y = fromEnc(fx.Y);
    const w = fromEnc(fx.W0, true), b = fromEnc(fx.B0, true);
    const opt = new Adam([w, b], { lr: 0.05, amsgrad: true });
    for (let s = 0; s < 3; s++) step(opt, X, Y, w, b);
    const state = opt.stateDict();
    assert.ok(state.length > 0);
    // a copy of the parameters and a fresh optimizer loaded with the saved state
    const w2 = w.detach().clone().requiresGrad_(), b2 = b.detach().clone().requiresGrad_();
    const opt2 = new Adam([w2, b2], { lr: 0.05, amsgrad: true });
    opt2.loadStateDict(state);
    // a fresh optimizer without the state diverges (bias correction restarts at step 1)
    const w3 = w.detach().clone().requiresGrad_(), b3 = b.detach().clone().requiresGrad_();
    const opt3 = new Adam([w3, b3], { lr: 0.05, amsgrad: true });
    for (let s = 0; s < 3; s++) {
      step(opt, X, Y, w, b);
      step(opt2, X, Y, w2, b2);
      step(opt3, X, Y, w3, b3);
    }
    assert.ok(w.equal(w2) && b.equal(b2), 'restored optimizer continues identically');
    assert.ok(!w.equal(w3), 'an optimizer without the restored state takes different steps');
  });
});

test('SGD momentum state round trip through stateDict()', () => {
  tidy(() => {
    const X = fromEnc(fx.X), Y = fromEnc(fx.Y);
    const w = fromEnc(fx.W0, true), b = fromEnc(fx.B0, true);
    const opt = new SGD([w, b], { lr: 0.1, momentum: 0.9, nesterov: true });
    for (let s = 0; s < 2; s++) step(opt, X, Y, w, b);
    const w2 = w.detach().clone().requiresGrad_(), b2 = b.detach().clone().requiresGrad_();
    const opt2 = new SGD([w2, b2], { lr: 0.1, momentum: 0.9, nesterov: true });
    opt2.loadStateDict(opt.stateDict());
    for (let s = 0; s < 3; s++) {
      step(opt, X, Y, w, b);
      step(opt2, X, Y, w2, b2);
    }
    assert.ok(w.equal(w2) && b.equal(b2));
  });
});

test('zeroGrad(false) zeroes gradients in place; zeroGrad() drops them', () => {
  tidy(() => {
    const w = torch.ones([3], { requiresGrad: true });
    const opt = new SGD([w], { lr: 0.1 });
    w.mul(2).sum().backward();
    opt.zeroGrad(false);
    assert.deepEqual([...w.grad!.toFloat64Array()], [0, 0, 0]);
    opt.zeroGrad();
    assert.equal(w.grad, null);
    // a step without gradients changes nothing
    opt.step();
    assert.deepEqual([...w.toFloat64Array()], [1, 1, 1]);
  });
});

test('optimizer argument errors are JS errors', () => {
  tidy(() => {
    const w = torch.ones([2], { requiresGrad: true });
    assert.throws(() => new SGD([], { lr: 0.1 }), /empty parameter list/);
    assert.throws(() => new SGD([w], { lr: 0.1, nesterov: true }), /Nesterov/);
    const nonLeaf = w.mul(2);
    assert.throws(() => new Adam([nonLeaf]), /not a leaf/);
  });
});
