// The feature and derivative methods: fitnet connectors (shapes, kept out of the student),
// attention and sobolev loss terms by name, the trainer's setup hook and input-gradient switch,
// and TorchScript teachers (features by submodule path or returned tuple, derivatives in x).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { packageRoot } from '../../src/tensor/native.js';
import { crossEntropy } from '../../src/tensor/functional.js';
import { resolveParams, type LossContext, type Method, type Params } from '../../src/methods/method.js';
import { getMethod, METHODS } from '../../src/methods/registry.js';
import { Connector, weightedPairs } from '../../src/methods/fitnet.js';
import { createModel, type ZooModel } from '../../src/nn/zoo/index.js';
import { ModuleTeacher, TorchScriptTeacher } from '../../src/teachers/sources.js';
import { attentionLoss, hintLoss } from '../../src/losses/features.js';
import { derivatives, randomProjections } from '../../src/losses/sobolev.js';
import { train } from '../../src/train/trainer.js';
import type { Dataset } from '../../src/data/dataset.js';
import { assertClose, assertGradClose, liveTensors } from '../losses/golden.js';

torch.setNumThreads(1);
const make = (name: string, given: Params = {}): Method => {
  const spec = getMethod(name);
  return spec.create(resolveParams(spec, given));
};

function cnns(): { student: ZooModel; teacher: ModuleTeacher } {
  torch.manualSeed(3);
  const student = createModel({ arch: 'cnn', numClasses: 10, channels: [4, 8], hidden: 16 });
  const t = createModel({ arch: 'cnn', numClasses: 10, channels: [8, 16], hidden: 32 });
  return { student, teacher: new ModuleTeacher(t, 10, 'test cnn teacher', 'test') };
}

/** The context the trainer would build for one batch (features filled in as it does). */
function ctxFor(m: Method, student: ZooModel, teacher: ModuleTeacher, x: Tensor, y: Tensor | null, step = 0): LossContext {
  if (m.inputGrad) x.requiresGrad_(true);
  const sf = m.features?.student ?? [], tf = m.features?.teacher ?? [];
  const s = sf.length ? student.forwardWithFeatures(x, sf) : { output: student.call(x), features: {} };
  const t = torch.noGrad(() => (tf.length ? teacher.features(x, tf) : { output: teacher.logits(x), features: {} }));
  return {
    student, teacher, batch: { x, y }, indices: null, info: { epoch: 0, epochs: 1, step, numClasses: 10 },
    studentLogits: s.output, teacherLogits: t.output, studentFeatures: s.features, teacherFeatures: t.features,
  };
}

test('the three methods are registered with papers and documented parameters', () => {
  for (const n of ['fitnet', 'attention', 'sobolev']) {
    const s = METHODS.find((m) => m.name === n);
    assert.ok(s, n);
    assert.ok(s.needsTeacher && s.paper.length > 20);
  }
  assert.throws(() => make('fitnet', { loss: 'huber' }), /must be one of mse, l1, cosine/);
});

test('layer pairs: YAML lists and maps, per-pair weights, the old packed strings; bad specs are refused clearly', () => {
  const pairsOf = (g: Params): unknown => resolveParams(getMethod('fitnet'), g).pairs;
  const both = [{ student: 'stage1', teacher: 'stage2' }, { student: 'fc1', teacher: 'fc1' }];
  assert.deepEqual(pairsOf({ pairs: [{ student: 'stage1', teacher: 'stage2' }, 'fc1'] }), both);
  assert.deepEqual(pairsOf({ pairs: { stage1: 'stage2', fc1: 'fc1' } }), both);
  assert.deepEqual(pairsOf({ pairs: 'stage1:stage2, fc1' }), both, 'the packed string of the first release');
  assert.deepEqual(resolveParams(getMethod('fitnet'), { weights: '2, 0.5' }).weights, [2, 0.5], 'the packed weights');
  assert.deepEqual(weightedPairs(both, [2, 0.5], 'x').map((p) => p.weight), [2, 0.5]);
  assert.deepEqual(weightedPairs(both, [], 'x').map((p) => p.weight), [1, 1]);
  assert.throws(() => make('fitnet', { pairs: both, weights: [1] }), /'weights' must list 2 numbers, one per layer pair, got 1/);
  assert.throws(() => make('fitnet', { weights: [-1] }), /'weights\[0\]' must be >= 0/);
  assert.throws(() => pairsOf({ pairs: 'a:b:c' }), /'pairs': layer pair 'a:b:c' must be 'student_layer:teacher_layer'/);
  assert.throws(() => pairsOf({ pairs: ' , ' }), /names no layers/);
  assert.throws(() => pairsOf({ pairs: [] }), /names no layers/);
  assert.throws(() => pairsOf({ pairs: [{ student: 'a' }] }), /'pairs': item 0 must be \{student: layer, teacher: layer\}/);
  assert.throws(() => pairsOf({ pairs: 3 }), /'pairs': must be a list of layer pairs/);
});

test('fitnet: connectors are built in setup from probed shapes (1×1 conv, linear, none), outside the student', () => {
  const { student, teacher } = cnns();
  const m = make('fitnet', { pairs: ['stage1', { student: 'stage2', teacher: 'stage1' }, 'fc1'], weights: [1, 0.5, 2] });
  assert.deepEqual(m.features, { student: ['stage1', 'stage2', 'fc1'], teacher: ['stage1', 'stage1', 'fc1'] });
  torch.tidy(() => m.setup!({ student, teacher, numClasses: 10, datasetSize: null, sample: torch.randn([2, 1, 28, 28]) }));
  const extra = m.extraModules!() as Connector[];
  assert.equal(extra.length, 3);
  assert.deepEqual(extra.map((c) => [c.from, c.to]), [[[4, 14, 14], [8, 14, 14]], [[8, 7, 7], [8, 14, 14]], [[16], [32]]]);
  assert.deepEqual(extra.map((c) => c.parameters().map((p) => p.shape)), [[[8, 4, 1, 1]], [[8, 8, 1, 1]], [[32, 16], [32]]]);
  const own = new Set(student.parameters().map((p) => p.handle));
  for (const c of extra) for (const p of c.parameters()) assert.ok(!own.has(p.handle), 'connector parameters are not student parameters');
  assert.equal(student.training, true, 'setup restores the training mode');

  torch.tidy(() => {
    const x = torch.randn([3, 1, 28, 28]), y = torch.tensor([1, 2, 3], { dtype: 'int64' });
    const ctx = ctxFor(m, student, teacher, x, y);
    const terms = m.losses(ctx);
    assert.deepEqual(Object.keys(terms), ['ce', 'hint']);
    const expect = torch.noGrad(() => hintLoss(extra[0]!.call(ctx.studentFeatures.stage1!), ctx.teacherFeatures.stage1!).mul(1)
      .add(hintLoss(extra[1]!.call(ctx.studentFeatures.stage2!), ctx.teacherFeatures.stage1!).mul(0.5))
      .add(hintLoss(extra[2]!.call(ctx.studentFeatures.fc1!), ctx.teacherFeatures.fc1!).mul(2)).mul(100));
    assertClose(terms.hint!.item(), expect.item(), 1e-5, 0, 'hint = beta·Σ w·mse');
    assertClose(terms.ce!.item(), crossEntropy(ctx.studentLogits, y).item(), 1e-6, 0, 'ce');
    // the hint reaches both the connector and the student, never the teacher
    terms.hint!.backward();
    assert.ok(extra[0]!.parameters()[0]!.grad !== null);
    assert.ok(student.parameters()[0]!.grad !== null);
    assert.ok(teacher.model.parameters().every((p) => p.grad === null));
    for (const p of [...student.parameters(), ...extra.flatMap((c) => c.parameters())]) p.grad?.zero_();
  });
  const same = make('fitnet', { pairs: ['stage1'], alpha: 0.5, loss: 'cosine' });
  const s2 = createModel({ arch: 'cnn', numClasses: 10, channels: [8, 8], hidden: 16 });
  torch.tidy(() => same.setup!({ student: s2, teacher, numClasses: 10, datasetSize: null, sample: torch.randn([2, 1, 28, 28]) }));
  assert.equal(same.extraModules!().length, 0, 'no connector when the shapes agree');
  torch.tidy(() => {
    const terms = same.losses(ctxFor(same, s2, teacher, torch.randn([2, 1, 28, 28]), torch.tensor([0, 1], { dtype: 'int64' })));
    assert.deepEqual(Object.keys(terms).sort(), ['ce', 'hint', 'kd']);
  });
  assert.throws(() => make('fitnet').losses({} as LossContext), /setup\(\) was not called/);
  assert.throws(() => new Connector([4, 2, 2], [16]), /both must be \[C, H, W\] or both \[D\]/);
});

test('attention: {ce, at} with at = beta·Σ w·AT loss; KD joins with alpha > 0', () => {
  const { student, teacher } = cnns();
  torch.tidy(() => {
    const m = make('attention');
    const x = torch.randn([3, 1, 28, 28]), y = torch.tensor([4, 5, 6], { dtype: 'int64' });
    const ctx = ctxFor(m, student, teacher, x, y);
    const terms = m.losses(ctx);
    assert.deepEqual(Object.keys(terms), ['ce', 'at']);
    const expect = attentionLoss(ctx.studentFeatures.stage1!, ctx.teacherFeatures.stage1!).add(attentionLoss(ctx.studentFeatures.stage2!, ctx.teacherFeatures.stage2!)).mul(1000);
    assertClose(terms.at!.item(), expect.item(), 1e-5, 0, 'at');
    const withKd = make('attention', { alpha: 0.9, pairs: [{ student: 'stage2', teacher: 'stage1' }] }).losses(ctxFor(make('attention', { pairs: [{ student: 'stage2', teacher: 'stage1' }] }), student, teacher, x, y));
    assert.deepEqual(Object.keys(withKd).sort(), ['at', 'ce', 'kd']);
    assert.deepEqual(Object.keys(m.losses(ctxFor(m, student, teacher, x, null))), ['at'], 'unlabeled: no ce');
  });
});

test('sobolev: term names follow the weights; gradients reach the student; deterministic per step', () => {
  torch.manualSeed(5);
  const student = createModel({ arch: 'mlp', numClasses: 10, inputShape: [1, 28, 28], hidden: [16], activation: 'tanh' });
  const t = createModel({ arch: 'mlp', numClasses: 10, inputShape: [1, 28, 28], hidden: [32] });
  const teacher = new ModuleTeacher(t, 10, 'test mlp teacher', 'test');
  torch.tidy(() => {
    const xs = torch.rand([4, 1, 28, 28]), y = torch.tensor([0, 1, 2, 3], { dtype: 'int64' });
    const m = make('sobolev');
    assert.equal(m.inputGrad, true);
    const a = m.losses(ctxFor(m, student, teacher, xs.clone(), y, 7));
    assert.deepEqual(Object.keys(a), ['ce', 'kd', 'order1']);
    const b = m.losses(ctxFor(m, student, teacher, xs.clone(), y, 7));
    assertClose(b.order1!.item(), a.order1!.item(), 1e-6, 0, 'same step, same directions');
    const c = m.losses(ctxFor(m, student, teacher, xs.clone(), y, 8));
    assert.notEqual(c.order1!.item(), a.order1!.item(), 'another step draws other directions');
    const all = make('sobolev', { order2: 1, targetGrad: 1, projections: 2 }).losses(ctxFor(m, student, teacher, xs.clone(), y));
    assert.deepEqual(Object.keys(all), ['ce', 'kd', 'order1', 'order2', 'target_grad']);
    for (const v of Object.values(all)) assert.ok(Number.isFinite(v.item()) && v.item() >= 0);
    const [g] = torch.autograd.grad(all.order2!, student.parameters()[0]!, { retainGraph: true });
    assert.ok(g!.abs().sum().item() > 0, 'order 2 depends on the student weights');
    const none = make('sobolev', { order1: 0 }).losses(ctxFor(m, student, teacher, xs.clone(), y));
    assert.deepEqual(Object.keys(none), ['ce', 'kd']);
    assert.throws(() => make('sobolev').losses({ ...ctxFor(m, student, teacher, xs.clone(), y), batch: { x: xs, y } }), /does not require grad/);
    const noGradTeacher = { ...teacher, description: 'logits only', logits: (x: Tensor) => teacher.logits(x) };
    assert.throws(() => make('sobolev').losses({ ...ctxFor(m, student, teacher, xs.clone(), y), teacher: noGradTeacher }), /cannot give logits differentiable/);
  });
});

function randomData(n: number, seed: number): Dataset {
  torch.manualSeed(seed);
  const x = torch.rand([n, 1, 28, 28]);
  const data = { name: `random/${seed}`, sampleShape: [1, 28, 28], x: x.data<Float32Array>().slice(), y: Int32Array.from({ length: n }, (_, i) => i % 10), size: n, numClasses: 10 };
  x.dispose();
  return data;
}

function batches(d: Dataset, bs: number): { batchesPerEpoch: number; batches: () => Iterable<{ x: Tensor; y: Tensor }> } {
  const per = 28 * 28, nb = Math.ceil(d.size / bs);
  return {
    batchesPerEpoch: nb,
    *batches() {
      for (let b = 0; b < nb; b++) {
        const lo = b * bs, hi = Math.min(d.size, lo + bs);
        yield { x: torch.tensor(d.x.subarray(lo * per, hi * per), { shape: [hi - lo, 1, 28, 28] }), y: torch.tensor(Array.from(d.y!.subarray(lo, hi)), { dtype: 'int64' }) };
      }
    },
  };
}

test('trainer: setup runs before the optimizer (connectors train), inputGrad makes sobolev trainable', async () => {
  const { student, teacher } = cnns();
  const data = randomData(32, 1);
  const m = make('fitnet', { pairs: ['stage1'] });
  const r = await train({
    student, teacher, method: m, train: batches(data, 16), evalSet: data, numClasses: 10, epochs: 1,
    optimizer: { name: 'sgd', lr: 0.01 },
  });
  assert.equal(r.steps, 2);
  const conn = m.extraModules!()[0]!;
  assert.ok(conn.parameters()[0]!.grad !== null, 'the connector was optimised');
  assert.ok(Number.isFinite(r.epochs[0]!.train.hint!));

  torch.manualSeed(2);
  const mlp = createModel({ arch: 'mlp', numClasses: 10, inputShape: [1, 28, 28], hidden: [16] });
  const sob = await train({
    student: mlp, teacher, method: make('sobolev', { order2: 0.5, targetGrad: 0.1 }), train: batches(data, 16), numClasses: 10, epochs: 1,
    optimizer: { name: 'sgd', lr: 0.01 },
  });
  assert.deepEqual(Object.keys(sob.epochs[0]!.train).sort(), ['ce', 'kd', 'loss', 'order1', 'order2', 'target_grad']);
  for (const v of Object.values(sob.epochs[0]!.train)) assert.ok(Number.isFinite(v));
});

const tsPath = join(packageRoot, 'test', 'fixtures', 'engine', 'tiny_mlp.pt');

test('TorchScript teacher: features by submodule path (checked against forward) and by returned element', () => {
  const t = new TorchScriptTeacher(tsPath, 3);
  torch.tidy(() => {
    const x = torch.randn([5, 4]);
    const { output, features } = t.features(x, ['body', 'body.2']);
    assert.ok(output.allclose(t.logits(x), 1e-5, 1e-6));
    assert.ok(features.body!.allclose(t.module.callMethod('features', x) as Tensor, 1e-5, 1e-6));
    assert.deepEqual(features['body.2']!.shape, [5, 8]);
    const only = t.features(x, ['output:0']);
    assert.ok(only.features['output:0']!.allclose(output, 1e-6, 1e-7));
    assert.throws(() => t.features(x, ['nope']), /no submodule 'nope'.*; submodules: body, body\.0/);
    assert.throws(() => t.features(x, ['output:3']), /no tensor at '3'/);
  });
});

test('TorchScript teacher: input derivatives for Sobolev match finite differences; the method runs on it', () => {
  const t = new TorchScriptTeacher(tsPath, 3);
  torch.tidy(() => {
    const x = torch.randn([4, 4], { dtype: 'float32' }).requiresGrad_(true);
    const y = t.logitsWithGrad(x);
    const pr = randomProjections([4, 4], 3, 1);
    const d = derivatives(y, x, { order1: true, order2: false, targets: null, projections: pr, createGraph: false });
    const eps = 1e-2;
    const v = pr.v[0]!;
    const fd = t.logits(x.detach().add(v.mul(eps))).sub(t.logits(x.detach().sub(v.mul(eps)))).div(2 * eps);
    assertGradClose(d.jv[0]!.toFloat64Array(), [...fd.toFloat64Array()], 1e-2, 1e-3, 'TorchScript J v');
    assert.ok(t.module.parameters().every((p) => p.grad === null), 'no gradient reaches the teacher weights');

    torch.manualSeed(4);
    const student = createModel({ arch: 'mlp', numClasses: 3, inputShape: [4], hidden: [8] });
    const m = make('sobolev', { order2: 1 });
    const xs = torch.randn([4, 4]).requiresGrad_(true);
    const ctx: LossContext = {
      student, teacher: t, batch: { x: xs, y: torch.tensor([0, 1, 2, 0], { dtype: 'int64' }) }, indices: null, info: { epoch: 0, epochs: 1, step: 0, numClasses: 3 },
      studentLogits: student.call(xs), teacherLogits: t.logits(xs), studentFeatures: {}, teacherFeatures: {},
    };
    const terms = m.losses(ctx);
    assert.deepEqual(Object.keys(terms), ['ce', 'kd', 'order1', 'order2']);
    for (const v of Object.values(terms)) assert.ok(Number.isFinite(v.item()));
  });
});

test('fitnet, attention and sobolev leave only their returned terms alive', () => {
  const { student, teacher } = cnns();
  const mlp = createModel({ arch: 'mlp', numClasses: 10, inputShape: [1, 28, 28], hidden: [8] });
  for (const [name, s, params] of [['fitnet', student, { pairs: ['stage1', 'fc1'], alpha: 0.5 }], ['attention', student, {}],
    ['sobolev', mlp, { order2: 1, targetGrad: 1, projections: 2 }]] as const) {
    const m = make(name, params);
    torch.tidy(() => m.setup?.({ student: s, teacher, numClasses: 10, datasetSize: null, sample: torch.randn([2, 1, 28, 28]) }));
    torch.tidy(() => {
      const ctx = ctxFor(m, s, teacher, torch.randn([3, 1, 28, 28]), torch.tensor([1, 2, 3], { dtype: 'int64' }));
      const before = liveTensors();
      const terms = m.losses(ctx);
      assert.equal(liveTensors(), before + Object.keys(terms).length, `${name} leaked tensors`);
    });
  }
});
