// The library's one-call entry points: distill() and fit(). They take objects (datasets,
// modules, teachers) or names/paths, and run the same trainer the CLI runs. runExperiment,
// runExperimentFile and compare run experiments (src/run) and write each run's report.html,
// as the CLI does: the run layer leaves the report to its caller.
import type { Dataset } from './data/dataset.js';
import { DataLoader } from './data/loader.js';
import { loadFashionMnist } from './data/fashion-mnist.js';
import { Module } from './nn/module.js';
import { createModel } from './nn/zoo/index.js';
import { getMethod } from './methods/registry.js';
import { resolveParams, type Params } from './methods/method.js';
import type { Teacher } from './teachers/teacher.js';
import { checkpointTeacher, ModuleTeacher, TorchScriptTeacher } from './teachers/sources.js';
import { OnnxTeacher } from './teachers/onnx.js';
import type { ScheduleSpec } from './optim/schedules.js';
import { manualSeed } from './tensor/torch.js';
import { train, type TrainResult } from './train/trainer.js';
import type { OptimizerSpec } from './optim/optimizer.js';
import type { Experiment } from './config/experiment.js';
import * as runs from './run/index.js';
import { writeRunReport } from './report/index.js';

export interface FitOptions {
  /** A Module, or a zoo spec such as { arch: 'mlp', hidden: [32] } (numClasses and input shape are filled in from the data). */
  student: Module | Record<string, unknown>;
  /** A Dataset pair, or 'fashion-mnist' (from the Debian package). */
  data: { train: Dataset; test?: Dataset } | 'fashion-mnist';
  /** A method name or { name, params }; default 'kd' with a teacher, 'scratch' without. */
  method?: string | { name: string; params?: Params };
  epochs?: number;
  batchSize?: number;
  optimizer?: OptimizerSpec;
  schedule?: ScheduleSpec;
  seed?: number;
  /** Writes log.jsonl and checkpoints there (resumable); nothing on disk without it. */
  outDir?: string;
}

export interface DistillOptions extends FitOptions {
  /** A Teacher, a trained Module, or a path: kdistill checkpoint (.safetensors), TorchScript (.pt) or ONNX (.onnx). */
  teacher: Teacher | Module | string;
}

export interface FitResult extends TrainResult {
  student: Module;
}

/** Distills `teacher` into `student`: `await distill({ teacher: 'teacher.safetensors', student: { arch: 'mlp', hidden: [32] }, data: 'fashion-mnist' })`. */
export async function distill(o: DistillOptions): Promise<FitResult> {
  return run(o, o.teacher);
}

/** Trains a model from scratch (e.g. a teacher). */
export async function fit(o: FitOptions): Promise<FitResult> {
  return run(o, null);
}

async function run(o: FitOptions, teacherArg: DistillOptions['teacher'] | null): Promise<FitResult> {
  manualSeed(o.seed ?? 0);
  const data = o.data === 'fashion-mnist' ? { train: loadFashionMnist({ split: 'train' }), test: loadFashionMnist({ split: 'test' }) } : o.data;
  const numClasses = data.train.numClasses;
  const student = o.student instanceof Module ? o.student : createModel({ numClasses, inputShape: data.train.sampleShape, ...o.student });
  const teacher = teacherArg === null ? null : toTeacher(teacherArg, numClasses);
  const m = typeof o.method === 'string' ? { name: o.method } : o.method ?? { name: teacher ? 'kd' : 'scratch' };
  const spec = getMethod(m.name);
  if (spec.needsTeacher && !teacher) throw new Error(`method '${spec.name}' needs a teacher: use distill()`);
  const method = spec.create(resolveParams(spec, m.params ?? {}));
  const loader = new DataLoader(data.train, { batchSize: o.batchSize ?? 128, seed: o.seed ?? 0 });
  try {
    const result = await train({
      student, teacher, method, numClasses,
      train: { batchesPerEpoch: loader.numBatches, datasetSize: data.train.size, transferSet: loader.transferSet, batches: (e, from) => loader.epoch(e, { startBatch: from }) },
      ...(data.test ? { evalSet: data.test } : {}),
      epochs: o.epochs ?? 10,
      optimizer: o.optimizer ?? { name: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
      schedule: o.schedule ?? { name: 'cosine' },
      ...(o.outDir ? { outDir: o.outDir, resume: true } : {}),
    });
    return { ...result, student };
  } finally {
    await loader.close();
  }
}

function toTeacher(t: DistillOptions['teacher'], numClasses: number): Teacher {
  if (typeof t === 'string') {
    if (t.endsWith('.onnx')) return new OnnxTeacher(t, { numClasses });
    return t.endsWith('.pt') || t.endsWith('.pth') ? new TorchScriptTeacher(t, numClasses) : checkpointTeacher(t);
  }
  if (t instanceof Module) return new ModuleTeacher(t, numClasses, `module ${t.constructor.name}`, `module:${t.constructor.name}:${t.numParameters()}`);
  return t;
}

/** Runs an experiment (src/run/experiment.ts) and writes its report.html, as `kdistill train|distill` does; `report: undefined` writes none. */
export function runExperiment(e: Experiment, o: runs.RunOptions): Promise<runs.ExperimentResult> {
  return runs.runExperiment(e, { report: writeRunReport, ...o });
}

/** runExperiment for a file: one experiment, or every stage of a chain file, each with its report.html. */
export function runExperimentFile(file: string, o: runs.RunOptions): Promise<runs.ExperimentResult> {
  return runs.runExperimentFile(file, { report: writeRunReport, ...o });
}

/** Runs experiments over seeds (src/run/compare.ts), each run with its report.html, as `kdistill compare` does. */
export function compare(files: string[], seeds: number[], outRoot?: string, o: Pick<runs.RunOptions, 'report'> = {}): ReturnType<typeof runs.compare> {
  return runs.compare(files, seeds, outRoot, { report: writeRunReport, ...o });
}
