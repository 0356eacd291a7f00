// Golden test of VID against the PyTorch reference written from the authors' loss
// (scripts/fixtures/vid.py → test/fixtures/methods/vid.json): a map pair (pooled) and a vector pair
// (as 1×1 maps), the term and its gradients w.r.t. the student features, every regressor weight and
// the per-channel log-scale. The method wires the same regressors (test/methods/representation.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { VidRegressor } from '../../src/methods/vid.js';
import { assertCase, fixture, type Named } from './features-golden.js';

// The regressors are float32 modules, so this runs in float32 against a float64 reference on the
// same float32 values: ~1e-7 relative rounding through three convolutions and a division by the
// variance; 1e-4 relative (1e-6 absolute on the gradients' scale) is far below what a changed
// formula (no ε, σ instead of σ², another pooling) would move.
const RTOL = 1e-4;
const t32 = (n: Named): Tensor => torch.tensor(n.data, { shape: n.shape });

test('vid: regressors + Gaussian NLL match the PyTorch reference, values and gradients', () => {
  for (const c of fixture('vid.json')) {
    torch.tidy(() => {
      const s = c.student;
      const a = t32(s.a!).requiresGrad_(true), b = t32(s.b!).requiresGrad_(true);
      const rs = [0, 1].map((i) => {
        const w = (k: string): Named => s[`r${i}.${k}`]!;
        const r = new VidRegressor(w('regressor.0.weight').shape[1]!, w('regressor.0.weight').shape[0]!, w('regressor.4.weight').shape[0]!);
        r.loadStateDict(new Map(['regressor.0.weight', 'regressor.2.weight', 'regressor.4.weight', 'log_scale'].map((k) => [k, t32(w(k))])));
        return r;
      });
      const loss = rs[0]!.call(a, t32(c.teacher.ta!)).add(rs[1]!.call(b, t32(c.teacher.tb!))).mul((c.params as { beta: number }).beta);
      const named: [string, Tensor][] = [['a', a], ['b', b], ...rs.flatMap((r, i) => r.namedParameters().map(([k, t]): [string, Tensor] => [`r${i}.${k}`, t]))];
      const gs = torch.autograd.grad(loss, named.map(([, t]) => t));
      assertCase(c, { values: { vid: loss.item() }, grads: Object.fromEntries(named.map(([k], i) => [k, gs[i]!.toFloat64Array()])) }, RTOL, 1e-6);
      for (const r of rs) r.dispose();
    });
  }
});

test('vid: the variance starts at initVariance for every teacher channel', () => {
  const r = new VidRegressor(2, 3, 3, 5);
  torch.tidy(() => {
    const v = r.logScale.exp().add(1).log().add(1e-5);
    for (const x of v.toFloat64Array()) assert.ok(Math.abs(x - 5) < 1e-5, `σ² = ${x}`);
  });
  r.dispose();
});
