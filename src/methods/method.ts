// The method contract (docs/architecture.md, "The method contract"). A distillation method is
// one small file that declares its hyper-parameters and computes, for one batch, named loss
// terms. The trainer sums the terms, logs each one, and knows nothing else about the method.
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';
import type { CachedTarget, Teacher } from '../teachers/teacher.js';
import type { TransferSet } from '../data/source.js';
import { resolveDeclared, type ParamDecls, type Params, type ParamsOf } from './params.js';

// Defined with the teacher-output cache that stores it (src/teachers), re-exported for methods.
export type { CachedTarget } from '../teachers/teacher.js';
export type { TransferSet } from '../data/source.js';
export type { ParamDecl, ParamDecls, Params, ParamsOf } from './params.js';

export interface Batch {
  x: Tensor;
  /** Class labels (int64), or null on unlabeled transfer data. */
  y: Tensor | null;
}

export interface StepInfo {
  epoch: number; // 0-based
  epochs: number;
  step: number; // global step, 0-based
  numClasses: number;
}

export interface LossContext {
  student: Module;
  teacher: Teacher | null;
  batch: Batch;
  /**
   * The batch's rows as indices into the transfer set (0 ≤ i < SetupContext.datasetSize), in batch
   * order: what the data source yields as TrainBatch.indices (the DataLoader's shuffled rows, text
   * batches' rows; in data-parallel training each rank's slice of the global batch's indices).
   * null when the source yields none (a custom BatchSource, e.g. the specialists' resampled rows).
   */
  indices: Int32Array | null;
  info: StepInfo;
  /** Student logits on batch.x, computed once by the trainer unless the method asked for features. */
  studentLogits: Tensor;
  /** Teacher logits on batch.x (from the teacher or the output cache), null without a teacher. */
  teacherLogits: Tensor | null;
  /** Requested intermediate outputs (see Method.features). */
  studentFeatures: Record<string, Tensor>;
  teacherFeatures: Record<string, Tensor>;
  /**
   * The batch's per-sample targets from the teacher-output cache, by CachedTarget name; present
   * only when the cache holds them (deterministic pipeline). Absent: compute them live.
   */
  cachedTargets?: Record<string, Tensor>;
  /**
   * Which update of the step this is, 0-based, for methods with Method.stages > 1 (absent: 0).
   * In stages after the first, studentLogits are recomputed with the weights updated so far.
   */
  stage?: number;
}

/** What a method may need to build its extra parts (peers, connectors) before training. */
export interface SetupContext {
  student: Module;
  teacher: Teacher | null;
  numClasses: number;
  /**
   * Rows of the transfer set (the range of LossContext.indices), for per-sample state such as a
   * memory bank; null when the data source does not say (BatchSource.datasetSize unset).
   */
  datasetSize: number | null;
  /**
   * The transfer set's labels and rows by index (TrainBatch indices), for a method that draws
   * samples besides the batch, e.g. CS-KD's same-class partners; null or absent when the data
   * source cannot give them.
   */
  transferSet?: TransferSet | null;
  /** A few training inputs ([n, ...sampleShape]) to probe feature shapes with, when available. */
  sample?: Tensor;
}

export interface Method {
  /**
   * Called once by the trainer before it builds the optimizer (so parts created here are
   * optimised and checkpointed); e.g. peers built from the student's spec, feature connectors.
   */
  setup?(ctx: SetupContext): void;
  /** Loss terms for one batch, each already weighted; the trainer minimises their sum. */
  losses(ctx: LossContext): Record<string, Tensor>;
  /** Extra trainable parts (connectors, discriminators): optimised, never exported. */
  extraModules?(): Module[];
  /** Intermediate outputs the method needs, by module path. */
  features?: { student: string[]; teacher: string[] };
  /**
   * The method differentiates with respect to the input (Sobolev training): the trainer makes
   * batch.x require grad before the student's forward pass, so studentLogits depend on it.
   */
  inputGrad?: boolean;
  /** Per-sample deterministic targets the teacher-output cache may serve (LossContext.cachedTargets). */
  cachedTargets?: CachedTarget[];
  /**
   * Updates per batch (default 1). With S > 1 the trainer calls losses() S times per batch, with
   * ctx.stage = 0 … S−1, and after each call runs backward and an optimizer step, so a stage sees
   * the weights the earlier ones updated (DML's Algorithm 1: each peer in turn). A stage's terms
   * must reach only the parameters it updates (the optimizer skips parameters without a gradient)
   * and carry names of their own. Not supported in data-parallel training.
   */
  stages?: number;
  /**
   * Warnings about the run found at setup (e.g. a term that is vacuous for these networks): the
   * run layer records them in result.json's `warnings` and in the summary.
   */
  warnings?(): string[];
  /**
   * Data-free methods: the inputs of this step, made by the method (a generator's images), which
   * replace the batch's before any forward pass. The trainer then feeds them to student and
   * teacher, the batch has no labels and no indices (the rows of the data source were not used),
   * and the data source only sets the steps per epoch and the batch size. Called inside the step's
   * scope, so what it makes is freed after the step.
   */
  inputs?(batch: Batch, info: StepInfo): Tensor;
  /**
   * The extra modules' own learning rate (absolute), when it differs from the student's (DAFL's
   * generator: Adam 0.2 vs 2e-3): they become a second parameter group of the same optimizer, and
   * the schedule scales both rates by the same factor.
   */
  extraLr?: number;
  /** A few of the method's synthesised inputs ([n, ...inputShape], e.g. for a picture in the run folder); null before setup. */
  samples?(n: number): Tensor | null;
}

/**
 * A method: its paper, its declared hyper-parameters and how to build it from their values. P is
 * the type of the values (ParamsOf the declarations); the registry's list holds specs with P
 * erased to Params, and resolveParams is the one door from untyped values to a spec's `create`.
 */
export interface MethodSpec<P = Params> {
  name: string;
  summary: string;
  /** Paper reference: authors, title, venue and year. */
  paper: string;
  /** In one line, how the method differs from that paper (`kdistill methods` prints it). */
  differs?: string;
  needsTeacher: boolean;
  /** How a method that needs no teacher file relates to one, for `kdistill methods` (default: 'no teacher'). */
  teacherUse?: string;
  /** Declarations by camelCase key (src/methods/params.ts builders: num, int, choice, struct, …). */
  params: ParamDecls;
  create(params: P): Method;
}

/**
 * A spec whose `create` receives its declarations' values typed: with
 * `params: { temperature: num({...}), measure: choice(MEASURES, {...}) }`, `create(p)` sees
 * `p.temperature: number` and `p.measure: Measure`.
 */
export function defineMethod<D extends ParamDecls>(spec: Omit<MethodSpec, 'params' | 'create'> & { params: D; create(params: ParamsOf<D>): Method }): MethodSpec<ParamsOf<D>> {
  return spec;
}

/** Fills defaults and checks every given value against its declaration (src/methods/params.ts). */
export function resolveParams<P>(spec: MethodSpec<P>, given: Params, where = `method '${spec.name}'`): P {
  return resolveDeclared(spec.params, given, where) as P;
}

/** The labels of a batch, or a clear error for methods that cannot run on unlabeled data. */
export function requireLabels(ctx: LossContext, method: string, why: string): Tensor {
  if (ctx.batch.y === null) throw new Error(`method '${method}' needs labelled batches (${why}); this batch has no labels`);
  return ctx.batch.y;
}

/** The teacher's logits, or a clear error when the run has no teacher. */
export function requireTeacherLogits(ctx: LossContext, method: string): Tensor {
  if (ctx.teacherLogits === null) throw new Error(`method '${method}' needs a teacher, but none was given`);
  return ctx.teacherLogits;
}
