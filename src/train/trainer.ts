// The training loop. It knows nothing about any single method: it asks the method for named
// loss terms, sums them, steps the optimizer, logs every term, evaluates each epoch, and
// checkpoints atomically so an interrupted run resumes to the same result.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { tensor } from '../tensor/factories.js';
import { stack } from '../tensor/factories.js';
import { getRngState, setRngState } from '../tensor/torch.js';
import type { Module } from '../nn/module.js';
import type { Method, StepInfo } from '../methods/method.js';
import type { Teacher } from '../teachers/teacher.js';
import type { Dataset } from '../data/dataset.js';
import type { BatchSource, TrainBatch } from '../data/source.js';
import { makeOptimizer, type Optimizer, type OptimizerSpec } from '../optim/optimizer.js';
import { constrainedWeights, maxNorm_ } from '../optim/constraints.js';
import { makeSchedule, type ScheduleSpec } from '../optim/schedules.js';
import { classificationMetrics, type ClassificationMetrics, type Predictions } from './metrics.js';
import { predict } from './evaluate.js';
import { ProgressBar } from '../util/progress.js';
import { JsonlLog, type EpochRecord } from './log.js';
import { loadCheckpoint, saveCheckpoint, type TrainState } from './checkpoint.js';
import { DivergenceWatch } from './divergence.js';
import { StepProfiler, type ProfileWindow, type StepsProfile } from './profile.js';

export type { BatchSource, TrainBatch } from '../data/source.js';
export type { EpochRecord } from './log.js';

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
  /** What to do with a NaN/Inf loss, gradient or teacher output: stop (default) or skip the step. */
  onNonFinite?: 'stop' | 'skip';
  /** Also check the gradients for NaN/Inf after each backward pass (default true; one fused reduction). */
  checkGradients?: boolean;
  /**
   * On SIGINT/SIGTERM finish the current step, checkpoint and throw TrainingInterrupted
   * (default: on when outDir is set, since only then is there a checkpoint to resume from).
   */
  handleSignals?: boolean;
  /** Evaluate every epoch (default) or only at the end. */
  evalEvery?: 'epoch' | 'end';
  label?: string;
  /** Called after each epoch's evaluation. */
  onEpoch?: (r: EpochRecord) => void;
  /** Stop after this many steps in this process (tests use it to simulate an interruption). */
  stopAfterSteps?: number;
  /** A few training inputs for Method.setup to probe shapes with (default: evalSet's first two). */
  sample?: Tensor;
  /**
   * Data-parallel training (src/distributed): `train` yields this rank's shard of each batch;
   * rank 0 alone evaluates and writes the log and checkpoints.
   */
  parallel?: TrainParallel;
  /** Profile libtorch's operators over a window of this process's steps (src/train/profile.ts); `onProfile` gets the result. */
  profile?: ProfileWindow & { onProfile: (p: StepsProfile) => void };
}

/** Data-parallel hooks (src/distributed/data-parallel.ts); every rank calls them at the same points. */
export interface TrainParallel {
  readonly rank: number;
  readonly worldSize: number;
  /** After rank 0's resume: every rank takes rank 0's weights, optimizer state and loop position. */
  start(modules: Module[], optimizer: Optimizer, state: TrainState): TrainState;
  /** Just before `loss.backward()`: e.g. arm hooks that start the gradient exchange during backward. */
  beforeBackward?(loss: Tensor, params: Tensor[], batch: TrainBatch): void;
  /** After backward, before the non-finite check and the optimizer step: the global batch's gradient. */
  reduceGradients(params: Tensor[], batch: TrainBatch): void;
  /** At an epoch's end, before evaluation and the checkpoint: loss sums across ranks; batch-norm statistics. */
  endEpoch(modules: Module[], sums: Record<string, number>, count: number): { sums: Record<string, number>; count: number };
}

export interface TrainResult {
  epochs: EpochRecord[];
  final?: ClassificationMetrics;
  steps: number;
  /** True if stopAfterSteps ended the run early. */
  interrupted: boolean;
  /** The evaluation set's predictions after the last epoch, for reports to reuse. */
  predictions?: { student: Predictions; teacher?: Predictions };
  /** E.g. a diverged training loss (src/train/divergence.ts): the run finished but its model is suspect. */
  warnings?: string[];
}

export class NonFiniteLossError extends Error {}

/** Thrown after a SIGINT/SIGTERM once the checkpoint is written; exitCode is 128 + the signal number. */
export class TrainingInterrupted extends Error {
  constructor(readonly signal: NodeJS.Signals, readonly exitCode: number, readonly state: TrainState, message: string) {
    super(message);
  }
}

const SIGNAL_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

export async function train(o: TrainOptions): Promise<TrainResult> {
  // A skipped step on one rank would leave the others waiting in its gradient exchange.
  if (o.parallel && o.onNonFinite === 'skip') throw new Error("onNonFinite: skip is not supported in data-parallel training (one rank skipping a step would stall the others); use 'stop'");
  const writer = !o.parallel || o.parallel.rank === 0;
  if (o.method.setup) {
    // Methods probe feature shapes on a couple of real inputs (never trained on).
    const sample = o.sample ?? (o.evalSet ? firstSamples(o.evalSet, 2) : undefined);
    try {
      o.method.setup({ student: o.student, teacher: o.teacher, numClasses: o.numClasses, datasetSize: o.train.datasetSize ?? null, transferSet: o.train.transferSet ?? null, ...(sample ? { sample } : {}) });
    } finally {
      if (sample && sample !== o.sample) sample.dispose();
    }
  }
  // Checked once here, not in every step: the stages of a method are fixed once it is set up.
  if ((o.method.stages ?? 1) > 1 && o.parallel) throw new Error('a method with sequential updates (Method.stages > 1) is not supported in data-parallel training');
  const extras = o.method.extraModules?.() ?? [];
  const trainable = [o.student, ...extras];
  const params = trainable.flatMap((m) => m.parameters());
  // Extra modules with a learning rate of their own form a second parameter group.
  const extraLr = extras.length && o.method.extraLr !== undefined ? o.method.extraLr : undefined;
  const optimizer = extraLr === undefined ? makeOptimizer(o.optimizer, params)
    : makeOptimizer(o.optimizer, [{ params: o.student.parameters() }, { params: extras.flatMap((m) => m.parameters()), lr: extraLr }]);
  const setLr = (factor: number): void => {
    optimizer.setLr(o.optimizer.lr * factor, extraLr === undefined ? undefined : 0);
    if (extraLr !== undefined) optimizer.setLr(extraLr * factor, 1);
  };
  const maxNormed = o.optimizer.maxNorm !== undefined ? constrainedWeights(o.student) : [];
  const schedule = makeSchedule(o.schedule ?? { name: 'constant' }, o.epochs);
  const perEpoch = o.train.batchesPerEpoch;
  const log = o.outDir && writer ? new JsonlLog(join(o.outDir, 'log.jsonl')) : null;
  const ckptPath = o.outDir && writer ? join(o.outDir, 'checkpoint.safetensors') : null;
  const sfeat = o.method.features?.student ?? [];
  const tfeat = o.method.features?.teacher ?? [];

  // Teacher predictions on the evaluation set never change: compute them once for agreement.
  const teacherEval: Predictions | undefined = o.teacher && o.evalSet && writer ? predict((x) => o.teacher!.logits(x), o.evalSet) : undefined;
  let finalPredictions: TrainResult['predictions'];

  // Temp files of atomic writes cut short by a kill are garbage (the real files are whole): clear them.
  if (o.outDir && writer && existsSync(o.outDir)) {
    for (const f of readdirSync(o.outDir)) if (/^\.(checkpoint\.safetensors|log\.jsonl)\..*\.tmp$/.test(f)) rmSync(join(o.outDir, f), { force: true });
  }
  let state: TrainState = { epoch: 0, batch: 0, step: 0 };
  const epochs: EpochRecord[] = [];
  if (o.resume && ckptPath && existsSync(ckptPath)) {
    state = loadCheckpoint(ckptPath, trainable, optimizer);
    log?.truncateAfter(state.step, state.epoch);
    epochs.push(...(log?.epochRecords() ?? []));
  } else {
    log?.reset();
  }
  if (o.parallel) state = o.parallel.start(trainable, optimizer, state);
  const watch = new DivergenceWatch(o.label ?? 'train');
  for (const r of epochs) watch.epoch(r.epoch, r.train.loss);

  let sums: Record<string, number> = {};
  let count = 0;
  // Log first, checkpoint second: a kill between the two leaves a log ahead of the checkpoint,
  // which a resume truncates; the other order would lose the records in between.
  const checkpoint = (): void => {
    log?.flush();
    if (ckptPath) saveCheckpoint(ckptPath, trainable, optimizer, { ...state, sums, count });
  };

  // Signals only set a flag: the step in flight finishes, then the loop checkpoints and stops.
  // A second signal exits at once, which is safe because every checkpoint write is atomic.
  let signalled: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) {
      process.stderr.write(`\n${sig} again: exiting now; ${ckptPath} still holds the last complete checkpoint\n`);
      process.exit(SIGNAL_CODES[sig] ?? 130);
    }
    signalled = sig;
    process.stderr.write(`\n${sig} received: finishing the current step and saving a checkpoint (send it again to exit at once)\n`);
  };
  const signals: NodeJS.Signals[] = (o.handleSignals ?? Boolean(ckptPath)) ? ['SIGINT', 'SIGTERM'] : [];
  for (const s of signals) process.on(s, onSignal);

  let stepsThisRun = 0;
  let interrupted = false;
  const profiler = o.profile ? new StepProfiler(o.profile, o.profile.onProfile) : null;
  try {
  outer: for (; state.epoch < o.epochs; state.epoch++, state.batch = 0) {
    const t0 = Date.now();
    sums = state.batch > 0 ? { ...state.sums } : {};
    count = state.batch > 0 ? state.count ?? 0 : 0;
    for (const t of trainable) t.train();
    const bar = new ProgressBar(`${o.label ?? 'train'} epoch ${state.epoch + 1}/${o.epochs}`, perEpoch);
    // The lr of the epoch's last step so far: a run resumed after its epoch's last step (before
    // the epoch record) runs no step here, and its record must still carry that lr.
    let lr = o.optimizer.lr * schedule(state.epoch + Math.max(0, state.batch - 1) / perEpoch);
    for await (const batch of o.train.batches(state.epoch, state.batch)) {
      const factor = schedule(state.epoch + state.batch / perEpoch);
      lr = o.optimizer.lr * factor;
      setLr(factor);
      const info: StepInfo = { epoch: state.epoch, epochs: o.epochs, step: state.step, numClasses: o.numClasses };
      const run = (): Record<string, number> | string => tidy(() => step(o, optimizer, batch, info, state.batch, params, sfeat, tfeat, maxNormed));
      const out = profiler ? profiler.around(stepsThisRun, run) : run();
      batch.x.dispose();
      batch.y?.dispose();
      const values = typeof out === 'string' ? null : out;
      if (values === null) {
        log?.write({ type: 'skip', epoch: state.epoch, batch: state.batch, step: state.step, reason: out });
      } else {
        for (const [k, v] of Object.entries(values)) sums[k] = (sums[k] ?? 0) + v;
        count++;
        watch.step(values.loss!);
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
      if (signals.length) {
        // The loop may never leave the microtask queue (synchronous batches), and signal
        // handlers run only from the event loop: give it one turn per step (~µs).
        await new Promise<void>((r) => setImmediate(r));
        if (signalled) {
          bar.done();
          checkpoint();
          const sig: NodeJS.Signals = signalled;
          throw new TrainingInterrupted(sig, SIGNAL_CODES[sig] ?? 130, { ...state },
            `interrupted by ${sig} at epoch ${state.epoch + 1}, step ${state.step}; checkpoint saved to ${ckptPath}. Run the same command again to resume (--no-resume starts over).`);
        }
      }
    }
    bar.done();
    if (o.parallel) ({ sums, count } = o.parallel.endEpoch(trainable, sums, count));
    const trainMeans = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / Math.max(1, count)]));
    const rec: EpochRecord = { type: 'epoch', epoch: state.epoch, step: state.step, lr, train: trainMeans, seconds: (Date.now() - t0) / 1000 };
    const last = state.epoch === o.epochs - 1;
    if (o.evalSet && writer && (o.evalEvery !== 'end' || last)) {
      const sp = predictModel(o.student, o.evalSet);
      rec.eval = classificationMetrics(sp, labelsOf(o.evalSet), teacherEval);
      if (last) finalPredictions = { student: sp, ...(teacherEval ? { teacher: teacherEval } : {}) };
    }
    epochs.push(rec);
    const diverged = watch.epoch(rec.epoch, rec.train.loss);
    if (diverged && writer) process.stderr.write(`warning: ${diverged}\n`);
    log?.write(rec);
    o.onEpoch?.(rec);
    // the checkpoint names the next position: epoch+1, batch 0
    state.epoch++;
    state.batch = 0;
    checkpoint();
    state.epoch--;
  }
  } finally {
    for (const s of signals) process.off(s, onSignal);
    profiler?.finish();
  }
  return {
    epochs, final: epochs[epochs.length - 1]?.eval, steps: state.step, interrupted,
    ...(finalPredictions ? { predictions: finalPredictions } : {}), ...(watch.warnings.length ? { warnings: watch.warnings } : {}),
  };
}

/** True if every element of every tensor is finite: one fused reduction, one sync. */
function allFinite(ts: Tensor[]): boolean {
  if (ts.length === 0) return true;
  // Per-tensor norms then their sum, as clip_grad_norm_ does: NaN and Inf propagate into it.
  const total = ts.length === 1 ? ts[0]!.norm() : stack(ts.map((t) => t.norm())).sum();
  return Number.isFinite(total.item());
}

/**
 * One optimisation step; returns the loss terms as numbers, or (if skipped) the reason.
 * Non-finite losses, teacher outputs and gradients stop the run naming the step, batch and term,
 * before the optimizer touches the weights, so the last checkpoint and the weights stay good.
 */
function step(o: TrainOptions, optimizer: Optimizer, loaded: TrainBatch, info: StepInfo, batchIndex: number,
  params: Tensor[], sfeat: string[], tfeat: string[], maxNormed: Tensor[]): Record<string, number> | string {
  // A data-free method's own inputs replace the loaded batch, which then only counted the step.
  const batch: TrainBatch = o.method.inputs ? { x: o.method.inputs({ x: loaded.x, y: loaded.y }, info), y: null } : loaded;
  const where = `epoch ${info.epoch + 1}, step ${info.step}, batch ${batchIndex}`;
  const fail = (what: string): string => {
    if (o.onNonFinite === 'skip') return what;
    throw new NonFiniteLossError(`${what} at ${where}; the weights were not updated and the last good checkpoint is kept (set onNonFinite: skip to skip such steps)`);
  };
  // Input-derivative methods need the student's outputs as a function of x.
  if (o.method.inputGrad) batch.x.requiresGrad_(true);
  let studentLogits: Tensor;
  let studentFeatures: Record<string, Tensor> = {};
  if (sfeat.length) ({ output: studentLogits, features: studentFeatures } = o.student.forwardWithFeatures(batch.x, sfeat));
  else studentLogits = o.student.call(batch.x);
  let teacherLogits: Tensor | null = null;
  let teacherFeatures: Record<string, Tensor> = {};
  let cachedTargets: Record<string, Tensor> | null = null;
  if (o.teacher) {
    const t = o.teacher;
    noGrad(() => {
      if (tfeat.length) {
        if (!t.features) throw new Error(`the method needs teacher features (${tfeat.join(', ')}) but the teacher (${t.description}) cannot return them`);
        // A cached teacher serves the training rows' features by their dataset indices.
        const at = batch.indices ? featuresAtOf(t) : undefined;
        ({ output: teacherLogits, features: teacherFeatures } = at ? at(batch.indices!, batch.x, tfeat) : t.features(batch.x, tfeat));
      } else teacherLogits = batch.indices && t.logitsAt ? t.logitsAt(batch.indices, batch.x, info.epoch) : t.logits(batch.x);
      // Per-sample targets the cache holds (Method.cachedTargets), by the rows' dataset indices.
      const tnames = o.method.cachedTargets?.map((c) => c.name) ?? [];
      const tat = tnames.length && batch.indices ? targetsAtOf(t) : undefined;
      if (tat) cachedTargets = tat(batch.indices!, batch.x, tnames);
    });
    if (!allFinite([teacherLogits!])) return fail(`non-finite teacher output (${t.description})`);
  }
  // Methods with stages (Method.stages, e.g. DML's sequential updates) get one backward and one
  // optimizer step per stage; stages after the first see the updated student.
  const stages = o.method.stages ?? 1;
  const checkGrads = o.checkGradients ?? true;
  const values: Record<string, number> = { loss: 0 };
  for (let stage = 0; stage < stages; stage++) {
    if (stage > 0) {
      if (sfeat.length) ({ output: studentLogits, features: studentFeatures } = o.student.forwardWithFeatures(batch.x, sfeat));
      else studentLogits = o.student.call(batch.x);
    }
    const terms = o.method.losses({ student: o.student, teacher: o.teacher, batch, indices: batch.indices ?? null, info, studentLogits, teacherLogits, studentFeatures, teacherFeatures,
      ...(cachedTargets ? { cachedTargets } : {}), ...(stages > 1 ? { stage } : {}) });
    const names = Object.keys(terms);
    if (names.length === 0) throw new Error(`the method returned no loss terms${stages > 1 ? ` in stage ${stage}` : ''}`);
    const repeated = names.filter((n) => n in values);
    if (repeated.length) throw new Error(`the method returned term${repeated.length > 1 ? 's' : ''} ${repeated.join(', ')} in more than one stage (or named 'loss')`);
    // A stage after the first fails after earlier stages updated their weights: say so.
    const after = stage > 0 ? ` in update stage ${stage + 1} of ${stages} (the earlier stages' updates were applied)` : '';
    let total: Tensor = terms[names[0]!]!;
    for (const n of names.slice(1)) total = total.add(terms[n]!);
    const stageLoss = total.item();
    for (const n of names) values[n] = terms[n]!.item();
    values.loss! += stageLoss;
    if (!Number.isFinite(stageLoss)) {
      const bad = names.filter((n) => !Number.isFinite(values[n]!));
      return fail(`non-finite loss: term${bad.length > 1 ? 's' : ''} ${bad.join(', ')} = ${bad.map((n) => values[n]).join(', ')}${after}`);
    }
    optimizer.zeroGrad();
    // The graph is kept only so that a bad gradient can be traced to its term below.
    o.parallel?.beforeBackward?.(total, params, batch);
    total.backward(undefined, { retainGraph: checkGrads && names.length > 1 });
    o.parallel?.reduceGradients(params, batch);
    if (checkGrads && !allFinite(grads(params))) {
      const bad = names.length === 1 ? names : names.filter((n) => {
        optimizer.zeroGrad();
        terms[n]!.backward(undefined, { retainGraph: true });
        return !allFinite(grads(params));
      });
      optimizer.zeroGrad();
      return fail(`non-finite gradient from term${bad.length > 1 ? 's' : ''} ${(bad.length ? bad : names).join(', ')} (loss ${stageLoss})${after}`);
    }
    optimizer.step();
    if (maxNormed.length) maxNorm_(maxNormed, o.optimizer.maxNorm!);
  }
  return values;
}

type FeaturesAt = (indices: Int32Array, x: Tensor, names: string[]) => { output: Tensor; features: Record<string, Tensor> };

/** The teacher's featuresAt (CachedTeacher, src/teachers/cache.ts), if it has one. */
function featuresAtOf(t: Teacher): FeaturesAt | undefined {
  const f = (t as Teacher & { featuresAt?: FeaturesAt }).featuresAt;
  return typeof f === 'function' ? f.bind(t) : undefined;
}

type TargetsAt = (indices: Int32Array, x: Tensor, names: string[]) => Record<string, Tensor> | null;

/** The teacher's targetsAt (CachedTeacher), if it has one. */
function targetsAtOf(t: Teacher): TargetsAt | undefined {
  const f = (t as Teacher & { targetsAt?: TargetsAt }).targetsAt;
  return typeof f === 'function' ? f.bind(t) : undefined;
}

function grads(params: Tensor[]): Tensor[] {
  const out: Tensor[] = [];
  for (const p of params) {
    const g = p.grad;
    if (g) out.push(g);
  }
  return out;
}

function firstSamples(d: Dataset, n: number): Tensor {
  const k = Math.min(n, d.size);
  const per = d.sampleShape.reduce((a, b) => a * b, 1);
  return tensor(d.x.subarray(0, k * per), { shape: [k, ...d.sampleShape] });
}

export function evaluateModel(model: Module, data: Dataset, teacherPreds?: Predictions): ClassificationMetrics {
  return classificationMetrics(predictModel(model, data), labelsOf(data), teacherPreds);
}

/** The model's predictions on the data in eval mode; its mode is restored afterwards. */
function predictModel(model: Module, data: Dataset): Predictions {
  return model.inEvalMode(() => predict((x) => model.call(x), data));
}

function labelsOf(data: Dataset): Int32Array {
  if (!data.y) throw new Error(`evaluation set ${data.name} has no labels`);
  return data.y;
}

export function readLogEpochs(outDir: string): EpochRecord[] {
  const p = join(outDir, 'log.jsonl');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string })
    .filter((r): r is EpochRecord => r.type === 'epoch');
}

export { getRngState, setRngState };
