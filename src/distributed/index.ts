// Data-parallel training over several processes and machines on c10d process groups (Gloo).
export { ProcessGroup, PeerFailure, distributedFromEnv, checkOptions, parseMaster, isWriter, type DistributedOptions, type ReduceOp, type GradientReducer } from './group.js';
export { GradientBuckets, OverlappedGradients, assignBuckets, DEFAULT_BUCKET_BYTES, DEFAULT_FIRST_BUCKET_BYTES } from './buckets.js';
export { shardedSource, shardBatch, shardRange, splitRange, shardWeight } from './shard.js';
export { DataParallel, type DataParallelOptions } from './data-parallel.js';
export { parallelCacheOptions } from './cache.js';
export { launch, followLauncher, freePort, stripLauncherFlags, type LaunchOptions } from './launch.js';
export { distributedArgs, DISTRIBUTED_CLI_OPTIONS, type DistributedArgs } from './cli.js';
