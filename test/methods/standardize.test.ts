// Golden test of logit standardization (Sun et al., CVPR 2024) as the `standardize` option of kd,
// dkd and dist, against the PyTorch reference written from the authors' normalize/kd_loss/dkd_loss
// (scripts/fixtures/logit_standardization.py → test/fixtures/methods/standardize.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import { resolveParams } from '../../src/methods/method.js';
import { getMethod } from '../../src/methods/registry.js';
import { standardizeLogits } from '../../src/losses/standardize.js';
import { assertCases, caseContext, fixture, type MethodCase } from './golden.js';

const F = fixture<MethodCase & { method: string }, { zscore: { input: number[]; shape: [number, number]; output: number[] } }>('standardize');

// float64 on both sides with the same formulas up to reduction order (and, for DKD, the authors'
// log of summed probabilities and −1000 mask against kdistill's exact log-space split, which agree
// to ~1e-15 at these logits): errors are a few ulps; 1e-10 relative still fails on any change of
// formula (biased std, eps inside the sqrt, standardizing the CE) by orders of magnitude.
const RTOL = 1e-10;

test('standardizeLogits: the authors\' z-score (unbiased std, 1e-7 added to it)', () => {
  const z = torch.tensor(F.zscore.input, { shape: F.zscore.shape, dtype: 'float64' });
  const out = standardizeLogits(z).toFloat64Array();
  F.zscore.output.forEach((v, i) => assert.ok(Math.abs(out[i]! - v) <= 1e-12, `z[${i}]: ${out[i]} vs ${v}`));
  // A row of equal logits has no spread: it maps to zeros (the epsilon), not NaN.
  const flat = standardizeLogits(torch.tensor([3, 3, 3], { shape: [1, 3], dtype: 'float64' })).toFloat64Array();
  assert.deepEqual([...flat], [0, 0, 0]);
  assert.throws(() => standardizeLogits(torch.tensor([1, 2, 3], { dtype: 'float64' })), /\[batch, classes\]/);
  assert.throws(() => standardizeLogits(torch.tensor([1, 2], { shape: [2, 1], dtype: 'float64' })), /at least 2 classes/);
});

test('kd, dkd, dist with standardize: true match the reference (terms and gradient)', () => {
  assert.deepEqual([...new Set(F.cases.map((c) => c.method))].sort(), ['dist', 'dkd', 'kd']);
  assertCases(F.cases, null, RTOL, 1e-13);
});

test('standardize makes kd blind to the scale and shift of either network\'s logits', () => {
  // The paper's point: only the relations among logits count, not their range.
  const c = F.cases.find((x) => x.method === 'kd')!;
  const spec = getMethod('kd');
  const run = (std: boolean, a: number, b: number): number => torch.tidy(() => {
    const { s, t, y, ctx } = caseContext(c);
    const m = spec.create(resolveParams(spec, { ...c.params, standardize: std }));
    const v = m.losses({ ...ctx, teacherLogits: t!.mul(a).add(b) }).kd!.item();
    torch.dispose(s, t!, ...(y ? [y] : []));
    return v;
  });
  const base = run(true, 1, 0);
  // Not exact: the 1e-7 added to the std (~6 here) moves the z-scores by ~1e-8 relative.
  assert.ok(Math.abs(run(true, 5, -3) - base) < 1e-6 * Math.abs(base), 'standardized: teacher ×5 − 3 changes nothing');
  assert.ok(Math.abs(run(false, 5, -3) - run(false, 1, 0)) > 1e-3, 'without it, the same change moves the loss');
});
