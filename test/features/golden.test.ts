// Golden tests of the feature and derivative losses against PyTorch (scripts/fixtures/features.py):
// hint losses, attention maps and AT loss (values and gradients), and the Sobolev projections
// J v, vᵀHv and target-class gradients on tiny fixed networks, with the losses' gradients with
// respect to the student's parameters. PyTorch forms full Jacobians/Hessians; we use the
// double-backward estimator, so agreement checks the estimator, not just the arithmetic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import * as F from '../../src/tensor/functional.js';
import { packageRoot } from '../../src/tensor/native.js';
import { attentionLoss, attentionMap, hintLoss, HINT_LOSSES } from '../../src/losses/features.js';
import { derivatives, randomUnitDirections, sobolevLosses, sobolevOutput, type SobolevOutput } from '../../src/losses/sobolev.js';
import { assertClose, assertGradClose, liveTensors, valueAndGrad } from '../losses/golden.js';

interface Golden { value: number; grad: number[] }
interface Param { shape: number[]; data: number[] }
interface SobolevCase {
  name: string; net: 'mlp' | 'cnn'; output: SobolevOutput; T: number; xShape: number[]; numOutputs: number;
  x: number[]; v: number[][]; u: number[][]; targets: number[];
  student: Record<string, Param>; teacher: Record<string, Param>;
  derivatives: Record<'student' | 'teacher', { jv: number[][]; vhv: number[][]; targetGrad: number[] }>;
  losses: Record<'order1' | 'order2' | 'target' | 'targetNormalized', { value: number; grads: Record<string, number[]> }>;
}
interface Fixture {
  hints: { name: string; shape: number[]; student: number[]; teacher: number[]; losses: Record<string, Golden> }[];
  attention: { name: string; p: number; studentShape: number[]; teacherShape: number[]; student: number[]; teacher: number[]; map: number[]; loss: Golden }[];
  sobolev: SobolevCase[];
}
const fx = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'features', 'features.json'), 'utf8')) as Fixture;
const f64 = (data: number[], shape: number[]): Tensor => torch.tensor(data, { shape, dtype: 'float64' });

test('hint losses (mse, l1, cosine) match PyTorch, value and gradient', () => {
  const before = liveTensors();
  for (const c of fx.hints) {
    // half_sse (FitNets' ½‖·‖²) has its golden case with the regressor, in test/methods/fitnet.test.ts.
    for (const kind of HINT_LOSSES.filter((k) => k !== 'half_sse')) {
      torch.tidy(() => {
        const s = f64(c.student, c.shape).requiresGrad_(true), t = f64(c.teacher, c.shape);
        const r = valueAndGrad(s, (x) => hintLoss(x, t, kind));
        const g = c.losses[kind]!;
        assertClose(r.value, g.value, 1e-10, 1e-12, `${c.name} ${kind}`);
        assertGradClose(r.grad, g.grad, 1e-9, 1e-12, `${c.name} ${kind}`);
      });
    }
  }
  assert.equal(liveTensors(), before, 'no tensors leak');
});

test('hint loss refuses features of different shapes', () => {
  torch.tidy(() => {
    assert.throws(() => hintLoss(torch.zeros([2, 3]), torch.zeros([2, 4])), /differ in shape.*connector/);
  });
});

test('attention maps and the AT loss match PyTorch (same size, pooled, p = 4)', () => {
  for (const c of fx.attention) {
    torch.tidy(() => {
      const s = f64(c.student, c.studentShape).requiresGrad_(true), t = f64(c.teacher, c.teacherShape);
      const map = attentionMap(s, c.p).toFloat64Array();
      assertGradClose(map, c.map, 1e-10, 1e-12, `${c.name} map`);
      const r = valueAndGrad(s, (x) => attentionLoss(x, t, c.p));
      assertClose(r.value, c.loss.value, 1e-9, 1e-14, `${c.name} loss`);
      assertGradClose(r.grad, c.loss.grad, 1e-8, 1e-14, `${c.name} grad`);
    });
  }
});

// The tiny fixed networks of the fixture script, written with the functional API.
function net(c: SobolevCase, params: Record<string, Tensor>, x: Tensor): Tensor {
  if (c.net === 'mlp') return F.linear(F.tanh(F.linear(x.flatten(1), params.w1!, params.b1!)), params.w2!, params.b2!);
  const y = F.tanh(F.conv2d(x, params.c!, params.cb!, { padding: 1 }));
  return F.linear(F.avgPool2d(y, 2).flatten(1), params.w!, params.b!);
}
const toParams = (ps: Record<string, Param>, grad: boolean): Record<string, Tensor> =>
  Object.fromEntries(Object.entries(ps).map(([k, p]) => [k, f64(p.data, p.shape).requiresGrad_(grad)]));

for (const c of fx.sobolev) {
  test(`Sobolev projections on ${c.name}: J v, vᵀHv, target gradients and the losses' parameter gradients match PyTorch`, () => {
    const before = liveTensors();
    torch.tidy(() => {
      const sp = toParams(c.student, true), tp = toParams(c.teacher, false);
      const n = c.xShape[0]!;
      const projections = { v: c.v.map((v) => f64(v, c.xShape)), u: c.u.map((u) => f64(u, [n, c.numOutputs])) };
      const targets = torch.tensor(c.targets, { dtype: 'int64' });
      const req = { order1: true, order2: true, targets, projections };
      const xs = f64(c.x, c.xShape).requiresGrad_(true), xt = f64(c.x, c.xShape).requiresGrad_(true);
      const ds = derivatives(sobolevOutput(net(c, sp, xs), c.output, c.T), xs, { ...req, createGraph: true });
      const dt = derivatives(sobolevOutput(net(c, tp, xt), c.output, c.T), xt, { ...req, createGraph: false });
      for (const [who, d] of [['student', ds], ['teacher', dt]] as const) {
        const ref = c.derivatives[who];
        d.jv.forEach((t, p) => assertGradClose(t.toFloat64Array(), ref.jv[p]!, 1e-9, 1e-12, `${who} J v[${p}]`));
        d.vhv.forEach((t, p) => assertGradClose(t.toFloat64Array(), ref.vhv[p]!, 1e-9, 1e-12, `${who} vᵀHv[${p}]`));
        assertGradClose(d.targetGrad!.toFloat64Array(), ref.targetGrad, 1e-9, 1e-12, `${who} target gradient`);
      }
      assert.ok(!dt.jv[0]!.requiresGrad && !dt.vhv[0]!.requiresGrad, 'teacher derivatives are plain values');
      const names = Object.keys(sp);
      for (const normalizeTarget of [false, true]) {
        const l = sobolevLosses(ds, dt, { normalizeTarget });
        const cases = normalizeTarget ? { targetNormalized: l.targetClass! } : { order1: l.order1!, order2: l.order2!, target: l.targetClass! };
        for (const [k, loss] of Object.entries(cases)) {
          const ref = c.losses[k as keyof SobolevCase['losses']];
          assertClose(loss.item(), ref.value, 1e-8, 1e-14, `${k} value`);
          const grads = torch.autograd.grad(loss, names.map((a) => sp[a]!), { retainGraph: true, allowUnused: true });
          names.forEach((a, i) => {
            const g = grads[i] ?? torch.zerosLike(sp[a]!);
            assertGradClose(g.toFloat64Array(), ref.grads[a]!, 1e-7, 1e-12, `${k} d/d${a}`);
          });
        }
      }
    });
    assert.equal(liveTensors(), before, 'no tensors leak');
  });
}

test('order 2 of ReLU logits is exactly zero (no curvature), not an error', () => {
  torch.tidy(() => {
    const w = torch.randn([5, 6], { dtype: 'float64' }), w2 = torch.randn([3, 5], { dtype: 'float64' });
    const x = torch.randn([4, 6], { dtype: 'float64' }).requiresGrad_(true);
    const y = F.linear(F.relu(F.linear(x, w)), w2);
    const projections = { v: [randomUnitDirections([4, 6], undefined, 'float64')], u: [randomUnitDirections([4, 3], undefined, 'float64')] };
    const d = derivatives(y, x, { order1: true, order2: true, targets: null, projections, createGraph: false });
    assert.deepEqual([...d.vhv[0]!.toFloat64Array()], [0, 0, 0, 0]);
    // J v of a piecewise-linear net is its finite difference along v (inside one linear region)
    const eps = 1e-6;
    const fd = F.linear(F.relu(F.linear(x.detach().add(projections.v[0]!.mul(eps)), w)), w2).sub(y.detach()).div(eps);
    assertGradClose(d.jv[0]!.toFloat64Array(), [...fd.toFloat64Array()], 1e-4, 1e-6, 'J v vs finite difference');
  });
});

test('random unit directions have unit norm per sample and follow the generator', () => {
  torch.tidy(() => {
    const g1 = new torch.Generator(5), g2 = new torch.Generator(5);
    const a = randomUnitDirections([3, 1, 4, 4], g1), b = randomUnitDirections([3, 1, 4, 4], g2);
    assert.ok(a.equal(b));
    const norms = [...a.flatten(1).norm({ dim: 1 }).toFloat64Array()];
    for (const v of norms) assertClose(v, 1, 1e-6, 0, 'norm');
  });
});
