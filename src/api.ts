// The library's one-call entry points: distill() and fit(). They take objects (datasets,
// modules, teachers) or names/paths, turn the options into an experiment and run it through
// src/run, as the CLI runs a file: the same defaults, checks and run folder. runExperiment,
// runExperimentFile and compare run experiments (src/run) and write each run's report.html,
// as the CLI does: the run layer leaves the report to its caller.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Dataset } from './data/dataset.js';
import { Module } from './nn/module.js';
import type { Params } from './methods/method.js';
import type { Teacher } from './teachers/teacher.js';
import { teacherKindOf } from './teachers/from-file.js';
import type { ScheduleSpec } from './optim/schedules.js';
import type { TrainResult } from './train/trainer.js';
import type { OptimizerSpec } from './optim/optimizer.js';
import { parseExperiment, type Experiment } from './config/experiment.js';
import * as runs from './run/index.js';
import { writeRunReport } from './report/index.js';

export interface FitOptions {
  /** A Module, or a zoo spec such as { arch: 'mlp', hidden: [32] } (numClasses and input shape are filled in from the data). */
  student: Module | Record<string, unknown>;
  /** A Dataset pair, or a dataset name of experiment files ('fashion-mnist', 'mnist'). */
  data: { train: Dataset; test: Dataset } | 'fashion-mnist' | 'mnist';
  /** A method name or { name, params }; default 'kd' with a teacher, 'scratch' without. */
  method?: string | { name: string; params?: Params };
  /** Required, as in an experiment file. */
  epochs: number;
  /** The other options default as in an experiment file (src/config/defaults.ts, docs/defaults.md). */
  batchSize?: number;
  optimizer?: OptimizerSpec;
  schedule?: ScheduleSpec;
  seed?: number;
  /**
   * The run folder (log.jsonl, checkpoints, model.safetensors, run.json, result.json; resumable),
   * as `output:` of an experiment file. Without it the run uses a temporary folder, removed at the end.
   */
  outDir?: string;
}

export interface DistillOptions extends FitOptions {
  /** A Teacher, a trained Module, or a path: kdistill checkpoint (.safetensors), TorchScript (.pt) or ONNX (.onnx). */
  teacher: Teacher | Module | string;
}

export interface FitResult extends TrainResult {
  student: Module;
}

/** Distills `teacher` into `student`: `await distill({ teacher: 'teacher.safetensors', student: { arch: 'mlp', hidden: [32] }, data: 'fashion-mnist', epochs: 10 })`. */
export async function distill(o: DistillOptions): Promise<FitResult> {
  return run('distill', o, o.teacher);
}

/** Trains a model from scratch (e.g. a teacher). */
export async function fit(o: FitOptions): Promise<FitResult> {
  return run('fit', o, null);
}

/**
 * The options as an experiment (so the defaults, the checks and the training are those of an
 * experiment file) run by src/run, with the objects given in place of what a file would name.
 */
async function run(fn: 'distill' | 'fit', o: FitOptions, teacherArg: DistillOptions['teacher'] | null): Promise<FitResult> {
  const given: runs.GivenParts = {};
  const raw: Record<string, unknown> = { name: fn };
  for (const k of ['epochs', 'seed', 'optimizer', 'schedule'] as const) if (o[k] !== undefined) raw[k] = o[k];
  if (o.method !== undefined) raw.method = typeof o.method === 'string' ? { name: o.method } : o.method;
  if (typeof o.data === 'string') raw.data = { dataset: o.data };
  else {
    if (!o.data.test) throw new Error(`${fn}(): 'data' needs a test set as well ({ train, test }): every epoch is scored on it`);
    given.data = o.data;
    raw.data = {};
  }
  if (o.batchSize !== undefined) (raw.data as Record<string, unknown>).batchSize = o.batchSize;
  if (o.student instanceof Module) {
    given.student = o.student;
    raw.student = { arch: 'module', class: o.student.constructor.name, parameters: o.student.numParameters() };
  } else raw.student = o.student;
  // A name without a model extension (e.g. a Hugging Face folder) is a checkpoint, as in an experiment file.
  if (typeof teacherArg === 'string') raw.teacher = { [teacherKindOf(teacherArg) ?? 'checkpoint']: teacherArg };
  else if (teacherArg) given.teacher = teacherArg;
  const dir = o.outDir ?? mkdtempSync(join(tmpdir(), 'kdistill-'));
  raw.output = resolve(dir);
  try {
    const e = parseExperiment(raw, `${fn}()`);
    const r = await runs.runExperiment(e, { mode: fn === 'fit' ? 'train' : 'distill', resume: true, given });
    return { ...r.result, student: r.student };
  } finally {
    if (!o.outDir) rmSync(dir, { recursive: true, force: true });
  }
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

/** A hyper-parameter sweep (src/run/sweep.ts), the final seed runs each with its report.html, as `kdistill sweep` does. */
export function sweep(file: string, o: runs.SweepOptions): Promise<runs.SweepResult> {
  return runs.sweep(file, { report: writeRunReport, ...o });
}
