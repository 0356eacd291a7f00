// What the trainer reads: tensor batches, one epoch at a time, resumable mid-epoch. A DataLoader
// (loader.ts) is made one in src/run; text's MultiLabelBatches and src/distributed's shards are
// others. Defined here, below the trainer, so that data sources need not import the trainer.
import type { Tensor } from '../tensor/tensor.js';

/**
 * One training batch; `indices` (rows of the source's dataset, as DataLoader yields them) lets a
 * cached teacher look its logits up and reaches methods as LossContext.indices.
 */
export interface TrainBatch {
  x: Tensor;
  y: Tensor | null;
  indices?: Int32Array;
}

/** Batches of one epoch, from a given batch index on (resume mid-epoch). */
export interface BatchSource {
  readonly batchesPerEpoch: number;
  /** Rows of the dataset the batches' `indices` point into (methods see it as SetupContext.datasetSize); unset if unknown. */
  readonly datasetSize?: number;
  batches(epoch: number, fromBatch: number): Iterable<TrainBatch> | AsyncIterable<TrainBatch>;
}
