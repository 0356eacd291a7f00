// Golden test of NST against the PyTorch reference written from RepDistiller's NST.py
// (scripts/fixtures/nst.py → test/fixtures/methods/nst.json): three layer pairs (student map
// pooled, teacher map pooled, equal sizes), the label term, and the gradients w.r.t. every student map.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import { nstLoss } from '../../src/methods/nst.js';
import { goldenCases } from './features-golden.js';

// float64 both sides; the kernels are computed by bmm here and by broadcast sums there, so only
// summation order differs (ulps). 1e-9 relative fails on any change of pooling, axis of the
// normalisation or kernel power.
const RTOL = 1e-9;

test('nst: term and gradients match the PyTorch reference of RepDistiller\'s loss', () => {
  goldenCases('nst', 'nst.json', RTOL);
});

test('nst: equal maps have zero MMD; vectors are refused', () => {
  torch.tidy(() => {
    const f = torch.randn([2, 3, 4, 4], { dtype: 'float64' });
    assert.ok(Math.abs(nstLoss(f, f).item()) < 1e-12);
    assert.throws(() => nstLoss(torch.randn([2, 8]), torch.randn([2, 8])), /nst: needs feature maps \[b, C, H, W\]/);
  });
});
