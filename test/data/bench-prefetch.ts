// Measures whether the DataLoader's worker prefetch pays off: Fashion-MNIST, one KD-sized MLP
// training step per batch (784-256-256-10, SGD), synchronous vs worker batch preparation.
// Not a test (no .test suffix): run `node dist/test/data/bench-prefetch.js [batches]`.
import { torch, tidy, F, SGD } from '../../src/index.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { DataLoader } from '../../src/data/loader.js';
import { horizontalFlip, normalize, randomCrop } from '../../src/data/augment.js';

const steps = Number(process.argv[2] ?? 200);
const ds = loadFashionMnist({ split: 'train' });
torch.manualSeed(0);
const p = (s: number[]) => torch.randn(s).mul(0.05).requiresGrad_(true);
const params = [p([256, 784]), p([256]), p([256, 256]), p([256]), p([10, 256]), p([10])];
const opt = new SGD(params, { lr: 0.01 });
const step = (x: any, y: any): void => {
  tidy(() => {
    const h1 = F.relu(F.linear(x.view(x.shape[0], -1), params[0]!, params[1]!));
    const h2 = F.relu(F.linear(h1, params[2]!, params[3]!));
    const loss = F.crossEntropy(F.linear(h2, params[4]!, params[5]!), y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
  });
};

// One loader per configuration, reused across repetitions like a real run reuses it across
// epochs; the first repetition (worker start-up, JIT warm-up) is not counted.
async function run(dl: DataLoader, epoch: number, train: boolean): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  for await (const b of dl.epoch(epoch)) {
    if (train) step(b.x, b.y);
    b.x.dispose();
    b.y?.dispose();
    if (++n === steps) break;
  }
  return (performance.now() - t0) / n;
}

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
for (const bs of [32, 128, 512]) {
  for (const aug of [false, true]) {
    const augment = aug ? [randomCrop(2), horizontalFlip(), normalize(0.286, 0.353)] : [];
    const sync = new DataLoader(ds, { batchSize: bs, seed: 1, prefetch: 'sync', augment });
    const worker = new DataLoader(ds, { batchSize: bs, seed: 1, prefetch: 'worker', augment });
    const r = { data: [] as number[], sync: [] as number[], worker: [] as number[] };
    for (let rep = 0; rep < 6; rep++) {
      const d = await run(sync, rep, false);
      const s = await run(sync, rep, true);
      const w = await run(worker, rep, true);
      if (rep > 0) { r.data.push(d); r.sync.push(s); r.worker.push(w); }
    }
    await worker.close();
    const [d, s, w] = [median(r.data), median(r.sync), median(r.worker)];
    console.log(`batch ${String(bs).padStart(3)} ${aug ? 'crop+flip+norm' : 'no augment    '}  data ${d.toFixed(2)}  train+sync ${s.toFixed(2)}  train+worker ${w.toFixed(2)} ms/batch  (worker/sync ${(w / s).toFixed(2)})`);
  }
}
