// Sharded batches: every rank walks the same deterministic global batches (the DataLoader's
// order is a function of seed and epoch only) and keeps its contiguous slice of each. Building
// the whole global batch and slicing it (rather than building only the slice) keeps random
// augmentation identical to a single-process run, whose augmentation stream is per global batch.
import type { BatchSource, TrainBatch } from '../train/trainer.js';

/** This rank's rows of a global batch of n rows, and its weight in the gradient average. */
export function shardRange(n: number, rank: number, world: number): { start: number; count: number; weight: number } {
  // A batch smaller than the group (a short last batch) is processed whole by every rank, each
  // with weight 1/world: the averaged gradient is still the batch's gradient, and no rank has to
  // run a forward pass on zero rows.
  if (n < world) return { start: 0, count: n, weight: 1 / world };
  const { start, count } = splitRange(n, rank, world);
  return { start, count, weight: count / n };
}

/** Rank's contiguous part of n items split as evenly as possible (the first n % world get one more). */
export function splitRange(n: number, rank: number, world: number): { start: number; count: number } {
  const base = Math.floor(n / world), extra = n % world;
  return { start: rank * base + Math.min(rank, extra), count: base + (rank < extra ? 1 : 0) };
}

const weights = new WeakMap<TrainBatch, number>();

/** The gradient weight of a batch a sharded source yielded (1 for any other batch). */
export function shardWeight(b: TrainBatch): number {
  return weights.get(b) ?? 1;
}

/** `source`'s batches, each cut down to this rank's slice (its `indices` stay the global dataset rows). */
export function shardedSource(source: BatchSource, rank: number, world: number): BatchSource {
  return {
    batchesPerEpoch: source.batchesPerEpoch,
    ...(source.datasetSize !== undefined ? { datasetSize: source.datasetSize } : {}),
    ...(source.transferSet ? { transferSet: source.transferSet } : {}), // rows are global indices on every rank
    async *batches(epoch: number, fromBatch: number): AsyncIterable<TrainBatch> {
      for await (const b of source.batches(epoch, fromBatch)) yield shardBatch(b, rank, world);
    },
  };
}

export function shardBatch(b: TrainBatch, rank: number, world: number): TrainBatch {
  const n = b.x.shape[0]!;
  const { start, count, weight } = shardRange(n, rank, world);
  let out: TrainBatch;
  if (count === n) out = { ...b };
  else {
    // Copies, so the slices own their memory and the global batch can go now.
    const x = b.x.narrow(0, start, count).clone();
    const y = b.y ? b.y.narrow(0, start, count).clone() : null;
    b.x.dispose();
    b.y?.dispose();
    out = { x, y, ...(b.indices ? { indices: b.indices.subarray(start, start + count) } : {}) };
  }
  weights.set(out, weight);
  return out;
}
