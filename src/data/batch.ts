// Assembling one batch's arrays: gather rows, then augment. No tensors and no addon here, so the
// loader's worker thread can import it; the loader turns the arrays into tensors.
import { applyAugmentations, type Augmentation } from './augment.js';
import { Rng } from './rng.js';

/** Stream keys for Rng(seed, key, epoch[, batch]); fixed forever so runs stay reproducible. */
export const ORDER_STREAM = 0x0de5;
export const AUGMENT_STREAM = 0xa06;
/** Rng(augmentSeed, VIEW_STREAM, epoch, sample id): one sample's replayable view (see ViewReplay). */
export const VIEW_STREAM = 0x71e3;

/**
 * Replayable augmentation (FKD, Shen & Xing 2022): the view of a sample in an epoch is a pure
 * function of (seed, epoch, sample id), not of the run's seed, the batch order or the batch it
 * lands in, so a cache can store the teacher's output on each view and runs that share `seed`
 * see the same views. `ids` name each dataset row (its index in the source dataset, so subsets
 * and splits of one dataset agree); null: the row number itself.
 */
export interface ViewReplay {
  readonly seed: number;
  readonly ids: Int32Array | null;
}

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

/**
 * Builds batch `batch` of `epoch` from the given dataset rows: augmentation seeded by (seed, epoch,
 * batch), or with `views`, each sample's by (views.seed, epoch, its id) alone.
 */
export function buildBatch(
  src: BatchSource, indices: Int32Array, augs: readonly Augmentation[], seed: number, epoch: number, batch: number, views?: ViewReplay,
): BatchArrays {
  const x = gatherRows(src, indices);
  const b = indices.length;
  let y: BigInt64Array | null = null;
  if (src.y) {
    y = new BigInt64Array(b);
    for (let i = 0; i < b; i++) y[i] = BigInt(src.y[indices[i]!]!);
  }
  if (augs.length > 0 && views) augmentViews(augs, x, src.sampleShape, views, () => epoch, indices);
  else if (augs.length > 0) applyAugmentations(augs, x, [b, ...src.sampleShape], new Rng(seed, AUGMENT_STREAM, epoch, batch));
  return { x, y };
}

/** The samples of dataset rows `rows`, one after another. */
export function gatherRows(src: BatchSource, rows: ArrayLike<number>): Float32Array {
  const d = src.sampleShape.reduce((a, v) => a * v, 1);
  const x = new Float32Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    x.set(src.x.subarray(r * d, r * d + d), i * d);
  }
  return x;
}

/**
 * Augments the samples of `x` (gathered from dataset rows `rows`) one by one, sample k of epoch
 * `epochOf(k)` drawing from Rng(views.seed, VIEW_STREAM, epoch, id of rows[k]): its replayable view.
 */
export function augmentViews(augs: readonly Augmentation[], x: Float32Array, sampleShape: readonly number[], views: ViewReplay,
  epochOf: (k: number) => number, rows: ArrayLike<number>): void {
  const d = sampleShape.reduce((a, v) => a * v, 1);
  const shape = [1, ...sampleShape];
  for (let k = 0; k < rows.length; k++) {
    const id = views.ids ? views.ids[rows[k]!]! : rows[k]!;
    applyAugmentations(augs, x.subarray(k * d, k * d + d), shape, new Rng(views.seed, VIEW_STREAM, epochOf(k), id));
  }
}
