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

/**
 * The transfer set's rows by index, for a method that draws samples besides the batch (CS-KD's
 * same-class partners): methods see it as SetupContext.transferSet.
 */
export interface TransferSet {
  /** The class of every row (datasetSize of them); null on unlabeled data. */
  readonly labels: Int32Array | null;
  /**
   * The inputs of the given rows as one [n, ...sampleShape] tensor, prepared as a training batch
   * is (augmentation included, from a random stream of its own keyed on epoch and `batch`, any
   * integer naming the draw: CS-KD passes the global step).
   */
  rows(indices: Int32Array, epoch: number, batch: number): Tensor;
}

/** Batches of one epoch, from a given batch index on (resume mid-epoch). */
export interface BatchSource {
  readonly batchesPerEpoch: number;
  /** Rows of the dataset the batches' `indices` point into (methods see it as SetupContext.datasetSize); unset if unknown. */
  readonly datasetSize?: number;
  /** Those rows by index (SetupContext.transferSet); unset when the source cannot give them. */
  readonly transferSet?: TransferSet;
  batches(epoch: number, fromBatch: number): Iterable<TrainBatch> | AsyncIterable<TrainBatch>;
}
