// Golden test of RKD against the PyTorch reference written from the authors' loss
// (scripts/fixtures/rkd.py → test/fixtures/methods/rkd.json): distance and angle terms, the label
// term, and the gradient w.r.t. the student's embedding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import { rkdLosses } from '../../src/methods/rkd.js';
import { goldenCases } from './features-golden.js';

// float64 both sides with the same formulas; the b³ angle mean and the distance normalisation
// are summed in a different order (ulps). 1e-9 relative fails on any change of the Huber δ, the
// mean over positive distances or the normalisation.
const RTOL = 1e-9;

test('rkd: distance and angle terms and gradient match the PyTorch reference of the authors\' loss', () => {
  goldenCases('rkd', 'rkd.json', RTOL);
});

test('rkd: invariant to the teacher\'s scale and translation; refuses a batch of one', () => {
  torch.tidy(() => {
    const f = torch.randn([5, 4], { dtype: 'float64' });
    const { distance, angle } = rkdLosses(f, f.mul(7).add(3));
    assert.ok(distance.item() < 1e-20 && angle.item() < 1e-20, 'distances are mean-normalised, angles scale- and shift-free');
    assert.throws(() => rkdLosses(f.narrow(0, 0, 1), f.narrow(0, 0, 1)), /rkd: needs at least 2 samples/);
  });
});
