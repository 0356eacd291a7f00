// Golden test of PKT against the PyTorch reference written from the authors' loss
// (scripts/fixtures/pkt.py → test/fixtures/methods/pkt.json): the term, the label term when there
// are labels, and the gradient w.r.t. the student's embedding, through the registry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import { pktLoss } from '../../src/methods/pkt.js';
import { goldenCases } from './features-golden.js';

// float64 on both sides with the same formulas; only the order of the sums differs (a few ulps
// of the b² mean). 1e-9 relative still fails on any change of eps, normalisation or reduction.
const RTOL = 1e-9;

test('pkt: term and gradient match the PyTorch reference of the authors\' loss', () => {
  goldenCases('pkt', 'pkt.json', RTOL);
});

test('pkt: identical similarity structure costs nothing; mismatched batches are refused', () => {
  torch.tidy(() => {
    const f = torch.randn([5, 3], { dtype: 'float64' });
    // a rotation-free rescale keeps every cosine, so the distributions agree (up to eps)
    assert.ok(Math.abs(pktLoss(f, f.mul(3)).item()) < 1e-9);
    assert.throws(() => pktLoss(f, torch.randn([4, 3])), /pkt: .*different batch sizes/);
  });
});
