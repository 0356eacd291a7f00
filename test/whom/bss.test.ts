// BSS (Heo et al. 2019): the attack's update rule against hand-computed values on a linear
// teacher, crossing the boundary within the budget, base-sample selection and target sampling,
// and the authors' loss-weight schedule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor } from '../../src/tensor/factories.js';
import { linear } from '../../src/tensor/functional.js';
import { manualSeed, setNumThreads } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';
import { klDivergence } from '../../src/losses/tempered.js';
import { getMethod } from '../../src/methods/registry.js';
import { resolveParams } from '../../src/methods/method.js';
import { bssAttack, selectBaseSamples } from '../../src/methods/bss.js';
import { context } from '../methods/context.js';

setNumThreads(1);
const OPTS = { steps: 10, stepSize: 0.3, min: -10, max: 10 };

/** z = x Wᵀ with class rows w_0 = s·(1, 0), w_1 = s·(0, 1), w_2 = s·(−1, −1). */
const linearTeacher = (s: number) => {
  const W = tensor([[s, 0], [0, s], [-s, -s]]);
  return (x: Tensor): Tensor => linear(x, W);
};
const top1 = (z: Tensor): number[] => Array.from(z.argmax({ dim: 1 }).data() as BigInt64Array, Number);

test('the attack crosses the teacher\'s boundary toward the target class within its step budget', () => {
  const f = linearTeacher(4);
  // class 0 at (1, 0) and (2, 0.5); targets 1 and 2
  const x = tensor([[1, 0], [2, 0.5]]);
  assert.deepEqual(top1(f(x)), [0, 0]);
  const { x: adv, steps } = bssAttack(f, x, tensor([1, 2], { dtype: 'int64' }), OPTS);
  assert.ok(steps <= OPTS.steps, `${steps} steps`);
  assert.deepEqual(top1(f(adv)), [1, 2], 'each sample ends in its target class');
  // it stopped as soon as every sample had crossed (here after one step: η·‖∇‖ = 0.3·4√2 > 1)
  assert.equal(steps, 1);
});

test('one attack step is x + η·(z_gt − z_tgt + 1e-4)·∇/‖∇‖₂, then a sample that crossed stops moving', () => {
  // ‖∇(z_1 − z_0)‖ = √2 for s = 1, so each step shrinks the gap by 1 − 0.3√2: no crossing.
  const f = linearTeacher(1);
  const x = tensor([[2, 0]]);
  const one = bssAttack(f, x, tensor([1], { dtype: 'int64' }), { ...OPTS, steps: 1 }).x.data<Float32Array>();
  const gap = 2, d = (0.3 * (gap + 1e-4)) / Math.SQRT2;
  assert.ok(Math.abs(one[0]! - (2 - d)) < 1e-5 && Math.abs(one[1]! - d) < 1e-5, `got ${one[0]}, ${one[1]}`);
  const ten = bssAttack(f, x, tensor([1], { dtype: 'int64' }), OPTS);
  assert.equal(ten.steps, 10, 'ran the whole budget without crossing');
  const z = f(ten.x).data<Float32Array>();
  const expected = gap * (1 - 0.3 * Math.SQRT2) ** 10;
  assert.ok(Math.abs(z[0]! - z[1]! - expected) < 1e-3, `gap ${z[0]! - z[1]!} vs ${expected}`);
  // inputs are clipped to the valid range
  const clipped = bssAttack(linearTeacher(4), tensor([[1, 0]]), tensor([2], { dtype: 'int64' }), { ...OPTS, min: 0, max: 1 }).x.data<Float32Array>();
  assert.ok(clipped.every((v) => v >= 0 && v <= 1));
});

test('the attack crosses the boundary of a small known ReLU MLP through ModuleTeacher.logitsWithGrad', () => {
  // h = relu(k·[x1, x2, −x1, −x2]); z0 = h0, z1 = h1, z2 = h2 + h3. At x = (1, 0.1) the top-1 is
  // class 0; toward class 1 the gradient of z1 − z0 is k·(−1, 1), so each step multiplies the gap
  // by 1 − ηk√2 and subtracts ηk√2·1e-4: the +1e-4 of the authors' rule is what finally crosses.
  const k = 2;
  const net = createModel({ arch: 'mlp', hidden: [4], numClasses: 3, inputShape: [2] });
  net.loadStateDict(new Map([
    ['layer1.linear.weight', tensor([[k, 0], [0, k], [-k, 0], [0, -k]])],
    ['layer1.linear.bias', tensor([0, 0, 0, 0])],
    ['fc.weight', tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]])],
    ['fc.bias', tensor([0, 0, 0])],
  ]));
  const teacher = new ModuleTeacher(net, 3, 'known mlp', 'x');
  const x = tensor([[1, 0.1]]);
  assert.deepEqual(top1(teacher.logits(x)), [0]);
  const c = 0.3 * k * Math.SQRT2;
  let gap = k * 0.9, expected = 0;
  while (gap >= 0) {
    gap = gap * (1 - c) - c * 1e-4;
    expected++;
  }
  assert.ok(expected > 1 && expected <= 10, `the known model needs ${expected} steps`);
  const { x: adv, steps } = bssAttack((v) => teacher.logitsWithGrad(v), x, tensor([1], { dtype: 'int64' }), { ...OPTS, min: -100, max: 100 });
  assert.deepEqual(top1(teacher.logits(adv)), [1], 'crossed into the target class');
  assert.ok(Math.abs(steps - expected) <= 1, `${steps} steps, expected ${expected} (float32 round-off may shift one)`);
  // it stopped right past the boundary: the two logits are nearly tied
  const z = teacher.logits(adv).data<Float32Array>();
  assert.ok(z[1]! - z[0]! > 0 && z[1]! - z[0]! < 1e-2, `margin ${z[1]! - z[0]!}`);
  assert.ok(net.parameters().every((p) => p.grad === null), 'the frozen teacher accumulates no gradients');
});

test('base samples: correct for both networks, the largest non-target disagreement first; targets never the top-1', () => {
  // sample 0: both right (large disagreement), 1: student wrong, 2: both right (small), 3: teacher wrong
  const t = tensor([[5, 0, 1], [4, 0, 0], [3, 0, 0], [0, 4, 0]]);
  const s = tensor([[1, 0, 0.9], [0, 3, 0], [3, 0, 0], [3, 0, 0]]);
  const y = tensor([0, 0, 0, 0], { dtype: 'int64' });
  const all = selectBaseSamples(t, s, y, 4, new Float32Array([0, 0]));
  assert.deepEqual(all.index, [0, 2]);
  const one = selectBaseSamples(t, s, y, 1, new Float32Array([0]));
  assert.deepEqual(one.index, [0], 'the budget keeps the largest Σ_{c≠y}(p_T − p_S)²');
  // u = 0 picks the teacher's second class; u → 1 the least likely one
  assert.deepEqual(one.target, [2]);
  assert.deepEqual(selectBaseSamples(t, s, y, 1, new Float32Array([0.999])).target, [1]);
});

test('loss weights follow the authors\' schedule: KD 4 → 1, BSS 2 → 0 at ¾ of training', () => {
  manualSeed(5);
  const spec = getMethod('bss');
  const m = spec.create(resolveParams(spec, { inputMin: -100, inputMax: 100 }));
  const net = createModel({ arch: 'mlp', hidden: [8], numClasses: 3, inputShape: [3] });
  const teacher = new ModuleTeacher(createModel({ arch: 'mlp', hidden: [8], numClasses: 3, inputShape: [3] }), 3, 't', 't');
  const x = tensor([[1, 0, 0], [0, 2, 0], [0, 0, 3], [2, 1, 0]]);
  const tl = teacher.logits(x);
  // labels = the teacher's predictions, student = half the teacher's logits: every sample is a base sample
  const y = tl.argmax({ dim: 1 });
  const sl = tl.mul(0.5).requiresGrad_(true);
  const at = (epoch: number, epochs: number) => {
    const ctx = { ...context({ student: sl, teacher: tl, y, epoch }), student: net, teacher };
    ctx.batch = { x, y };
    ctx.info = { ...ctx.info, epochs };
    return m.losses(ctx);
  };
  const kl = klDivergence(tl, sl, 3).item();
  assert.ok(kl > 0);
  const first = at(0, 4); // e = 1/4: r_kd = 3·¾ + 1, r_bss = 2·(1 − (4/3)·¼)
  assert.ok(Math.abs(first.kd!.item() - kl * 3.25 / 9) < 1e-6);
  assert.ok(first.bss!.item() > 0, 'attacked samples give a positive soft term');
  const last = at(3, 4); // r_kd = 1, r_bss = 0: no attack
  assert.equal(last.bss!.item(), 0);
  assert.deepEqual(Object.keys(last), ['ce', 'kd', 'bss']);
});
