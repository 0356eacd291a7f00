// The trainer's data-parallel hooks (TrainOptions.parallel): the same weights on every rank at
// the start, bucketed gradient all-reduce before each optimizer step (overlapping backward, or
// after it with `overlap: false`; src/distributed/buckets.ts), and at each epoch's end the
// loss means and batch-norm running statistics reduced across ranks.
//
// Batch norm: each rank normalises with its own shard's batch statistics (as DDP without
// SyncBatchNorm does); the running mean/variance, which evaluation uses, are averaged across
// ranks at every epoch end, before evaluation and the checkpoint. SyncBN (an all-reduce inside
// every BN forward and backward) would cost two collectives per BN layer per step, and with the
// shards of one global batch drawn from the same shuffled order the per-shard statistics are
// close to the global ones.
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { TrainState } from '../train/checkpoint.js';
import type { TrainBatch, TrainParallel } from '../train/trainer.js';
import { GradientBuckets, OverlappedGradients, DEFAULT_BUCKET_BYTES, DEFAULT_FIRST_BUCKET_BYTES } from './buckets.js';
import { shardWeight } from './shard.js';
import type { ProcessGroup } from './group.js';

export interface DataParallelOptions {
  /** All-reduce each bucket while backward still runs (default true; false: after backward). */
  overlap?: boolean;
  bucketBytes?: number;
  /** The overlapped exchange's first bucket (the last layers' gradients). */
  firstBucketBytes?: number;
}

export class DataParallel implements TrainParallel {
  #buckets: GradientBuckets | OverlappedGradients | null = null;
  #params: Tensor[] | null = null;
  readonly overlap: boolean;
  readonly bucketBytes: number;
  readonly firstBucketBytes: number;

  constructor(readonly pg: ProcessGroup, o: DataParallelOptions = {}) {
    this.overlap = o.overlap ?? true;
    this.bucketBytes = o.bucketBytes ?? DEFAULT_BUCKET_BYTES;
    this.firstBucketBytes = o.firstBucketBytes ?? DEFAULT_FIRST_BUCKET_BYTES;
  }

  get rank(): number {
    return this.pg.rank;
  }
  get worldSize(): number {
    return this.pg.size;
  }

  start(modules: Module[], optimizer: Optimizer, state: TrainState): TrainState {
    const pg = this.pg;
    // Rank 0's loop position (its checkpoint, if it resumed) decides for everyone.
    const json = pg.broadcastBytes(pg.rank === 0 ? Buffer.from(JSON.stringify(state)) : null);
    const shared = JSON.parse(json.toString('utf8')) as TrainState;
    pg.broadcastTensors(modules.flatMap((m) => [...m.parameters(), ...m.namedBuffers().map(([, t]) => t)]));
    // Optimizer moments exist only after steps were taken (a resume).
    if (shared.step > 0) {
      const bytes = pg.broadcastBytes(pg.rank === 0 ? optimizer.stateDict() : null);
      if (pg.rank !== 0) optimizer.loadStateDict(bytes);
    }
    // Mid-epoch loss sums restart on the other ranks: rank 0's checkpoint holds only its own.
    return pg.rank === 0 ? shared : { ...shared, sums: {}, count: 0 };
  }

  #bucketsFor(params: Tensor[]): GradientBuckets | OverlappedGradients {
    if (this.#params !== params || !this.#buckets) {
      if (this.#buckets instanceof OverlappedGradients) this.#buckets.destroy();
      this.#buckets = this.overlap
        ? new OverlappedGradients(this.pg, params, { bucketBytes: this.bucketBytes, firstBucketBytes: this.firstBucketBytes })
        : new GradientBuckets(params, this.bucketBytes);
      this.#params = params;
    }
    return this.#buckets;
  }

  /** Buckets whose all-reduce started during the last step's backward (0 without overlap). */
  get overlappedBuckets(): number {
    return this.#buckets instanceof OverlappedGradients ? this.#buckets.overlapped : 0;
  }

  /** Bucket count of the exchange (after the first step). */
  get bucketCount(): number {
    return this.#buckets?.buckets.length ?? 0;
  }

  beforeBackward(loss: Tensor, params: Tensor[], batch: TrainBatch): void {
    const b = this.#bucketsFor(params);
    if (b instanceof OverlappedGradients) b.prepare(loss, shardWeight(batch));
  }

  reduceGradients(params: Tensor[], batch: TrainBatch): void {
    const b = this.#bucketsFor(params);
    if (b instanceof OverlappedGradients) b.finalize();
    else b.allreduce(this.pg, shardWeight(batch));
  }

  endEpoch(modules: Module[], sums: Record<string, number>, count: number): { sums: Record<string, number>; count: number } {
    // Rank 0's term names decide (a rank resumed mid-epoch may not have logged a term yet).
    const keys = JSON.parse(this.pg.broadcastBytes(this.pg.rank === 0 ? Buffer.from(JSON.stringify(Object.keys(sums).sort())) : null).toString('utf8')) as string[];
    const [total, ...values] = this.pg.sumNumbers([count, ...keys.map((k) => sums[k] ?? 0)]);
    const floatBuffers = modules.flatMap((m) => m.namedBuffers().map(([, t]) => t)).filter((t) => t.dtype.startsWith('float'));
    this.pg.averageTensors(floatBuffers);
    return { sums: Object.fromEntries(keys.map((k, i) => [k, values[i]!])), count: total! };
  }
}
