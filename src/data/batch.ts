// Assembling one batch's arrays: gather rows, then augment. No tensors and no addon here, so the
// loader's worker thread can import it; the loader turns the arrays into tensors.
import { applyAugmentations, type Augmentation } from './augment.js';
import { Rng } from './rng.js';

/** Stream keys for Rng(seed, key, epoch[, batch]); fixed forever so runs stay reproducible. */
export const ORDER_STREAM = 0x0de5;
export const AUGMENT_STREAM = 0xa06;

export interface BatchSource {
  x: Float32Array;
  y: Int32Array | null;
  sampleShape: readonly number[];
}

export interface BatchArrays {
  x: Float32Array;
  /** int64 labels, ready for a one-memcpy int64 tensor. */
  y: BigInt64Array | null;
}

/** Builds batch `batch` of `epoch` from the given dataset rows (augmentation seeded by seed, epoch, batch). */
export function buildBatch(
  src: BatchSource, indices: Int32Array, augs: readonly Augmentation[], seed: number, epoch: number, batch: number,
): BatchArrays {
  const d = src.sampleShape.reduce((a, v) => a * v, 1);
  const b = indices.length;
  const x = new Float32Array(b * d);
  for (let i = 0; i < b; i++) {
    const r = indices[i]!;
    x.set(src.x.subarray(r * d, r * d + d), i * d);
  }
  let y: BigInt64Array | null = null;
  if (src.y) {
    y = new BigInt64Array(b);
    for (let i = 0; i < b; i++) y[i] = BigInt(src.y[indices[i]!]!);
  }
  if (augs.length > 0) applyAugmentations(augs, x, [b, ...src.sampleShape], new Rng(seed, AUGMENT_STREAM, epoch, batch));
  return { x, y };
}
