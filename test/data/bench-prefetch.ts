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

async function run(label: string, prefetch: 'sync' | 'worker', augment: boolean, train: boolean, bs: number): Promise<number> {
  const dl = new DataLoader(ds, { batchSize: bs, seed: 1, prefetch, augment: augment ? [randomCrop(2), horizontalFlip(), normalize(0.286, 0.353)] : [] });
  let n = 0;
  const t0 = performance.now();
  for await (const b of dl.epoch(0)) {
    if (train) step(b.x, b.y);
    b.x.dispose();
    b.y?.dispose();
    if (++n === steps) break;
  }
  const ms = (performance.now() - t0) / n;
  await dl.close();
  console.log(`${label.padEnd(34)} ${ms.toFixed(3)} ms/batch`);
  return ms;
}

for (const bs of [32, 128, 512]) {
  console.log(`--- batch ${bs}, ${steps} batches`);
  for (const aug of [false, true]) {
    const tag = aug ? 'crop+flip+norm' : 'no augment';
    const rows: [string, number][] = [];
    for (let rep = 0; rep < 3; rep++) {
      rows.push([`data only, sync, ${tag}`, await run(`data only, sync, ${tag}`, 'sync', aug, false, bs)]);
      rows.push([`train, sync, ${tag}`, await run(`train, sync, ${tag}`, 'sync', aug, true, bs)]);
      rows.push([`train, worker, ${tag}`, await run(`train, worker, ${tag}`, 'worker', aug, true, bs)]);
    }
    const med = (k: string) => { const v = rows.filter((r) => r[0] === k).map((r) => r[1]).sort((a, b) => a - b); return v[1]!; };
    console.log(`median: data ${med(`data only, sync, ${tag}`).toFixed(3)} | sync ${med(`train, sync, ${tag}`).toFixed(3)} | worker ${med(`train, worker, ${tag}`).toFixed(3)} ms/batch`);
  }
}
