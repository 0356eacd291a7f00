// Gradient all-reduce in buckets, as DDP does: the gradients are flattened into ~25 MB buckets
// (one collective per bucket instead of one per parameter), each scaled by this rank's share of
// the global batch, summed across ranks, and copied back. The result is the gradient of the loss
// over the whole global batch, so N processes take the same steps as one process would.
//
// Two ways to run the exchange:
// - OverlappedGradients (the default, DDP's Reducer): buckets in reverse parameter order, each
//   all-reduced asynchronously as soon as backward has produced all of its gradients (autograd
//   hooks in native/distributed.cc), so the exchange overlaps the rest of backward;
// - GradientBuckets (`distributed.overlap: false`): the whole exchange after backward() has
//   finished, one blocking all-reduce per bucket.
import type { Tensor } from '../tensor/tensor.js';
import { cat, zerosLike } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { DEFAULT_DISTRIBUTED } from '../config/defaults.js';
import type { GradientReducer, ProcessGroup } from './group.js';

const MB = 1024 * 1024;
/** DDP's default bucket_cap_mb. */
export const DEFAULT_BUCKET_BYTES = DEFAULT_DISTRIBUTED.bucketMb * MB;
/**
 * DDP's first bucket (the last layers' gradients, ready first) is capped at 1 MB, so its exchange
 * starts early in backward instead of waiting for 25 MB of gradients.
 */
export const DEFAULT_FIRST_BUCKET_BYTES = DEFAULT_DISTRIBUTED.firstBucketMb * MB;

const BYTES: Record<string, number> = { float16: 2, float32: 4, float64: 8 };

/**
 * Indices into `params`, taken in `order`, cut into buckets of at most `bucketBytes` (the first at
 * most `firstBucketBytes`; a parameter larger than the cap gets a bucket of its own), one dtype
 * per bucket. Parameters that need no gradient are left out.
 */
export function assignBuckets(params: Tensor[], order: number[], bucketBytes: number, firstBucketBytes = bucketBytes): number[][] {
  const buckets: number[][] = [];
  let cur: number[] = [];
  let bytes = 0;
  for (const i of order) {
    const p = params[i]!;
    if (!p.requiresGrad) continue;
    const size = p.numel() * (BYTES[p.dtype] ?? 4);
    const cap = buckets.length === 0 ? firstBucketBytes : bucketBytes;
    if (cur.length && (bytes + size > cap || params[cur[0]!]!.dtype !== p.dtype)) {
      buckets.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(i);
    bytes += size;
  }
  if (cur.length) buckets.push(cur);
  return buckets;
}

/** The synchronous exchange: after backward, one blocking all-reduce per bucket (parameter order). */
export class GradientBuckets {
  /** Parameters per bucket, in parameter order; a bucket holds one dtype. */
  readonly buckets: Tensor[][];

  constructor(params: Tensor[], readonly bucketBytes = DEFAULT_BUCKET_BYTES) {
    this.buckets = assignBuckets(params, params.map((_, i) => i), bucketBytes).map((b) => b.map((i) => params[i]!));
  }

  /**
   * Replaces every parameter's gradient by Σ_ranks weight_r · grad_r. With weight_r = this rank's
   * rows / global rows and mean-reduced losses, that is the gradient of the global batch's mean
   * loss. A parameter without a gradient here counts as zero; it receives the others' sum.
   */
  allreduce(pg: ProcessGroup, weight: number): void {
    for (const bucket of this.buckets) {
      tidy(() => noGrad(() => {
        const grads = bucket.map((p) => p.grad);
        const flat = cat(grads.map((g, i) => (g ?? zerosLike(bucket[i]!)).reshape(-1)));
        if (weight !== 1) flat.mul_(weight);
        pg.allreduce([flat], 'sum');
        let off = 0;
        bucket.forEach((p, i) => {
          const n = p.numel();
          const part = flat.narrow(0, off, n).view(p.shape);
          const g = grads[i];
          if (g) g.copy_(part);
          else p.grad = part.clone();
          off += n;
        });
      }));
    }
  }
}

/**
 * The overlapped exchange (DDP's Reducer): `prepare(loss, weight)` before `loss.backward()`, then
 * `finalize()` before the optimizer step. Afterwards every gradient is Σ_ranks weight_r · grad_r,
 * as with GradientBuckets, except for a parameter that no rank gave a gradient in this step: it
 * keeps the gradient it had (none after zeroGrad), as in a single process, where the optimizer
 * then leaves it alone. A parameter used on some ranks only gets their sum, as DDP's
 * find_unused_parameters gives.
 */
export class OverlappedGradients {
  /** Parameters per bucket, in the order their all-reduces start (reverse parameter order). */
  readonly buckets: Tensor[][];
  /** How many buckets' all-reduces started before the last finalize(), i.e. overlapped backward. */
  overlapped = 0;
  #reducer: GradientReducer;

  constructor(pg: ProcessGroup, params: Tensor[], o: { bucketBytes?: number; firstBucketBytes?: number } = {}) {
    const trainable = params.filter((p) => p.requiresGrad);
    const order = trainable.map((_, i) => trainable.length - 1 - i);
    const idx = assignBuckets(trainable, order, o.bucketBytes ?? DEFAULT_BUCKET_BYTES, o.firstBucketBytes ?? DEFAULT_FIRST_BUCKET_BYTES);
    this.buckets = idx.map((b) => b.map((i) => trainable[i]!));
    this.#reducer = pg.createReducer(trainable, idx);
  }

  /** Before backward from `loss`: this rank's gradients will count `weight` times in the sum. */
  prepare(loss: Tensor, weight: number): void {
    this.#reducer.prepare(weight, [loss]);
  }

  /** After backward: waits for every bucket's all-reduce and writes the sums into the gradients. */
  finalize(): void {
    this.overlapped = this.#reducer.finalize();
  }

  /** Removes the autograd hooks (the process group's destroy() does it too). */
  destroy(): void {
    this.#reducer.destroy();
  }
}
