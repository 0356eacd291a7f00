// Golden tests: every loss in src/losses, value and gradient w.r.t. the student logits, against
// PyTorch 1.13 on fixed inputs including extreme logits (fixtures: scripts/fixtures/losses.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import { crossEntropy } from '../../src/tensor/functional.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { klDivergence, temperedLogSoftmax, temperedSoftmax } from '../../src/losses/tempered.js';
import { agreement, jensenShannon, logitMse, softCrossEntropy, symmetricKl } from '../../src/losses/agreement.js';
import { dkdLoss, dkdTerms } from '../../src/losses/dkd.js';
import { CASES, assertClose, assertGradClose, inputs, liveTensors, valueAndGrad } from './golden.js';

type LossFn = (t: Tensor, s: Tensor, y: Tensor, T: number) => Tensor;
const LOSSES: Record<string, LossFn> = {
  kd_kl: (t, s, _y, T) => klDivergence(t, s, T),
  soft_ce: (t, s, _y, T) => softCrossEntropy(t, s, T),
  mse: (t, s) => logitMse(t, s),
  js: (t, s, _y, T) => jensenShannon(t, s, T),
  sym_kl: (t, s, _y, T) => symmetricKl(t, s, T),
  ce: (_t, s, y) => crossEntropy(s, y),
  'ce_ls0.1': (_t, s, y) => crossEntropy(s, y, { labelSmoothing: 0.1 }),
  dkd_exact_tckd: (t, s, y, T) => dkdTerms(t, s, y, T).tckd,
  dkd_exact_nckd: (t, s, y, T) => dkdTerms(t, s, y, T).nckd,
  dkd_authors_tckd: (t, s, y, T) => dkdTerms(t, s, y, T).tckd,
  dkd_authors_nckd: (t, s, y, T) => dkdTerms(t, s, y, T).nckd,
};

test('fixtures cover every loss, moderate and extreme inputs, T = 1 and 4', () => {
  assert.ok(CASES.length >= 10);
  const names = new Set(CASES.map((c) => c.name));
  for (const n of ['moderate', 'cifar100_like', 'two_class', 'extreme', 'extreme_two_class']) assert.ok(names.has(n), n);
  for (const c of CASES) for (const k of Object.keys(c.losses)) assert.ok(k in LOSSES, `no test mapping for fixture loss '${k}'`);
  assert.ok(CASES.filter((c) => 'dkd_authors_tckd' in c.losses).length >= 6, 'DKD checked against the authors\' formulation');
});

for (const c of CASES) {
  test(`golden values and gradients (float64): ${c.name}, T=${c.T}`, () => {
    const { s, t, y } = inputs(c);
    for (const [name, golden] of Object.entries(c.losses)) {
      const r = valueAndGrad(s, (sl) => LOSSES[name]!(t, sl, y, c.T));
      assertClose(r.value, golden.value, 1e-5, 1e-9, `${c.name} T=${c.T} ${name} value`);
      assertGradClose(r.grad, golden.grad, 1e-5, 1e-9, `${c.name} T=${c.T} ${name}`);
    }
    torch.dispose(s, t, y);
  });

  test(`float32 inputs stay finite and close: ${c.name}, T=${c.T}`, () => {
    const { s, t, y } = inputs(c, 'float32');
    for (const [name, golden] of Object.entries(c.losses)) {
      const r = valueAndGrad(s, (sl) => LOSSES[name]!(t, sl, y, c.T));
      assertClose(r.value, golden.value, 1e-4, 1e-5, `${c.name} T=${c.T} ${name} value (float32)`);
      assert.ok(r.grad.every(Number.isFinite), `${c.name} T=${c.T} ${name}: non-finite float32 gradient`);
    }
    torch.dispose(s, t, y);
  });
}

test('tempered softmax: T divides the logits; log-softmax is finite at ±1e4', () => {
  torch.tidy(() => {
    const z = torch.tensor([[2, 0, -2], [1e4, -1e4, 0]], { dtype: 'float64' });
    const p = temperedSoftmax(z, 2).tolist() as number[][];
    const e = [Math.exp(1), 1, Math.exp(-1)];
    const sum = e[0]! + e[1]! + e[2]!;
    for (let i = 0; i < 3; i++) assertClose(p[0]![i]!, e[i]! / sum, 1e-12, 0, `softmax[${i}]`);
    const lp = temperedLogSoftmax(z, 4);
    assert.ok(lp.isfinite().all().item() === 1);
    assertClose((lp.tolist() as number[][])[1]![1]!, -5000, 1e-12, 0, 'log q at -1e4/T');
    assert.throws(() => temperedLogSoftmax(z, 0), /temperature must be a positive/);
  });
});

test('KL is zero for identical logits and invariant to a per-row logit shift', () => {
  torch.tidy(() => {
    const z = torch.tensor([[1, 2, 3], [0, 0, 5]], { dtype: 'float64' });
    assertClose(klDivergence(z, z, 4).item(), 0, 0, 1e-12, 'KL(p‖p)');
    const shifted = z.add(torch.tensor([[100], [-7]], { dtype: 'float64' }));
    const s = torch.tensor([[0, 1, 0], [2, 1, 0]], { dtype: 'float64' });
    assertClose(klDivergence(shifted, s, 2).item(), klDivergence(z, s, 2).item(), 1e-12, 0, 'shift invariance');
  });
});

test('T² scaling: the soft term matches T² times the unscaled KL', () => {
  torch.tidy(() => {
    const t = torch.tensor([[3, 1, -2, 0]], { dtype: 'float64' });
    const s = torch.tensor([[0, 2, 1, -1]], { dtype: 'float64' });
    const T = 5;
    const raw = klDivergence(t.div(T), s.div(T), 1).item();
    assertClose(klDivergence(t, s, T).item(), raw * T * T, 1e-12, 0, 'T² · KL');
  });
});

test('JS is symmetric and bounded by T²·log 2; symmetric KL is symmetric', () => {
  torch.tidy(() => {
    const a = torch.tensor([[1e4, -1e4, 0], [0, 1, 2]], { dtype: 'float64' });
    const b = torch.tensor([[-1e4, 1e4, 0], [2, 1, 0]], { dtype: 'float64' });
    assertClose(jensenShannon(a, b, 2).item(), jensenShannon(b, a, 2).item(), 1e-12, 0, 'JS symmetry');
    assert.ok(jensenShannon(a, b, 1).item() <= Math.LN2 + 1e-12);
    assertClose(symmetricKl(a, b, 3).item(), symmetricKl(b, a, 3).item(), 1e-12, 0, 'sym KL symmetry');
  });
});

test('DKD: TCKD + NCKD·(1 − p_t^T) reproduces KD (paper eq. 3 at T = 1 per sample)', () => {
  // Per sample, KD = TCKD + (1 − p_t^T)·NCKD; check on a batch of one.
  torch.tidy(() => {
    const t = torch.tensor([[2, 0.5, -1, 0.3]], { dtype: 'float64' });
    const s = torch.tensor([[0.1, 1.5, 0.2, -0.7]], { dtype: 'float64' });
    const y = torch.tensor([0], { dtype: 'int64' });
    const { tckd, nckd } = dkdTerms(t, s, y, 1);
    const ptT = (t.softmax(1).tolist() as number[][])[0]![0]!;
    assertClose(tckd.item() + (1 - ptT) * nckd.item(), klDivergence(t, s, 1).item(), 1e-12, 0, 'KD decomposition');
    assertClose(dkdLoss(t, s, y, { alpha: 1, beta: 8, temperature: 1 }).item(), tckd.item() + 8 * nckd.item(), 1e-12, 0, 'α·TCKD + β·NCKD');
  });
});

test('DKD on two classes: NCKD is exactly 0 with zero gradient, TCKD equals KD', () => {
  const s = torch.tensor([[1e4, -1e4], [0.3, -0.2], [-2, 5]], { dtype: 'float64' }).requiresGrad_(true);
  const t = torch.tensor([[-1e4, 1e4], [1, 0], [0, 0]], { dtype: 'float64' });
  const y = torch.tensor([1, 0, 1], { dtype: 'int64' });
  const n = valueAndGrad(s, (sl) => dkdTerms(t, sl, y, 4).nckd);
  assert.equal(n.value, 0);
  assert.ok(n.grad.every((g) => g === 0));
  const tc = valueAndGrad(s, (sl) => dkdTerms(t, sl, y, 4).tckd);
  const kd = valueAndGrad(s, (sl) => klDivergence(t, sl, 4));
  assertClose(tc.value, kd.value, 1e-9, 0, 'TCKD = KD on two classes');
  assertGradClose(tc.grad, [...kd.grad], 1e-9, 0, 'TCKD grad = KD grad on two classes');
  torch.dispose(s, t, y);
});

test('DKD refuses one class, mismatched labels and non-integer labels with clear errors', () => {
  torch.tidy(() => {
    const one = torch.tensor([[1], [2]]);
    assert.throws(() => dkdTerms(one, one, torch.tensor([0, 0], { dtype: 'int64' }), 4), /at least 2 classes/);
    const z = torch.tensor([[1, 2, 3]]);
    assert.throws(() => dkdTerms(z, z, torch.tensor([0, 1], { dtype: 'int64' }), 4), /expected 1 labels/);
    assert.throws(() => dkdTerms(z, z, torch.tensor([0]), 4), /int64/);
    assert.throws(() => klDivergence(z, torch.tensor([[1, 2]]), 4), /differ in shape/);
    assert.throws(() => klDivergence(torch.tensor([1, 2, 3]), torch.tensor([1, 2, 3]), 4), /\[batch, classes\]/);
  });
});

test('agreement() dispatches every measure and rejects unknown ones', () => {
  torch.tidy(() => {
    const t = torch.tensor([[1, 0, -1]]);
    const s = torch.tensor([[0, 1, 0]]);
    assert.equal(agreement('kl', t, s, 2).item(), klDivergence(t, s, 2).item());
    assert.equal(agreement('soft_ce', t, s, 2).item(), softCrossEntropy(t, s, 2).item());
    assert.equal(agreement('mse', t, s, 2).item(), logitMse(t, s).item());
    assert.equal(agreement('js', t, s, 2).item(), jensenShannon(t, s, 2).item());
    assert.equal(agreement('sym_kl', t, s, 2).item(), symmetricKl(t, s, 2).item());
    assert.throws(() => agreement('cosine' as never, t, s, 2), /unknown agreement measure 'cosine'/);
  });
});

test('losses free their intermediates: only the returned value stays alive', () => {
  const t = torch.randn([16, 10]);
  const s = torch.randn([16, 10]).requiresGrad_(true);
  const y = torch.randint(0, 10, [16]);
  const fns: (() => Tensor)[] = [
    () => klDivergence(t, s, 4), () => softCrossEntropy(t, s, 4), () => logitMse(t, s),
    () => jensenShannon(t, s, 4), () => symmetricKl(t, s, 4),
    () => dkdLoss(t, s, y, { alpha: 1, beta: 8, temperature: 4 }), () => temperedLogSoftmax(s, 4),
  ];
  for (const f of fns) {
    const before = liveTensors();
    const v = f();
    assert.equal(liveTensors(), before + 1, `${f.toString()} leaked`);
    v.dispose();
  }
  const before = liveTensors();
  const terms = dkdTerms(t, s, y, 4);
  assert.equal(liveTensors(), before + 2, 'dkdTerms returns exactly two tensors');
  torch.dispose(terms.tckd, terms.nckd, t, s, y);
});
