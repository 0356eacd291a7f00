// An in-memory labelled dataset: what readers produce and loaders batch.

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
}
