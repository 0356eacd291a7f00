// Where soft targets come from. A Teacher is frozen and in eval mode by construction: it only
// exposes outputs computed without gradients to its parameters.
import type { Tensor } from '../tensor/tensor.js';

export interface Teacher {
  /** Human-readable source, e.g. 'checkpoint runs/teacher/model.safetensors'. */
  readonly description: string;
  /** Content hash of the weights: keys the teacher-output cache. */
  readonly checksum: string;
  readonly numClasses: number;
  readonly numParameters: number;
  /** The class order it was trained with, when known (a kdistill checkpoint records it); checked against the data's. */
  readonly classNames?: readonly string[];
  /**
   * The normalisation its inputs had in training, when known (a kdistill checkpoint records its
   * run's data.normalize); undefined: raw inputs. See src/teachers/pipeline.ts.
   */
  readonly inputNormalization?: { readonly mean: readonly number[]; readonly std: readonly number[] };
  /** Logits for a batch, computed under noGrad in eval mode. */
  logits(x: Tensor): Tensor;
  /**
   * Logits as a differentiable function of x, still with frozen weights and in eval mode
   * (input-gradient methods: boundary-supporting samples, Sobolev training).
   */
  logitsWithGrad?(x: Tensor): Tensor;
  /**
   * Logits of training-set rows by their dataset indices (a DataLoader batch's `indices`), for
   * teachers backed by a per-sample store such as the teacher-output cache; `x` is that batch.
   * The trainer prefers it to logits(x) when the batch carries indices. `epoch` (the trainer's,
   * from 0) picks the augmented view for a store of per-epoch views (src/teachers/view-cache.ts).
   */
  logitsAt?(indices: Int32Array, x: Tensor, epoch?: number): Tensor;
  /** Logits plus named intermediate outputs (feature-based methods). */
  features?(x: Tensor, names: string[]): { output: Tensor; features: Record<string, Tensor> };
  /**
   * Logits plus named intermediate outputs as differentiable functions of x (frozen weights, eval
   * mode): data-free methods train a generator through the teacher (DAFL).
   */
  featuresWithGrad?(x: Tensor, names: string[]): { output: Tensor; features: Record<string, Tensor> };
}

/**
 * A per-sample target that is a deterministic function of (teacher, sample, label) — e.g. the
 * teacher's target-class input gradient — and so can be stored in the teacher-output cache.
 */
export interface CachedTarget {
  /** Tensor name in the cache file (stored as `target.<name>`) and key of LossContext.cachedTargets (src/methods/method.ts). */
  name: string;
  /** The settings the values depend on (e.g. output mode and temperature); part of the cache key. */
  key: string;
  /**
   * The targets [B, ...shape] of the teacher on inputs x [B, ...] with labels y (int64 [B], or null
   * on unlabeled data). Called by the cache's build pass with gradients enabled.
   */
  compute(teacher: Teacher, x: Tensor, y: Tensor | null): Tensor;
}
