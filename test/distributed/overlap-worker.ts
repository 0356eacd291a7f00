// One rank of the overlapped all-reduce test (overlap.test.ts): a few SGD steps of a tiny MLP on
// fixed random batches of 13 rows (so the two ranks' shards, 7 and 6 rows, weigh differently),
// driven through DataParallel exactly as the trainer drives it. Besides the MLP it has a parameter
// no rank uses and one only rank 1 uses. Optionally rank 1 is slow: it sleeps before backward on
// even steps and between backward and the exchange's end on odd ones. Prints the final weights
// and, per step, the buckets whose all-reduce started during backward, as JSON.
//
//   node overlap-worker.js '{"mode":"overlap"|"sync"|"single","steps":6,"slowRank":1}'
// with RANK, WORLD_SIZE, MASTER_PORT in the environment (mode single: none of them).
import { manualSeed, setNumThreads } from '../../src/tensor/torch.js';
import { randn, randint, rand } from '../../src/tensor/factories.js';
import * as F from '../../src/tensor/functional.js';
import { tidy } from '../../src/tensor/scope.js';
import { SGD } from '../../src/optim/optimizer.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { ProcessGroup } from '../../src/distributed/group.js';
import { DataParallel } from '../../src/distributed/data-parallel.js';
import { shardBatch } from '../../src/distributed/shard.js';

const o = JSON.parse(process.argv[2]!) as { mode: 'overlap' | 'sync' | 'single'; steps: number; slowRank?: number };
setNumThreads(1);
const world = o.mode === 'single' ? 1 : Number(process.env.WORLD_SIZE);
const rank = o.mode === 'single' ? 0 : Number(process.env.RANK);
const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

manualSeed(11);
const param = (shape: number[]): Tensor => tidy(() => rand(shape).sub(0.5)).requiresGrad_(true).keep();
const names = ['w1', 'b1', 'unused', 'w2', 'b2', 'partial', 'w3', 'b3'];
const shapes = [[16, 20], [16], [8], [16, 16], [16], [4], [4, 16], [4]];
const params = shapes.map(param);
const p = Object.fromEntries(names.map((n, i) => [n, params[i]!])) as Record<string, Tensor>;
const opt = new SGD(params, { lr: 0.1, momentum: 0.9 });
const pg = o.mode === 'single' ? null : await ProcessGroup.init({ worldSize: world, rank, masterAddr: '127.0.0.1', masterPort: Number(process.env.MASTER_PORT) });
// Buckets of a few hundred bytes: the 8 parameters make 5 buckets, so their order matters.
const dp = pg ? new DataParallel(pg, { overlap: o.mode === 'overlap', bucketBytes: 1100, firstBucketBytes: 80 }) : null;
const overlapped: number[] = [];
for (let step = 0; step < o.steps; step++) {
  manualSeed(100 + step); // the same global batch on every rank
  const whole = { x: randn([13, 20]).keep(), y: randint(0, 4, [13]).keep() };
  const batch = dp ? shardBatch(whole, rank, world) : whole;
  const slow = o.slowRank === rank;
  if (slow && step % 2 === 0) sleep(60);
  opt.zeroGrad();
  tidy(() => {
    const h = F.relu(F.linear(F.relu(F.linear(batch.x, p.w1!, p.b1!)), p.w2!, p.b2!));
    let loss = F.crossEntropy(F.linear(h, p.w3!, p.b3!), batch.y!);
    // Used by rank 1 only: rank 0 must still take part in its bucket's exchange.
    if (rank === 1) loss = loss.add(p.partial!.square().sum().mul(0.5));
    dp?.beforeBackward(loss, params, batch);
    loss.backward();
  });
  if (slow && step % 2 === 1) sleep(60);
  dp?.reduceGradients(params, batch);
  overlapped.push(dp?.overlappedBuckets ?? 0);
  opt.step();
  batch.x.dispose();
  batch.y!.dispose();
}
const out = {
  rank, buckets: dp?.bucketCount ?? 0, overlapped,
  weights: Object.fromEntries(names.map((n) => [n, Array.from(p[n]!.detach().contiguous().data<Float32Array>())])),
  unusedGrad: p.unused!.grad !== null,
};
process.stdout.write(JSON.stringify(out) + '\n');
pg?.destroy();
