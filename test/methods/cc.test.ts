// Golden test of CC against the PyTorch reference (scripts/fixtures/cc.py → test/fixtures/methods/cc.json):
// linear heads on both embeddings, then the authors' shared loss (RepDistiller CC.py) or the paper's
// Taylor-expanded Gaussian RBF; the term and its gradients w.r.t. the student's embedding and both
// heads' weights. The method wires the same pieces (test/methods/representation.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { ccLoss, type CcKernel } from '../../src/methods/cc.js';
import { EmbedHead } from '../../src/methods/representation.js';
import { assertCase, fixture, type Named } from './features-golden.js';

// The heads are float32 modules, so inputs, weights and the loss run in float32 against a float64
// reference on the same float32 values: each value carries ~1e-7 relative rounding through a few
// dozen operations, and the products of differences in the repdistiller kernel can cancel, so
// 1e-4 relative (with 1e-6 absolute, relative to the largest gradient entry) leaves margin while any
// formula change (a missing |·|, normalisation, a Taylor term) moves the values by far more.
const RTOL = 1e-4;

const t32 = (n: Named): Tensor => torch.tensor(n.data, { shape: n.shape });

test('cc: heads + both kernels match the PyTorch reference, values and gradients', () => {
  for (const c of fixture('cc.json')) {
    torch.tidy(() => {
      const p = c.params as { kernel: CcKernel; beta: number; gamma?: number; order?: number };
      const s = c.student, fs = t32(s.e!).requiresGrad_(true), ft = t32(c.teacher.te!);
      const hs = new EmbedHead(s.e!.shape[1]!, s['head_s.weight']!.shape[0]!, false), ht = new EmbedHead(c.teacher.te!.shape[1]!, s['head_t.weight']!.shape[0]!, false);
      hs.loadStateDict(new Map([['linear.weight', t32(s['head_s.weight']!)], ['linear.bias', t32(s['head_s.bias']!)]]));
      ht.loadStateDict(new Map([['linear.weight', t32(s['head_t.weight']!)], ['linear.bias', t32(s['head_t.bias']!)]]));
      const loss = ccLoss(hs.call(fs), ht.call(ft), p.kernel, p.gamma ?? 0.4, p.order ?? 2).mul(p.beta);
      const leaves = [fs, hs.linear.weight, hs.linear.bias!, ht.linear.weight, ht.linear.bias!];
      const gs = torch.autograd.grad(loss, leaves);
      const names = ['e', 'head_s.weight', 'head_s.bias', 'head_t.weight', 'head_t.bias'];
      assertCase(c, { values: { cc: loss.item() }, grads: Object.fromEntries(names.map((n, i) => [n, gs[i]!.toFloat64Array()])) }, RTOL, 1e-6);
      hs.dispose();
      ht.dispose();
    });
  }
});

test('cc: the repdistiller kernel is zero for equal embeddings; bad shapes are refused by name', () => {
  torch.tidy(() => {
    const e = torch.randn([4, 3], { dtype: 'float64' });
    assert.equal(ccLoss(e, e, 'repdistiller').item(), 0);
    assert.ok(ccLoss(e, e.mul(2), 'gaussian') .item() < 1e-20, 'the gaussian kernel normalises the embeddings');
    assert.throws(() => ccLoss(e, torch.randn([4, 5]), 'repdistiller'), /cc: embeddings must be \[b, d\] with the same b and d/);
    assert.throws(() => ccLoss(e.narrow(0, 0, 1), e.narrow(0, 0, 1), 'gaussian'), /at least 2 samples/);
  });
});
