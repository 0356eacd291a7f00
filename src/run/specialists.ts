// `kdistill specialists <file.yaml>`: builds a generalist-plus-specialists teacher (Hinton et al.
// 2015, section 5) and evaluates it. Steps, each resumable:
//   (a) confusable subsets from the generalist's predictions on the training set → subsets.json
//       (reused while the generalist and the discovery settings are unchanged);
//   (b) one specialist per subset, fine-tuned from the generalist → specialist-<i>/model.safetensors
//       (a finished specialist with the same settings is not retrained; an interrupted one resumes
//       from its checkpoint);
//   (c) generalist against ensemble on the test set, on all classes and on the confusable ones, and
//       the solver's optimality gap by number of steps → eval.json, eval.md;
//   (d) the teacher bundle specialists.json, which experiment files reference as
//       `teacher: { specialists: <output folder> }`.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { SpecialistsConfig } from '../config/specialists.js';
import type { Obj } from '../config/validate.js';
import { manualSeed, setNumThreads } from '../tensor/torch.js';
import { tensor } from '../tensor/factories.js';
import { call, type Tensor } from '../tensor/tensor.js';
import { keep, tidy } from '../tensor/scope.js';
import type { Dataset } from '../data/dataset.js';
import { loadFashionMnist, loadMnist } from '../data/fashion-mnist.js';
import { buildBatch } from '../data/batch.js';
import { horizontalFlip, randomCrop, type Augmentation } from '../data/augment.js';
import { loadModel, saveModel } from '../nn/safetensors.js';
import type { ZooModel } from '../nn/zoo/index.js';
import { scratch } from '../methods/scratch.js';
import { checkpointTeacher } from '../teachers/sources.js';
import { fileSha256 } from '../data/errors.js';
import { atomicWrite, ensureDir } from '../util/fs.js';
import {
  clusterSubsets, confusionAffinity, correlationFromCovariance, predictionCovariance, validateSubsets, type SubsetDiscovery,
} from '../teachers/specialists/subsets.js';
import { createSpecialist, dustbinCorrection, dustbinMap, mapLabels, specialistRows, subsetPrior } from '../teachers/specialists/specialist.js';
import { objective, type SpecialistTerm } from '../teachers/specialists/combine.js';
import {
  BUNDLE_FILE, BUNDLE_FORMAT, relativeTo, SpecialistEnsembleTeacher, type SpecialistBundle, type MemberOutputs,
} from '../teachers/specialists/teacher.js';
import { predict } from '../train/evaluate.js';
import type { Predictions } from '../train/metrics.js';
import { train, type BatchSource } from '../train/trainer.js';
import { formatTable } from '../train/table.js';

const log = (line: string): void => {
  if (process.env.KDISTILL_QUIET !== '1') process.stderr.write(line + '\n');
};
const hash = (v: unknown): string => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);

export interface SpecialistsResult {
  bundle: string;
  subsets: number[][];
  summary: string;
}

export async function runSpecialists(cfg: SpecialistsConfig): Promise<SpecialistsResult> {
  setNumThreads(cfg.threads);
  manualSeed(cfg.seed);
  ensureDir(cfg.output, `${cfg.file}: 'output'`);
  const load = cfg.data.dataset === 'mnist' ? loadMnist : loadFashionMnist;
  const dir = cfg.data.path ? { dir: cfg.data.path } : {};
  const trainSet = load({ split: 'train', ...dir }), test = load({ split: 'test', ...dir });
  const C = trainSet.numClasses;
  if (!existsSync(cfg.generalist)) throw new Error(`${cfg.file}: generalist checkpoint not found: ${cfg.generalist}`);
  const generalistSum = fileSha256(cfg.generalist);
  const generalist = checkpointTeacher(cfg.generalist);
  if (generalist.numClasses !== C) throw new Error(`${cfg.file}: the generalist predicts ${generalist.numClasses} classes, ${trainSet.name} has ${C}`);

  // (a) subsets
  const found = findSubsets(cfg, generalist, generalistSum, trainSet);
  const subsets = found.subsets;
  log(`${cfg.name}: subsets (${cfg.subsets.method}): ${subsets.map((s) => `{${s.map((c) => className(trainSet, c)).join(', ')}}`).join(' ')}`);

  // (b) specialists
  const members = [];
  const specialistRecords = [];
  const generalistTest = predict((x) => generalist.logits(x), test);
  for (let i = 0; i < subsets.length; i++) {
    const r = await trainSpecialist(cfg, i, subsets[i]!, generalistSum, trainSet, test, generalistTest);
    members.push({ teacher: checkpointTeacher(r.checkpoint), subset: subsets[i]!, dustbinCorrection: r.dustbinCorrection });
    specialistRecords.push(r);
  }

  // (d) the bundle (written before the evaluation so that a slow evaluation does not hold it back)
  const bundle: SpecialistBundle = {
    format: BUNDLE_FORMAT, version: 1, generalist: relativeTo(cfg.output, cfg.generalist), numClasses: C,
    topN: cfg.inference.topN, solver: { solver: cfg.inference.solver, steps: cfg.inference.steps, lr: cfg.inference.lr },
    specialists: specialistRecords.map((r, i) => ({
      subset: subsets[i]!, checkpoint: relativeTo(cfg.output, r.checkpoint), dustbinCorrection: r.dustbinCorrection,
      subsetPrior: r.subsetPrior, subsetFraction: cfg.specialist.subsetFraction,
    })),
    subsets: { method: found.method, file: 'subsets.json' },
  };
  atomicWrite(join(cfg.output, BUNDLE_FILE), JSON.stringify(bundle, null, 2) + '\n');

  // (c) evaluation
  const evalRec = evaluateEnsemble(cfg, generalist, members, test, specialistRecords);
  atomicWrite(join(cfg.output, 'eval.json'), JSON.stringify(evalRec.json, null, 2) + '\n');
  atomicWrite(join(cfg.output, 'eval.md'), evalRec.markdown);
  return { bundle: cfg.output, subsets, summary: evalRec.markdown + `\nbundle: ${join(cfg.output, BUNDLE_FILE)}` };
}

function className(ds: Dataset, c: number): string {
  return ds.classNames?.[c] ?? String(c);
}

function findSubsets(cfg: SpecialistsConfig, generalist: SpecialistEnsembleTeacher['generalist'], generalistSum: string, trainSet: Dataset): SubsetDiscovery & { classNames?: string[] } {
  const file = join(cfg.output, 'subsets.json');
  const key = hash({ generalist: generalistSum, data: trainSet.name, subsets: cfg.subsets, seed: cfg.seed });
  if (existsSync(file)) {
    const prev = JSON.parse(readFileSync(file, 'utf8')) as SubsetDiscovery & { key: string };
    if (prev.key === key) {
      log(`${cfg.name}: subsets.json is up to date; reusing it`);
      return prev;
    }
  }
  const C = trainSet.numClasses;
  let found: SubsetDiscovery & { trainAccuracy?: number };
  if (cfg.subsets.method === 'manual') {
    found = { method: 'manual', matrix: [], clusters: 0, seed: cfg.seed, partition: [], subsets: validateSubsets(cfg.subsets.manual!, C) };
  } else {
    const m = generalistMatrices(cfg, generalist, generalistSum, trainSet);
    const matrix = cfg.subsets.method === 'confusion' ? m.confusion : cfg.subsets.normalize === 'correlation' ? correlationFromCovariance(m.covariance) : m.covariance;
    found = clusterSubsets(matrix, { clusters: cfg.subsets.clusters, maxSubsets: cfg.subsets.maxSubsets, seed: cfg.seed, restarts: cfg.subsets.restarts, method: cfg.subsets.method });
    found.trainAccuracy = m.trainAccuracy;
    if (found.subsets.length === 0) throw new Error(`${cfg.file}: clustering into ${cfg.subsets.clusters} groups left every class alone; lower subsets.clusters`);
  }
  const rec = {
    key, ...found, ...(cfg.subsets.method === 'covariance' ? { normalize: cfg.subsets.normalize } : {}), generalist: cfg.generalist, generalistChecksum: generalistSum, data: trainSet.name,
    ...(trainSet.classNames ? { classNames: trainSet.classNames, named: found.subsets.map((s) => s.map((c) => trainSet.classNames![c]!)) } : {}),
  };
  atomicWrite(file, JSON.stringify(rec, null, 2) + '\n');
  return rec;
}

/**
 * Both affinity matrices of the generalist on the training set, kept in generalist-matrices.json
 * so that changing the clustering settings does not repeat the prediction pass.
 */
function generalistMatrices(cfg: SpecialistsConfig, generalist: SpecialistEnsembleTeacher['generalist'], generalistSum: string, trainSet: Dataset): { covariance: number[][]; confusion: number[][]; trainAccuracy: number } {
  const file = join(cfg.output, 'generalist-matrices.json');
  const key = hash({ generalist: generalistSum, data: trainSet.name });
  if (existsSync(file)) {
    const prev = JSON.parse(readFileSync(file, 'utf8')) as { key: string; covariance: number[][]; confusion: number[][]; trainAccuracy: number };
    if (prev.key === key) return prev;
  }
  const C = trainSet.numClasses;
  log(`${cfg.name}: the generalist's predictions on ${trainSet.size} training samples`);
  const p = predict((x) => generalist.logits(x), trainSet);
  let hit = 0;
  for (let i = 0; i < p.n; i++) {
    let b = 0;
    for (let j = 1; j < C; j++) if (p.logProbs[i * C + j]! > p.logProbs[i * C + b]!) b = j;
    if (b === trainSet.y![i]) hit++;
  }
  const rec = { key, covariance: predictionCovariance(p.logProbs, p.n, C), confusion: confusionAffinity(p.logProbs, trainSet.y!, p.n, C), trainAccuracy: hit / p.n };
  atomicWrite(file, JSON.stringify(rec) + '\n');
  return rec;
}

interface SpecialistRecord {
  subset: number[];
  checkpoint: string;
  dustbinCorrection: number;
  subsetPrior: number;
  /** On the test set mapped to the specialist's |S|+1 classes: the specialist's and the generalist's accuracy. */
  testAccuracy: number;
  generalistMappedAccuracy?: number;
  seconds: number;
}

async function trainSpecialist(cfg: SpecialistsConfig, i: number, subset: number[], generalistSum: string, trainSet: Dataset, test: Dataset, gp: Predictions): Promise<SpecialistRecord> {
  const outDir = join(cfg.output, `specialist-${i + 1}`);
  const model = join(outDir, 'model.safetensors');
  const resultFile = join(outDir, 'result.json');
  const key = hash({ generalist: generalistSum, subset, specialist: cfg.specialist, seed: cfg.seed });
  if (existsSync(model) && existsSync(resultFile)) {
    const prev = JSON.parse(readFileSync(resultFile, 'utf8')) as SpecialistRecord & { key: string };
    if (prev.key === key) {
      log(`${cfg.name}: specialist ${i + 1} {${subset.join(', ')}} is trained; reusing it`);
      return { ...prev, checkpoint: model };
    }
  }
  ensureDir(outDir);
  // A checkpoint left by different settings must not be resumed: start that specialist over.
  const keyFile = join(outDir, 'settings.json');
  if (existsSync(keyFile) && (JSON.parse(readFileSync(keyFile, 'utf8')) as { key?: string }).key !== key) {
    for (const f of ['checkpoint.safetensors', 'log.jsonl', 'model.safetensors', 'result.json']) rmSync(join(outDir, f), { force: true });
  }
  atomicWrite(keyFile, JSON.stringify({ key, subset, specialist: cfg.specialist, seed: cfg.seed }, null, 2) + '\n');
  const prior = subsetPrior(trainSet.y!, subset);
  const correction = dustbinCorrection(prior, cfg.specialist.subsetFraction);
  const map = dustbinMap(subset, trainSet.numClasses);
  const yMapped = mapLabels(trainSet.y!, map);
  const testMapped: Dataset = { ...test, y: mapLabels(test.y!, map), numClasses: subset.length + 1, name: `${test.name}/specialist{${subset.join(',')}}` };
  delete (testMapped as { classNames?: string[] }).classNames;
  const { model: g } = loadModel<ZooModel>(cfg.generalist);
  const student = createSpecialist(g, subset);
  g.dispose();
  manualSeed(cfg.seed + i);
  const augs: Augmentation[] = [];
  if (cfg.specialist.augment.crop > 0) augs.push(randomCrop(cfg.specialist.augment.crop));
  if (cfg.specialist.augment.flip) augs.push(horizontalFlip());
  const { samplesPerEpoch: n, batchSize } = cfg.specialist;
  const perEpoch = Math.ceil(n / batchSize);
  const src = { x: trainSet.x, y: yMapped, sampleShape: trainSet.sampleShape };
  // Each epoch draws its own rows (half from the subset, half from everything), seeded by
  // (seed, specialist, epoch) so that a resumed run sees the same batches.
  const source: BatchSource = {
    batchesPerEpoch: perEpoch,
    *batches(epoch, from) {
      const rows = specialistRows(trainSet.y!, subset, n, { subsetFraction: cfg.specialist.subsetFraction, seed: cfg.seed * 1000 + i, epoch });
      for (let b = from; b < perEpoch; b++) {
        const part = rows.subarray(b * batchSize, Math.min(n, (b + 1) * batchSize));
        const { x, y } = buildBatch(src, part, augs, cfg.seed * 1000 + i, epoch, b);
        yield { x: tensor(x, { shape: [part.length, ...trainSet.sampleShape] }), y: tensor(y!, { shape: [part.length], dtype: 'int64' }) };
      }
    },
  };
  log(`${cfg.name}: specialist ${i + 1} {${subset.join(', ')}}: subset prior ${prior.toFixed(3)}, dustbin correction +${correction.toFixed(4)}`);
  const t0 = Date.now();
  const r = await train({
    student, teacher: null, method: scratch.create({ labelSmoothing: 0 }), train: source, evalSet: testMapped,
    numClasses: subset.length + 1, epochs: cfg.specialist.epochs, optimizer: cfg.specialist.optimizer, schedule: cfg.specialist.schedule,
    outDir, resume: true, evalEvery: 'end', label: `specialist ${i + 1}`,
  });
  saveModel(model, student, { specialistOf: cfg.generalist, subset: JSON.stringify(subset), dustbinCorrection: String(correction) });
  // The generalist on the same |S|+1-class task: its argmax mapped through the dustbin map.
  let hit = 0;
  for (let k = 0; k < gp.n; k++) {
    let b = 0;
    for (let j = 1; j < gp.c; j++) if (gp.logProbs[k * gp.c + j]! > gp.logProbs[k * gp.c + b]!) b = j;
    if (map[b] === testMapped.y![k]) hit++;
  }
  const rec: SpecialistRecord & { key: string } = {
    key, subset, checkpoint: model, dustbinCorrection: correction, subsetPrior: prior,
    testAccuracy: r.final?.accuracy ?? NaN, generalistMappedAccuracy: hit / gp.n, seconds: (Date.now() - t0) / 1000,
  };
  atomicWrite(resultFile, JSON.stringify({ ...rec, checkpoint: 'model.safetensors' }, null, 2) + '\n');
  student.dispose();
  return rec;
}

interface Scores { accuracy: number; nll: number; confusableAccuracy: number; perSubset: number[] }

function scores(logProbs: Float32Array, labels: Int32Array, C: number, subsets: number[][]): Scores {
  const union = new Set(subsets.flat());
  let hit = 0, nll = 0, cHit = 0, cN = 0;
  const sHit = subsets.map(() => 0), sN = subsets.map(() => 0);
  for (let i = 0; i < labels.length; i++) {
    let b = 0;
    for (let j = 1; j < C; j++) if (logProbs[i * C + j]! > logProbs[i * C + b]!) b = j;
    const y = labels[i]!, ok = b === y ? 1 : 0;
    hit += ok;
    nll -= logProbs[i * C + y]!;
    if (union.has(y)) { cHit += ok; cN++; }
    subsets.forEach((s, k) => { if (s.includes(y)) { sHit[k]! += ok; sN[k]!++; } });
  }
  return { accuracy: hit / labels.length, nll: nll / labels.length, confusableAccuracy: cHit / Math.max(1, cN), perSubset: sHit.map((h, k) => h / Math.max(1, sN[k]!)) };
}

/** The members' outputs on the whole dataset, concatenated (kept until disposed). */
function allMembers(t: SpecialistEnsembleTeacher, ds: Dataset, batchSize = 500): MemberOutputs {
  const per = ds.sampleShape.reduce((a, b) => a * b, 1);
  const parts: MemberOutputs[] = [];
  for (let s = 0; s < ds.size; s += batchSize) {
    const n = Math.min(batchSize, ds.size - s);
    parts.push(tidy(() => t.members(tensor(ds.x.subarray(s * per, (s + n) * per), { shape: [n, ...ds.sampleShape] }))));
  }
  const out = tidy(() => ({
    generalist: call('cat', parts.map((p) => p.generalist), 0) as Tensor,
    terms: t.specialists.map((_, k): SpecialistTerm => ({
      logProbs: call('cat', parts.map((p) => p.terms[k]!.logProbs), 0),
      active: call('cat', parts.map((p) => p.terms[k]!.active), 0),
      map: parts[0]!.terms[k]!.map,
    })),
  }));
  for (const p of parts) {
    p.generalist.dispose();
    for (const term of p.terms) { term.logProbs.dispose(); term.active.dispose(); }
  }
  keep(out.generalist);
  for (const term of out.terms) { keep(term.logProbs); keep(term.active); }
  return out;
}

function toFloat64(o: MemberOutputs): MemberOutputs {
  return { generalist: o.generalist.to('float64'), terms: o.terms.map((t) => ({ map: t.map, logProbs: t.logProbs.to('float64'), active: t.active.to('float64') })) };
}

function evaluateEnsemble(cfg: SpecialistsConfig, generalist: SpecialistEnsembleTeacher['generalist'], members: SpecialistEnsembleTeacher['specialists'][number][], test: Dataset, recs: SpecialistRecord[]): { json: Obj; markdown: string } {
  const C = test.numClasses, y = test.y!;
  const subsets = members.map((m) => m.subset);
  const rows: Obj[] = [];
  const named = (s: number[]): string => s.map((c) => className(test, c)).join(', ');
  const gap: Obj[] = [];
  let gScores: Scores | null = null;
  const topNs = [...new Set([cfg.inference.topN, ...cfg.evaluation.topN])];
  for (const topN of topNs) {
    const t = new SpecialistEnsembleTeacher(generalist, members, { topN, solver: cfg.inference });
    log(`${cfg.name}: evaluating the ensemble (top-${topN}) on ${test.size} test samples`);
    const out = allMembers(t, test);
    const read = (lq: Tensor): Float32Array => tidy(() => lq.to('float32').contiguous().data<Float32Array>().slice());
    if (!gScores) gScores = scores(read(tidy(() => out.generalist.logSoftmax(1))), y, C, subsets);
    const lq = t.combine(out);
    const active = out.terms.map((term) => tidy(() => term.active.mean().item()));
    rows.push({ topN, solver: cfg.inference, activeFraction: active, ...scores(read(lq), y, C, subsets) });
    lq.dispose();
    {
      // Optimality gap against a float64 EM solution run for referenceSteps.
      const o64 = toFloat64(out);
      const ref = t.combine(o64, { solver: 'em', steps: cfg.evaluation.referenceSteps, lr: 1 });
      const lRef = objective(o64.generalist, o64.terms, ref);
      const refAcc = scores(read(ref), y, C, subsets).accuracy;
      // Rows where no specialist is active have L = 0 at q = p_g for every solver: leave them out of the means.
      const anyActive = tidy(() => o64.terms.reduce((a, term) => a.add(term.active), o64.terms[0]!.active.mul(0)).gt(0).to('float64'));
      const nActive = anyActive.sum().item();
      for (const solver of ['adam', 'em'] as const) {
        for (const steps of cfg.evaluation.solverSteps) {
          const lq32 = t.combine(out, { solver, steps, lr: cfg.inference.lr });
          const g = tidy(() => objective(o64.generalist, o64.terms, lq32.to('float64')).sub(lRef).mul(anyActive));
          const agree = tidy(() => lq32.argmax({ dim: 1 }).eq(ref.argmax({ dim: 1 })).to('float64').mean().item());
          gap.push({
            topN, solver, steps, meanGap: g.sum().item() / nActive, maxGap: g.max().item(), meanObjectiveAtOptimum: tidy(() => lRef.mul(anyActive).sum().item() / nActive),
            accuracy: scores(read(lq32), y, C, subsets).accuracy, argmaxAgreementWithOptimum: agree, referenceAccuracy: refAcc,
          });
          g.dispose();
          lq32.dispose();
        }
      }
      for (const v of [o64.generalist, ref, lRef, anyActive, ...o64.terms.flatMap((term) => [term.logProbs, term.active])]) v.dispose();
    }
    out.generalist.dispose();
    for (const term of out.terms) { term.logProbs.dispose(); term.active.dispose(); }
  }
  const g = gScores!;
  const pctS = (v: number): string => `${(v * 100).toFixed(2)}%`;
  const table1 = formatTable(
    ['model', 'all classes', 'confusable classes', ...subsets.map((_, k) => `subset ${k + 1}`), 'NLL'],
    [['generalist', pctS(g.accuracy), pctS(g.confusableAccuracy), ...g.perSubset.map(pctS), g.nll.toFixed(4)],
      ...rows.map((r) => {
        const s = r as unknown as Scores & { topN: number };
        return [`ensemble (top-${s.topN})`, pctS(s.accuracy), pctS(s.confusableAccuracy), ...s.perSubset.map(pctS), s.nll.toFixed(4)];
      })],
  );
  const table2 = formatTable(
    ['specialist', 'classes', 'dustbin +log f', 'spec. acc (|S|+1 task)', 'generalist acc (same task)', 'train s'],
    recs.map((r, k) => [String(k + 1), named(r.subset), r.dustbinCorrection.toFixed(4), pctS(r.testAccuracy), r.generalistMappedAccuracy !== undefined ? pctS(r.generalistMappedAccuracy) : '–', r.seconds.toFixed(0)]),
  );
  const table3 = formatTable(
    ['known set', 'solver', 'steps', 'mean gap (nats)', 'max gap', 'test acc', 'argmax = optimum'],
    gap.map((r) => [`top-${r.topN}`, String(r.solver), String(r.steps), Number(r.meanGap).toExponential(2), Number(r.maxGap).toExponential(2), pctS(Number(r.accuracy)), pctS(Number(r.argmaxAgreementWithOptimum))]),
  );
  const markdown = `## ${cfg.name}\n\nTest set (${test.size} samples). Subsets: ${subsets.map((s) => `{${named(s)}}`).join(' ')}\n\n${table1}\n\n${table2}\n\n` +
    `Solver gap: L(q) − L(q*) averaged over test rows with an active specialist; q* = float64 EM run for ${cfg.evaluation.referenceSteps} steps.\n\n${table3}\n`;
  return { json: { name: cfg.name, subsets, generalist: g, ensemble: rows, specialists: recs.map((r) => ({ ...r, checkpoint: relativeTo(cfg.output, r.checkpoint) })), solverGap: gap }, markdown };
}
