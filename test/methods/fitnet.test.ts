// Golden test of FitNets' hint stage (hintOnly, the paper's convolutional regressor, loss
// half_sse) against the PyTorch reference written from the paper's eq. 3 and the authors'
// HintCost (scripts/fixtures/fitnet.py → test/fixtures/methods/fitnet.json): the hint term and
// its gradient w.r.t. the guided feature and the regressor's weight and bias.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { Module } from '../../src/nn/module.js';
import { Conv2d, Linear } from '../../src/nn/layers.js';
import { resolveParams, type LossContext } from '../../src/methods/method.js';
import { getMethod } from '../../src/methods/registry.js';
import { ConvRegressor } from '../../src/methods/fitnet.js';
import type { Teacher } from '../../src/teachers/teacher.js';
import { assertClose, assertGradClose } from '../losses/golden.js';

interface Case {
  name: string; activation: 'relu' | 'tanh'; beta: number;
  studentShape: number[]; teacherShape: number[]; weightShape: number[];
  student: number[]; teacher: number[]; weight: number[]; bias: number[];
  hint: number; gradStudent: number[]; gradWeight: number[]; gradBias: number[];
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CASES = (JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'methods', 'fitnet.json'), 'utf8')) as { cases: Case[] }).cases;

/** A module whose submodule 'g' outputs a fixed tensor: the guided feature of the fixture. */
class Fixed extends Module {
  constructor(private readonly value: Tensor) { super(); }
  forward(): Tensor { return this.value; }
}
class Guided extends Module {
  readonly g: Fixed;
  constructor(v: Tensor) { super(); this.g = this.registerModule('g', new Fixed(v)); }
  forward(x: Tensor): Tensor { return this.g.call(x); }
}
function hintTeacher(u: Tensor): Teacher {
  return {
    description: 'fixture hint', checksum: 'fixture', numClasses: 3, numParameters: 0,
    logits: () => torch.zeros([u.shape[0]!, 3], { dtype: 'float32' }),
    features: () => ({ output: torch.zeros([u.shape[0]!, 3], { dtype: 'float32' }), features: { h: u } }),
  };
}

// The reference is float64; kdistill's layers hold float32 parameters, so the method runs in
// float32 on the same (float32-exact) inputs. Sums of up to ~200 products in float32 carry a
// relative error of a few 1e-7; 2e-5 leaves margin yet fails on any change of convention (an
// element mean instead of ½·sum moves the value by a factor of tens to hundreds, a missing bias
// or activation by far more than 1e-5).
const RTOL = 2e-5;

test('fitnet hint stage: ½‖u_h − r(v_g)‖² (batch mean) and its gradients match the PyTorch reference of the paper', () => {
  const spec = getMethod('fitnet');
  for (const c of CASES) {
    torch.tidy(() => {
      const m = spec.create(resolveParams(spec, {
        pairs: [{ student: 'g', teacher: 'h' }], hintOnly: true, regressor: 'conv', regressorActivation: c.activation, loss: 'half_sse', beta: c.beta,
      }));
      const v = torch.tensor(c.student, { shape: c.studentShape, dtype: 'float32' }).requiresGrad_(true);
      const u = torch.tensor(c.teacher, { shape: c.teacherShape, dtype: 'float32' });
      const student = new Guided(v);
      m.setup!({ student, teacher: hintTeacher(u), numClasses: 3, datasetSize: null, sample: v });
      const [r] = m.extraModules!();
      assert.ok(r instanceof ConvRegressor, `${c.name}: the paper's regressor is built where the shapes differ`);
      const map = r.map;
      assert.ok(c.studentShape.length === 4 ? map instanceof Conv2d : map instanceof Linear, `${c.name}: conv for maps, linear for vectors`);
      const [w, b] = r.parameters();
      assert.deepEqual(w!.shape, c.weightShape, `${c.name}: kernel N_g − N_h + 1, teacher's channels`);
      torch.noGrad(() => {
        w!.copy_(torch.tensor(c.weight, { shape: c.weightShape, dtype: 'float32' }));
        b!.copy_(torch.tensor(c.bias, { dtype: 'float32' }));
      });
      const y = torch.tensor(Array.from({ length: c.studentShape[0]! }, (_, i) => i % 3), { dtype: 'int64' });
      const ctx: LossContext = {
        student, teacher: null, batch: { x: v, y }, indices: null, info: { epoch: 0, epochs: 1, step: 0, numClasses: 3 },
        studentLogits: torch.zeros([c.studentShape[0]!, 3], { dtype: 'float32' }).requiresGrad_(true),
        teacherLogits: torch.zeros([c.studentShape[0]!, 3], { dtype: 'float32' }),
        studentFeatures: { g: v }, teacherFeatures: { h: u },
      };
      const terms = m.losses(ctx);
      assert.deepEqual(Object.keys(terms), ['hint'], `${c.name}: the hint stage has no label or KD term even with labels`);
      assertClose(terms.hint!.item(), c.hint, RTOL, 1e-9, `${c.name}: hint`);
      const [gv, gw, gb] = torch.autograd.grad(terms.hint!, [v, w!, b!]);
      assertGradClose(gv!.toFloat64Array(), c.gradStudent, RTOL, 1e-9, `${c.name}: d/dv_g`);
      assertGradClose(gw!.toFloat64Array(), c.gradWeight, RTOL, 1e-9, `${c.name}: d/dW_r`);
      assertGradClose(gb!.toFloat64Array(), c.gradBias, RTOL, 1e-9, `${c.name}: d/db_r`);
    });
  }
});

test('fitnet regressor: the paper\'s conv cannot enlarge a map; the error says what to use instead', () => {
  assert.throws(() => new ConvRegressor([4, 3, 3], [8, 5, 5], 'relu'), /smaller than the teacher's hint \[8, 5, 5\].*regressor: connector/);
  assert.throws(() => new ConvRegressor([4, 3, 3], [8], 'relu'), /both must be \[C, H, W\] or both \[D\]/);
  assert.throws(() => resolveParams(getMethod('fitnet'), { regressor: 'deconv' }), /'regressor' must be one of connector, conv/);
});
