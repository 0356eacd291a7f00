// Gathers what a report shows from a run folder: curves from log.jsonl, and an evaluation of the
// saved student (and the run's teacher) on the test set: metrics, parameters, file sizes,
// latency, confusion matrices and reliability bins. The evaluation is the slow part, so it is
// cached in the run folder as report.json and reused while model.safetensors is unchanged.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Dataset } from '../data/dataset.js';
import type { Teacher } from '../teachers/teacher.js';
import type { Experiment } from '../config/experiment.js';
import { parseExperiment } from '../config/experiment.js';
import { loadModel } from '../nn/safetensors.js';
import { predict } from '../train/evaluate.js';
import { classificationMetrics, confusionMatrix, reliability, type Predictions } from '../train/metrics.js';
import { inferenceMsPerSample } from '../train/timing.js';
import { getNumThreads, setNumThreads } from '../tensor/torch.js';
import { parseLog } from '../train/log.js';
import { ProgressBar } from '../util/progress.js';
import type { Confusion, EpochCurves, Int8Report, ModelRow, MultiLabelReport, Reliability, ReportImage, RunReport, StepCurves } from './types.js';
import { evaluateMultiLabelPerLabel, type MultiLabelEvaluation } from '../train/multilabel-metrics.js';
import type { MultiLabelDataset } from '../text/data.js';
import { bundleFiles } from '../teachers/specialists/teacher.js';

/** Step curves keep at most this many points (bucket means) per series. */
export const MAX_POINTS = 400;
const STEP_KEYS = new Set(['type', 'epoch', 'batch', 'step', 'lr']);

const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Curves from parsed log records; steps are averaged in equal buckets down to maxPoints. */
export function curvesFromRecords(records: Record<string, unknown>[], maxPoints = MAX_POINTS): { steps: StepCurves; epochs: EpochCurves } {
  const stepRecs = records.filter((r) => r.type === 'step');
  const epochRecs = records.filter((r) => r.type === 'epoch');
  const termNames: string[] = [];
  for (const r of stepRecs) for (const k of Object.keys(r)) if (!STEP_KEYS.has(k) && !termNames.includes(k)) termNames.push(k);
  const bucket = Math.max(1, Math.ceil(stepRecs.length / maxPoints));
  const steps: StepCurves = { step: [], lr: [], terms: Object.fromEntries(termNames.map((t) => [t, [] as number[]])) };
  const mean = (rs: Record<string, unknown>[], k: string): number => {
    let s = 0, n = 0;
    for (const r of rs) {
      const v = finite(r[k]);
      if (v !== null) { s += v; n++; }
    }
    // NaN has no JSON form; a bucket with no finite value (a diverged run) is drawn as a gap.
    return n ? s / n : (null as unknown as number);
  };
  for (let i = 0; i < stepRecs.length; i += bucket) {
    const rs = stepRecs.slice(i, i + bucket);
    steps.step.push(finite(rs[rs.length - 1]!.step) ?? i);
    steps.lr.push(mean(rs, 'lr'));
    for (const t of termNames) steps.terms[t]!.push(mean(rs, t));
  }
  const epochs: EpochCurves = { epoch: [], step: [], train: {}, eval: {} };
  epochRecs.forEach((r, i) => {
    epochs.epoch.push((finite(r.epoch) ?? i) + 1);
    epochs.step.push(finite(r.step) ?? 0);
    for (const [group, src] of [['train', r.train], ['eval', r.eval]] as const) {
      if (!src || typeof src !== 'object') continue;
      for (const [k, v] of Object.entries(src as Record<string, unknown>)) {
        const arr = (epochs[group][k] ??= new Array<number>(i).fill(null as unknown as number));
        arr.push(finite(v) as number);
      }
    }
    // Keep every series aligned with epoch[] when a metric is missing from some epochs.
    for (const g of [epochs.train, epochs.eval]) for (const arr of Object.values(g)) while (arr.length < epochs.epoch.length) arr.push(null as unknown as number);
  });
  return { steps, epochs };
}

/** Curves of a run folder (empty while log.jsonl does not exist yet). */
export function readCurves(dir: string): { steps: StepCurves; epochs: EpochCurves } {
  const file = join(dir, 'log.jsonl');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  return curvesFromRecords(parseLog(text, file));
}

export interface EvaluationInput {
  student: Module;
  studentName: string;
  studentFile: string;
  teacher: Teacher | null;
  /** Weight files of the teacher(s), for the size column. */
  teacherFiles: string[];
  test: Dataset;
  /** Predictions on `test` already made (the trainer's last evaluation), so they are not made again. */
  predictions?: { student: Predictions; teacher?: Predictions };
  /** The student's batch-1 latency, when the caller measured it already (the runner, for result.json). */
  studentMsPerSample?: number;
  /** Multi-label: the student's scores already computed (the runner, for result.json). */
  studentMultiLabel?: MultiLabelEvaluation;
  /** Multi-label runs: the validation split, where the decision thresholds are chosen. */
  val?: Dataset;
}
export interface Evaluation {
  models: ModelRow[];
  confusion: Confusion[];
  reliability: Reliability[];
  classNames: string[];
  multiLabel?: MultiLabelReport;
}

/** Multi-label test data carries per-label targets (src/text/data.ts). */
function isMultiLabelData(d: Dataset): d is MultiLabelDataset {
  return 'targets' in d;
}

/** What a run's report shows of its models: multi-label scores when the data has per-label targets and a validation split, else single-label ones. */
export function evaluateRun(o: EvaluationInput): Evaluation {
  const val = o.val;
  return val && isMultiLabelData(o.test) && isMultiLabelData(val) ? evaluateMultiLabelModels({ ...o, val, test: o.test }) : evaluateModels(o);
}

/**
 * Multi-label runs: F1s, subset accuracy and mAP of the teacher and student at thresholds chosen
 * on `val`, per label too, with parameters, sizes and latency. No confusion or calibration.
 */
function evaluateMultiLabelModels(o: EvaluationInput & { val: MultiLabelDataset; test: MultiLabelDataset }): Evaluation {
  const bar = new ProgressBar('report: evaluating', o.teacher ? 2 : 1);
  const rows: ModelRow[] = [];
  const ml: MultiLabelReport = { labels: o.test.labelNames, support: [], models: [] };
  const add = (row: Omit<ModelRow, 'accuracy' | 'agreement' | 'nll' | 'ece' | 'msPerSample'>, forward: (x: Tensor) => Tensor,
    done: { scores?: MultiLabelEvaluation; ms?: number } = {}): void => {
    const { metrics: m, perLabel } = done.scores ?? evaluateMultiLabelPerLabel(forward, o.val, o.test);
    ml.support = perLabel.support;
    ml.models.push({ model: row.name, threshold: m.threshold, microF1: m.microF1, macroF1: m.macroF1, subsetAccuracy: m.subsetAccuracy, mAP: m.mAP, f1: perLabel.f1, ap: perLabel.ap });
    rows.push({ ...row, accuracy: null, agreement: null, nll: null, ece: null, msPerSample: done.ms ?? inferenceMsPerSample(forward, o.test, 100, 10) });
  };
  return o.student.inEvalMode(() => {
    if (o.teacher) {
      const t = o.teacher;
      add({ role: 'teacher', name: 'teacher', source: t.description, parameters: t.numParameters, checksum: t.checksum, fileBytes: totalFileBytes(o.teacherFiles) }, (x) => t.logits(x));
      bar.update(1, 'teacher');
    }
    add({ role: 'student', name: o.studentName, source: o.studentFile, parameters: o.student.numInferenceParameters(), fileBytes: fileSize(o.studentFile) },
      (x) => o.student.call(x), { ...(o.studentMultiLabel ? { scores: o.studentMultiLabel } : {}), ...(o.studentMsPerSample !== undefined ? { ms: o.studentMsPerSample } : {}) });
    bar.done();
    return { models: rows, confusion: [], reliability: [], classNames: o.test.labelNames, multiLabel: ml };
  });
}

const fileSize = (f: string): number | null => (existsSync(f) ? statSync(f).size : null);
/** Summed size of a model's files; null when any is missing (or there are none). */
const totalFileBytes = (files: string[]): number | null => {
  const sizes = files.map(fileSize);
  return sizes.length && sizes.every((s) => s !== null) ? sizes.reduce((a, b) => a! + b!, 0) : null;
};

/** Test-set metrics, latency, sizes, confusion matrices and reliability of the student and teacher. */
export function evaluateModels(o: EvaluationInput): Evaluation {
  const labels = o.test.y;
  if (!labels) throw new Error(`report: the test set ${o.test.name} has no labels`);
  const bar = new ProgressBar('report: evaluating', o.teacher ? 4 : 2);
  const student = o.student;
  return student.inEvalMode(() => {
    let tp: Predictions | undefined;
    const models: ModelRow[] = [];
    const confusion: Confusion[] = [];
    const rel: Reliability[] = [];
    const add = (row: ModelRow, p: Predictions): void => {
      models.push(row);
      confusion.push({ model: row.name, matrix: confusionMatrix(p, labels) });
      rel.push({ model: row.name, ...reliability(p, labels) });
    };
    if (o.teacher) {
      const t = o.teacher;
      tp = o.predictions?.teacher ?? predict((x) => t.logits(x), o.test);
      bar.update(1, 'teacher');
      const m = classificationMetrics(tp, labels);
      const ms = inferenceMsPerSample((x) => t.logits(x), o.test, 100, 10);
      bar.update(2, 'teacher timing');
      add({
        role: 'teacher', name: 'teacher', source: t.description, accuracy: m.accuracy, agreement: null, nll: m.nll, ece: m.ece,
        parameters: t.numParameters, fileBytes: totalFileBytes(o.teacherFiles), msPerSample: ms, checksum: t.checksum,
      }, tp);
    }
    const sp = o.predictions?.student ?? predict((x) => student.call(x), o.test);
    bar.update(o.teacher ? 3 : 1, 'student');
    const sm = classificationMetrics(sp, labels, tp);
    const ms = o.studentMsPerSample ?? inferenceMsPerSample((x) => student.call(x), o.test, 100, 10);
    bar.update(o.teacher ? 4 : 2, 'student timing');
    add({
      role: 'student', name: o.studentName, source: o.studentFile, accuracy: sm.accuracy, agreement: sm.agreement ?? null, nll: sm.nll, ece: sm.ece,
      parameters: student.numInferenceParameters(), fileBytes: fileSize(o.studentFile), msPerSample: ms,
    }, sp);
    bar.done();
    const classNames = o.test.classNames ?? Array.from({ length: sp.c }, (_, i) => String(i));
    return { models, confusion, reliability: rel, classNames };
  });
}

/** The weight files an experiment's teachers load from. */
export function teacherFiles(e: Experiment): string[] {
  return e.teachers.flatMap((t) => ('checkpoint' in t ? t.checkpoint : 'onnx' in t ? t.onnx : 'specialists' in t ? bundleFiles(t.specialists) : t.torchscript));
}

interface RunJson { experiment?: string; file?: string; config?: string }
function readJson<T>(file: string): T | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** The run's experiment, re-read from the copy kept in the run folder (paths resolve as in the original file). */
export function runExperimentOf(dir: string): Experiment | null {
  const run = readJson<RunJson>(join(dir, 'run.json'));
  const yamlFile = join(dir, 'experiment.yaml');
  const source = run?.config ?? (existsSync(yamlFile) ? readFileSync(yamlFile, 'utf8') : null);
  if (source === null) return null;
  return parseExperiment(parseYaml(source), run?.file ?? yamlFile, source);
}

/**
 * The images a run learned from instead of real data, as pictures: the generator samples a
 * data-free method (DAFL) saved in the run folder, and the grid `kdistill synthesize` saved beside
 * a synthesised transfer set the run read (`data.transferFile`).
 */
export function runImages(dir: string, e: Experiment | null): ReportImage[] {
  const found: { title: string; file: string }[] = [{ title: 'generator samples at the end of training (100 images, each scaled to its own range)', file: join(dir, 'samples.png') }];
  const tf = e?.data.transferFile;
  if (tf) found.push({ title: `the synthesised transfer set it was trained on (first images, ${tf.x})`, file: join(dirname(tf.x), 'samples.png') });
  return found.filter((f) => existsSync(f.file)).map((f) => ({ ...f, pngBase64: readFileSync(f.file).toString('base64') }));
}

/** Assembles a run's report, evaluating the model only if report.json is missing or older than it. */
export async function buildRunReport(dir: string, o: { evaluate?: boolean } = {}): Promise<RunReport> {
  const absDir = resolve(dir);
  if (!existsSync(absDir)) throw new Error(`report: run folder not found: ${dir}`);
  const modelFile = join(absDir, 'model.safetensors');
  const finished = existsSync(modelFile);
  const cacheFile = join(absDir, 'report.json');
  const cached = readJson<RunReport>(cacheFile);
  const curves = readCurves(absDir);
  const yamlFile = join(absDir, 'experiment.yaml');
  // `kdistill export --quantize int8` writes its measurements beside the files it exports (by default export/ in the run).
  const int8 = readJson<Int8Report>(join(absDir, 'export', 'int8.json'));
  let e: Experiment | null = null;
  let unusable: string | null = null;
  try {
    e = runExperimentOf(absDir);
  } catch (err) {
    unusable = (err as Error).message.split('\n')[0]!;
  }
  const images = runImages(absDir, e);
  const base = {
    dir: absDir, status: finished ? 'finished' as const : 'running' as const, ...curves,
    experimentYaml: existsSync(yamlFile) ? readFileSync(yamlFile, 'utf8') : '', ...(int8 ? { int8 } : {}), ...(images.length ? { images } : {}),
  };
  const fresh = cached && finished && statSync(cacheFile).mtimeMs >= statSync(modelFile).mtimeMs && cached.models.length > 0;
  if (fresh) return { ...cached, ...base };
  // Curves still show without a readable experiment copy; only the evaluation needs it.
  if (unusable !== null && finished && o.evaluate !== false) process.stderr.write(`report: ${absDir}: experiment copy not usable (${unusable}); no evaluation\n`);
  const name = e?.name ?? (readJson<RunJson>(join(absDir, 'run.json'))?.experiment ?? absDir.split('/').pop()!);
  const report: RunReport = { name, method: e?.method.name ?? '?', models: [], confusion: [], reliability: [], classNames: [], ...base };
  if (!finished || o.evaluate === false || !e) return report;
  // Imported here: the experiment module pulls in every method and data reader.
  const { prepareData, loadTeachers } = await import('../run/experiment.js');
  const data = prepareData(e);
  const { model } = loadModel(modelFile);
  // The run's own thread count while its teacher is loaded and scored, as in the run: an ONNX
  // teacher sizes onnxruntime's pool from it when loaded (latency itself is measured on one
  // libtorch thread either way: src/train/timing.ts).
  const threads = getNumThreads();
  setNumThreads(e.threads);
  let teacher: Teacher | null = null;
  try {
    teacher = loadTeachers(e, data.numClasses, undefined, data);
  } catch (err) {
    // The report still shows the student when the teacher's file has moved since the run.
    process.stderr.write(`report: ${name}: teacher not loaded (${(err as Error).message}); the table shows the student only\n`);
  }
  try {
    const ev = evaluateRun({
      student: model, studentName: `student (${name})`, studentFile: modelFile, teacher, teacherFiles: teacher ? teacherFiles(e) : [], test: data.test,
      ...(data.val ? { val: data.val } : {}),
    });
    return { ...report, ...ev };
  } finally {
    model.dispose();
    setNumThreads(threads);
  }
}
