// Golden test of CTKD (global temperature) against the PyTorch reference written from the
// authors' code (scripts/fixtures/ctkd.py → test/fixtures/methods/ctkd.json): terms, the gradient
// w.r.t. the student logits, and the reversed, λ-scaled gradient reaching the temperature θ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import { noGrad } from '../../src/tensor/autograd.js';
import type { Module } from '../../src/nn/module.js';
import { resolveParams } from '../../src/methods/method.js';
import { getMethod } from '../../src/methods/registry.js';
import { ctkdLambda, GlobalTemperature, gradientScale } from '../../src/methods/ctkd.js';
import { assertClose, assertGradClose } from '../losses/golden.js';
import { assertTerms, caseContext, evaluate, fixture, type MethodCase } from './golden.js';

interface Case extends MethodCase { theta: number; lambda: number; thetaGrad: number }
const CASES = fixture<Case>('ctkd').cases;

test('ctkd: terms and gradients (student logits and temperature) match the reference of the authors\' code', () => {
  const spec = getMethod('ctkd');
  for (const c of CASES) {
    const m = spec.create(resolveParams(spec, c.params));
    assert.throws(() => m.losses(caseContext(c).ctx), /setup\(\) was not called/);
    m.setup!({ student: {} as Module, teacher: null, numClasses: c.shape[1], datasetSize: null });
    const [temp] = m.extraModules!();
    assert.ok(temp instanceof GlobalTemperature);
    const theta = temp.parameters()[0]!;
    assert.equal(theta.item(), 1, 'θ starts at 1 (Global_T)');
    noGrad(() => theta.fill_(c.theta)); // θ values of the fixture are exact in float32
    const { s, t, y, ctx } = caseContext(c);
    const { values, grads: [gs, gth] } = evaluate(m, ctx, [s, theta]);
    // Student side: float64 throughout, same formulas, so ulp-level agreement; 1e-10 fails on
    // any change (T² missing, λ in the forward pass, another curriculum epoch).
    assertTerms(values, c.terms, 1e-10, 1e-14, c.name);
    assertGradClose(gs!, c.grad, 1e-10, 1e-14, c.name);
    // θ is a float32 parameter: its float64 gradient is rounded to float32 (relative 6e-8).
    assertClose(gth![0]!, c.thetaGrad, 1e-6, 1e-12, `${c.name}: dθ`);
    assert.ok(Math.abs(ctkdLambda(c.epoch!, c.params as { lambdaMax: number; lambdaMin: number; lambdaEpochs: number }) - c.lambda) < 1e-15, `${c.name}: λ`);
    torch.dispose(s, ...(t ? [t] : []), ...(y ? [y] : []));
  }
});

test('ctkd: the curriculum runs λ from lambdaMax to lambdaMin and stays there', () => {
  const p = { lambdaMax: 0, lambdaMin: -1, lambdaEpochs: 10 };
  const ls = Array.from({ length: 15 }, (_, e) => ctkdLambda(e, p));
  for (let e = 1; e < 10; e++) assert.ok(ls[e]! < ls[e - 1]!, `decreasing at epoch ${e}`);
  assert.ok(Math.abs(ls[9]! + 1) < 1e-15 && ls.slice(9).every((v) => v === ls[9]), 'reaches −1 at the 10th epoch and stays');
});

test('gradientScale: the value unchanged, the gradient multiplied by λ', () => {
  const x = torch.tensor([0.3, -2, 5], { dtype: 'float64' }).requiresGrad_(true);
  torch.tidy(() => {
    const y = gradientScale(x, -0.5);
    assert.deepEqual([...y.toFloat64Array()], [0.3, -2, 5]);
    const [g] = torch.autograd.grad(y.mul(y).sum(), x);
    assert.deepEqual([...g!.toFloat64Array()], [-0.3, 2, -5]); // λ·2x
  });
  x.dispose();
});
