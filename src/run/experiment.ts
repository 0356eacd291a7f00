// Runs an experiment: builds data, teacher(s), student and method from a validated experiment
// file, checks that they fit together before any training, trains, and writes the run folder:
// log.jsonl, checkpoint.safetensors, model.safetensors, run.json (all that is needed to repeat
// it) and result.json. report.html is the caller's (RunOptions.report): src/report sits above
// this layer (docs/architecture.md).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isTextDataset, type Experiment, type TeacherSpec, type TextDatasetName } from '../config/experiment.js';
import { manualSeed, setNumThreads } from '../tensor/torch.js';
import { native, packageRoot } from '../tensor/native.js';
import { tensor } from '../tensor/factories.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import type { Dataset } from '../data/dataset.js';
import { loadFashionMnist, loadMnist } from '../data/fashion-mnist.js';
import { readCsv } from '../data/csv.js';
import { readNpyDataset } from '../data/npy.js';
import { imageGridPng } from '../util/png.js';
import { filterClasses, split, take } from '../data/splits.js';
import { DataLoader } from '../data/loader.js';
import { randomCrop, horizontalFlip, normalize, normalizeDataset, type Augmentation } from '../data/augment.js';
import { createModel, ZooModel } from '../nn/zoo/index.js';
import { Module } from '../nn/module.js';
import { BertEncoder, initStudentFromTeacher } from '../nn/zoo/transformer.js';
import { initStudentFromHf } from '../nn/huggingface.js';
import { prepareTextData, runTokenizer } from '../text/prepare.js';
import { pretrainMlm } from '../text/pretrain.js';
import { mlmAugment, teacherScorer, type AugmentStats } from '../text/augment.js';
import { ProgressBar } from '../util/progress.js';
import { MultiLabelBatches, type MultiLabelDataset } from '../text/data.js';
import { WordPieceTokenizer } from '../text/tokenizer.js';
import { findTeacherTokenizer, onnxClassNames, teacherTokens, type RowTexts, type StudentText } from '../text/teacher-text.js';
import { evaluateMultiLabelPerLabel, type MultiLabelEvaluation } from '../train/multilabel-metrics.js';
import { biasAdjustRun, type BiasAdjustmentRecord } from '../train/bias.js';
import { inferenceMsPerSample } from '../train/timing.js';
import { loadModel, loadSafetensors, saveModel } from '../nn/safetensors.js';
import { prepareQuantization, setQuantization } from '../nn/quantize.js';
import { getMethod } from '../methods/registry.js';
import { resolveParams, type CachedTarget, type MethodSpec, type Params } from '../methods/method.js';
import type { Teacher } from '../teachers/teacher.js';
import { describeNormalization, withInputPipeline } from '../teachers/pipeline.js';
import { predict } from '../train/evaluate.js';
import { checkpointTeacher, checkTeacherOutput, CLASS_NAMES_KEY, ModuleTeacher, NORMALIZE_KEY, TorchScriptTeacher } from '../teachers/sources.js';
import { EnsembleTeacher } from '../teachers/ensemble.js';
import { OnnxTeacher } from '../teachers/onnx.js';
import { loadSpecialistBundle } from '../teachers/specialists/teacher.js';
import { buildInterruptibly, cachedTeacherInterruptible, FeatureCacheTooLarge } from '../teachers/cache.js';
import { planViewCache, TeacherViewCache, ViewCachedTeacher } from '../teachers/view-cache.js';
import { atomicWrite, ensureDir } from '../util/fs.js';
import { lockFolder } from '../util/lock.js';
import { checkResumable, runSettings, type RecordedInputs } from '../train/resume.js';
import { train, type BatchSource, type EpochRecord, type TrainResult } from '../train/trainer.js';
import { writeProfile, type ProfileWindow, type StepsProfile } from '../train/profile.js';
import { formatTable } from '../train/table.js';
import { classificationMetrics, type Predictions } from '../train/metrics.js';
import { DataParallel, ProcessGroup, parallelCacheOptions, shardedSource, type DistributedOptions } from '../distributed/index.js';

export interface RunOptions {
  mode: 'train' | 'distill';
  overrides?: Record<string, unknown>;
  resume?: boolean;
  /** Data-parallel training: this process's place in the group (src/distributed). */
  distributed?: DistributedOptions;
  /**
   * Writes the finished run's report: called on rank 0 once model.safetensors and result.json are
   * written; a throw is reported on stderr and the run kept. The CLI and the library's
   * runExperiment pass src/report's writeRunReport (report.html); without it no report is written.
   */
  report?: (run: FinishedRun) => unknown;
  /**
   * A sweep trial: the test split is never loaded; the run is evaluated, every epoch and in
   * result.json's `val`, on the validation split (data.heldOut with transfer 'train'), and writes no report.
   */
  validationOnly?: boolean;
  /** Called after each epoch's evaluation (a sweep's early stopping throws from it to end the run). */
  onEpoch?: (r: EpochRecord) => void;
  /** Parts given as objects (the library API: distill, fit) in place of what the experiment names. */
  given?: GivenParts;
  /** Profile libtorch's operators over these steps (rank 0); written to profile.json/.txt in the run folder. */
  profile?: ProfileWindow;
}

/**
 * What the library API hands over as objects rather than names: everything else about the run
 * (label checks, subsets and splits, the teacher checks and cache, the run folder) is the same.
 */
export interface GivenParts {
  /** Datasets in place of data.dataset; data.subset, heldOut, transfer and normalize still apply. */
  data?: { train: Dataset; test: Dataset };
  /** A model in place of building `student` from the zoo (the experiment's `student` then only describes it). */
  student?: Module;
  /** A teacher (or a trained model, its logits the teacher's) in place of loading the experiment's `teacher`. */
  teacher?: Teacher | Module;
}

/** A finished run as its report needs it (src/report's writeRunReport takes this). */
export interface FinishedRun {
  dir: string;
  experiment: Experiment;
  student: Module;
  teacher: Teacher | null;
  test: Dataset;
  val?: Dataset;
  /** The trainer's last predictions on `test`, so the report does not predict again. */
  predictions?: { student: Predictions; teacher?: Predictions };
  studentMsPerSample: number;
  studentMultiLabel?: MultiLabelEvaluation;
}

export interface ExperimentResult {
  experiment: Experiment;
  result: TrainResult;
  student: Module;
  teacher: Teacher | null;
  summary: string;
  /** RunOptions.profile's result (rank 0). */
  profile?: StepsProfile;
}

export interface PreparedData {
  /** Training and transfer samples as read (the loader augments and normalises each batch). */
  train: Dataset;
  /** Test samples as the student sees them: through data.normalize. */
  test: Dataset;
  transfer: Dataset;
  numClasses: number;
  /** Text datasets: the validation split (multi-label: where the decision threshold is chosen). */
  val?: Dataset;
  /** Text datasets: per-label targets (debtags) instead of one class per sample. */
  multiLabel?: boolean;
  tokenizer?: WordPieceTokenizer;
  /** Text datasets with an ONNX teacher: each row's raw text, which the teacher tokenizes itself. */
  texts?: RowTexts;
  /** What the data is, in a line (text datasets). */
  describe?: string;
}

function prepareTextExperiment(e: Experiment, dataset: TextDatasetName): PreparedData {
  const t0 = e.teachers[0];
  const p = prepareTextData(dataset, e.data.text!, {
    runDir: e.output, ...(e.data.path ? { path: e.data.path } : {}), ...(t0 && 'checkpoint' in t0 ? { teacherCheckpoint: t0.checkpoint } : {}),
    keepTexts: e.teachers.some((t) => 'onnx' in t),
  });
  const numClasses = e.data.numClasses ?? p.numClasses;
  if (numClasses !== p.numClasses) throw new Error(`${e.file}: 'data.numClasses' is ${numClasses} but ${e.data.dataset} has ${p.numClasses} classes`);
  const base = { test: p.test, val: p.val, numClasses, multiLabel: p.multiLabel, tokenizer: p.tokenizer, describe: p.describe, ...(p.texts ? { texts: p.texts } : {}) };
  if (p.multiLabel) {
    if (e.data.heldOut > 0) throw new Error(`${e.file}: 'data.heldOut' does not apply to multi-label '${e.data.dataset}' (its transfer set is the training split)`);
    return { ...base, train: p.train, transfer: p.train };
  }
  return { ...withTransferSet(e, p.train), ...base };
}

export function prepareData(e: Experiment, given?: GivenParts['data']): PreparedData {
  return loadData(e, true, given) as PreparedData;
}

/**
 * The data without the test split (a sweep trial's): its file is not read; a csv test part carved
 * out of the training file is still carved, so the training part is the same as a full run's.
 */
export function prepareDataWithoutTest(e: Experiment): Omit<PreparedData, 'test'> & { val: Dataset } {
  if (isTextDataset(e.data.dataset)) throw new Error(`${e.file}: sweeps run on image and csv data ('${e.data.dataset}' is not supported yet)`);
  const { test: _t, val, ...rest } = loadData(e, false);
  if (!val) throw new Error(`${e.file}: scoring without the test set needs a validation split: data.heldOut > 0 with data.transfer 'train'`);
  return { ...rest, val };
}

/** The data of a run: a sweep trial's has no test split (RunOptions.validationOnly). */
type RunData = Omit<PreparedData, 'test'> & { test?: Dataset };

function loadData(e: Experiment, withTest: boolean, given?: GivenParts['data']): RunData {
  if (isTextDataset(e.data.dataset) && !given) return prepareTextExperiment(e, e.data.dataset);
  const d = e.data;
  let trainSet: Dataset, test: Dataset | undefined;
  if (given) {
    trainSet = given.train;
    if (withTest) test = given.test;
  } else if (d.dataset === 'csv') {
    const opts = { ...(d.labelColumn !== undefined ? { label: d.labelColumn } : {}), ...(d.classNames ? { classNames: d.classNames } : {}) };
    trainSet = readCsv(d.path!, opts);
    if (!d.testPath) {
      const s = split(trainSet, { heldOut: 0.2, seed: 12345, stratified: true });
      trainSet = s.train;
      if (withTest) test = s.heldOut;
    } else if (withTest) {
      // Named labels must map to the training set's ids, not to the test file's own sorted order.
      test = readCsv(d.testPath, trainSet.classNames ? { ...opts, classNames: trainSet.classNames } : opts);
    }
  } else {
    const load = d.dataset === 'mnist' ? loadMnist : loadFashionMnist;
    const dir = d.path ? { dir: d.path } : {};
    trainSet = load({ split: 'train', ...dir });
    if (withTest) test = load({ split: 'test', ...dir });
  }
  const numClasses = checkLabels(e, trainSet, test);
  if (numClasses !== trainSet.numClasses) trainSet = { ...trainSet, numClasses };
  if (d.subset !== undefined) {
    if (d.subset > trainSet.size) throw new Error(`${e.file}: 'data.subset' is ${d.subset} but the training set has ${trainSet.size} samples`);
    trainSet = take(trainSet, d.subset, e.seed, { stratified: true });
  }
  // The student is scored through the input pipeline it trains on (the loader normalises each
  // training batch; the test set is normalised once here). Teachers take these inputs too and
  // map them to their own (loadTeachers).
  const parts = withTransferSet(e, trainSet);
  return { ...parts, ...(parts.val ? { val: normalizeDataset(parts.val, d.normalize) } : {}), ...(test ? { test: normalizeDataset(test, d.normalize) } : {}), numClasses };
}

/** The transfer set the student learns from: the training set, or a part held out of it (labels kept or dropped). */
function withTransferSet(e: Experiment, trainSet: Dataset): { train: Dataset; transfer: Dataset; val?: Dataset } {
  const d = e.data;
  if (d.transferFile) {
    const f = d.transferFile;
    const transfer = readNpyDataset({ x: f.x, ...(f.y ? { y: f.y } : {}), numClasses: trainSet.numClasses, name: `${f.x} (transfer file)` });
    if (transfer.sampleShape.join() !== trainSet.sampleShape.join()) {
      throw new Error(`${e.file}: 'data.transferFile.x' (${f.x}) holds samples of shape [${transfer.sampleShape.join(', ')}], the ${d.dataset} data [${trainSet.sampleShape.join(', ')}]`);
    }
    return { train: trainSet, transfer };
  }
  let transfer = trainSet;
  let val: Dataset | undefined;
  if (d.heldOut > 0) {
    if (d.heldOut >= trainSet.size) throw new Error(`${e.file}: 'data.heldOut' (${d.heldOut}) must be smaller than the training set (${trainSet.size})`);
    const s = split(trainSet, { heldOut: d.heldOut, seed: e.seed, stratified: true });
    trainSet = s.train;
    // The held-out part is the transfer set for 'held-out' (labels kept) and 'unlabeled' (dropped).
    transfer = d.transfer === 'train' ? s.train : d.transfer === 'held-out' ? s.heldOut : { ...s.heldOut, y: null, name: `${s.heldOut.name}/unlabeled` };
    // With transfer 'train', the held-out part is a validation split (bias adjustment is fitted on it).
    if (d.transfer === 'train') val = s.heldOut;
  }
  if (d.excludeClasses || d.onlyClasses) transfer = filterTransferClasses(e, transfer);
  return { train: trainSet, transfer, ...(val ? { val } : {}) };
}

/** The transfer set without the excluded classes (or with the listed ones only); needs its labels to choose. */
function filterTransferClasses(e: Experiment, transfer: Dataset): Dataset {
  const d = e.data;
  const field = d.excludeClasses ? 'data.excludeClasses' : 'data.onlyClasses';
  const ids = (d.excludeClasses ?? d.onlyClasses)!;
  const bad = ids.find((c) => c >= transfer.numClasses);
  if (bad !== undefined) throw new Error(`${e.file}: '${field}' lists class ${bad}, but the data has ${transfer.numClasses} classes (ids 0–${transfer.numClasses - 1})`);
  // An unlabeled transfer set still has its labels in the rows it came from; without them no filter can be applied.
  if (!transfer.y) throw new Error(`${e.file}: '${field}' needs a labeled transfer set to pick classes from (data.transfer is '${d.transfer}')`);
  const filtered = filterClasses(transfer, (c) => (d.excludeClasses ? !ids.includes(c) : ids.includes(c)), d.excludeClasses ? `without ${ids.join(',')}` : `only ${ids.join(',')}`);
  if (filtered.size === 0) throw new Error(`${e.file}: '${field}' leaves no sample in the transfer set`);
  return filtered;
}

/**
 * Label ids must lie in [0, numClasses) in both the training and the test data, caught here, before
 * a model is built: an out-of-range id would otherwise fail inside a loss kernel mid-run, or (an
 * inferred class count) silently widen every model to a stray id's value.
 */
function checkLabels(e: Experiment, trainSet: Dataset, test: Dataset | undefined): number {
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
    if (!ds?.y) continue;
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

/**
 * The experiment's teacher(s), each taking the student's inputs (data.normalize) and feeding
 * itself its own (teacher.normalize, else what its checkpoint recorded, else raw). With
 * `dataClasses` (the data's class names; undefined for plain ids 0..n-1), a teacher that records
 * its class order must have the same one.
 */
export function loadTeachers(e: Experiment, numClasses: number, check?: { dataClasses: readonly string[] | undefined }, data?: Pick<PreparedData, 'tokenizer' | 'texts'>): Teacher | null {
  if (e.teachers.length === 0) return null;
  const text = data?.tokenizer ? { tokenizer: data.tokenizer, ...(data.texts ? { texts: data.texts } : {}) } : undefined;
  const members = e.teachers.map((t, i) => {
    const where = `${e.file}: '${e.teachers.length > 1 ? `teachers.${i}` : 'teacher'}'`;
    const member = loadTeacher(t, numClasses, where, text);
    if (check) checkTeacherClasses(member, check.dataClasses, numClasses, where);
    try {
      return withInputPipeline(member, e.data.normalize, t.normalize ?? member.inputNormalization);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
  });
  if (members.length === 1) return members[0]!;
  return new EnsembleTeacher(members, { combine: e.combine, ...(e.teacherWeights ? { weights: e.teacherWeights } : {}) });
}

function loadTeacher(t: TeacherSpec, numClasses: number, where: string, text: StudentText | undefined): Teacher {
  try {
    if ('checkpoint' in t) return checkpointTeacher(t.checkpoint);
    if ('specialists' in t) return loadSpecialistBundle(t.specialists, t.topN !== undefined ? { topN: t.topN } : {});
    if ('onnx' in t) return onnxTeacher(t, text);
    return new TorchScriptTeacher(t.torchscript, t.numClasses ?? numClasses, t.output ?? 0);
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
}

/**
 * An ONNX teacher. On text data, a text model (Optimum's inputs) reads the raw text through its
 * own tokenizer (tokenizer.json or vocab.txt in its model folder), whatever the student's is.
 */
export function onnxTeacher(t: { onnx: string; numClasses?: number; input?: string; output?: string }, text: StudentText | undefined): OnnxTeacher {
  const tokFile = text && t.input === undefined ? findTeacherTokenizer(t.onnx) : null;
  const tokens = tokFile ? teacherTokens(tokFile, text!) : null;
  const classNames = onnxClassNames(t.onnx);
  const teacher = new OnnxTeacher(t.onnx, {
    ...(t.numClasses !== undefined ? { numClasses: t.numClasses } : {}),
    ...(t.input !== undefined ? { input: t.input } : {}), ...(t.output !== undefined ? { output: t.output } : {}),
    ...(tokens ? { tokens: tokens.feed, feedChecksum: tokens.checksum } : {}), ...(classNames ? { classNames } : {}),
  });
  if (teacher.textInputs) {
    const problem = !text ? 'the data is not text (use data.dataset spam-assassin or debtags)'
      : !tokens ? `it has no tokenizer: put its tokenizer.json (or vocab.txt) beside it, or in the model folder above onnx/` : null;
    if (problem) {
      teacher.dispose();
      throw new Error(`${t.onnx} is a text model (inputs ${teacher.textInputs.join(', ')}), but ${problem}`);
    }
  }
  return teacher;
}

function givenTeacher(t: Teacher | Module, numClasses: number): Teacher {
  if (!(t instanceof Module)) return t;
  const name = t.constructor.name;
  return new ModuleTeacher(t, numClasses, `module ${name}`, `module:${name}:${t.numParameters()}`);
}

/**
 * Output index i must mean the same class to teacher and data. A teacher trained on other labels,
 * or on the same labels in another order (e.g. '10.0' sorted before '2.0' as text), would
 * otherwise train the student against permuted soft targets without any error.
 */
function checkTeacherClasses(t: Teacher, dataClasses: readonly string[] | undefined, numClasses: number, where: string): void {
  const tc = t.classNames;
  if (!tc) return;
  const dc = dataClasses ?? Array.from({ length: numClasses }, (_, i) => String(i));
  const num = (s: string): number => (s.trim() === '' ? NaN : Number(s));
  const same = (a: string, b: string): boolean => a === b || (Number.isFinite(num(a)) && num(a) === num(b));
  const at = tc.length !== dc.length ? Math.min(tc.length, dc.length) : tc.findIndex((c, i) => !same(c, dc[i]!));
  if (at < 0) return;
  const show = (l: readonly string[]): string => `[${l.slice(0, 12).join(', ')}${l.length > 12 ? ', …' : ''}]`;
  throw new Error(`${where}: the teacher was trained with classes ${show(tc)}, the data has ${show(dc)}` +
    ` (${at < Math.min(tc.length, dc.length) ? `class ${at} is '${tc[at]}' for the teacher, '${dc[at]}' in the data` : `${tc.length} vs ${dc.length} classes`});` +
    " each output must mean the same class: give the teacher's order as data.classNames (csv), or use a teacher trained on these labels");
}

/** What the run measured of its teacher on the transfer set before training (run.json's teacherCheck). */
export interface TeacherCheck {
  samples: number;
  accuracy: number;
  /** Accuracy of always predicting the most frequent class among these samples (at least 1/classes). */
  chance: number;
  /** Below this, the accuracy is within 4 standard errors of chance. */
  threshold: number;
  nearChance: boolean;
}

/**
 * The teacher's accuracy on up to 512 labelled transfer samples (spread over the set, which may be
 * sorted by class), through the student's deterministic pipeline that training feeds it. A teacher
 * whose inputs are preprocessed unlike its training inputs, or whose classes are permuted, is
 * typically at chance; a usable one is far above it. "Near chance" is within 4 standard errors of
 * the best constant guess p (p + 4·sqrt(p(1−p)/n): 0.153 for 10 balanced classes and n = 512,
 * 0.59 for 2), which a teacher at chance exceeds with probability ~3e-5, so the warning is not noise.
 */
export function checkTeacherOnTransfer(e: Experiment, data: RunData, teacher: Teacher): TeacherCheck | null {
  const ds = data.transfer.y ? data.transfer : data.train;
  if (data.multiLabel || !ds.y || ds.size === 0) return null;
  const n = Math.min(ds.size, 512);
  const per = ds.sampleShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n * per), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = Math.floor((i * ds.size) / n);
    x.set(ds.x.subarray(r * per, (r + 1) * per), i * per);
    y[i] = ds.y[r]!;
  }
  const sample = normalizeDataset({ ...ds, x, y, size: n }, e.data.normalize);
  const { logProbs, c } = predict((t) => teacher.logits(t), sample);
  let correct = 0;
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (logProbs[i * c + j]! > logProbs[i * c + best]!) best = j;
    if (best === y[i]) correct++;
    counts.set(y[i]!, (counts.get(y[i]!) ?? 0) + 1);
  }
  const accuracy = correct / n;
  const chance = Math.max(1 / data.numClasses, ...[...counts.values()].map((k) => k / n));
  const threshold = chance + 4 * Math.sqrt((chance * (1 - chance)) / n);
  return { samples: n, accuracy, chance, threshold, nearChance: accuracy < threshold };
}

/** The teacher as training sees it: served from the teacher-output cache when the experiment's teacherCache allows. */
async function withTeacherCache(e: Experiment, teacher: Teacher, transfer: Dataset, augment: Augmentation[], features: string[], pg: ProcessGroup | null, targets: CachedTarget[] = []): Promise<Teacher> {
  const augmentSeed = e.data.augment.seed;
  const plan = planViewCache(e.teacherCache.mode, augment, { needsFeatures: features.length > 0, ...(augmentSeed !== undefined ? { augmentSeed } : {}) });
  // Say so when a cache the user asked for is not used, or is used with random augmentation.
  const asked = e.teacherCache.mode === 'on' || e.teacherCache.mode === 'views';
  if (asked && (!plan.use || plan.augment.length !== augment.length) && process.env.KDISTILL_QUIET !== '1') process.stderr.write(`${plan.reason}\n`);
  if (!plan.use) return teacher;
  // Data-parallel: each rank computes its part, rank 0 writes the file, then all go on together.
  // Teacher features are cached with the logits (the trainer serves them by dataset index); too
  // large a feature cache falls back to the live teacher. Every rank sees the same sizes.
  const opts = { augment: plan.augment, dtype: e.teacherCache.dtype, ...(e.teacherCache.dir ? { dir: e.teacherCache.dir } : {}), ...(pg ? parallelCacheOptions(pg) : {}) };
  if (plan.views) {
    // Keyed by teacher, data, recipe and augmentation seed only: runs differing in seed, method or output share the file.
    const vo = { ...opts, augmentSeed: augmentSeed!, epochs: e.teacherCache.epochs ?? e.epochs, ...(e.teacherCache.topK !== undefined ? { topK: e.teacherCache.topK } : {}) };
    // A build split across ranks runs as one piece (they must stay in step), as the plain cache's.
    const cache = pg ? TeacherViewCache.open(teacher, transfer, vo) : await buildInterruptibly(TeacherViewCache.openSteps(teacher, transfer, vo));
    pg?.barrier();
    return new ViewCachedTeacher(teacher, cache);
  }
  let cached: Teacher;
  try {
    // A method's per-sample targets (e.g. Sobolev's target gradient) only under a deterministic
    // pipeline: on un-augmented inputs they would not match the student's augmented view.
    const det = plan.augment.length === augment.length;
    cached = await cachedTeacherInterruptible(teacher, transfer, { ...opts, ...(features.length && teacher.features ? { features } : {}), ...(targets.length && det && teacher.logitsWithGrad ? { targets } : {}) });
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
    datasetSize: loader.dataset.size,
    transferSet: loader.transferSet,
    batches: (epoch, from) => loader.epoch(epoch, { startBatch: from }),
  };
}

export async function runExperiment(e: Experiment, o: RunOptions): Promise<ExperimentResult> {
  // Rank 0 alone writes the folder, so it alone takes its lock (one per run). Both come before
  // the data is read, so an unwritable output or a folder in use fails at once.
  if ((o.distributed?.rank ?? 0) !== 0) return runLocked(e, o);
  ensureDir(e.output, `${e.file}: 'output'`);
  const lock = lockFolder(e.output, e.file);
  try {
    return await runLocked(e, o);
  } finally {
    lock.release();
  }
}

/**
 * The checks of an experiment that need no data: its method and hyper-parameters, and that the
 * mode fits its teachers. A sweep runs them on every trial before any trains.
 */
export function resolveMethod(e: Experiment, o: Pick<RunOptions, 'mode' | 'validationOnly' | 'given'>): { spec: MethodSpec; params: Params } {
  const spec = getMethod(e.method.name);
  const params = resolveParams(spec, e.method.params, `${e.file}: 'method.params'`);
  const hasTeacher = e.teachers.length > 0 || o.given?.teacher !== undefined;
  if (o.mode === 'distill' && !hasTeacher) throw new Error(`${e.file}: 'distill' needs a teacher (add 'teacher: {checkpoint: path}')`);
  if (spec.needsTeacher && !hasTeacher) throw new Error(`${e.file}: method '${spec.name}' needs a teacher`);
  // 'train' promises no distillation: a file whose method learns from its teacher is refused rather
  // than quietly distilled (with method 'scratch' the teacher only measures agreement).
  if (o.mode === 'train' && hasTeacher && spec.name !== 'scratch') {
    throw new Error(`${e.file}: has a teacher, so method '${spec.name}' would distill it: run it with kdistill distill, or set method: scratch to train from the labels alone`);
  }
  if (o.validationOnly && e.biasAdjust) throw new Error(`${e.file}: 'biasAdjust' is fitted on the validation split a sweep scores trials on: leave it out of the sweep and add it to the chosen experiment`);
  return { spec, params };
}

async function runLocked(e: Experiment, o: RunOptions): Promise<ExperimentResult> {
  setNumThreads(e.threads);
  manualSeed(e.seed);
  const { spec, params } = resolveMethod(e, o);
  let data: RunData;
  try {
    data = o.validationOnly ? prepareDataWithoutTest(e) : prepareData(e, o.given?.data);
  } catch (err) {
    // Reader errors name the data file; say which experiment pointed at it too.
    const m = (err as Error).message;
    throw m.startsWith(e.file) ? err : new Error(`${e.file}: 'data': ${m}`, { cause: err });
  }
  // What the run is scored on: the test split, or (a sweep trial) the validation split.
  const evalSet = o.validationOnly ? data.val! : data.test!;
  const sampleShape = data.train.sampleShape;
  let student: Module;
  try {
    student = o.given?.student ?? createModel(studentSpec(e, data));
  } catch (err) {
    throw new Error(`${e.file}: 'student': ${(err as Error).message}`);
  }
  // Bias adjustment finds the output layer through the zoo's description of the model.
  if (e.biasAdjust && !(student instanceof ZooModel)) throw new Error(`${e.file}: 'biasAdjust' needs a student from the model zoo (kdistill models)`);
  const teacher = o.given?.teacher ? givenTeacher(o.given.teacher, data.numClasses) : loadTeachers(e, data.numClasses, { dataClasses: classNames(data.train) }, data);
  if (e.init) initStudent(e, student, teacher);
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
  // Quantization-aware training: quantizers go in after the float fit checks above, and switch on
  // at startEpoch (their 'enabled' buffers are checkpointed, so a resumed run keeps the switch).
  const quantize = e.quantize;
  if (quantize) {
    prepareQuantization(student, quantize);
    if (quantize.startEpoch === 0) setQuantization(student, true);
  }
  if (data.transfer.y === null && spec.name === 'scratch' && !data.multiLabel) throw new Error(`${e.file}: method 'scratch' needs labels, but 'data.transfer' is 'unlabeled'`);
  if (data.multiLabel && spec.name === 'scratch') throw new Error(`${e.file}: multi-label '${e.data.dataset}' trains with method 'multilabel-kd' (alpha 0 without a teacher: plain BCE), not 'scratch'`);
  if (e.mlm && o.distributed && o.distributed.worldSize > 1) throw new Error(`${e.file}: 'mlm' pre-training runs in one process; pre-train first, then distill with --nproc`);
  const teacherCheck = teacher ? checkTeacherOnTransfer(e, data, teacher) : null;
  const teacherWarning = teacherCheck?.nearChance
    ? `the teacher (${teacher!.description}) is at chance: ${pct(teacherCheck.accuracy)} of ${teacherCheck.samples} transfer samples right ` +
      `(always guessing the commonest class: ${pct(teacherCheck.chance)}; a working teacher exceeds ${pct(teacherCheck.threshold)}). It is probably fed inputs unlike those it was trained on ` +
      `(the student's inputs: ${describeNormalization(e.data.normalize)}): give the teacher its own with teacher.normalize: {mean, std} (default: raw inputs, ` +
      'or what its kdistill run recorded), or check that its classes are the data\'s, in the same order (data.classNames); see docs/data.md'
    : null;
  // Not silenced by KDISTILL_QUIET: this run would otherwise end with wrong numbers and exit 0.
  if (teacherWarning && (o.distributed?.rank ?? 0) === 0) process.stderr.write(`warning: ${e.file}: ${teacherWarning}\n`);

  // After the teacher's check on the original examples; before the run record, which names the augmented set and its size.
  const textAugment = e.data.text?.augment ? augmentTransferSet(e, data, teacher) : null;
  // Before anything in the folder is rewritten: a checkpoint there must be this experiment's.
  if ((o.distributed?.rank ?? 0) === 0 && (o.resume ?? true)) checkResumable(e, runInputs(data, teacher));
  const method = spec.create(params);
  // Joined after the checks above, so a bad experiment fails at once rather than at the rendezvous.
  const pg = o.distributed && o.distributed.worldSize > 1 ? await ProcessGroup.init(o.distributed) : null;
  const writer = !pg || pg.rank === 0;
  if (writer) {
    writeRunRecord(e, data, teacher, pg?.size ?? 1, teacherCheck);
    data.tokenizer?.save(join(e.output, 'tokenizer.json'));
  }
  const mlmLosses = e.mlm ? pretrainIfFresh(e, student as BertEncoder, data, o.resume ?? true) : null;
  const augment = augmentations(e);
  // A data-free method makes every batch's inputs itself (method.inputs), so a cache of the
  // teacher's outputs on the real transfer set would be built and never read.
  const trainTeacher = teacher && !method.inputs ? await withTeacherCache(e, teacher, data.transfer, augment, method.features?.teacher ?? [], pg, method.cachedTargets) : teacher;
  const loader = new DataLoader(data.transfer, { batchSize: e.data.batchSize, seed: e.seed, shuffle: true, augment, ...(e.data.augment.seed !== undefined ? { augmentSeed: e.data.augment.seed } : {}) });
  const source = data.multiLabel ? new MultiLabelBatches(data.transfer as MultiLabelDataset, e.data.batchSize, e.seed) : loaderSource(loader);
  const setupRows = data.multiLabel ? tensor(data.train.x.subarray(0, 2 * sampleShape[0]!), { shape: [2, ...sampleShape] }) : null;
  // After each epoch: quantization switched on at its start epoch, then the caller's hook (a sweep's
  // early stopping, which may throw to end the run).
  const switchQuantization = quantize && quantize.startEpoch > 0 ? (r: EpochRecord): void => { if (r.epoch + 1 === quantize.startEpoch) setQuantization(student, true); } : undefined;
  const onEpoch = switchQuantization && o.onEpoch ? (r: EpochRecord): void => { switchQuantization(r); o.onEpoch!(r); } : switchQuantization ?? o.onEpoch;
  let result: TrainResult;
  let profile: StepsProfile | undefined;
  const onProfile = (p: StepsProfile): void => {
    profile = p;
    writeProfile(e.output, p);
  };
  try {
    result = await train({
      student, teacher: trainTeacher, method, train: pg ? shardedSource(source, pg.rank, pg.size) : source, numClasses: data.numClasses,
      // Per-epoch test metrics are single-label ones; multi-label runs are scored once at the end.
      ...(setupRows ? { sample: setupRows } : { evalSet }),
      epochs: e.epochs, optimizer: e.optimizer, schedule: e.schedule, outDir: e.output, resume: o.resume ?? true,
      checkpointEvery: e.checkpointEvery, onNonFinite: e.onNonFinite, checkGradients: e.checkGradients, label: e.name,
      ...(onEpoch ? { onEpoch } : {}),
      ...(pg ? { parallel: new DataParallel(pg, { overlap: e.distributed.overlap, bucketBytes: e.distributed.bucketMb * 2 ** 20, firstBucketBytes: e.distributed.firstBucketMb * 2 ** 20 }) } : {}),
      ...(o.profile && writer ? { profile: { ...o.profile, onProfile } } : {}),
    });
  } finally {
    setupRows?.dispose();
    await loader.close();
    pg?.destroy();
  }
  // Rank 0 writes the model, result and report; the other ranks are done.
  if (!writer) return { experiment: e, result, student, teacher, summary: '' };
  // A data-free method's synthesised inputs, as a picture in the run folder.
  const samples = method.samples?.(100);
  if (samples) {
    const flat = samples.contiguous();
    writeFileSync(join(e.output, 'samples.png'), imageGridPng(flat.data<Float32Array>(), samples.shape, 10));
    flat.dispose();
    samples.dispose();
  }
  // Bias adjustment (Hinton et al. 2015 §3) changes the saved model, so it comes first; the test
  // metrics are then those of the adjusted model, with the ones before kept in its record.
  let final = result.final;
  let biasAdjustment: BiasAdjustmentRecord | undefined;
  if (e.biasAdjust) {
    const tp = result.predictions?.teacher ?? (teacher ? predict((x) => teacher.logits(x), evalSet) : undefined);
    const adjusted = biasAdjustRun(student as ZooModel, e.biasAdjust, evalSet, data.val, {
      ...(result.predictions ? { before: result.predictions.student } : {}), ...(tp ? { teacher: tp } : {}),
    });
    biasAdjustment = adjusted.record;
    final = adjusted.test;
    result.predictions = { student: adjusted.after, ...(tp ? { teacher: tp } : {}) };
  }
  // What the model was trained on travels with it: a run using it as a teacher feeds it the same inputs and checks its classes.
  saveModel(join(e.output, 'model.safetensors'), student, {
    experiment: e.name, [NORMALIZE_KEY]: JSON.stringify(e.data.normalize ?? null),
    ...(classNames(data.train) ? { [CLASS_NAMES_KEY]: JSON.stringify(classNames(data.train)) } : {}),
  });
  // Multi-label: the decision threshold is chosen on the validation split, metrics are on test.
  // Computed once, for result.json and the report.
  const scores = data.multiLabel ? evaluateMultiLabelPerLabel(student, data.val as MultiLabelDataset, evalSet as MultiLabelDataset) : null;
  const multi = scores?.metrics ?? null;
  // Median ms per sample at batch size 1 (src/train/timing.ts), for tables that weigh speed against quality.
  const msPerSample = latency(student, evalSet);
  const nParams = student.numInferenceParameters();
  const warnings = [...(teacherWarning ? [teacherWarning] : []), ...(method.warnings?.() ?? []), ...(result.warnings ?? [])];
  const resultRec = {
    name: e.name, method: e.method.name, seed: e.seed, epochs: e.epochs, steps: result.steps,
    studentParameters: nParams, teacherParameters: teacher?.numParameters ?? null, test: o.validationOnly ? null : multi ?? final ?? null, msPerSample,
    ...(data.describe ? { data: data.describe } : {}), ...(mlmLosses ? { mlmLosses } : {}), ...(textAugment ? { textAugment } : {}),
    ...(classNames(evalSet) ? { classNames: classNames(evalSet) } : {}),
    ...(warnings.length ? { warnings } : {}),
    ...(biasAdjustment ? { biasAdjustment } : {}),
    // The validation split's metrics, where hyper-parameters are chosen without looking at the test set.
    // A sweep trial's final evaluation is on it already.
    ...(data.val?.y && !data.multiLabel ? { val: o.validationOnly ? final : classificationMetrics(student.inEvalMode(() => predict((x) => student.call(x), data.val!)), data.val.y) } : {}),
  };
  atomicWrite(join(e.output, 'result.json'), JSON.stringify(resultRec, null, 2) + '\n');
  // The caller's report (report.html: teacher vs student, curves, confusion, calibration); a failure there must not lose the run.
  try {
    if (data.test) o.report?.({
      dir: e.output, experiment: e, student, teacher, test: data.test, studentMsPerSample: msPerSample,
      ...(data.val ? { val: data.val } : {}), ...(result.predictions ? { predictions: result.predictions } : {}), ...(scores ? { studentMultiLabel: scores } : {}),
    });
  } catch (err) {
    process.stderr.write(`${e.name}: report.html not written: ${(err as Error).message}\n`);
  }
  // The teacher's own score on the same test data: the first thing to check when a student is poor
  // (a teacher fed the wrong preprocessing scores near chance).
  const tp = result.predictions?.teacher;
  const teacherTest = tp && evalSet.y && !multi ? classificationMetrics(tp, evalSet.y) : null;
  const summary = (multi
    ? formatTable(
      ['run', 'method', 'params', 'micro F1', 'macro F1', 'subset acc', 'mAP', 'threshold'],
      [[e.name, e.method.name, String(nParams), num(multi.microF1), num(multi.macroF1), pct(multi.subsetAccuracy), num(multi.mAP), multi.threshold.toFixed(2)]],
    )
    : formatTable(
      ['run', 'method', 'params', o.validationOnly ? 'val acc' : 'test acc', 'NLL', 'ECE', 'agreement'],
      [
        [e.name, e.method.name, String(nParams), pct(final?.accuracy), num(final?.nll), num(final?.ece), pct(final?.agreement)],
        ...(teacherTest ? [['teacher', '–', String(teacher?.numParameters ?? '–'), pct(teacherTest.accuracy), num(teacherTest.nll), num(teacherTest.ece), '–']] : []),
      ],
    )) + `\noutputs: ${e.output}` + warnings.map((w) => `\nwarning: ${w}`).join('');
  return { experiment: e, result, student, teacher, summary, ...(profile ? { profile } : {}) };
}

/**
 * TinyBERT's data augmentation (data.text.augment): the transfer set becomes the originals and
 * their copies with words replaced by the teacher's masked-LM predictions. Returns what it did.
 */
function augmentTransferSet(e: Experiment, data: RunData, teacher: Teacher | null): AugmentStats & { model: string } {
  const spec = e.data.text!.augment!;
  const where = `${e.file}: 'data.text.augment${spec.model ? '.model' : ''}'`;
  let model: Module | null = teacher instanceof ModuleTeacher ? teacher.model : null, source = teacher?.description ?? 'no teacher';
  if (spec.model) {
    try {
      model = loadModel(spec.model).model;
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
    source = spec.model;
  }
  if (!(model instanceof BertEncoder) || !model.mlmHead || !data.tokenizer) {
    throw new Error(`${where} replaces words with masked-LM predictions, but ${spec.model ? `${spec.model} is` : `the teacher (${source}) is`} not a BERT with an MLM head: train it with mlm: (kdistill keeps the head in its model file)`);
  }
  const vocab = data.tokenizer.vocab, own = spec.model ? runTokenizer(spec.model) : null;
  if (model.spec.vocabSize !== vocab.length || (own && WordPieceTokenizer.load(own).vocab.join('\n') !== vocab.join('\n'))) {
    throw new Error(`${where}: ${source} was trained on another vocabulary (${own ?? `${model.spec.vocabSize} tokens`}) than the data's (${data.tokenizer.vocabSize} tokens): its predicted ids would be other words`);
  }
  const quiet = process.env.KDISTILL_QUIET === '1';
  let bar: ProgressBar | null = null;
  const { data: augmented, stats } = mlmAugment(teacherScorer(model), data.transfer, data.tokenizer.vocab, e.data.text!.augment!, {
    onProgress: (done, total) => { if (!quiet) (bar ??= new ProgressBar(`${e.name}: masked-LM candidates`, total)).update(done, 'words'); },
  });
  (bar as ProgressBar | null)?.done();
  if (!quiet) process.stderr.write(`${e.name}: augmented ${stats.examples} examples to ${stats.rows} rows (${stats.duplicates} duplicate copies dropped; ${(100 * stats.changedPieceShare).toFixed(1)}% of the copies' pieces replaced) in ${stats.seconds.toFixed(1)} s\n`);
  data.transfer = augmented;
  return { ...stats, model: source };
}

/** Batch-1 inference latency in eval mode (batch norm on one sample needs its running statistics); the mode is restored. */
function latency(model: Module, data: Dataset): number {
  return model.inEvalMode(() => inferenceMsPerSample((x) => model.call(x), data, 100, 10));
}

/** The class (or, multi-label, the label) names of a dataset, when it has them. */
function classNames(d: Dataset): string[] | undefined {
  return d.classNames ?? (d as Partial<MultiLabelDataset>).labelNames;
}

/** The student's model spec: a bert on text data takes its vocabulary, length and head type from the data. */
function studentSpec(e: Experiment, data: RunData): Record<string, unknown> {
  if (e.student.arch !== 'bert') return { numClasses: data.numClasses, inputShape: data.train.sampleShape, ...e.student };
  if (!data.tokenizer) throw new Error("arch 'bert' reads token ids: use a text dataset (data.dataset: spam-assassin or debtags)");
  const fromData: Record<string, unknown> = { vocabSize: data.tokenizer.vocabSize, maxLen: e.data.text!.maxLen, multiLabel: data.multiLabel === true };
  for (const [k, v] of Object.entries(fromData)) {
    if (e.student[k] !== undefined && e.student[k] !== v) throw new Error(`'${k}' is ${JSON.stringify(e.student[k])} but the data gives ${JSON.stringify(v)} (leave it out: it is taken from the data)`);
  }
  return { numClasses: data.numClasses, ...e.student, ...fromData, ...(e.mlm ? { mlm: true } : {}) };
}

/**
 * The student's starting weights: DistilBERT's initialisation from the (single, checkpoint) bert
 * teacher, or every tensor of a saved model of the same architecture (an MLM head it has and the
 * student lacks is left out: it serves pre-training only).
 */
function initStudent(e: Experiment, student: Module, teacher: Teacher | null): void {
  const init = e.init!;
  try {
    if (init.from === 'file') {
      if (!existsSync(init.path)) throw new Error(`model file not found: ${init.path}`);
      const { tensors } = loadSafetensors(init.path);
      const own = student.stateDict();
      const state = new Map([...tensors].filter(([k]) => own.has(k) || !k.startsWith('mlm.')));
      try {
        student.loadStateDict(state, true);
      } catch (err) {
        throw new Error(`${init.path} does not fit the student: ${(err as Error).message}`);
      } finally {
        for (const t of tensors.values()) t.dispose();
      }
      return;
    }
    if (init.from === 'huggingface') {
      if (!(student instanceof BertEncoder)) throw new Error('a Hugging Face checkpoint initialises a bert student only');
      initStudentFromHf(student, init.path, init.layers);
      return;
    }
    const t = teacher instanceof ModuleTeacher ? teacher.model : null;
    if (!(t instanceof BertEncoder) || !(student instanceof BertEncoder)) throw new Error('needs a bert student and a bert teacher checkpoint');
    initStudentFromTeacher(student, t, init.layers);
  } catch (err) {
    throw new Error(`${e.file}: 'init': ${(err as Error).message}`);
  }
}

/**
 * MLM pre-training before the supervised training, skipped when resuming: the checkpoint holds
 * the weights training had reached, pre-training included.
 */
function pretrainIfFresh(e: Experiment, model: BertEncoder, data: RunData, resume: boolean): number[] | null {
  if (resume && existsSync(join(e.output, 'checkpoint.safetensors'))) return null;
  const m = e.mlm!;
  const quiet = process.env.KDISTILL_QUIET === '1';
  return pretrainMlm(model, data.train, {
    epochs: m.epochs, batchSize: e.data.batchSize, lr: m.lr, maskProb: m.maskProb, seed: e.seed,
    onEpoch: (ep, loss, sec) => { if (!quiet) process.stderr.write(`${e.name}: MLM epoch ${ep + 1}/${m.epochs}: loss ${loss.toFixed(4)} (${sec.toFixed(1)} s)\n`); },
  });
}

function writeRunRecord(e: Experiment, data: RunData, teacher: Teacher | null, worldSize = 1, teacherCheck: TeacherCheck | null = null): void {
  const pkg = JSON.parse(readPackageJson()) as { version: string };
  const record = {
    experiment: e.name, file: e.file, seed: e.seed, threads: e.threads,
    // Data-parallel processes (each trained on 1/worldSize of every batch of data.batchSize).
    ...(worldSize > 1 ? { worldSize } : {}),
    versions: { kdistill: pkg.version, libtorch: native.torchVersion, node: process.version },
    ...runInputs(data, teacher),
    // The teacher's accuracy on transfer samples before training (checkTeacherOnTransfer).
    ...(teacherCheck ? { teacherCheck } : {}),
    config: e.source,
    // The validated experiment, CLI overrides included: what a resume is checked against (src/train/resume.ts).
    settings: runSettings(e),
    started: new Date().toISOString(),
  };
  writeFileSync(join(e.output, 'experiment.yaml'), e.source);
  atomicWrite(join(e.output, 'run.json'), JSON.stringify(record, null, 2) + '\n');
}

/** The data files (with sha256, so a repeat or a resume can check it reads the same bytes) and the teacher. */
function runInputs(data: RunData, teacher: Teacher | null): RecordedInputs & { data: Record<string, unknown>; teacher: Record<string, unknown> | null } {
  return {
    data: {
      // A sweep trial never reads the test split: none is recorded.
      train: data.train.name, transfer: data.transfer.name, test: data.test?.name ?? null, numClasses: data.numClasses,
      sizes: { train: data.train.size, transfer: data.transfer.size, ...(data.test ? { test: data.test.size } : {}), ...(data.val ? { val: data.val.size } : {}) },
      sources: data.train.sources ?? [], testSources: data.test?.sources ?? [],
    },
    teacher: teacher ? { description: teacher.description, checksum: teacher.checksum, parameters: teacher.numParameters } : null,
  };
}

function readPackageJson(): string {
  return readFileSync(join(packageRoot, 'package.json'), 'utf8');
}

export const pct = (v: number | undefined): string => (v === undefined ? '–' : `${(v * 100).toFixed(2)}%`);
export const num = (v: number | undefined): string => (v === undefined ? '–' : v.toFixed(4));
