// DataLoader: seeded, resumable batching with optional augmentation and background preparation.
//
// Determinism: the sample order of epoch e is a function of (seed, e) only, and the augmentation
// randomness of batch b of epoch e a function of (seed, e, b) only — or, with `augmentSeed`, that
// of each sample a function of (augmentSeed, e, sample) only (replayable views, batch.ts). A run resumed at (e, b) thus
// sees exactly the batches an uninterrupted run would have, and worker and main-thread modes
// produce bit-identical batches.
//
// Ownership: every Batch holds fresh tensors; the consumer disposes them (batch.x.dispose(),
// batch.y?.dispose(), or by creating them inside a tidy() scope).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { tensor } from '../tensor/factories.js';
import type { Tensor } from '../tensor/tensor.js';
import { isSerializable, type Augmentation } from './augment.js';
import { buildBatch, ORDER_STREAM, type BatchArrays, type BatchSource, type ViewReplay } from './batch.js';
import { sampleSize, type Dataset } from './dataset.js';
import { Rng } from './rng.js';
import type { TransferSet } from './source.js';

export interface DataLoaderOptions {
  batchSize: number;
  /** Reshuffle every epoch (default true); false keeps dataset order. */
  shuffle?: boolean;
  /** Seed for order and augmentation (default 0). */
  seed?: number;
  /** Drop the last, smaller batch (default false). */
  dropLast?: boolean;
  /** Applied to each batch [B, ...sampleShape] after gathering, in order. */
  augment?: Augmentation | readonly Augmentation[];
  /**
   * Replayable augmentation: each sample's view in epoch e depends on (augmentSeed, e, its index
   * in the source dataset, Dataset.origin) only, not on `seed` or the batch it is in, so the
   * teacher's output on it can be cached and shared between runs. Default: none, i.e. the batch's
   * augmentation is drawn from (seed, epoch, batch).
   */
  augmentSeed?: number;
  /**
   * 'worker': build upcoming batches on a worker thread while the consumer trains;
   * 'sync': build each batch when asked; 'auto' (default): worker when a batch is big enough for
   * the overlap to pay for the thread hand-off, there are ≥2 cores, and augmentations are data.
   */
  prefetch?: 'auto' | 'worker' | 'sync';
  /** Batches prepared ahead in worker mode (default 2). */
  prefetchDepth?: number;
}

export interface Batch {
  /** float32 [B, ...sampleShape]; owned by the consumer. */
  x: Tensor;
  /** int64 [B] class indices, or null for unlabeled data; owned by the consumer. */
  y: Tensor | null;
  /** Dataset indices of the rows in this batch (see Dataset.origin to map subsets back). */
  indices: Int32Array;
  epoch: number;
  batch: number;
}

/**
 * 'auto' picks the worker when batchFloats × (1 + number of augmentations) reaches this: about
 * 1 ms of gathering/augmenting on this class of CPU, well above a warm worker's ~0.1–0.2 ms
 * hand-off. Below it (e.g. Fashion-MNIST batch 128 without augmentation, ~0.3 ms) the thread
 * costs more than it hides. Measured with test/data/bench-prefetch.ts.
 */
export const AUTO_WORKER_MIN_WORK = 1 << 18;

export class DataLoader {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly augmentations: readonly Augmentation[];
  /** Set with DataLoaderOptions.augmentSeed. */
  readonly views: ViewReplay | undefined;
  #mode: 'worker' | 'sync';
  #auto: boolean;
  readonly prefetchDepth: number;
  #src: BatchSource;
  #order: { epoch: number; perm: Int32Array } | null = null;
  #worker: Worker | null = null;
  #nextId = 0;
  #pending = new Map<number, { resolve: (r: BatchArrays) => void; reject: (e: Error) => void }>();
  #failure: Error | null = null;

  constructor(ds: Dataset, o: DataLoaderOptions) {
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new RangeError(`DataLoader: batchSize must be a positive integer, got ${o.batchSize}`);
    const d = sampleSize(ds);
    if (ds.x.length !== ds.size * d) throw new RangeError(`DataLoader: dataset '${ds.name}' has ${ds.x.length} floats, expected size ${ds.size} × ${d}`);
    if (ds.y && ds.y.length !== ds.size) throw new RangeError(`DataLoader: dataset '${ds.name}' has ${ds.y.length} labels for ${ds.size} samples`);
    this.dataset = ds;
    this.batchSize = o.batchSize;
    this.shuffle = o.shuffle ?? true;
    this.seed = o.seed ?? 0;
    if (!Number.isSafeInteger(this.seed)) throw new TypeError(`DataLoader: seed must be a safe integer, got ${this.seed}`);
    this.dropLast = o.dropLast ?? false;
    this.augmentations = o.augment === undefined ? [] : typeof o.augment === 'function' || !Array.isArray(o.augment) ? [o.augment as Augmentation] : [...o.augment];
    if (o.augmentSeed !== undefined && !Number.isSafeInteger(o.augmentSeed)) throw new TypeError(`DataLoader: augmentSeed must be a safe integer, got ${o.augmentSeed}`);
    this.views = o.augmentSeed === undefined ? undefined : { seed: o.augmentSeed, ids: ds.origin?.indices ?? null };
    this.prefetchDepth = Math.max(1, Math.floor(o.prefetchDepth ?? 2));
    const want = o.prefetch ?? 'auto';
    const serializable = isSerializable(this.augmentations);
    if (want === 'worker' && !serializable) throw new TypeError('DataLoader: prefetch "worker" needs built-in augmentations (functions cannot cross threads)');
    this.#auto = want === 'auto';
    this.#mode = want === 'worker' || (want === 'auto' && serializable && availableParallelism() >= 2 && Math.min(this.batchSize, ds.size) * d * (1 + this.augmentations.length) >= AUTO_WORKER_MIN_WORK)
      ? 'worker' : 'sync';
    this.#src = { x: ds.x, y: ds.y, sampleShape: [...ds.sampleShape] };
  }

  /** How batches are built: on a worker thread ahead of time, or on demand on this thread. */
  get mode(): 'worker' | 'sync' {
    return this.#mode;
  }

  /** Batches per epoch. */
  get numBatches(): number {
    const n = this.dataset.size / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** The sample order of an epoch: a function of (seed, epoch) only. */
  order(epoch: number): Int32Array {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`DataLoader: epoch must be a non-negative integer, got ${epoch}`);
    if (this.#order?.epoch !== epoch) {
      const n = this.dataset.size;
      const perm = this.shuffle ? new Rng(this.seed, ORDER_STREAM, epoch).permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
      this.#order = { epoch, perm };
    }
    return this.#order.perm;
  }

  /** Dataset indices of batch `batch` of `epoch`. */
  batchIndices(epoch: number, batch: number): Int32Array {
    if (!Number.isInteger(batch) || batch < 0 || batch >= this.numBatches) {
      throw new RangeError(`DataLoader: batch ${batch} out of range (epoch has ${this.numBatches} batches)`);
    }
    const start = batch * this.batchSize;
    return this.order(epoch).slice(start, Math.min(start + this.batchSize, this.dataset.size));
  }

  /** The arrays of one batch, built on this thread. */
  arrays(epoch: number, batch: number): BatchArrays & { indices: Int32Array } {
    const indices = this.batchIndices(epoch, batch);
    return { ...buildBatch(this.#src, indices, this.augmentations, this.seed, epoch, batch, this.views), indices };
  }

  /**
   * Rows picked by a method for batch `batch` of `epoch` (TransferSet.rows): gathered and augmented
   * as a batch is, with augmentation stream −1 − batch, which no real batch uses, so they are not
   * cropped or flipped in step with the batch's own samples.
   */
  rows(indices: Int32Array, epoch: number, batch: number): Tensor {
    for (const r of indices) {
      if (!Number.isInteger(r) || r < 0 || r >= this.dataset.size) throw new RangeError(`DataLoader.rows: row ${r} out of range (the dataset has ${this.dataset.size})`);
    }
    const a = buildBatch(this.#src, indices, this.augmentations, this.seed, epoch, -1 - batch);
    return tensor(a.x, { shape: [indices.length, ...this.dataset.sampleShape] });
  }

  /** The dataset's labels and rows, as a BatchSource's transferSet. */
  get transferSet(): TransferSet {
    return { labels: this.dataset.y, rows: (indices, epoch, batch) => this.rows(indices, epoch, batch) };
  }

  /** One batch as tensors, built on this thread. */
  batch(epoch: number, batch: number): Batch {
    const a = this.arrays(epoch, batch);
    return this.#toBatch(a, a.indices, epoch, batch);
  }

  #toBatch(a: BatchArrays, indices: Int32Array, epoch: number, batch: number): Batch {
    const b = indices.length;
    const x = tensor(a.x, { shape: [b, ...this.dataset.sampleShape] });
    const y = a.y ? tensor(a.y, { shape: [b] }) : null;
    return { x, y, indices, epoch, batch };
  }

  /** Iterates an epoch synchronously from `startBatch` (no background preparation). */
  *epochSync(epoch: number, o: { startBatch?: number } = {}): Generator<Batch> {
    for (let b = this.#start(o.startBatch); b < this.numBatches; b++) yield this.batch(epoch, b);
  }

  /**
   * Iterates an epoch from `startBatch` (to resume mid-epoch). In worker mode the next
   * `prefetchDepth` batches are being built while the consumer works on the current one.
   */
  async *epoch(epoch: number, o: { startBatch?: number } = {}): AsyncGenerator<Batch> {
    const start = this.#start(o.startBatch);
    const end = this.numBatches;
    if (this.#mode === 'sync') {
      for (let b = start; b < end; b++) yield this.batch(epoch, b);
      return;
    }
    const queue: { indices: Int32Array; p: Promise<BatchArrays> }[] = [];
    let next = start;
    const fill = (): void => {
      while (next < end && queue.length < this.prefetchDepth) {
        const indices = this.batchIndices(epoch, next);
        const p = this.#request(epoch, next, indices);
        p.catch(() => {}); // awaited below; this only stops an early exit leaving it unhandled
        queue.push({ indices, p });
        next++;
      }
    };
    for (let b = start; b < end; b++) {
      fill();
      const head = queue.shift()!;
      let arrays: BatchArrays;
      try {
        arrays = await head.p;
      } catch (e) {
        // In 'auto' mode a worker that cannot run (e.g. sources run without compiling, so
        // loader-worker.js is absent) is an optimisation lost, not an error: continue on this thread.
        if (!this.#auto || this.#failure === null) throw e;
        this.#mode = 'sync';
        for (; b < end; b++) yield this.batch(epoch, b);
        return;
      }
      fill(); // the worker starts on later batches before the consumer gets this one
      yield this.#toBatch(arrays, head.indices, epoch, b);
    }
  }

  #start(startBatch = 0): number {
    if (!Number.isInteger(startBatch) || startBatch < 0 || startBatch > this.numBatches) {
      throw new RangeError(`DataLoader: startBatch ${startBatch} out of range [0, ${this.numBatches}]`);
    }
    return startBatch;
  }

  #ensureWorker(): Worker {
    if (this.#failure) throw this.#failure;
    if (this.#worker) return this.#worker;
    // Workers read the samples from shared memory; data not already shared is copied there once.
    const share = <T extends Float32Array | Int32Array>(a: T, make: (n: number) => T): T => {
      if (a.buffer instanceof SharedArrayBuffer) return a;
      const s = make(a.length);
      s.set(a);
      return s;
    };
    this.#src = {
      x: share(this.#src.x, (n) => new Float32Array(new SharedArrayBuffer(n * 4))),
      y: this.#src.y && share(this.#src.y, (n) => new Int32Array(new SharedArrayBuffer(n * 4))),
      sampleShape: this.#src.sampleShape,
    };
    const w = new Worker(new URL('./loader-worker.js', import.meta.url));
    w.on('message', (m: { id: number; x?: Float32Array; y?: BigInt64Array | null; error?: string }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (this.#pending.size === 0) w.unref();
      if (m.error !== undefined) p.reject(new Error(`DataLoader worker: ${m.error}`));
      else p.resolve({ x: m.x!, y: m.y ?? null });
    });
    const fail = (e: Error): void => {
      this.#failure = new Error(`DataLoader worker failed: ${e.message}`, { cause: e });
      for (const p of this.#pending.values()) p.reject(this.#failure);
      this.#pending.clear();
      this.#worker = null;
    };
    w.on('error', fail);
    w.on('exit', (code) => { if (this.#worker === w) fail(new Error(`exited with code ${code}`)); });
    w.postMessage({ type: 'init', src: this.#src, augs: this.augmentations, seed: this.seed, views: this.views });
    // An idle worker must not keep the process alive; it is ref'd only while batches are pending.
    w.unref();
    this.#worker = w;
    return w;
  }

  #request(epoch: number, batch: number, indices: Int32Array): Promise<BatchArrays> {
    const w = this.#ensureWorker();
    const id = this.#nextId++;
    return new Promise<BatchArrays>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      w.ref();
      w.postMessage({ type: 'batch', id, epoch, batch, indices });
    });
  }

  /** Stops the worker thread (if any). The loader can still be used; a new worker starts on demand. */
  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = null;
    for (const p of this.#pending.values()) p.reject(new Error('DataLoader closed'));
    this.#pending.clear();
    if (w) await w.terminate();
  }
}
