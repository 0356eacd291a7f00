// Golden test of SP against the PyTorch reference written from RepDistiller's SP.py
// (scripts/fixtures/sp.py → test/fixtures/methods/sp.json): the term over one and two layer
// pairs, the label term, and the gradients w.r.t. every student feature.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import { spLoss } from '../../src/methods/sp.js';
import { goldenCases } from './features-golden.js';

// float64 both sides, same formulas; only summation order differs (ulps of b² terms). 1e-9
// relative fails on any change of normalisation axis, eps or the / b².
const RTOL = 1e-9;

test('sp: term and gradients match the PyTorch reference of RepDistiller\'s loss', () => {
  goldenCases('sp', 'sp.json', RTOL);
});

test('sp: features that differ by a per-sample scale have the same row-normalised Gram matrix', () => {
  torch.tidy(() => {
    const f = torch.randn([4, 6], { dtype: 'float64' });
    // scaling all features by one constant scales every row of G alike, which normalisation removes
    assert.ok(spLoss(f.mul(5), f).item() < 1e-20);
    assert.ok(spLoss(torch.randn([4, 6], { dtype: 'float64' }), f).item() > 1e-3);
    assert.throws(() => spLoss(f, torch.randn([3, 6])), /sp: .*different batch sizes/);
  });
});
