// Generalist + specialists (Hinton et al. 2015, section 5): dustbin mapping and bias correction,
// specialist construction, the combination's optimum on cases with known answers, inactive
// specialists, subset discovery on planted clusters, and the bundle as an experiment teacher.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { linear } from '../../src/tensor/functional.js';
import { createModel, type ZooModel } from '../../src/nn/zoo/index.js';
import { saveModel } from '../../src/nn/safetensors.js';
import { Rng } from '../../src/data/rng.js';
import type { Teacher } from '../../src/teachers/teacher.js';
import {
  clusterSubsets, combine, confusionAffinity, createSpecialist, dustbinCorrection, dustbinMap, kmeans, mapDistribution,
  mapLabels, mapTensor, objective, predictionCovariance, SpecialistEnsembleTeacher, specialistRows, subsetPrior,
  loadSpecialistBundle, BUNDLE_FILE, type SpecialistTerm,
} from '../../src/teachers/specialists/index.js';
import { parseExperiment } from '../../src/config/experiment.js';
import { loadTeachers } from '../../src/run/experiment.js';
import { loadSpecialistsConfig } from '../../src/config/specialists.js';
import { SPECIALIST_OPTIMIZER } from '../../src/config/defaults.js';

const softmax = (z: number[]): number[] => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const rows = (t: Tensor): number[][] => t.tolist() as number[][];
const f64 = (v: number[][]): Tensor => torch.tensor(v, { dtype: 'float64' });
const close = (a: number[][], b: number[][], tol: number, what: string): void => {
  a.forEach((r, i) => r.forEach((v, j) => assert.ok(Math.abs(v - b[i]![j]!) <= tol, `${what}[${i}][${j}]: ${v} vs ${b[i]![j]} (tol ${tol})`)));
};
/** A specialist term for a whole batch of rows, all active unless `active` says otherwise. */
const term = (subset: number[], C: number, logProbs: number[][], active?: number[]): SpecialistTerm => ({
  logProbs: f64(logProbs), map: mapTensor(dustbinMap(subset, C)), active: torch.tensor(active ?? logProbs.map(() => 1), { dtype: 'float64' }),
});

test('dustbin map: subset classes keep their order, every other class maps to the dustbin', () => {
  const map = dustbinMap([2, 4, 6], 8);
  assert.deepEqual([...map], [3, 3, 0, 3, 1, 3, 2, 3]);
  assert.deepEqual([...mapLabels([6, 0, 2, 7, 4], map)], [2, 3, 0, 3, 1]);
  const q = [0.1, 0.05, 0.3, 0.05, 0.2, 0.1, 0.15, 0.05];
  const m = mapDistribution(q, map);
  assert.deepEqual(m.slice(0, 3), [0.3, 0.2, 0.15]);
  assert.ok(Math.abs(m[3]! - 0.35) < 1e-12);
});

test('dustbin correction: log of the over-sampling factor restores the natural posterior', () => {
  // h = ½, π_S = 0.4 (4 of 10 balanced classes): f = (1 + π_S)/π_S = 3.5.
  assert.ok(Math.abs(dustbinCorrection(0.4, 0.5) - Math.log(3.5)) < 1e-12);
  // h = 0 (all random) means no over-sampling at all.
  assert.ok(Math.abs(dustbinCorrection(0.3, 0)) < 1e-12);
  assert.throws(() => dustbinCorrection(0, 0.5), /prior/);
  // A Bayes-optimal specialist trained on the re-sampled data has p_train(j|x) ∝ (Mp)_j·π_train(j)/π(j).
  // Adding log f to its dustbin logit must give back M p for any natural posterior p.
  const C = 10, S = [0, 2, 4, 6], h = 0.5;
  const prior = new Array<number>(C).fill(0.1);
  const piS = S.reduce((a, c) => a + prior[c]!, 0);
  const map = dustbinMap(S, C);
  const rng = new Rng(3);
  for (let trial = 0; trial < 5; trial++) {
    const p = softmax(Array.from({ length: C }, () => 3 * (rng.nextDouble() - 0.5)));
    const mp = mapDistribution(p, map);
    // π_train/π: (h/π_S + (1−h)) for every class of S, (1−h) for the dustbin.
    const shift = [...S.map(() => h / piS + (1 - h)), 1 - h];
    const trainedLogits = mp.map((v, j) => Math.log(v * shift[j]!));
    const corrected = trainedLogits.map((z, j) => (j === S.length ? z + dustbinCorrection(piS, h) : z));
    close([softmax(corrected)], [mp], 1e-12, 'corrected posterior');
  }
});

test('specialist rows: the subset share is h + (1−h)·π_S, and the draw is seeded', () => {
  const labels = Int32Array.from({ length: 50000 }, (_, i) => i % 10);
  const S = [0, 2, 4, 6];
  assert.ok(Math.abs(subsetPrior(labels, S) - 0.4) < 1e-12);
  const r = specialistRows(labels, S, 4000, { subsetFraction: 0.5, seed: 7, epoch: 1 });
  const inS = [...r].filter((i) => S.includes(labels[i]!)).length / r.length;
  assert.ok(Math.abs(inS - 0.7) < 0.03, `in-subset share ${inS}`);
  assert.deepEqual([...specialistRows(labels, S, 4000, { subsetFraction: 0.5, seed: 7, epoch: 1 })], [...r]);
  assert.notDeepEqual([...specialistRows(labels, S, 4000, { subsetFraction: 0.5, seed: 7, epoch: 2 })], [...r]);
  // Draws are without replacement while the pools last: repeats only where the two halves meet.
  assert.ok(new Set(r).size > 0.95 * r.length);
});

test('specialist construction: subset rows copied from the generalist, dustbin = mean row + log(C − |S|)', () => {
  torch.manualSeed(1);
  const g = createModel({ arch: 'mlp', numClasses: 6, inputShape: [5], hidden: [8] });
  const S = [1, 3];
  const s = createSpecialist(g, S);
  assert.equal(s.spec.numClasses, 3);
  torch.tidy(() => {
    g.eval();
    s.eval();
    const x = torch.randn([4, 5]);
    const zg = rows(g.call(x)), zs = rows(s.call(x));
    zg.forEach((row, i) => {
      assert.ok(Math.abs(zs[i]![0]! - row[1]!) < 1e-5 && Math.abs(zs[i]![1]! - row[3]!) < 1e-5, 'subset logits');
      const others = [0, 2, 4, 5].map((c) => row[c]!);
      const expect = others.reduce((a, b) => a + b, 0) / others.length + Math.log(others.length);
      assert.ok(Math.abs(zs[i]![2]! - expect) < 1e-5, `dustbin logit ${zs[i]![2]} vs ${expect}`);
    });
  });
  // The specialist owns its weights: training it must not move the generalist.
  const before = rows(g.stateDict().get('fc.weight')!.slice(0, 0, 1));
  torch.noGrad(() => s.stateDict().get('fc.weight')!.add_(1));
  assert.deepEqual(rows(g.stateDict().get('fc.weight')!.slice(0, 0, 1)), before);
});

test('combination: a specialist that agrees with the generalist leaves q unchanged', () => {
  torch.tidy(() => {
    const C = 5, S = [0, 1, 3];
    const zg = [[2, 1.5, -1, 0.5, 0], [0, 0, 0, 0, 0], [-3, 4, 1, 1, 2]];
    const pg = zg.map(softmax);
    const agree = pg.map((p) => mapDistribution(p, dustbinMap(S, C)).map(Math.log));
    const terms = [term(S, C, agree)];
    const lpg = pg.map((p) => p.map(Math.log));
    // The default solver (em) has the optimum as an exact fixed point.
    close(rows(combine(f64(zg), terms)), lpg, 1e-12, 'em: log q');
    // Adam's normalised steps jitter around it; the cosine decay brings it back.
    close(rows(combine(f64(zg), terms, { solver: 'adam', steps: 200, lr: 0.5 })), lpg, 1e-3, 'adam: log q');
  });
});

test('combination: one specialist has a closed-form optimum, reached by both solvers', () => {
  // Minimising KL(p‖q) + KL(r‖Mq): for c ∈ S, q_c = (p_c + r_c)/2; outside S the mass
  // (P_out + r_dustbin)/2 is shared in proportion to p. C = 2, S = {0} is the two-class toy
  // q = (p + r)/2 (the mean minimises a sum of KL(·‖q)).
  const cases = [
    { C: 2, S: [0], zg: [[1, -1], [0.3, 0.2]], r: [[0.2, 0.8], [0.9, 0.1]] },
    { C: 6, S: [1, 4], zg: [[0.5, 2, -1, 0, 1.5, 0.2], [3, -2, 0, 1, -1, 0]], r: [[0.1, 0.6, 0.3], [0.5, 0.3, 0.2]] },
  ];
  torch.tidy(() => {
    for (const { C, S, zg, r } of cases) {
      const pg = zg.map(softmax);
      const expect = pg.map((p, i) => {
        const pOut = p.filter((_, c) => !S.includes(c)).reduce((a, b) => a + b, 0);
        const qOut = (pOut + r[i]![S.length]!) / 2;
        return p.map((v, c) => (S.includes(c) ? (v + r[i]![S.indexOf(c)]!) / 2 : (qOut * v) / pOut));
      });
      const terms = [term(S, C, r.map((row) => row.map(Math.log)))];
      const em = combine(f64(zg), terms, { solver: 'em', steps: 2000, lr: 1 });
      close(rows(em.exp()), expect, 1e-9, `C=${C} em`);
      const adam = combine(f64(zg), terms, { solver: 'adam', steps: 200, lr: 0.5 });
      close(rows(adam.exp()), expect, 1e-4, `C=${C} adam ×200`);
      // The default few steps already land close, and the objective says q* is the minimum.
      const few = combine(f64(zg), terms);
      close(rows(few.exp()), expect, 1e-3, `C=${C} em ×10`);
      const lStar = rows(objective(f64(zg), terms, em).unsqueeze(1));
      const lFew = rows(objective(f64(zg), terms, few).unsqueeze(1));
      const lGen = rows(objective(f64(zg), terms, f64(zg).logSoftmax(1)).unsqueeze(1));
      lStar.forEach(([v], i) => assert.ok(v! <= lFew[i]![0]! + 1e-12 && lFew[i]![0]! <= lGen[i]![0]! + 1e-12, `objective order row ${i}`));
    }
  });
});

test('combination: the analytic gradient W·q − t matches autograd on the objective', () => {
  torch.tidy(() => {
    const C = 5, S1 = [0, 2], S2 = [2, 3, 4];
    const zg = f64([[0.3, -0.2, 1, 0, 0.5]]);
    const terms = [term(S1, C, [[Math.log(0.5), Math.log(0.3), Math.log(0.2)]]), term(S2, C, [[Math.log(0.1), Math.log(0.6), Math.log(0.2), Math.log(0.1)]])];
    const z = f64([[0.1, 0.4, -0.3, 0.2, 0]]).requiresGrad_(true);
    // The objective as an autograd expression (objective() itself runs without gradients).
    const lq = z.logSoftmax(1), q = lq.exp();
    let L = zg.logSoftmax(1).exp().mul(zg.logSoftmax(1).sub(lq)).sum();
    for (const t of terms) {
      const mq = torch.zeros([1, t.logProbs.shape[1]!], { dtype: 'float64' }).scatterAdd(1, t.map.unsqueeze(0), q);
      L = L.add(t.logProbs.exp().mul(t.logProbs.sub(mq.log())).sum());
    }
    const [grad] = torch.autograd.grad(L, z);
    // One EM step from softmax(z) is t/W; the gradient is W q − t = W (q − EM(q)).
    const qv = rows(z.detach().softmax(1))[0]!;
    const pg = rows(zg.softmax(1))[0]!;
    const t = pg.slice();
    for (const [S, r] of [[S1, [0.5, 0.3, 0.2]], [S2, [0.1, 0.6, 0.2, 0.1]]] as const) {
      const map = dustbinMap(S, C), mq = mapDistribution(qv, map);
      qv.forEach((v, c) => { t[c]! += (r[map[c]!]! * v) / mq[map[c]!]!; });
    }
    close(rows(grad!), [qv.map((v, c) => 3 * v - t[c]!)], 1e-12, 'gradient');
  });
});

/** A fixed linear teacher (float64) over 2-d inputs. */
class LinearTeacher implements Teacher {
  readonly numParameters: number;
  readonly numClasses: number;
  readonly w: Tensor;
  readonly b: Tensor;
  calls = 0;
  constructor(readonly description: string, readonly checksum: string, W: number[][], bias: number[]) {
    this.w = torch.tensor(W, { dtype: 'float64' }).keep();
    this.b = torch.tensor(bias, { dtype: 'float64' }).keep();
    this.numClasses = W.length;
    this.numParameters = W.length * 3;
  }
  logits(x: Tensor): Tensor {
    this.calls += x.shape[0]!;
    return torch.noGrad(() => linear(x, this.w, this.b));
  }
}

test('ensemble teacher: inactive specialists have no influence, and run on no rows', () => {
  // Generalist over 4 classes: row 0 predicts class 0, row 1 class 3.
  const g = new LinearTeacher('g', 'gggg', [[1, 0], [0.5, 0.5], [0, 0], [0, 1]], [0, 0, 0, 0]);
  const X = [[3, 0], [0, 3]];
  // Specialist on {0, 1}: active on row 0 only; specialist on {2}: never in the top-1.
  const s01 = new LinearTeacher('s01', 's01', [[-1, 0], [2, 0], [0, 0]], [0, 0, 0]);
  const s2 = new LinearTeacher('s2', 's2', [[5, 5], [0, 0]], [0, 0]);
  torch.tidy(() => {
    const x = f64(X);
    const gen = rows(g.logits(x).logSoftmax(1));
    const alone = new SpecialistEnsembleTeacher(g, [{ teacher: s2, subset: [2], dustbinCorrection: 0.7 }]);
    close(rows(alone.logits(x)), gen, 1e-12, 'inactive specialist only');
    assert.equal(s2.calls, 0, 'an inactive specialist is not run');
    const one = new SpecialistEnsembleTeacher(g, [{ teacher: s01, subset: [0, 1], dustbinCorrection: 0.3 }]);
    const both = new SpecialistEnsembleTeacher(g, [
      { teacher: s01, subset: [0, 1], dustbinCorrection: 0.3 },
      { teacher: s2, subset: [2], dustbinCorrection: 0.7 },
    ]);
    const q1 = rows(one.logits(x)), q2 = rows(both.logits(x));
    close(q2, q1, 1e-12, 'adding an inactive specialist');
    close([q1[1]!], [gen[1]!], 1e-12, 'row without an active specialist');
    assert.ok(Math.abs(q1[0]![1]! - gen[0]![1]!) > 0.1, 'the active specialist moves row 0');
    assert.equal(s01.calls, 2, 's01 ran on its active row only (once per ensemble)');
    // top-2 makes the known set of row 1 {3, 1}: s01 becomes active there.
    const top2 = new SpecialistEnsembleTeacher(g, [{ teacher: s01, subset: [0, 1], dustbinCorrection: 0.3 }], { topN: 2 });
    assert.ok(Math.abs(rows(top2.logits(x))[1]![1]! - gen[1]![1]!) > 1e-3);
    // Everything that shapes q keys the teacher-output cache.
    const sums = new Set([one, both, top2,
      new SpecialistEnsembleTeacher(g, [{ teacher: s01, subset: [0, 1], dustbinCorrection: 0.4 }]),
      new SpecialistEnsembleTeacher(g, [{ teacher: s01, subset: [0, 1], dustbinCorrection: 0.3 }], { solver: { steps: 5 } }),
    ].map((t) => t.checksum));
    assert.equal(sums.size, 5);
    assert.throws(() => new SpecialistEnsembleTeacher(g, [{ teacher: s01, subset: [0, 1, 2], dustbinCorrection: 0 }]), /needs 4/);
  });
});

/** Generalist predictions with planted confusable blocks: each class leaks probability within its block. */
function plantedPredictions(blocks: number[][], C: number, n: number, seed: number): { logProbs: Float32Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const logProbs = new Float32Array(n * C), labels = new Int32Array(n);
  const blockOf = new Map(blocks.flatMap((b) => b.map((c) => [c, b] as const)));
  for (let i = 0; i < n; i++) {
    const y = rng.nextInt(C);
    labels[i] = y;
    const z = Array.from({ length: C }, () => rng.nextDouble() - 4);
    z[y] = 3;
    // Confusion within the block: a random partner gets a logit close to the label's.
    for (const c of blockOf.get(y) ?? []) if (c !== y) z[c] = 2.2 + rng.nextDouble();
    softmax(z).forEach((p, c) => { logProbs[i * C + c] = Math.log(p); });
  }
  return { logProbs, labels };
}

test('subset discovery: k-means on the covariance (and on the confusion matrix) finds planted clusters', () => {
  const C = 10, blocks = [[0, 2, 4, 6], [5, 7, 9]];
  const { logProbs, labels } = plantedPredictions(blocks, C, 4000, 11);
  const cov = predictionCovariance(logProbs, 4000, C);
  assert.ok(cov[0]![2]! > 0 && cov[0]![1]! < 0, 'confusable classes covary positively, separable ones negatively');
  const sorted = (s: number[][]): number[][] => [...s].sort((x, y) => x[0]! - y[0]!);
  const a = clusterSubsets(cov, { clusters: 5, maxSubsets: 2, seed: 3 });
  assert.deepEqual(sorted(a.subsets), blocks);
  assert.deepEqual(clusterSubsets(cov, { clusters: 5, maxSubsets: 2, seed: 3 }), a, 'deterministic for a seed');
  // Ranked by mean within-cluster affinity: the smaller block's pairs are confused more often.
  assert.deepEqual(clusterSubsets(cov, { clusters: 5, maxSubsets: 1, seed: 3 }).subsets, [a.subsets[0]], 'maxSubsets keeps the highest-scoring cluster');
  assert.ok(a.partition.every((g) => g.classes.length === 1 || blocks.some((b) => b.join() === g.classes.join())));
  const conf = confusionAffinity(logProbs, labels, 4000, C);
  assert.deepEqual(sorted(clusterSubsets(conf, { clusters: 5, maxSubsets: 2, seed: 3, method: 'confusion' }).subsets), blocks);
  // k-means itself: two obvious groups on a line, any seed.
  for (const seed of [0, 1, 2]) assert.deepEqual(kmeans([[0], [0.1], [5], [5.2], [0.05]], 2, { seed }).assignment, [0, 0, 1, 1, 0]);
});

test('bundle: written folder loads as an experiment teacher (teacher: {specialists: dir})', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdistill-spec-'));
  torch.manualSeed(2);
  const g = createModel({ arch: 'mlp', numClasses: 5, inputShape: [6], hidden: [8] }) as ZooModel;
  saveModel(join(dir, 'generalist.safetensors'), g);
  mkdirSync(join(dir, 'bundle', 'specialist-1'), { recursive: true });
  saveModel(join(dir, 'bundle', 'specialist-1', 'model.safetensors'), createSpecialist(g, [1, 2]));
  writeFileSync(join(dir, 'bundle', BUNDLE_FILE), JSON.stringify({
    format: 'kdistill-specialists', version: 1, generalist: '../generalist.safetensors', numClasses: 5, topN: 2,
    solver: { solver: 'adam', steps: 10, lr: 0.5 },
    specialists: [{ subset: [1, 2], checkpoint: 'specialist-1/model.safetensors', dustbinCorrection: 1.2, subsetPrior: 0.4, subsetFraction: 0.5 }],
    subsets: { method: 'manual', file: 'subsets.json' },
  }));
  const t = loadSpecialistBundle(join(dir, 'bundle'));
  assert.equal(t.topN, 2);
  assert.equal(t.solver.steps, 10);
  const e = parseExperiment({ teacher: { specialists: 'bundle', topN: 1 }, student: { arch: 'mlp', hidden: [4] }, epochs: 1 }, join(dir, 'exp.yaml'));
  assert.deepEqual(e.teachers, [{ specialists: join(dir, 'bundle'), topN: 1 }]);
  const fromExp = loadTeachers(e, 5) as SpecialistEnsembleTeacher;
  assert.equal(fromExp.topN, 1);
  assert.notEqual(fromExp.checksum, t.checksum);
  torch.tidy(() => {
    const lq = fromExp.logits(torch.randn([7, 6]));
    assert.deepEqual(lq.shape, [7, 5]);
    rows(lq.exp()).forEach((r) => assert.ok(Math.abs(r.reduce((a, b) => a + b, 0) - 1) < 1e-5));
  });
  assert.throws(() => parseExperiment({ teacher: { specialists: 'bundle', numClasses: 3 }, student: { arch: 'mlp' }, epochs: 1 }, join(dir, 'x.yaml')), /does not apply/);
});

test('specialists config: defaults, relative paths, and errors that name the key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdistill-speccfg-'));
  const file = join(dir, 'ens.yaml');
  writeFileSync(file, 'generalist: g.safetensors\nsubsets: { method: manual, manual: [[6, 0], [2, 4]] }\n');
  const cfg = loadSpecialistsConfig(file);
  assert.equal(cfg.generalist, join(dir, 'g.safetensors'));
  assert.deepEqual(cfg.subsets.manual, [[6, 0], [2, 4]]);
  assert.deepEqual(cfg.inference, { topN: 1, solver: 'em', steps: 10, lr: 0.5 });
  assert.equal(cfg.specialist.subsetFraction, 0.5);
  const bad = (yaml: string, re: RegExp): void => {
    writeFileSync(file, yaml);
    assert.throws(() => loadSpecialistsConfig(file), re);
  };
  bad('generalist: g\nsubsets: { method: manual }\n', /'subsets.manual' is required/);
  bad('generalist: g\nsubsets: { method: confusion, normalize: correlation }\n', /'subsets.normalize' applies to method 'covariance'/);
  bad('generalist: g\ninference: { solver: newton }\n', /'inference.solver' must be one of adam, em/);
  bad('subsets: { method: covariance }\n', /'generalist' is required/);
  // The optimizer section is parsed by the experiment files' parser (src/config/optimizer.ts): its
  // checks apply here too (before, the specialists' copy accepted Nesterov without momentum).
  bad('generalist: g\nspecialist: { optimizer: { name: sgd, lr: 0.01, nesterov: true } }\n', /'specialist.optimizer.nesterov' needs momentum > 0/);
  writeFileSync(file, 'generalist: g\nspecialist: { optimizer: { name: adam, lr: 0.001, betas: [0.8, 0.99] } }\n');
  assert.deepEqual(loadSpecialistsConfig(file).specialist.optimizer, { name: 'adam', lr: 0.001, nesterov: false, betas: [0.8, 0.99] });
  writeFileSync(file, 'generalist: g\n');
  assert.deepEqual(loadSpecialistsConfig(file).specialist.optimizer, { ...SPECIALIST_OPTIMIZER, nesterov: false });
});
