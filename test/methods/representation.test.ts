// The representation methods on kdistill's zoo models: layers chosen at setup from the models'
// own names when none are given (embedding / stage outputs), shapes probed, extra parts kept out
// of the student, a loss step whose gradient reaches the student and never the teacher, and clear
// errors where a model cannot serve a method (an MLP has no spatial maps).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import type { LossContext, Method, Params } from '../../src/methods/method.js';
import { createModel, type ModelSpec, type ZooModel } from '../../src/nn/zoo/index.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';
import { make } from './features-golden.js';
import { EmbedHead } from '../../src/methods/representation.js';
import { ccLoss } from '../../src/methods/cc.js';
import { VidRegressor } from '../../src/methods/vid.js';
import { Abf } from '../../src/methods/reviewkd.js';
import { ContrastMemory } from '../../src/methods/crd.js';
import { train } from '../../src/train/trainer.js';

torch.setNumThreads(1);

const MLP = (hidden: number[]): ModelSpec => ({ arch: 'mlp', numClasses: 10, inputShape: [1, 8, 8], hidden });
const CNN = (channels: number[], hidden: number): ModelSpec => ({ arch: 'cnn', numClasses: 10, inChannels: 1, inputSize: [8, 8], channels, hidden });
const RESNET: ModelSpec = { arch: 'resnet8', numClasses: 10, inChannels: 1, inputSize: [8, 8] };
const WRN: ModelSpec = { arch: 'wrn_16_1', numClasses: 10, inChannels: 1, inputSize: [8, 8] };

function pair(s: ModelSpec, t: ModelSpec): { student: ZooModel; teacher: ModuleTeacher } {
  torch.manualSeed(7);
  return { student: createModel(s), teacher: new ModuleTeacher(createModel(t), 10, 'test teacher', 'test') };
}

function setUp(m: Method, student: ZooModel, teacher: ModuleTeacher, datasetSize: number | null = null): void {
  torch.tidy(() => m.setup?.({ student, teacher, numClasses: 10, datasetSize, sample: torch.randn([2, ...student.inputShape]) }));
}

/** One batch as the trainer builds it, after setup (features read from the method then). */
function ctxFor(m: Method, student: ZooModel, teacher: ModuleTeacher, x: Tensor, y: Tensor | null, indices: Int32Array | null = null): LossContext {
  const sf = m.features?.student ?? [], tf = m.features?.teacher ?? [];
  const s = student.forwardWithFeatures(x, sf);
  const t = torch.noGrad(() => teacher.features(x, tf));
  return {
    student, teacher, batch: { x, y }, indices, info: { epoch: 0, epochs: 1, step: 0, numClasses: 10 },
    studentLogits: s.output, teacherLogits: t.output, studentFeatures: s.features, teacherFeatures: t.features,
  };
}

/** Runs one loss on a zoo pair: finite terms, gradient on the student (and extras), none on the teacher. */
function step(name: string, params: Params, s: ModelSpec, t: ModelSpec, expectTerms: string[], datasetSize: number | null = null): Method {
  const { student, teacher } = pair(s, t);
  const m = make(name, params);
  setUp(m, student, teacher, datasetSize);
  torch.tidy(() => {
    const x = torch.randn([4, ...student.inputShape]), y = torch.tensor([0, 1, 2, 3], { dtype: 'int64' });
    const terms = m.losses(ctxFor(m, student, teacher, x, y, datasetSize ? Int32Array.from([0, 1, 2, 3]) : null));
    assert.deepEqual(Object.keys(terms).sort(), expectTerms.slice().sort(), `${name}: terms`);
    for (const [k, v] of Object.entries(terms)) assert.ok(Number.isFinite(v.item()), `${name}: ${k} finite`);
    const total = Object.values(terms).reduce((a, b) => a.add(b));
    total.backward();
    assert.ok(student.parameters().some((p) => p.grad !== null && p.grad.abs().sum().item() > 0), `${name}: the student gets a gradient`);
    assert.ok(teacher.model.parameters().every((p) => p.grad === null), `${name}: the teacher gets none`);
    const own = new Set(student.parameters().map((p) => p.handle));
    for (const e of m.extraModules?.() ?? []) for (const p of e.parameters()) assert.ok(!own.has(p.handle), `${name}: extra parts are not student parameters`);
    for (const p of [...student.parameters(), ...(m.extraModules?.() ?? []).flatMap((e) => e.parameters())]) p.grad?.zero_();
  });
  return m;
}

test('embedding methods pick each zoo model\'s embeddingName when no layer is named', () => {
  const cases: [ModelSpec, ModelSpec, string, string][] = [
    [CNN([4, 8], 16), CNN([8, 16], 32), 'fc1', 'fc1'],
    [MLP([16]), MLP([32, 24]), 'layer1', 'layer2'],
    [RESNET, WRN, 'flatten', 'flatten'],
    [MLP([16]), CNN([8, 16], 32), 'layer1', 'fc1'],
  ];
  for (const [s, t, es, et] of cases) {
    const m = step('pkt', {}, s, t, ['ce', 'pkt']);
    assert.deepEqual(m.features, { student: [es], teacher: [et] }, `${s.arch} → ${t.arch}`);
  }
  const named = make('pkt', { studentLayer: 'stage2', teacherLayer: 'fc1' });
  assert.deepEqual(named.features, { student: ['stage2'], teacher: ['fc1'] }, 'named layers are known before setup (the teacher cache can store them)');
});

test('a method used before setup, or with a non-zoo teacher and no layer names, says what to do', () => {
  assert.throws(() => make('pkt', {}).losses({} as LossContext), /setup\(\) was not called/);
  const { student } = pair(MLP([4]), MLP([4]));
  const bare = { description: 'a TorchScript file', checksum: '', numClasses: 10, numParameters: 0, logits: (x: Tensor) => x, features: () => ({ output: torch.zeros([1]), features: {} }) };
  assert.throws(() => torch.tidy(() => make('pkt', {}).setup!({ student, teacher: bare, numClasses: 10, datasetSize: null, sample: torch.randn([2, 1, 8, 8]) })),
    /teacher \(a TorchScript file\) is not a kdistill zoo model.*name them/);
});

test('sp defaults to the last stage output of each zoo model, maps or vectors', () => {
  assert.deepEqual(step('sp', {}, CNN([4, 8], 16), CNN([8, 16], 32), ['ce', 'sp']).features, { student: ['stage2'], teacher: ['stage2'] });
  assert.deepEqual(step('sp', {}, RESNET, WRN, ['ce', 'sp']).features, { student: ['layer3'], teacher: ['relu'] });
  assert.deepEqual(step('sp', {}, MLP([16, 8]), CNN([8, 16], 32), ['ce', 'sp']).features, { student: ['layer2'], teacher: ['stage2'] });
});

test('rkd runs on zoo embeddings with its two weighted terms', () => {
  step('rkd', {}, CNN([4, 8], 16), RESNET, ['ce', 'distance', 'angle']);
});

test('cc builds one linear head per network at setup, trains both, and its term is beta·ccLoss on them', () => {
  const m = step('cc', { featDim: 6, beta: 0.5 }, CNN([4, 8], 16), MLP([32, 24]), ['ce', 'cc']);
  const heads = m.extraModules!() as EmbedHead[];
  assert.deepEqual(heads.map((h) => [h.inFeatures, h.outFeatures, h.l2]), [[16, 6, false], [24, 6, false]]);
  const { student, teacher } = pair(CNN([4, 8], 16), MLP([32, 24]));
  const g = make('cc', { featDim: 6, kernel: 'gaussian' });
  setUp(g, student, teacher);
  torch.tidy(() => {
    const ctx = ctxFor(g, student, teacher, torch.randn([3, 1, 8, 8]), null);
    const [hs, ht] = g.extraModules!() as [EmbedHead, EmbedHead];
    const want = ccLoss(hs.call(ctx.studentFeatures.fc1!), ht.call(ctx.teacherFeatures.layer2!), 'gaussian', 0.4, 2).mul(0.02);
    const terms = g.losses(ctx);
    assert.deepEqual(Object.keys(terms), ['cc'], 'unlabeled: no ce');
    assert.equal(terms.cc!.item(), want.item());
    terms.cc!.backward();
    assert.ok(ht.linear.weight.grad !== null, 'the teacher-side head is trained, as in RepDistiller');
  });
});

test('nst pairs every spatial stage from the deepest, and refuses an MLP at setup', () => {
  assert.deepEqual(step('nst', {}, CNN([4, 8], 16), RESNET, ['ce', 'nst']).features, { student: ['stage1', 'stage2'], teacher: ['layer2', 'layer3'] });
  const { student, teacher } = pair(MLP([16]), CNN([8, 16], 32));
  assert.throws(() => setUp(make('nst', {}), student, teacher), /method 'nst': the student has no stage outputs .*spatial maps.*an MLP has none/);
  const named = make('nst', { pairs: [{ student: 'layer1', teacher: 'stage1' }] });
  assert.throws(() => setUp(named, student, teacher), /method 'nst' needs feature maps \[C, H, W\], but the student's layer 'layer1' gives \[16\] \(an MLP/);
});

test('vid builds one regressor per pair (maps or MLP vectors) and trains it with the student', () => {
  const m = step('vid', {}, CNN([4, 8], 16), WRN, ['ce', 'vid']);
  assert.deepEqual(m.features, { student: ['stage1', 'stage2'], teacher: ['block3', 'relu'] });
  assert.deepEqual((m.extraModules!() as VidRegressor[]).map((r) => [r.inChannels, r.midChannels, r.outChannels]), [[4, 64, 64], [8, 64, 64]]);
  const v = step('vid', {}, MLP([16, 8]), MLP([32]), ['ce', 'vid']);
  assert.deepEqual(v.features, { student: ['layer2'], teacher: ['layer1'] });
  const { student, teacher } = pair(MLP([16]), CNN([8, 16], 32));
  assert.throws(() => setUp(make('vid', { pairs: [{ student: 'layer1', teacher: 'stage1' }] }), student, teacher), /both be maps \[C, H, W\] or both vectors \[D\]; 'layer1' gives \[16\]/);
});

test('reviewkd fuses every spatial stage plus the embedding, ramps up over warmupEpochs, and refuses an MLP', () => {
  const m = step('reviewkd', { warmupEpochs: 0 }, CNN([4, 8], 16), RESNET, ['ce', 'reviewkd']);
  assert.deepEqual(m.features, { student: ['stage1', 'stage2', 'fc1'], teacher: ['layer2', 'layer3', 'flatten'] });
  assert.deepEqual((m.extraModules!() as Abf[]).map((a) => [a.inChannels, a.midChannels, a.outChannels, a.attConv !== null]), [[4, 16, 32, true], [8, 16, 64, true], [16, 16, 64, false]]);
  // ResNet to ResNet: the stem is a level by default (5 levels), as the method's `differs` note
  // says; mdistiller's CIFAR levels (stages and embedding, 4) are the pairs given explicitly.
  const levels = (params: Params): Method['features'] => {
    const rn = pair(RESNET, RESNET), q = make('reviewkd', params);
    setUp(q, rn.student, rn.teacher);
    return q.features;
  };
  assert.deepEqual(levels({}), { student: ['relu', 'layer1', 'layer2', 'layer3', 'flatten'], teacher: ['relu', 'layer1', 'layer2', 'layer3', 'flatten'] });
  assert.deepEqual(levels({ pairs: ['layer1', 'layer2', 'layer3'], studentLayer: 'flatten', teacherLayer: 'flatten' })?.student, ['layer1', 'layer2', 'layer3', 'flatten']);
  const { student, teacher } = pair(CNN([4, 8], 16), CNN([8, 16], 32));
  const r = make('reviewkd', { warmupEpochs: 20 });
  setUp(r, student, teacher);
  torch.tidy(() => {
    const x = torch.randn([4, 1, 8, 8]);
    const at = (epoch: number): number => {
      const ctx = ctxFor(r, student, teacher, x, null);
      ctx.info.epoch = epoch;
      return torch.noGrad(() => r.losses(ctx).reviewkd!.item());
    };
    assertCloseRatio(at(0) / at(9), 1 / 10, 'epoch 0 (mdistiller\'s 1) of 20 against epoch 9 (its 10)');
    assertCloseRatio(at(40) / at(19), 1, 'full weight from epoch 20 on');
  });
  const mlp = pair(MLP([16]), CNN([8, 16], 32));
  assert.throws(() => setUp(make('reviewkd', {}), mlp.student, mlp.teacher), /method 'reviewkd': the student has no stage outputs/);
});

function assertCloseRatio(got: number, want: number, what: string): void {
  // the ABFs' batch norm uses batch statistics, so repeated calls on one batch agree to rounding
  assert.ok(Math.abs(got - want) < 1e-5 * want, `${what}: ratio ${got}, expected ${want}`);
}

test('the trainer runs them: layers resolved at setup reach the forward pass; CRD\'s bank follows the batches\' dataset indices', async () => {
  const rows = [[5, 1, 7, 3], [0, 6, 2, 4]];
  torch.manualSeed(3);
  const xs = torch.randn([8, 1, 8, 8]);
  const source = {
    batchesPerEpoch: 2, datasetSize: 10,
    *batches() {
      for (const r of rows) yield { x: xs.indexSelect(0, torch.tensor(r.map((i) => i % 8), { dtype: 'int64' })), y: torch.tensor([0, 1, 2, 3], { dtype: 'int64' }), indices: Int32Array.from(r) };
    },
  };
  for (const [name, params, term] of [['crd', { featDim: 4, numNegatives: 5 }, 'crd'], ['reviewkd', {}, 'reviewkd'], ['vid', {}, 'vid']] as const) {
    const { student, teacher } = pair(CNN([4, 8], 16), CNN([8, 16], 32));
    const m = make(name, params);
    const r = await train({ student, teacher, method: m, train: source, sample: xs.narrow(0, 0, 2), numClasses: 10, epochs: 1, optimizer: { name: 'sgd', lr: 0.01 } });
    assert.equal(r.steps, 2, name);
    assert.ok(Number.isFinite(r.epochs[0]!.train[term]!), `${name}: its term is logged`);
    if (name === 'crd') {
      const mem = m.extraModules!()[2] as ContrastMemory;
      const norms = mem.memoryS.norm({ dim: 1 }).toFloat64Array();
      // rows 0–7 were in a batch and were renormalised by the update; rows 8 and 9 keep their random start
      for (let i = 0; i < 10; i++) assert.equal(Math.abs(norms[i]! - 1) < 1e-5, i < 8, `row ${i}: norm ${norms[i]}`);
    }
  }
  xs.dispose();
});
