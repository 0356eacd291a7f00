// Golden tests of the data-free losses (src/losses/datafree.ts) against PyTorch references written
// from the authors' code (scripts/fixtures/datafree.py → test/fixtures/losses/datafree.json):
// DAFL's one-hot, activation and information-entropy losses, DeepInversion's batch-norm statistics
// term, its total-variation and ℓ2 priors and Adaptive DeepInversion's competition term; each value
// and its gradient w.r.t. the inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { activationLoss, bnStatisticsLoss, competitionLoss, imageL2, informationEntropyLoss, oneHotLoss, tvL1, tvL2 } from '../../src/losses/datafree.js';
import { assertClose, assertGradClose } from './golden.js';

interface Golden { value: number; grad: number[] }
interface Fixture {
  dafl: { name: string; logitsShape: number[]; featuresShape: number[]; logits: number[]; features: number[]; oneHot: Golden; activation: Golden; entropy: Golden }[];
  bn: ({ name: string; shape: number[]; x: number[]; runningMean: number[]; runningVar: number[] } & Golden)[];
  priors: { name: string; shape: number[]; x: number[]; tvL1: Golden; tvL2: Golden; l2: Golden }[];
  competition: { name: string; shape: number[]; student: number[]; teacher: number[]; value: number; gradStudent: number[]; gradTeacher: number[] }[];
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const F = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'losses', 'datafree.json'), 'utf8')) as Fixture;

// Both sides compute in float64 with the same formulas; only the order of reductions differs
// (sums of ≤ 200 terms), so the difference is a few ulps (~1e-15 relative). 1e-10 leaves margin
// and still fails on any change of formula (ln for log10, the unbiased variance, a sum for a mean
// would move the values by percents).
const RTOL = 1e-10, ATOL = 1e-13;

const leaf = (v: number[], shape: number[]): Tensor => torch.tensor(v, { shape, dtype: 'float64' }).requiresGrad_(true);

/** The value of loss() and its gradients w.r.t. xs, compared with the fixture. */
function check(what: string, xs: Tensor[], loss: () => Tensor, value: number, grads: number[][]): void {
  torch.tidy(() => {
    const v = loss();
    const gs = torch.autograd.grad(v, xs);
    assertClose(v.item(), value, RTOL, ATOL, `${what}: value`);
    gs.forEach((g, i) => assertGradClose(g!.toFloat64Array(), grads[i]!, RTOL, ATOL, `${what}: gradient ${i}`));
  });
}

test('DAFL losses: one-hot, activation and information entropy match the authors\' code', () => {
  assert.ok(F.dafl.length >= 2);
  for (const c of F.dafl) {
    const z = leaf(c.logits, c.logitsShape), f = leaf(c.features, c.featuresShape);
    check(`${c.name} oneHot`, [z], () => oneHotLoss(z), c.oneHot.value, [c.oneHot.grad]);
    check(`${c.name} activation`, [f], () => activationLoss(f), c.activation.value, [c.activation.grad]);
    check(`${c.name} entropy`, [z], () => informationEntropyLoss(z), c.entropy.value, [c.entropy.grad]);
    torch.dispose(z, f);
  }
});

test('DeepInversion batch-norm statistics term matches the authors\' feature hook', () => {
  for (const c of F.bn) {
    const x = leaf(c.x, c.shape);
    const rm = torch.tensor(c.runningMean, { dtype: 'float64' }), rv = torch.tensor(c.runningVar, { dtype: 'float64' });
    check(`${c.name} bn`, [x], () => bnStatisticsLoss(x, rm, rv), c.value, [c.grad]);
    torch.dispose(x, rm, rv);
  }
});

test('DeepInversion image priors: total variation (ℓ1, ℓ2) and the ℓ2 norm match the authors\' code', () => {
  for (const c of F.priors) {
    const x = leaf(c.x, c.shape);
    check(`${c.name} tvL1`, [x], () => tvL1(x), c.tvL1.value, [c.tvL1.grad]);
    check(`${c.name} tvL2`, [x], () => tvL2(x), c.tvL2.value, [c.tvL2.grad]);
    check(`${c.name} l2`, [x], () => imageL2(x), c.l2.value, [c.l2.grad]);
    torch.dispose(x);
  }
});

test('Adaptive DeepInversion competition term matches the authors\' Jensen-Shannon form', () => {
  for (const c of F.competition) {
    const s = leaf(c.student, c.shape), t = leaf(c.teacher, c.shape);
    check(`${c.name} competition`, [s, t], () => competitionLoss(s, t), c.value, [c.gradStudent, c.gradTeacher]);
    torch.dispose(s, t);
  }
});
