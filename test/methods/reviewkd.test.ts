// Golden test of ReviewKD against the PyTorch reference written from the authors' code as
// mdistiller has it (scripts/fixtures/reviewkd.py → test/fixtures/methods/reviewkd.json): three
// levels (two stage maps, one resized to the teacher's size, and the embedding as a 1×1 map), the
// ABFs in training mode, HCL, and the gradients w.r.t. the student features and every ABF
// parameter. The method's wiring, warm-up and layer checks are tested on zoo models below.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { Abf, hclLoss, reviewFeatures } from '../../src/methods/reviewkd.js';
import { assertClose, assertGradClose } from '../losses/golden.js';
import type { Named } from './features-golden.js';

interface Fixture {
  params: { weight: number; warmupEpochs: number }; epoch: number;
  student: Named[]; teacher: Named[]; state: Record<string, number[]>[]; shapes: Record<string, number[]>[];
  loss: number; grad_student: number[][]; grad_params: Record<string, number[]>;
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const F = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'methods', 'reviewkd.json'), 'utf8')) as Fixture;

// The ABFs are float32 modules: float32 against a float64 reference on the same float32 values.
// Batch norm over 3 samples divides by small batch deviations, which magnifies the ~1e-7 rounding
// of each value to ~1e-6; 1e-4 relative (1e-6 absolute on the gradients' scale) leaves margin and
// still fails on a wrong pooling weight, resize, attention split or level order.
const RTOL = 1e-4;
const t32 = (n: Named): Tensor => torch.tensor(n.data, { shape: n.shape });

test('reviewkd: ABF fusion + HCL match the PyTorch reference of the authors\' code, values and gradients', () => {
  torch.tidy(() => {
    const s = F.student.map((n) => t32(n).requiresGrad_(true)), t = F.teacher.map(t32);
    const abfs = [new Abf(2, 4, 4, true), new Abf(3, 4, 5, true), new Abf(4, 4, 6, false)];
    abfs.forEach((a, i) => a.loadStateDict(new Map(Object.entries(F.state[i]!).map(([k, v]) => [k, torch.tensor(v, { shape: F.shapes[i]![k]! })]))));
    const fused = reviewFeatures(abfs, s, [[4, 4], [4, 4], [1, 1]]);
    assert.deepEqual(fused.map((f) => f.shape), [[3, 4, 4, 4], [3, 5, 4, 4], [3, 6, 1, 1]]);
    const ramp = Math.min((F.epoch + 1) / F.params.warmupEpochs, 1);
    const loss = fused.map((f, i) => hclLoss(f, i < 2 ? t[i]! : t[i]!.reshape([3, 6, 1, 1]))).reduce((a, b) => a.add(b)).mul(F.params.weight * ramp);
    const params = abfs.flatMap((a, i) => a.namedParameters().map(([k, p]): [string, Tensor] => [`abf${i}.${k}`, p]));
    assert.deepEqual(params.map(([k]) => k).sort(), Object.keys(F.grad_params).sort(), 'the same parameters as the authors\' ABF');
    const gs = torch.autograd.grad(loss, [...s, ...params.map(([, p]) => p)]);
    assertClose(loss.item(), F.loss, RTOL, 0, 'loss');
    s.forEach((_, i) => assertGradClose(gs[i]!.toFloat64Array(), F.grad_student[i]!, RTOL, 1e-6, `d/d student level ${i}`));
    params.forEach(([k], i) => assertGradClose(gs[3 + i]!.toFloat64Array(), F.grad_params[k]!, RTOL, 1e-6, `d/d ${k}`));
    for (const a of abfs) a.dispose();
  });
});

test('reviewkd: HCL of equal maps is zero; pooled levels only below the map size', () => {
  torch.tidy(() => {
    const a = torch.randn([2, 3, 2, 2], { dtype: 'float64' });
    assert.equal(hclLoss(a, a).item(), 0);
    // h = 2: only the 1×1 pooling applies, so HCL = (mse + ½·mse(mean, mean)) / 1.5
    const b = torch.zeros([2, 3, 2, 2], { dtype: 'float64' });
    const want = a.square().mean().item() + 0.5 * a.mean({ dim: [2, 3] }).square().mean().item();
    assertClose(hclLoss(a, b).item(), want / 1.5, 1e-12, 0, 'hcl at h = 2');
  });
});
