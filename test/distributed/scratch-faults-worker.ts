// One rank of the collective scratch-buffer test (overlap.test.ts): after a few warm-up rounds,
// counts this process's minor page faults over N rounds of (a) a plain all-reduce of a 1 MiB
// tensor and (b) an overlapped step (DataParallel) of one 1 MiB parameter, and prints them as JSON.
//
//   node scratch-faults-worker.js '{"rounds":20}'   with RANK, WORLD_SIZE, MASTER_PORT set
import { resourceUsage } from 'node:process';
import { setNumThreads } from '../../src/tensor/torch.js';
import { ones, zeros } from '../../src/tensor/factories.js';
import { tidy } from '../../src/tensor/scope.js';
import { ProcessGroup } from '../../src/distributed/group.js';
import { DataParallel } from '../../src/distributed/data-parallel.js';

const o = JSON.parse(process.argv[2]!) as { rounds: number };
setNumThreads(1);
const rank = Number(process.env.RANK);
const pg = await ProcessGroup.init({ worldSize: Number(process.env.WORLD_SIZE), rank, masterAddr: '127.0.0.1', masterPort: Number(process.env.MASTER_PORT) });
const N = 1 << 18; // 1 MiB of float32, the MLP benchmark's gradient bucket size
const flat = zeros([N]).keep();
const w = zeros([N]).requiresGrad_(true).keep();
const x = ones([N]).keep();
const params = [w]; // one array: DataParallel keeps its buckets for the same list
const dp = new DataParallel(pg, { overlap: true });
const batch = { x, y: null };

const faultsOver = (f: () => void): number => {
  for (let i = 0; i < 3; i++) f(); // warm-up: first-touch faults of buffers that then stay
  pg.barrier();
  const before = resourceUsage().minorPageFault;
  for (let i = 0; i < o.rounds; i++) f();
  return resourceUsage().minorPageFault - before;
};
const allreduce = faultsOver(() => pg.allreduce([flat], 'sum'));
const reducer = faultsOver(() => {
  w.grad = null;
  tidy(() => {
    const loss = w.mul(x).sum();
    dp.beforeBackward(loss, params, batch);
    loss.backward();
  });
  dp.reduceGradients(params, batch);
});
process.stdout.write(JSON.stringify({ rank, allreduce, reducer }) + '\n');
pg.destroy();
