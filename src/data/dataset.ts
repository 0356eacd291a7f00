// An in-memory labelled dataset: what readers produce and loaders batch.

/** A file a dataset was read from, for run records. */
export interface DataSourceFile {
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
}

export interface Dataset {
  /** Identifies the data for caches and run records, e.g. 'fashion-mnist/train'. */
  readonly name: string;
  /** Sample shape without the batch dimension, e.g. [1, 28, 28] or [16]. */
  readonly sampleShape: number[];
  /** Row-major samples, float32, length = size * prod(sampleShape). */
  readonly x: Float32Array;
  /** Labels as class indices; null for unlabeled data. */
  readonly y: Int32Array | null;
  readonly size: number;
  readonly numClasses: number;
  readonly classNames?: string[];
  /** Files the data came from (readers fill this in; subsets inherit it). */
  readonly sources?: DataSourceFile[];
  /**
   * For a subset: the dataset it was ultimately cut from and, per sample, its index there, so
   * per-sample caches (e.g. teacher logits) computed on the full data can be looked up.
   */
  readonly origin?: { readonly name: string; readonly indices: Int32Array };
}

/** Number of float elements in one sample. */
export function sampleSize(ds: Pick<Dataset, 'sampleShape'>): number {
  return ds.sampleShape.reduce((a, b) => a * b, 1);
}
