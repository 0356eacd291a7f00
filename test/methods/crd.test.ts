// Golden test of CRD against the PyTorch reference written from the authors' code
// (scripts/fixtures/crd.py → test/fixtures/methods/crd.json): two steps on one pair of memory
// banks with fixed negatives — scores, Z fixed on the first step, NCE of both sides and its
// gradients, and both banks after each momentum update (the second step's rows overlap the
// first's, and its negatives read rows the first step wrote) — plus the embedding head and the
// in-batch variant. Then the method itself: setup, index checks and the bank it updates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { ContrastMemory, inBatchLoss, nceLoss } from '../../src/methods/crd.js';
import { EmbedHead } from '../../src/methods/representation.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';
import type { LossContext } from '../../src/methods/method.js';
import { assertClose, assertGradClose } from '../losses/golden.js';
import { make } from './features-golden.js';

interface Step { rows: number[]; idx: number[][]; vs: number[]; vt: number[]; loss: number; grad_vs: number[]; grad_vt: number[]; z: number[]; memory_s: number[]; memory_t: number[] }
interface Fixture {
  N: number; d: number; K: number; T: number; momentum: number; memory_s: number[]; memory_t: number[]; steps: Step[];
  head: Record<'f' | 'weight' | 'bias' | 'r' | 'out' | 'grad_f' | 'grad_weight' | 'grad_bias', number[]>;
  in_batch: { loss: number; grad_vs: number[]; grad_vt: number[] };
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const F = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'methods', 'crd.json'), 'utf8')) as Fixture;

// float64 both sides with the same operations; exp(s/τ) with τ = 0.07 multiplies the argument's
// rounding (~1e-16·14) into a relative error of ~1e-14 of each score, so 1e-9 relative is loose
// for rounding yet fails on any change of Z, the NCE constants, the update or the indices.
const RTOL = 1e-9;
const f64 = (data: number[], shape: number[]): Tensor => torch.tensor(data, { shape, dtype: 'float64' });

// Both ways of scoring (the authors' gather of the bank's rows, and v·Mᵀ picked at the indices)
// must give the authors' numbers.
for (const scoring of ['gather', 'product'] as const) test(`crd: two steps of memory-bank NCE (scoring: ${scoring}) match the authors' code: loss, gradients, Z and both banks`, () => {
  const { N, d } = F;
  const mem = new ContrastMemory(N, d, F.T, F.momentum, 'float64', scoring);
  torch.noGrad(() => {
    mem.memoryS.copy_(f64(F.memory_s, [N, d]));
    mem.memoryT.copy_(f64(F.memory_t, [N, d]));
  });
  F.steps.forEach((st, i) => torch.tidy(() => {
    const vs = f64(st.vs, [4, d]).requiresGrad_(true), vt = f64(st.vt, [4, d]).requiresGrad_(true);
    const rows = torch.tensor(st.rows, { dtype: 'int64' }), idx = torch.tensor(st.idx, { dtype: 'int64' });
    const [outS, outT] = mem.score(vs, vt, rows, idx);
    const loss = nceLoss(outS, N).add(nceLoss(outT, N));
    const [gs, gt] = torch.autograd.grad(loss, [vs, vt]);
    assertClose(loss.item(), st.loss, RTOL, 0, `step ${i + 1}: loss`);
    assertGradClose(gs!.toFloat64Array(), st.grad_vs, RTOL, 1e-14, `step ${i + 1}: d/dvS`);
    assertGradClose(gt!.toFloat64Array(), st.grad_vt, RTOL, 1e-14, `step ${i + 1}: d/dvT`);
    const z = mem.z.toFloat64Array();
    assertClose(z[0]!, st.z[0]!, RTOL, 0, `step ${i + 1}: Z_S`);
    assertClose(z[1]!, st.z[1]!, RTOL, 0, `step ${i + 1}: Z_T`);
    assertGradClose(mem.memoryS.toFloat64Array(), st.memory_s, RTOL, 1e-14, `step ${i + 1}: student bank`);
    assertGradClose(mem.memoryT.toFloat64Array(), st.memory_t, RTOL, 1e-14, `step ${i + 1}: teacher bank`);
  }));
  // Z was set by the first step only
  assert.deepEqual(F.steps[0]!.z, F.steps[1]!.z);
  mem.dispose();
});

test('crd: scoring auto takes the product v·Mᵀ up to a bank of 8·(K+1) rows, gathers rows beyond', () => {
  const pick = (size: number, scoring: 'auto' | 'gather' | 'product', k1: number): boolean => {
    const mem = new ContrastMemory(size, 2, 0.07, 0.5, 'float32', scoring);
    const r = mem.scoresByProduct(k1);
    mem.dispose();
    return r;
  };
  assert.deepEqual([pick(32, 'auto', 4), pick(33, 'auto', 4), pick(10_000, 'auto', 16_385), pick(200_000, 'auto', 16_385)], [true, false, true, false]);
  assert.deepEqual([pick(33, 'product', 4), pick(32, 'gather', 4)], [true, false]);
});

test('crd: the embedding head (linear + L2 norm) and the in-batch variant match PyTorch', () => {
  torch.tidy(() => {
    const h = F.head, d = F.d;
    const head = new EmbedHead(5, d, true);
    head.loadStateDict(new Map([['linear.weight', torch.tensor(h.weight, { shape: [d, 5] })], ['linear.bias', torch.tensor(h.bias)]]));
    const f = torch.tensor(h.f, { shape: [3, 5] }).requiresGrad_(true);
    const out = head.call(f);
    const [gf, gw, gb] = torch.autograd.grad(out.mul(torch.tensor(h.r, { shape: [3, d] })).sum(), [f, head.linear.weight, head.linear.bias!]);
    // the head is a float32 module: ~1e-7 relative rounding per value, 1e-5 leaves margin
    assertGradClose(out.toFloat64Array(), h.out, 1e-5, 1e-6, 'head output');
    assertGradClose(gf!.toFloat64Array(), h.grad_f, 1e-5, 1e-6, 'head d/df');
    assertGradClose(gw!.toFloat64Array(), h.grad_weight, 1e-5, 1e-6, 'head d/dW');
    assertGradClose(gb!.toFloat64Array(), h.grad_bias, 1e-5, 1e-6, 'head d/db');
    head.dispose();
    const st = F.steps[0]!;
    const vs = f64(st.vs, [4, d]).requiresGrad_(true), vt = f64(st.vt, [4, d]).requiresGrad_(true);
    const loss = inBatchLoss(vs, vt, F.T);
    const [gs, gt] = torch.autograd.grad(loss, [vs, vt]);
    assertClose(loss.item(), F.in_batch.loss, RTOL, 0, 'in-batch loss');
    assertGradClose(gs!.toFloat64Array(), F.in_batch.grad_vs, RTOL, 1e-14, 'in-batch d/dvS');
    assertGradClose(gt!.toFloat64Array(), F.in_batch.grad_vt, RTOL, 1e-14, 'in-batch d/dvT');
  });
});

test('crd: the method builds heads and an N×featDim bank per network, updates the batch\'s rows, and says what it lacks', () => {
  torch.manualSeed(11);
  const spec = (hidden: number[]) => ({ arch: 'mlp', numClasses: 10, inputShape: [6], hidden });
  const student = createModel(spec([5])), teacher = new ModuleTeacher(createModel(spec([7])), 10, 'test teacher', 'test');
  const sample = torch.randn([2, 6]);
  const m = make('crd', { featDim: 3, numNegatives: 4 });
  assert.throws(() => m.setup!({ student, teacher, numClasses: 10, datasetSize: null, sample }), /memory bank needs the transfer set's size.*negatives: batch/);
  m.setup!({ student, teacher, numClasses: 10, datasetSize: 8, sample });
  const [hs, ht, mem] = m.extraModules!() as [EmbedHead, EmbedHead, ContrastMemory];
  assert.deepEqual([hs.inFeatures, hs.outFeatures, ht.inFeatures, mem.memoryS.shape, mem.memoryT.shape], [5, 3, 7, [8, 3], [8, 3]]);
  assert.equal(mem.parameters().length, 0, 'the banks are buffers: checkpointed, not optimised');
  assert.equal(mem.scoring, 'auto');
  const g = make('crd', { featDim: 3, numNegatives: 4, scoring: 'gather' });
  g.setup!({ student, teacher, numClasses: 10, datasetSize: 8, sample });
  assert.equal((g.extraModules!()[2] as ContrastMemory).scoring, 'gather', 'the scoring parameter reaches the memory');
  const ctx = (indices: Int32Array | null): LossContext => {
    const x = torch.randn([3, 6]);
    const s = student.forwardWithFeatures(x, m.features!.student), t = torch.noGrad(() => teacher.features(x, m.features!.teacher));
    return { student, teacher, batch: { x, y: null }, indices, info: { epoch: 0, epochs: 1, step: 0, numClasses: 10 }, studentLogits: s.output, teacherLogits: t.output, studentFeatures: s.features, teacherFeatures: t.features };
  };
  torch.tidy(() => {
    const before = mem.memoryS.clone();
    const terms = m.losses(ctx(Int32Array.from([1, 4, 6])));
    assert.deepEqual(Object.keys(terms), ['crd']);
    assert.ok(Number.isFinite(terms.crd!.item()) && terms.crd!.item() > 0);
    const changed = before.sub(mem.memoryS).abs().sum({ dim: 1 }).toFloat64Array();
    assert.deepEqual([...changed].map((v, i) => (v > 0 ? i : -1)).filter((i) => i >= 0), [1, 4, 6], 'only the batch\'s rows of the bank move');
    const norms = mem.memoryS.indexSelect(0, torch.tensor([1, 4, 6], { dtype: 'int64' })).norm({ dim: 1 }).toFloat64Array();
    for (const n of norms) assert.ok(Math.abs(n - 1) < 1e-6, 'updated rows are unit vectors');
    terms.crd!.backward();
    assert.ok(hs.linear.weight.grad !== null && ht.linear.weight.grad !== null && student.parameters()[0]!.grad !== null);
    assert.throws(() => m.losses(ctx(null)), /needs the batch's dataset indices/);
  });
  const b = make('crd', { negatives: 'batch', featDim: 3 });
  b.setup!({ student, teacher, numClasses: 10, datasetSize: null, sample });
  assert.equal(b.extraModules!().length, 2, 'in-batch negatives: heads, no bank');
  torch.tidy(() => assert.ok(Number.isFinite(b.losses(ctx(null)).crd!.item())));
  sample.dispose();
});
