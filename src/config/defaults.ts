// The defaults of a run, in one place. An experiment file's omitted fields, the library API's
// omitted options (distill, fit: they build an experiment and run it through src/run) and the
// specialists' fine-tuning take these; docs/defaults.md lists them for users.
import type { OptimizerSpec } from '../optim/optimizer.js';
import type { ScheduleSpec } from '../optim/schedules.js';

/** Plain SGD with momentum (no Nesterov, no weight decay): the setting of most KD papers' baselines. */
export const DEFAULT_OPTIMIZER: Readonly<OptimizerSpec> = Object.freeze({ name: 'sgd', lr: 0.1, momentum: 0.9 });
/** A constant learning rate: a schedule is a choice the user makes and records. */
export const DEFAULT_SCHEDULE: Readonly<ScheduleSpec> = Object.freeze({ name: 'constant' }) as ScheduleSpec;
export const DEFAULT_BATCH_SIZE = 128;
export const DEFAULT_SEED = 0;
/** libtorch threads: 1, so runs are reproducible and parallel runs do not oversubscribe the cores. */
export const DEFAULT_THREADS = 1;
/** Specialists start from the trained generalist, so they fine-tune at a tenth of the from-scratch rate. */
export const SPECIALIST_OPTIMIZER: Readonly<OptimizerSpec> = Object.freeze({ name: 'sgd', lr: 0.01, momentum: 0.9 });
/** Specialists' epochs over `samplesPerEpoch` samples drawn half from their subset (`subsetFraction`). */
export const SPECIALIST_EPOCHS = 2;
/**
 * Data-parallel gradient exchange (`distributed:` in an experiment), DDP's defaults: each bucket's
 * all-reduce overlaps backward; buckets of 25 MB, the first (the last layers' gradients, ready
 * first) of 1 MB so that its exchange starts early.
 */
export const DEFAULT_DISTRIBUTED: Readonly<DistributedSpec> = Object.freeze({ overlap: true, bucketMb: 25, firstBucketMb: 1 });

export interface DistributedSpec {
  /** All-reduce each bucket as soon as backward has its gradients (false: all after backward). */
  overlap: boolean;
  bucketMb: number;
  firstBucketMb: number;
}
