// EnsembleTeacher over two fake teachers (fixed linear layers) vs hand-computed combinations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { linear } from '../../src/tensor/functional.js';
import type { Teacher } from '../../src/teachers/teacher.js';
import { EnsembleTeacher } from '../../src/teachers/ensemble.js';
import { klDivergence } from '../../src/losses/tempered.js';
import { assertClose, liveTensors } from '../losses/golden.js';

/** A teacher over a fixed linear layer y = x Wᵀ + b (float64). */
class LinearTeacher implements Teacher {
  readonly numParameters: number;
  readonly numClasses: number;
  readonly w: Tensor;
  readonly b: Tensor;
  constructor(readonly description: string, readonly checksum: string, readonly W: number[][], readonly bias: number[]) {
    this.w = torch.tensor(W, { dtype: 'float64' }).keep();
    this.b = torch.tensor(bias, { dtype: 'float64' }).keep();
    this.numClasses = W.length;
    this.numParameters = W.length * W[0]!.length + bias.length;
  }
  logits(x: Tensor): Tensor {
    return torch.noGrad(() => linear(x, this.w, this.b));
  }
  /** The same logits computed in plain JS, for the hand-computed references. */
  ref(x: number[]): number[] {
    return this.W.map((row, i) => row.reduce((a, w, j) => a + w * x[j]!, this.bias[i]!));
  }
}

const A = new LinearTeacher('teacher A (mlp)', 'aaaa', [[1, 0], [0, 1], [1, -1]], [0, 0.5, 0]);
const B = new LinearTeacher('teacher B (torchscript cnn)', 'bbbb', [[-1, 2], [0.5, 0.5], [0, 0]], [1, 0, -1]);
const X = [[1, 2], [-3, 0.5], [200, -300]];

const softmax = (z: number[]): number[] => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

const logSoftmax = (z: number[]): number[] => {
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
  return z.map((v) => v - lse);
};
const logAddExp = (x: number, y: number): number => {
  const m = Math.max(x, y);
  return m + Math.log(Math.exp(x - m) + Math.exp(y - m));
};

function check(ens: EnsembleTeacher, expected: (za: number[], zb: number[]) => number[], what: string): void {
  torch.tidy(() => {
    const out = ens.logits(torch.tensor(X, { dtype: 'float64' })).tolist() as number[][];
    X.forEach((x, r) => {
      const e = expected(A.ref(x), B.ref(x));
      e.forEach((v, i) => assertClose(out[r]![i]!, v, 1e-12, 1e-12, `${what} row ${r} class ${i}`));
    });
  });
}

test('mean_logits: weighted average of the logits (equal weights by default)', () => {
  check(new EnsembleTeacher([A, B]), (a, b) => a.map((v, i) => (v + b[i]!) / 2), 'mean_logits');
  check(new EnsembleTeacher([A, B], { weights: [3, 1] }), (a, b) => a.map((v, i) => 0.75 * v + 0.25 * b[i]!), 'mean_logits 3:1');
});

test('mean_probs: log of the weighted arithmetic mean of probabilities (finite at saturation)', () => {
  const ens = new EnsembleTeacher([A, B], { combine: 'mean_probs', weights: [1, 4] });
  check(ens, (a, b) => {
    // In log space, so the saturated third row (probabilities below 1e-300) is compared exactly.
    const la = logSoftmax(a), lb = logSoftmax(b);
    return la.map((v, i) => logAddExp(Math.log(0.2) + v, Math.log(0.8) + lb[i]!));
}, 'mean_probs');
});

test('geometric_probs: normalised weighted geometric mean of probabilities', () => {
  const ens = new EnsembleTeacher([A, B], { combine: 'geometric_probs' });
  check(ens, (a, b) => {
    // log p ∝ ½ log pa + ½ log pb = ½ (a + b) + const, so the result is log-softmax((a + b)/2).
    return logSoftmax(a.map((v, i) => (v + b[i]!) / 2));
  }, 'geometric_probs');
});

test('probability combinations return log-probabilities: softmax of them is the mixture', () => {
  torch.tidy(() => {
    const x = torch.tensor([[1, 2]], { dtype: 'float64' });
    const out = new EnsembleTeacher([A, B], { combine: 'mean_probs' }).logits(x);
    const p = out.softmax(1).tolist() as number[][];
    const pa = softmax(A.ref([1, 2])), pb = softmax(B.ref([1, 2]));
    p[0]!.forEach((v, i) => assertClose(v, (pa[i]! + pb[i]!) / 2, 1e-12, 0, `p[${i}]`));
    assertClose(out.exp().sum().item(), 1, 1e-12, 0, 'sums to 1');
    assert.ok(klDivergence(out, out, 4).item() === 0);
  });
});

test('validation: same class count, positive weights of the right length, known combination', () => {
  const C4 = new LinearTeacher('four classes', 'cccc', [[1, 0], [0, 1], [1, 1], [0, 0]], [0, 0, 0, 0]);
  assert.throws(() => new EnsembleTeacher([A, C4]), /same number of classes.*teacher A \(mlp\): 3.*four classes: 4/);
  assert.throws(() => new EnsembleTeacher([]), /at least one teacher/);
  assert.throws(() => new EnsembleTeacher([A, B], { weights: [1] }), /1 weights for 2 teachers/);
  assert.throws(() => new EnsembleTeacher([A, B], { weights: [1, 0] }), /positive/);
  assert.throws(() => new EnsembleTeacher([A, B], { weights: [1, -2] }), /positive/);
  assert.throws(() => new EnsembleTeacher([A, B], { weights: [1, Number.NaN] }), /positive/);
  assert.throws(() => new EnsembleTeacher([A, B], { combine: 'median' as never }), /unknown combination 'median'/);
  assert.deepEqual(new EnsembleTeacher([A, B], { weights: [2, 6] }).weights, [0.25, 0.75]);
  C4.w.dispose(); C4.b.dispose();
});

test('metadata: numClasses, summed parameters, description; checksum keyed on members, weights and combination', () => {
  const e = new EnsembleTeacher([A, B]);
  assert.equal(e.numClasses, 3);
  assert.equal(e.numParameters, A.numParameters + B.numParameters);
  assert.match(e.description, /mean_logits.*teacher A.*teacher B/);
  const sums = [
    e.checksum,
    new EnsembleTeacher([B, A]).checksum,
    new EnsembleTeacher([A, B], { weights: [1, 2] }).checksum,
    new EnsembleTeacher([A, B], { combine: 'mean_probs' }).checksum,
    new EnsembleTeacher([A, new LinearTeacher('B retrained', 'bbbc', B.W, B.bias)]).checksum,
  ];
  assert.equal(new Set(sums).size, sums.length);
  assert.equal(new EnsembleTeacher([A, B], { weights: [2, 2] }).checksum, e.checksum, 'weights are normalised first');
  assert.match(e.checksum, /^[0-9a-f]{64}$/);
});

test('logits() frees the members\' outputs and records no gradient', () => {
  const x = torch.tensor(X, { dtype: 'float64' }).requiresGrad_(true);
  for (const combine of ['mean_logits', 'mean_probs', 'geometric_probs'] as const) {
    const before = liveTensors();
    const out = new EnsembleTeacher([A, B], { combine }).logits(x);
    assert.equal(liveTensors(), before + 1, combine);
    assert.equal(out.requiresGrad, false);
    out.dispose();
  }
  x.dispose();
});
