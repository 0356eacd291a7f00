// Gradient all-reduce in buckets, as DDP does: the gradients are flattened into ~25 MB buckets
// (one collective per bucket instead of one per parameter), each scaled by this rank's share of
// the global batch, summed across ranks, and copied back. The result is the gradient of the loss
// over the whole global batch, so N processes take the same steps as one process would.
//
// Unlike DDP, the exchange starts after backward() has finished rather than overlapping it
// (autograd hooks per bucket): simpler, and on a CPU the backward pass and Gloo would compete for
// the same cores anyway.
import type { Tensor } from '../tensor/tensor.js';
import { cat, zerosLike } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import type { ProcessGroup } from './group.js';

/** DDP's default bucket_cap_mb. */
export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

const BYTES: Record<string, number> = { float16: 2, float32: 4, float64: 8 };

export class GradientBuckets {
  /** Parameters per bucket, in parameter order; a bucket holds one dtype. */
  readonly buckets: Tensor[][];

  constructor(params: Tensor[], readonly bucketBytes = DEFAULT_BUCKET_BYTES) {
    const buckets: Tensor[][] = [];
    let cur: Tensor[] = [];
    let bytes = 0;
    for (const p of params) {
      if (!p.requiresGrad) continue;
      const size = p.numel() * (BYTES[p.dtype] ?? 4);
      if (cur.length && (bytes + size > bucketBytes || cur[0]!.dtype !== p.dtype)) {
        buckets.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(p);
      bytes += size;
    }
    if (cur.length) buckets.push(cur);
    this.buckets = buckets;
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
