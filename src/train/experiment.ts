// Runs an experiment: builds data, teacher(s), student and method from a validated experiment
// file, checks that they fit together before any training, trains, and writes the run folder:
// log.jsonl, checkpoint.safetensors, model.safetensors, run.json (all that is needed to repeat
// it) and result.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isChainDocument, loadExperiment, readExperimentDocument, type Experiment } from '../config/experiment.js';
import { manualSeed, setNumThreads } from '../tensor/torch.js';
import { native, packageRoot } from '../tensor/native.js';
import { tensor } from '../tensor/factories.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import type { Dataset } from '../data/dataset.js';
import { loadFashionMnist, loadMnist } from '../data/fashion-mnist.js';
import { readCsv } from '../data/csv.js';
import { split, take } from '../data/splits.js';
import { DataLoader } from '../data/loader.js';
import { randomCrop, horizontalFlip, normalize, type Augmentation } from '../data/augment.js';
import { createModel, type ZooModel } from '../nn/zoo/index.js';
import { saveModel } from '../nn/safetensors.js';
import { getMethod } from '../methods/registry.js';
import { resolveParams, type CachedTarget } from '../methods/method.js';
import type { Teacher } from '../teachers/teacher.js';
import { checkpointTeacher, checkTeacherOutput, TorchScriptTeacher } from '../teachers/sources.js';
import { EnsembleTeacher } from '../teachers/ensemble.js';
import { OnnxTeacher } from '../teachers/onnx.js';
import { loadSpecialistBundle } from '../teachers/specialists/teacher.js';
import { cachedTeacher, planTeacherCache, FeatureCacheTooLarge } from '../teachers/cache.js';
import { atomicWrite } from '../util/fs.js';
import { train, type BatchSource, type TrainResult } from './trainer.js';
import { formatTable } from './table.js';
import { runChainFile } from './chain.js';
import { writeRunReport } from '../report/index.js';
import { DataParallel, ProcessGroup, parallelCacheOptions, shardedSource, type DistributedOptions } from '../distributed/index.js';

export interface RunOptions {
  mode: 'train' | 'distill';
  overrides?: Record<string, unknown>;
  resume?: boolean;
  /** Data-parallel training: this process's place in the group (src/distributed). */
  distributed?: DistributedOptions;
}

export interface ExperimentResult {
  experiment: Experiment;
  result: TrainResult;
  student: ZooModel;
  teacher: Teacher | null;
  summary: string;
}

/** Runs an experiment file, or every stage of a chain file (a top-level `stages:` list). */
export async function runExperimentFile(file: string, o: RunOptions): Promise<ExperimentResult> {
  if (isChainDocument(readExperimentDocument(file).raw)) {
    if (o.distributed) throw new Error(`${file}: a chain file cannot run data-parallel (yet); run its stages as separate experiments with --nproc`);
    return runChainFile(file, o);
  }
  return runExperiment(loadExperiment(file, o.overrides), o);
}

export interface PreparedData {
  train: Dataset;
  test: Dataset;
  transfer: Dataset;
  numClasses: number;
}

export function prepareData(e: Experiment): PreparedData {
  const d = e.data;
  let trainSet: Dataset, test: Dataset;
  if (d.dataset === 'csv') {
    const opts = d.labelColumn !== undefined ? { label: d.labelColumn } : {};
    trainSet = readCsv(d.path!, opts);
    if (!d.testPath) {
      const s = split(trainSet, { heldOut: 0.2, seed: 12345, stratified: true });
      trainSet = s.train;
      test = s.heldOut;
    } else {
      // Named labels must map to the training set's ids, not to the test file's own sorted order.
      test = readCsv(d.testPath, trainSet.classNames ? { ...opts, classNames: trainSet.classNames } : opts);
    }
  } else {
    const load = d.dataset === 'mnist' ? loadMnist : loadFashionMnist;
    const dir = d.path ? { dir: d.path } : {};
    trainSet = load({ split: 'train', ...dir });
    test = load({ split: 'test', ...dir });
  }
  const numClasses = checkLabels(e, trainSet, test);
  if (numClasses !== trainSet.numClasses) trainSet = { ...trainSet, numClasses };
  if (d.subset !== undefined) {
    if (d.subset > trainSet.size) throw new Error(`${e.file}: 'data.subset' is ${d.subset} but the training set has ${trainSet.size} samples`);
    trainSet = take(trainSet, d.subset, e.seed, { stratified: true });
  }
  let transfer = trainSet;
  if (d.heldOut > 0) {
    if (d.heldOut >= trainSet.size) throw new Error(`${e.file}: 'data.heldOut' (${d.heldOut}) must be smaller than the training set (${trainSet.size})`);
    const s = split(trainSet, { heldOut: d.heldOut, seed: e.seed, stratified: true });
    trainSet = s.train;
    // The held-out part is the transfer set for 'held-out' (labels kept) and 'unlabeled' (dropped).
    transfer = d.transfer === 'train' ? s.train : d.transfer === 'held-out' ? s.heldOut : { ...s.heldOut, y: null, name: `${s.heldOut.name}/unlabeled` };
  }
  return { train: trainSet, test, transfer, numClasses };
}

/**
 * Label ids must lie in [0, numClasses) in both the training and the test data, caught here, before
 * a model is built: an out-of-range id would otherwise fail inside a loss kernel mid-run, or (an
 * inferred class count) silently widen every model to a stray id's value.
 */
function checkLabels(e: Experiment, trainSet: Dataset, test: Dataset): number {
  const d = e.data;
  const file = (which: 'train' | 'test'): string => (which === 'train' ? d.path : d.testPath ?? d.path) ?? `the ${d.dataset} ${which} files`;
  let numClasses = trainSet.numClasses;
  if (d.numClasses !== undefined) {
    if (d.numClasses < numClasses && trainSet.y) {
      const i = trainSet.y.findIndex((v) => v >= d.numClasses!);
      throw new Error(`${e.file}: 'data.numClasses' is ${d.numClasses} but ${file('train')} has label id ${trainSet.y[i]} (sample ${i}); fix the label or raise data.numClasses`);
    }
    numClasses = d.numClasses;
  } else if (trainSet.y && !trainSet.classNames) {
    // Ids inferred from integer labels: a single stray id (e.g. 999 among 0..9) shows up as a
    // mostly empty id range. Refuse it rather than build a 1000-way classifier.
    const seen = new Uint8Array(numClasses);
    for (const v of trainSet.y) seen[v] = 1;
    const present = seen.reduce((a, b) => a + b, 0);
    if (numClasses > 2 && present * 2 < numClasses) {
      const maxAt = trainSet.y.indexOf(numClasses - 1);
      throw new Error(`${e.file}: ${file('train')} has label id ${numClasses - 1} (sample ${maxAt}) but only ${present} distinct ids in [0, ${numClasses}); if that id is a typo fix the data, otherwise declare the label set with data.numClasses: ${numClasses}`);
    }
  }
  if (numClasses < 2) throw new Error(`${e.file}: the training data has ${numClasses} class${numClasses === 1 ? '' : 'es'}; classification needs at least 2`);
  for (const [which, ds] of [['train', trainSet], ['test', test]] as const) {
    if (!ds.y) continue;
    for (let i = 0; i < ds.y.length; i++) {
      const v = ds.y[i]!;
      if (v < 0 || v >= numClasses) {
        throw new Error(`${e.file}: ${file(which)} has label id ${v} at sample ${i}, out of range for the ${numClasses} classes of the training data; fix the label${which === 'test' ? ', use a test file with the same label set,' : ''} or declare data.numClasses`);
      }
    }
  }
  return numClasses;
}

/**
 * A teacher exported with its final softmax returns probabilities; used as logits they would be
 * softmaxed twice and the soft targets flattened to near-uniform. Rows that all lie in [0, 1] and
 * sum to 1 are (practically) never real logits.
 */
function checkNotProbabilities(t: Teacher, probe: Tensor): void {
  const v = noGrad(() => {
    const y = t.logits(probe);
    const d = y.data<Float32Array>();
    y.dispose();
    return { d, c: d.length / probe.shape[0]! };
  });
  let probs = true;
  for (let r = 0; r < v.d.length / v.c && probs; r++) {
    let sum = 0;
    for (let j = 0; j < v.c; j++) {
      const p = v.d[r * v.c + j]!;
      if (!(p >= 0 && p <= 1)) probs = false;
      sum += p;
    }
    if (Math.abs(sum - 1) > 1e-3) probs = false;
  }
  if (probs) throw new Error(`teacher (${t.description}) outputs probabilities (every row is in [0, 1] and sums to 1), not logits: export the model without its final softmax, or return log-probabilities`);
}

function augmentations(e: Experiment): Augmentation[] {
  const a: Augmentation[] = [];
  if (e.data.augment.crop > 0) a.push(randomCrop(e.data.augment.crop));
  if (e.data.augment.flip) a.push(horizontalFlip());
  if (e.data.normalize) a.push(normalize(e.data.normalize.mean, e.data.normalize.std));
  return a;
}

export function loadTeachers(e: Experiment, numClasses: number): Teacher | null {
  if (e.teachers.length === 0) return null;
  const members = e.teachers.map((t, i) => {
    const where = e.teachers.length > 1 ? `teachers.${i}` : 'teacher';
    try {
      if ('checkpoint' in t) return checkpointTeacher(t.checkpoint);
      if ('specialists' in t) return loadSpecialistBundle(t.specialists, t.topN !== undefined ? { topN: t.topN } : {});
      if ('onnx' in t) {
        return new OnnxTeacher(t.onnx, {
          ...(t.numClasses !== undefined ? { numClasses: t.numClasses } : {}),
          ...(t.input !== undefined ? { input: t.input } : {}), ...(t.output !== undefined ? { output: t.output } : {}),
        });
      }
      return new TorchScriptTeacher(t.torchscript, t.numClasses ?? numClasses, t.output ?? 0);
    } catch (err) {
      throw new Error(`${e.file}: '${where}': ${(err as Error).message}`);
    }
  });
  if (members.length === 1) return members[0]!;
  return new EnsembleTeacher(members, { combine: e.combine, ...(e.teacherWeights ? { weights: e.teacherWeights } : {}) });
}

/** The teacher as training sees it: served from the teacher-output cache when the experiment's teacherCache allows. */
function withTeacherCache(e: Experiment, teacher: Teacher, transfer: Dataset, augment: Augmentation[], features: string[], pg: ProcessGroup | null, targets: CachedTarget[] = []): Teacher {
  const plan = planTeacherCache(e.teacherCache.mode, augment, { needsFeatures: features.length > 0 });
  // Say so when a cache the user asked for is not used, or is used with random augmentation.
  if (e.teacherCache.mode === 'on' && (!plan.use || plan.augment.length !== augment.length) && process.env.KDISTILL_QUIET !== '1') process.stderr.write(`${plan.reason}\n`);
  if (!plan.use) return teacher;
  // Data-parallel: each rank computes its part, rank 0 writes the file, then all go on together.
  // Teacher features are cached with the logits (the trainer serves them by dataset index); too
  // large a feature cache falls back to the live teacher. Every rank sees the same sizes.
  const opts = { augment: plan.augment, dtype: e.teacherCache.dtype, ...(e.teacherCache.dir ? { dir: e.teacherCache.dir } : {}), ...(pg ? parallelCacheOptions(pg) : {}) };
  let cached: Teacher;
  try {
    // A method's per-sample targets (e.g. Sobolev's target gradient) only under a deterministic
    // pipeline: on un-augmented inputs they would not match the student's augmented view.
    const det = plan.augment.length === augment.length;
    cached = cachedTeacher(teacher, transfer, { ...opts, ...(features.length && teacher.features ? { features } : {}), ...(targets.length && det && teacher.logitsWithGrad ? { targets } : {}) });
  } catch (err) {
    if (!(err instanceof FeatureCacheTooLarge)) throw err;
    if (process.env.KDISTILL_QUIET !== '1') process.stderr.write(`${err.message}; running the teacher live\n`);
    return teacher;
  }
  pg?.barrier();
  return cached;
}

/** A DataLoader as the trainer's batch source; prefetches on a worker when that pays. */
function loaderSource(loader: DataLoader): BatchSource {
  return {
    batchesPerEpoch: loader.numBatches,
    batches: (epoch, from) => loader.epoch(epoch, { startBatch: from }),
  };
}

export async function runExperiment(e: Experiment, o: RunOptions): Promise<ExperimentResult> {
  setNumThreads(e.threads);
  manualSeed(e.seed);
  const spec = getMethod(e.method.name);
  const params = resolveParams(spec, e.method.params, `${e.file}: 'method.params'`);
  if (o.mode === 'distill' && e.teachers.length === 0) throw new Error(`${e.file}: 'distill' needs a teacher (add 'teacher: {checkpoint: path}')`);
  if (spec.needsTeacher && e.teachers.length === 0) throw new Error(`${e.file}: method '${spec.name}' needs a teacher`);

  let data: PreparedData;
  try {
    data = prepareData(e);
  } catch (err) {
    // Reader errors name the data file; say which experiment pointed at it too.
    const m = (err as Error).message;
    throw m.startsWith(e.file) ? err : new Error(`${e.file}: 'data': ${m}`, { cause: err });
  }
  const sampleShape = data.train.sampleShape;
  let student: ZooModel;
  try {
    student = createModel({ numClasses: data.numClasses, inputShape: sampleShape, ...e.student });
  } catch (err) {
    throw new Error(`${e.file}: 'student': ${(err as Error).message}`);
  }
  const teacher = loadTeachers(e, data.numClasses);
  // Fit checks before training: the student and teacher must take this data's samples and
  // predict its number of classes.
  const probe = tensor(data.train.x.subarray(0, 2 * sampleShape.reduce((a, b) => a * b, 1)), { shape: [2, ...sampleShape] });
  try {
    const s = student.eval().call(probe);
    const shape = s.shape;
    s.dispose();
    student.train();
    if (shape.length !== 2 || shape[1] !== data.numClasses) throw new Error(`student outputs shape [${shape.join(', ')}], the data has ${data.numClasses} classes`);
    if (teacher) {
      checkTeacherOutput(teacher, probe, data.numClasses);
      checkNotProbabilities(teacher, probe);
    }
  } catch (err) {
    throw new Error(`${e.file}: ${(err as Error).message}`);
  } finally {
    probe.dispose();
  }
  if (data.transfer.y === null && spec.name === 'scratch') throw new Error(`${e.file}: method 'scratch' needs labels, but 'data.transfer' is 'unlabeled'`);

  const method = spec.create(params);
  // Joined after the checks above, so a bad experiment fails at once rather than at the rendezvous.
  const pg = o.distributed && o.distributed.worldSize > 1 ? await ProcessGroup.init(o.distributed) : null;
  const writer = !pg || pg.rank === 0;
  if (writer) {
    mkdirSync(e.output, { recursive: true });
    writeRunRecord(e, data, teacher, pg?.size ?? 1);
  }
  const augment = augmentations(e);
  const trainTeacher = teacher ? withTeacherCache(e, teacher, data.transfer, augment, method.features?.teacher ?? [], pg, method.cachedTargets) : null;
  const loader = new DataLoader(data.transfer, { batchSize: e.data.batchSize, seed: e.seed, shuffle: true, augment });
  let result: TrainResult;
  try {
    result = await train({
      student, teacher: trainTeacher, method, train: pg ? shardedSource(loaderSource(loader), pg.rank, pg.size) : loaderSource(loader), evalSet: data.test, numClasses: data.numClasses,
      epochs: e.epochs, optimizer: e.optimizer, schedule: e.schedule, outDir: e.output, resume: o.resume ?? true,
      checkpointEvery: e.checkpointEvery, onNonFinite: e.onNonFinite, checkGradients: e.checkGradients, label: e.name,
      ...(pg ? { parallel: new DataParallel(pg) } : {}),
    });
  } finally {
    await loader.close();
    pg?.destroy();
  }
  // Rank 0 writes the model, result and report; the other ranks are done.
  if (!writer) return { experiment: e, result, student, teacher, summary: '' };
  saveModel(join(e.output, 'model.safetensors'), student, { experiment: e.name });
  const final = result.final;
  const resultRec = {
    name: e.name, method: e.method.name, seed: e.seed, epochs: e.epochs, steps: result.steps,
    studentParameters: student.numParameters(), teacherParameters: teacher?.numParameters ?? null, test: final ?? null,
  };
  atomicWrite(join(e.output, 'result.json'), JSON.stringify(resultRec, null, 2) + '\n');
  // The HTML report (teacher vs student, curves, confusion, calibration); a failure there must not lose the run.
  try {
    writeRunReport({ dir: e.output, experiment: e, student, teacher, test: data.test, ...(result.predictions ? { predictions: result.predictions } : {}) });
  } catch (err) {
    process.stderr.write(`${e.name}: report.html not written: ${(err as Error).message}\n`);
  }
  const summary = formatTable(
    ['run', 'method', 'params', 'test acc', 'NLL', 'ECE', 'agreement'],
    [[e.name, e.method.name, String(student.numParameters()), pct(final?.accuracy), num(final?.nll), num(final?.ece), pct(final?.agreement)]],
  ) + `\noutputs: ${e.output}`;
  return { experiment: e, result, student, teacher, summary };
}

function writeRunRecord(e: Experiment, data: PreparedData, teacher: Teacher | null, worldSize = 1): void {
  const pkg = JSON.parse(readPackageJson()) as { version: string };
  const record = {
    experiment: e.name, file: e.file, seed: e.seed, threads: e.threads,
    // Data-parallel processes (each trained on 1/worldSize of every batch of data.batchSize).
    ...(worldSize > 1 ? { worldSize } : {}),
    versions: { kdistill: pkg.version, libtorch: native.torchVersion, node: process.version },
    data: {
      train: data.train.name, transfer: data.transfer.name, test: data.test.name, numClasses: data.numClasses,
      sizes: { train: data.train.size, transfer: data.transfer.size, test: data.test.size },
      // Files with sha256, so a repeat can check it reads the same bytes.
      sources: data.train.sources ?? [], testSources: data.test.sources ?? [],
    },
    teacher: teacher ? { description: teacher.description, checksum: teacher.checksum, parameters: teacher.numParameters } : null,
    config: e.source,
    started: new Date().toISOString(),
  };
  writeFileSync(join(e.output, 'experiment.yaml'), e.source);
  atomicWrite(join(e.output, 'run.json'), JSON.stringify(record, null, 2) + '\n');
}

function readPackageJson(): string {
  return readFileSync(join(packageRoot, 'package.json'), 'utf8');
}

export const pct = (v: number | undefined): string => (v === undefined ? '–' : `${(v * 100).toFixed(2)}%`);
export const num = (v: number | undefined): string => (v === undefined ? '–' : v.toFixed(4));
