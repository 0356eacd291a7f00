// The training loop. It knows nothing about any single method: it asks the method for named
// loss terms, sums them, steps the optimizer, logs every term, evaluates each epoch, and
// checkpoints atomically so an interrupted run resumes to the same result.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { getRngState, setRngState } from '../tensor/torch.js';
import type { Module } from '../nn/module.js';
import type { Method, StepInfo } from '../methods/method.js';
import type { Teacher } from '../teachers/teacher.js';
import type { Dataset } from '../data/dataset.js';
import { Adam, AdamW, SGD, type Optimizer } from '../optim/optimizer.js';
import { makeSchedule, type ScheduleSpec } from '../optim/schedules.js';
import { classificationMetrics, type ClassificationMetrics, type Predictions } from './metrics.js';
import { predict } from './evaluate.js';
import { ProgressBar } from './progress.js';
import { JsonlLog } from './log.js';
import { loadCheckpoint, saveCheckpoint, type TrainState } from './checkpoint.js';

export interface OptimizerSpec {
  name: 'sgd' | 'adam' | 'adamw';
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  betas?: [number, number];
}

/** Batches of one epoch, from a given batch index on (resume mid-epoch). */
export interface BatchSource {
  readonly batchesPerEpoch: number;
  batches(epoch: number, fromBatch: number): Iterable<{ x: Tensor; y: Tensor | null }> | AsyncIterable<{ x: Tensor; y: Tensor | null }>;
}

export interface TrainOptions {
  student: Module;
  teacher: Teacher | null;
  method: Method;
  train: BatchSource;
  /** Held-out evaluation set (the test set in the paper reproductions). */
  evalSet?: Dataset;
  numClasses: number;
  epochs: number;
  optimizer: OptimizerSpec;
  schedule?: ScheduleSpec;
  /** Output folder: log.jsonl, checkpoint.safetensors, model.safetensors. Omit to keep nothing on disk. */
  outDir?: string;
  /** Also checkpoint every N steps (0: only at epoch ends). */
  checkpointEvery?: number;
  /** Continue from outDir's checkpoint if there is one. */
  resume?: boolean;
  /** What to do with a NaN/Inf loss: stop (default) or skip the step. */
  onNonFinite?: 'stop' | 'skip';
  /** Evaluate every epoch (default) or only at the end. */
  evalEvery?: 'epoch' | 'end';
  label?: string;
  /** Called after each epoch's evaluation. */
  onEpoch?: (r: EpochRecord) => void;
  /** Stop after this many steps in this process (tests use it to simulate an interruption). */
  stopAfterSteps?: number;
}

export interface EpochRecord {
  type: 'epoch';
  epoch: number;
  step: number;
  lr: number;
  train: Record<string, number>;
  eval?: ClassificationMetrics;
  seconds: number;
}

export interface TrainResult {
  epochs: EpochRecord[];
  final?: ClassificationMetrics;
  steps: number;
  /** True if stopAfterSteps ended the run early. */
  interrupted: boolean;
}

export class NonFiniteLossError extends Error {}

export function makeOptimizer(spec: OptimizerSpec, params: Tensor[]): Optimizer {
  switch (spec.name) {
    case 'sgd':
      return new SGD(params, { lr: spec.lr, momentum: spec.momentum ?? 0, nesterov: spec.nesterov ?? false, weightDecay: spec.weightDecay ?? 0 });
    case 'adam':
      return new Adam(params, { lr: spec.lr, weightDecay: spec.weightDecay ?? 0, ...(spec.betas ? { betas: spec.betas } : {}) });
    case 'adamw':
      return new AdamW(params, { lr: spec.lr, weightDecay: spec.weightDecay ?? 0.01, ...(spec.betas ? { betas: spec.betas } : {}) });
  }
}

export async function train(o: TrainOptions): Promise<TrainResult> {
  const extras = o.method.extraModules?.() ?? [];
  const trainable = [o.student, ...extras];
  const params = trainable.flatMap((m) => m.parameters());
  const optimizer = makeOptimizer(o.optimizer, params);
  const schedule = makeSchedule(o.schedule ?? { name: 'constant' }, o.epochs);
  const perEpoch = o.train.batchesPerEpoch;
  const log = o.outDir ? new JsonlLog(join(o.outDir, 'log.jsonl')) : null;
  const ckptPath = o.outDir ? join(o.outDir, 'checkpoint.safetensors') : null;
  const sfeat = o.method.features?.student ?? [];
  const tfeat = o.method.features?.teacher ?? [];

  // Teacher predictions on the evaluation set never change: compute them once for agreement.
  const teacherEval: Predictions | undefined = o.teacher && o.evalSet ? predict((x) => o.teacher!.logits(x), o.evalSet) : undefined;

  let state: TrainState = { epoch: 0, batch: 0, step: 0 };
  const epochs: EpochRecord[] = [];
  if (o.resume && ckptPath && existsSync(ckptPath)) {
    state = loadCheckpoint(ckptPath, trainable, optimizer);
    log?.truncateAfter(state.step, state.epoch);
    epochs.push(...(log?.epochRecords() ?? []));
  } else {
    log?.reset();
  }

  let sums: Record<string, number> = {};
  let count = 0;
  const checkpoint = (): void => {
    if (ckptPath) saveCheckpoint(ckptPath, trainable, optimizer, { ...state, sums, count });
    log?.flush();
  };

  let stepsThisRun = 0;
  let interrupted = false;
  outer: for (; state.epoch < o.epochs; state.epoch++, state.batch = 0) {
    const t0 = Date.now();
    sums = state.batch > 0 ? { ...state.sums } : {};
    count = state.batch > 0 ? state.count ?? 0 : 0;
    for (const t of trainable) t.train();
    const bar = new ProgressBar(`${o.label ?? 'train'} epoch ${state.epoch + 1}/${o.epochs}`, perEpoch);
    let lr = 0;
    for await (const batch of o.train.batches(state.epoch, state.batch)) {
      lr = o.optimizer.lr * schedule(state.epoch + state.batch / perEpoch);
      optimizer.setLr(lr);
      const info: StepInfo = { epoch: state.epoch, epochs: o.epochs, step: state.step, numClasses: o.numClasses };
      const values = tidy(() => step(o, optimizer, batch, info, sfeat, tfeat));
      batch.x.dispose();
      batch.y?.dispose();
      if (values === null) {
        log?.write({ type: 'skip', epoch: state.epoch, batch: state.batch, step: state.step, reason: 'non-finite loss' });
      } else {
        for (const [k, v] of Object.entries(values)) sums[k] = (sums[k] ?? 0) + v;
        count++;
        log?.write({ type: 'step', epoch: state.epoch, batch: state.batch, step: state.step, lr, ...values });
      }
      state.batch++;
      state.step++;
      stepsThisRun++;
      bar.update(state.batch, values ? `loss ${values.loss!.toFixed(4)}` : 'skipped');
      if (o.checkpointEvery && state.step % o.checkpointEvery === 0 && state.batch < perEpoch) checkpoint();
      if (o.stopAfterSteps !== undefined && stepsThisRun >= o.stopAfterSteps) {
        bar.done();
        checkpoint();
        interrupted = true;
        break outer;
      }
    }
    bar.done();
    const trainMeans = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / Math.max(1, count)]));
    const rec: EpochRecord = { type: 'epoch', epoch: state.epoch, step: state.step, lr, train: trainMeans, seconds: (Date.now() - t0) / 1000 };
    const last = state.epoch === o.epochs - 1;
    if (o.evalSet && (o.evalEvery !== 'end' || last)) rec.eval = evaluateModel(o.student, o.evalSet, teacherEval);
    epochs.push(rec);
    log?.write(rec);
    o.onEpoch?.(rec);
    // the checkpoint names the next position: epoch+1, batch 0
    state.epoch++;
    state.batch = 0;
    checkpoint();
    state.epoch--;
  }
  return { epochs, final: epochs[epochs.length - 1]?.eval, steps: state.step, interrupted };
}

/** One optimisation step; returns the loss terms as numbers, or null if skipped. */
function step(o: TrainOptions, optimizer: Optimizer, batch: { x: Tensor; y: Tensor | null }, info: StepInfo,
  sfeat: string[], tfeat: string[]): Record<string, number> | null {
  let studentLogits: Tensor;
  let studentFeatures: Record<string, Tensor> = {};
  if (sfeat.length) ({ output: studentLogits, features: studentFeatures } = o.student.forwardWithFeatures(batch.x, sfeat));
  else studentLogits = o.student.call(batch.x);
  let teacherLogits: Tensor | null = null;
  let teacherFeatures: Record<string, Tensor> = {};
  if (o.teacher) {
    const t = o.teacher;
    noGrad(() => {
      if (tfeat.length) {
        if (!t.features) throw new Error(`the method needs teacher features (${tfeat.join(', ')}) but the teacher (${t.description}) cannot return them`);
        ({ output: teacherLogits, features: teacherFeatures } = t.features(batch.x, tfeat));
      } else teacherLogits = t.logits(batch.x);
    });
  }
  const terms = o.method.losses({ student: o.student, teacher: o.teacher, batch, info, studentLogits, teacherLogits, studentFeatures, teacherFeatures });
  const names = Object.keys(terms);
  if (names.length === 0) throw new Error('the method returned no loss terms');
  let total: Tensor = terms[names[0]!]!;
  for (const n of names.slice(1)) total = total.add(terms[n]!);
  const values: Record<string, number> = { loss: total.item() };
  for (const n of names) values[n] = terms[n]!.item();
  if (!Number.isFinite(values.loss!)) {
    const bad = names.filter((n) => !Number.isFinite(values[n]!));
    if (o.onNonFinite === 'skip') return null;
    throw new NonFiniteLossError(`non-finite loss at epoch ${info.epoch + 1}, step ${info.step}: term${bad.length > 1 ? 's' : ''} ${bad.join(', ')} = ${bad.map((n) => values[n]).join(', ')}; the last good checkpoint is kept`);
  }
  optimizer.zeroGrad();
  total.backward();
  optimizer.step();
  return values;
}

export function evaluateModel(model: Module, data: Dataset, teacherPreds?: Predictions): ClassificationMetrics {
  const wasTraining = model.training;
  model.eval();
  const p = predict((x) => model.call(x), data);
  model.train(wasTraining);
  if (!data.y) throw new Error(`evaluation set ${data.name} has no labels`);
  return classificationMetrics(p, data.y, teacherPreds);
}

export function readLogEpochs(outDir: string): EpochRecord[] {
  const p = join(outDir, 'log.jsonl');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string })
    .filter((r): r is EpochRecord => r.type === 'epoch');
}

export { getRngState, setRngState };
