// The logit-based methods: term names, weights, warm-up, noise reproducibility, unlabeled data,
// the registry and hyper-parameter validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import { Generator, type Tensor } from '../../src/tensor/tensor.js';
import { crossEntropy } from '../../src/tensor/functional.js';
import { resolveParams, type MethodSpec, type Params } from '../../src/methods/method.js';
import { METHODS, describeMethods, getMethod } from '../../src/methods/registry.js';
import { dkdWarmup } from '../../src/methods/dkd.js';
import { noiseSeed, perturbLogits } from '../../src/methods/noisy-teacher.js';
import { klDivergence } from '../../src/losses/tempered.js';
import { agreement, MEASURES } from '../../src/losses/agreement.js';
import { dkdTerms } from '../../src/losses/dkd.js';
import { CASES, assertClose, inputs, liveTensors } from '../losses/golden.js';
import { context, values } from './context.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { ModuleTeacher } from '../../src/teachers/sources.js';

const make = (name: string, given: Params = {}) => {
  const spec = getMethod(name);
  return spec.create(resolveParams(spec, given));
};
const golden = CASES.find((c) => c.name === 'moderate' && c.T === 4)!;

function withInputs<T>(fn: (s: Tensor, t: Tensor, y: Tensor) => T): T {
  return torch.tidy(() => {
    const { s, t, y } = inputs(golden);
    return fn(s, t, y);
  });
}

test('scratch: {ce} with optional label smoothing; refuses unlabeled batches', () => {
  withInputs((s, _t, y) => {
    assert.deepEqual(Object.keys(make('scratch').losses(context({ student: s, teacher: null, y }))), ['ce']);
    const v = values(make('scratch', { labelSmoothing: 0.1 }).losses(context({ student: s, teacher: null, y })));
    assertClose(v.ce!, golden.losses['ce_ls0.1']!.value, 1e-9, 0, 'smoothed CE vs PyTorch');
    assert.throws(() => make('scratch').losses(context({ student: s, teacher: null, y: null })), /needs labelled batches/);
    assert.equal(getMethod('scratch').needsTeacher, false);
  });
});

test('kd: {ce: 0.1·CE, kd: 0.9·T²·KL} at the defaults (T = 4), matching PyTorch', () => {
  withInputs((s, t, y) => {
    const terms = make('kd').losses(context({ student: s, teacher: t, y }));
    assert.deepEqual(Object.keys(terms).sort(), ['ce', 'kd']);
    const v = values(terms);
    assertClose(v.kd!, 0.9 * golden.losses.kd_kl!.value, 1e-9, 0, 'kd term');
    assertClose(v.ce!, 0.1 * golden.losses.ce!.value, 1e-9, 0, 'ce term');
  });
});

test('kd: every measure is selectable and gives the soft term of src/losses', () => {
  withInputs((s, t, y) => {
    for (const m of MEASURES) {
      const v = values(make('kd', { measure: m, alpha: 0.5, temperature: 2 }).losses(context({ student: s, teacher: t, y })));
      assertClose(v.kd!, 0.5 * agreement(m, t, s, 2).item(), 1e-12, 0, `measure ${m}`);
      assertClose(v.ce!, 0.5 * crossEntropy(s, y).item(), 1e-12, 0, `ce with measure ${m}`);
    }
  });
});

test('kd: an unlabeled batch (y = null) gives only the soft term, on the same scale', () => {
  withInputs((s, t, y) => {
    const method = make('kd');
    const unlabeled = method.losses(context({ student: s, teacher: t, y: null }));
    assert.deepEqual(Object.keys(unlabeled), ['kd']);
    assert.equal(unlabeled.kd!.item(), method.losses(context({ student: s, teacher: t, y })).kd!.item());
    assert.throws(() => method.losses(context({ student: s, teacher: null, y })), /needs a teacher/);
  });
});

test('kd: gradient reaches the student logits through both terms', () => {
  const { s, t, y } = inputs(golden);
  torch.tidy(() => {
    const terms = make('kd').losses(context({ student: s, teacher: t, y }));
    const [g] = torch.autograd.grad(terms.ce!.add(terms.kd!), s);
    const ref = golden.losses.kd_kl!.grad.map((gk, i) => 0.9 * gk + 0.1 * golden.losses.ce!.grad[i]!);
    const got = g!.toFloat64Array();
    ref.forEach((r, i) => assertClose(got[i]!, r, 1e-9, 1e-12, `grad[${i}]`));
  });
  torch.dispose(s, t, y);
});

test('dkd: {ce, tckd, nckd}, defaults α=1 β=8 T=4, total matches the authors\' formulation', () => {
  withInputs((s, t, y) => {
    const terms = make('dkd').losses(context({ student: s, teacher: t, y, epoch: 30 }));
    assert.deepEqual(Object.keys(terms), ['ce', 'tckd', 'nckd']);
    const v = values(terms);
    assertClose(v.tckd!, golden.losses.dkd_authors_tckd!.value, 1e-9, 0, 'tckd');
    assertClose(v.nckd!, 8 * golden.losses.dkd_authors_nckd!.value, 1e-9, 0, 'nckd');
    assertClose(v.ce!, golden.losses.ce!.value, 1e-9, 0, 'ce');
  });
});

test('dkd: linear warm-up of the distillation terms at epochs 0, 10, 19, 20 and later', () => {
  assert.equal(dkdWarmup(0, 20), 1 / 20);
  assert.equal(dkdWarmup(10, 20), 11 / 20);
  assert.equal(dkdWarmup(19, 20), 1);
  assert.equal(dkdWarmup(20, 20), 1);
  assert.equal(dkdWarmup(150, 20), 1);
  assert.equal(dkdWarmup(0, 0), 1);
  withInputs((s, t, y) => {
    const method = make('dkd', { alpha: 2, beta: 3, ceWeight: 0.5 });
    const raw = dkdTerms(t, s, y, 4);
    const tc = raw.tckd.item(), nc = raw.nckd.item();
    for (const [epoch, w] of [[0, 1 / 20], [10, 11 / 20], [20, 1], [100, 1]] as const) {
      const v = values(method.losses(context({ student: s, teacher: t, y, epoch })));
      assertClose(v.tckd!, w * 2 * tc, 1e-12, 0, `tckd at epoch ${epoch}`);
      assertClose(v.nckd!, w * 3 * nc, 1e-12, 0, `nckd at epoch ${epoch}`);
      assertClose(v.ce!, 0.5 * crossEntropy(s, y).item(), 1e-12, 0, `ce is not warmed up (epoch ${epoch})`);
    }
  });
});

test('dkd: refuses unlabeled batches; two classes work (NCKD = 0)', () => {
  withInputs((s, t) => {
    assert.throws(() => make('dkd').losses(context({ student: s, teacher: t, y: null })), /'dkd' needs labelled batches/);
  });
  torch.tidy(() => {
    const s = torch.tensor([[1e4, -1e4], [0.5, 0.1]], { dtype: 'float64' });
    const t = torch.tensor([[-1e4, 1e4], [0, 1]], { dtype: 'float64' });
    const y = torch.tensor([1, 1], { dtype: 'int64' });
    const v = values(make('dkd').losses(context({ student: s, teacher: t, y, epoch: 20 })));
    assert.equal(v.nckd, 0);
    assertClose(v.tckd!, klDivergence(t, s, 4).item(), 1e-9, 0, 'two-class TCKD = KD');
  });
});

test('noisy-teacher: {ce, kd}; the same seed and step reproduce the same noise, another seed does not', () => {
  withInputs((s, t, y) => {
    const p = { sigma: 1, alpha: 0.5, scope: 'sample' };
    const a = make('noisy-teacher', { ...p, seed: 7 });
    const b = make('noisy-teacher', { ...p, seed: 7 });
    const c = make('noisy-teacher', { ...p, seed: 8 });
    const ctx = context({ student: s, teacher: t, y, step: 3 });
    const va = values(a.losses(ctx));
    assert.deepEqual(Object.keys(va).sort(), ['ce', 'kd']);
    assert.deepEqual(values(b.losses(ctx)), va, 'same seed, same step');
    assert.deepEqual(values(a.losses(ctx)), va, 'the same instance again at the same step (a resumed run)');
    assert.notEqual(values(c.losses(ctx)).kd, va.kd, 'another seed');
    assert.notEqual(values(a.losses(context({ student: s, teacher: t, y, step: 4 }))).kd, va.kd, 'another step');
  });
  assert.notEqual(noiseSeed(0, 1), noiseSeed(0, 2));
  assert.notEqual(noiseSeed(1, 0), noiseSeed(2, 0));
});

test('noisy-teacher: alpha = 0 (or sigma = 0) equals plain KD exactly', () => {
  withInputs((s, t, y) => {
    const plain = values(make('kd', { temperature: 3, alpha: 0.7 }).losses(context({ student: s, teacher: t, y })));
    for (const p of [{ alpha: 0, sigma: 5 }, { alpha: 1, sigma: 0 }]) {
      for (const noise of ['additive', 'relative']) {
        const v = values(make('noisy-teacher', { ...p, noise, temperature: 3, kdWeight: 0.7 }).losses(context({ student: s, teacher: t, y, step: 11 })));
        assert.deepEqual(v, plain, JSON.stringify({ ...p, noise }));
      }
    }
  });
});

test('noisy-teacher: noise is N(0, σ²) on about alpha of the samples; relative noise scales the logits', () => {
  torch.tidy(() => {
    const z = torch.zeros([4000, 10], { dtype: 'float64' });
    const noisy = perturbLogits(z, { sigma: 2, alpha: 0.3, noise: 'additive', scope: 'sample' }, new Generator(123));
    const touched = noisy.ne(0).any().item();
    assert.equal(touched, 1);
    const rowsHit = noisy.ne(0).sum({ dim: 1 }).gt(0).double().mean().item();
    assert.ok(Math.abs(rowsHit - 0.3) < 0.03, `fraction of perturbed samples ${rowsHit}`);
    const hit = noisy.abs().sum({ dim: 1 }).gt(0);
    const vals = noisy.index([hit]);
    assert.ok(Math.abs(vals.mean().item()) < 0.05, 'mean 0');
    assert.ok(Math.abs(vals.std().item() - 2) < 0.05, `std ${vals.std().item()}`);
    const again = perturbLogits(z, { sigma: 2, alpha: 0.3, noise: 'additive', scope: 'sample' }, new Generator(123));
    assert.ok(again.equal(noisy), 'same generator seed, same noise');
    // Relative noise leaves zero logits at zero: z·(1 + σξ).
    assert.equal(perturbLogits(z, { sigma: 2, alpha: 1, noise: 'relative', scope: 'sample' }, new Generator(1)).abs().sum().item(), 0);
    const ones = torch.ones([2000, 10], { dtype: 'float64' });
    const rel = perturbLogits(ones, { sigma: 0.5, alpha: 1, noise: 'relative', scope: 'sample' }, new Generator(1));
    assert.ok(Math.abs(rel.std().item() - 0.5) < 0.02);
  });
});

test('noisy-teacher: scope batch (the paper\'s) perturbs a whole mini-batch with probability alpha, every row of it', () => {
  torch.tidy(() => {
    const z = torch.ones([8, 5], { dtype: 'float64' });
    let hit = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const rows = perturbLogits(z, { sigma: 0.5, alpha: 0.3, noise: 'relative', scope: 'batch' }, new Generator(i)).sub(z).ne(0).sum({ dim: 1 }).gt(0).sum().item();
      assert.ok(rows === 0 || rows === 8, `all rows or none, got ${rows}`);
      if (rows === 8) hit++;
    }
    // Binomial(2000, 0.3): std 0.0102, so 0.03 is ~3 std.
    assert.ok(Math.abs(hit / n - 0.3) < 0.03, `fraction of perturbed batches ${hit / n}`);
  });
});

test('noisy-teacher: an unlabeled batch gives only the kd term', () => {
  withInputs((s, t) => {
    assert.deepEqual(Object.keys(make('noisy-teacher').losses(context({ student: s, teacher: t, y: null }))), ['kd']);
  });
});

test('methods leave only their returned terms alive', () => {
  const g = inputs(golden);
  // float32 like the networks that some methods run on the batch
  const s = g.s.float(), t = g.t.float(), y = g.y;
  const C = s.shape[1]!;
  for (const spec of METHODS) {
    const m = spec.create(resolveParams(spec, {}));
    // Feature maps and input derivatives need image networks: test/features checks those methods' leaks.
    // Data-free methods (inputs) generate images for image networks: test/datafree runs them.
    if (m.features || m.inputGrad || m.inputs) continue;
    const ctx = context({ student: s, teacher: spec.needsTeacher ? t : null, y, epoch: 3, step: 5 });
    // Methods with their own parts (peers, a discriminator) or input gradients need real networks:
    // the batch's inputs are the logits tensor itself, so MLPs over C features fit.
    const student = createModel({ arch: 'mlp', hidden: [4], numClasses: C, inputShape: [C] });
    ctx.student = student;
    if (spec.needsTeacher) ctx.teacher = new ModuleTeacher(createModel({ arch: 'mlp', hidden: [4], numClasses: C, inputShape: [C] }), C, 'test', 'test');
    // The batch is the whole transfer set (methods drawing other rows, like cs-kd, draw from it).
    const transferSet = { labels: Int32Array.from(y.toFloat64Array()), rows: (idx: Int32Array) => s.indexSelect(0, torch.tensor(idx, { dtype: 'int64' })) };
    m.setup?.({ student, teacher: ctx.teacher, numClasses: C, datasetSize: s.shape[0]!, transferSet });
    const before = liveTensors();
    const terms = m.losses(ctx);
    assert.equal(liveTensors(), before + Object.keys(terms).length, `${spec.name} leaked tensors`);
    torch.dispose(Object.values(terms));
  }
  torch.dispose(s, t, y, g.s, g.t);
});

test('registry: unique names, getMethod errors list the known names, describeMethods covers every parameter', () => {
  const names = METHODS.map((m) => m.name);
  // Not the whole list: adding a method is one file and one registry line, without editing this test.
  for (const n of ['scratch', 'kd', 'dkd', 'noisy-teacher', 'dml', 'codistill', 'online-kd-oneway', 'bss', 'adversarial-kd', 'fitnet', 'attention', 'sobolev', 'distilbert', 'tinybert', 'multilabel-kd']) {
    assert.ok(names.includes(n), `${n} is registered`);
  }
  assert.equal(new Set(names).size, names.length);
  assert.equal(getMethod('dkd').name, 'dkd');
  assert.equal(getMethod('online-kd'), getMethod('online-kd-oneway'), 'the old name is an alias');
  assert.throws(() => getMethod('fitnet2'), (e: Error) => e.message.includes("unknown method 'fitnet2'") && names.every((n) => e.message.includes(n)));
  const text = describeMethods();
  for (const m of METHODS) {
    assert.ok(text.includes(m.name) && text.includes(m.paper), m.name);
    if (m.differs) assert.ok(text.includes(`differs from the paper: ${m.differs}`), `${m.name}: differs`);
    for (const [k, p] of Object.entries(m.params)) {
      assert.ok(text.includes(k) && text.includes(p.description), `${m.name}.${k}`);
      if (p.unit) assert.ok(text.includes(p.unit));
    }
  }
  assert.match(text, /temperature\s+4\s+temperature/);
  assert.match(text, /beta\s+8\s+weight/);
  assert.match(text, /warmup\s+20\s+epochs/);
  assert.match(text, /online-kd \(deprecated name of online-kd-oneway/);
});

test('every method\'s declared defaults pass its own validation', () => {
  for (const spec of METHODS) {
    const p = resolveParams(spec, {});
    for (const [k, h] of Object.entries(spec.params)) assert.equal(p[k], h.default, `${spec.name}.${k}`);
  }
});

test('resolveParams rejects unknown, mistyped, out-of-range, non-integer and non-choice values', () => {
  const r = (spec: MethodSpec, g: Params) => () => resolveParams(spec, g);
  const kd = getMethod('kd'), dkd = getMethod('dkd'), nt = getMethod('noisy-teacher');
  assert.throws(r(kd, { temprature: 4 }), /unknown hyper-parameter 'temprature' \(known: temperature, alpha, measure, standardize\)/);
  assert.throws(r(kd, { alpha: 1.5 }), /'alpha' must be <= 1, got 1.5/);
  assert.throws(r(kd, { alpha: -0.1 }), /'alpha' must be >= 0/);
  assert.throws(r(kd, { temperature: 0 }), /'temperature' must be >= 0.01/);
  assert.throws(r(kd, { temperature: '4' }), /'temperature' must be a number/);
  assert.throws(r(kd, { temperature: Number.NaN }), /finite/);
  assert.throws(r(kd, { measure: 'cosine' }), /'measure' must be one of kl, soft_ce, mse, js, sym_kl, got 'cosine'/);
  assert.throws(r(dkd, { warmup: 2.5 }), /'warmup' must be a whole number/);
  assert.throws(r(dkd, { beta: -1 }), /'beta' must be >= 0/);
  assert.throws(r(nt, { alpha: 2 }), /'alpha' must be <= 1/);
  assert.throws(r(nt, { sigma: -1 }), /'sigma' must be >= 0/);
  assert.throws(r(nt, { seed: 1.5 }), /'seed' must be a whole number/);
  assert.throws(r(nt, { noise: 'uniform' }), /'noise' must be one of relative, additive/);
  assert.throws(r(nt, { scope: 'epoch' }), /'scope' must be one of batch, sample/);
  assert.deepEqual(resolveParams(dkd, { beta: 2 }), { alpha: 1, beta: 2, temperature: 4, warmup: 20, ceWeight: 1, standardize: false });
});
