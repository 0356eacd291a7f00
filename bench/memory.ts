// Memory check (a script, not a test): trains a 784-256-256-10 MLP, batch 128, for 20,000 steps
// with every step inside tidy(), and prints resident memory, V8 heap and live native tensors at
// intervals, then the drift after warm-up.
//
//   npx tsc -p . && node --expose-gc dist/bench/memory.js [--steps 20000] [--optim adam|sgd] [--every 1000]
import { torch, F, tidy, Tensor, SGD, Adam, type Optimizer } from '../src/index.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}
const steps = Number(arg('steps', '20000'));
const every = Number(arg('every', '1000'));
const optimName = arg('optim', 'adam');
const warmup = Math.min(1000, Math.floor(steps / 10));
const batch = 128;
const sizes = [784, 256, 256, 10];

const mb = (b: number): number => b / 2 ** 20;
const gc = (globalThis as { gc?: () => void }).gc;

torch.manualSeed(0);
// The model: raw parameters kept outside every scope.
const params: Tensor[] = [];
for (let i = 0; i + 1 < sizes.length; i++) {
  const bound = 1 / Math.sqrt(sizes[i]!);
  params.push(torch.rand([sizes[i + 1]!, sizes[i]!]).mul_(2 * bound).add_(-bound).requiresGrad_().keep());
  params.push(torch.zeros([sizes[i + 1]!], { requiresGrad: true }).keep());
}
const forward = (x: Tensor): Tensor => {
  let h = x;
  for (let i = 0; i < params.length; i += 2) {
    h = F.linear(h, params[i]!, params[i + 1]!);
    if (i + 2 < params.length) h = F.relu(h);
  }
  return h;
};
const opt: Optimizer = optimName === 'sgd' ? new SGD(params, { lr: 0.05, momentum: 0.9 }) : new Adam(params, { lr: 1e-3 });

// A JS-side "dataset" of 16 batches copied into tensors every step, as a data loader would:
// labels are a fixed function of the inputs, so the loss falls.
const nData = 16 * batch;
const xs = new Float32Array(nData * 784);
const ys = new BigInt64Array(nData);
tidy(() => {
  const g = new torch.Generator(1);
  const x = torch.randn([nData, 784], { generator: g });
  const y = x.matmul(torch.randn([784, 10], { generator: g })).argmax({ dim: 1 });
  xs.set(x.data<Float32Array>());
  ys.set(y.data<BigInt64Array>());
});

console.log(`memory check: ${sizes.join('-')} MLP, batch ${batch}, ${optimName}, ${steps} steps, ` +
  `${torch.getNumThreads()} torch threads, libtorch ${torch.version}, node ${process.version}, gc ${gc ? 'exposed' : 'not exposed'}`);
console.log('step     ms/step   rss MB   heap MB   live tensors   loss');

let t0 = performance.now();
let rssWarm = 0, liveWarm = 0, rssMin = Infinity, rssMax = 0;
const samples: { step: number; rss: number }[] = [];
for (let s = 1; s <= steps; s++) {
  const b = (s - 1) % 16;
  const loss = tidy(() => {
    const x = torch.tensor(xs.subarray(b * batch * 784, (b + 1) * batch * 784), { shape: [batch, 784] });
    const y = torch.tensor(ys.subarray(b * batch, (b + 1) * batch));
    opt.zeroGrad();
    const l = F.crossEntropy(forward(x), y);
    l.backward();
    opt.step();
    return s % every === 0 || s === warmup ? l.item() : NaN;
  });
  if (s % every === 0 || s === warmup) {
    gc?.();
    const m = process.memoryUsage();
    const rss = mb(m.rss);
    const ms = (performance.now() - t0) / (s % every === 0 ? every : s % every || every);
    if (s === warmup) {
      rssWarm = rss;
      liveWarm = torch.liveTensors();
    }
    if (s >= warmup) {
      rssMin = Math.min(rssMin, rss);
      rssMax = Math.max(rssMax, rss);
      samples.push({ step: s, rss });
    }
    if (s % every === 0) {
      console.log(`${String(s).padStart(6)}  ${ms.toFixed(2).padStart(8)}  ${rss.toFixed(1).padStart(7)}  ${mb(m.heapUsed).toFixed(1).padStart(8)}` +
        `  ${String(torch.liveTensors()).padStart(13)}   ${loss.toFixed(4)}`);
      t0 = performance.now();
    }
  }
}

const rssEnd = samples[samples.length - 1]!.rss;
// least-squares slope of RSS over the post-warm-up samples, in MB per 10k steps
const n = samples.length;
const mx = samples.reduce((a, p) => a + p.step, 0) / n, my = samples.reduce((a, p) => a + p.rss, 0) / n;
const slope = samples.reduce((a, p) => a + (p.step - mx) * (p.rss - my), 0) / Math.max(1e-9, samples.reduce((a, p) => a + (p.step - mx) ** 2, 0));
console.log(`\nafter warm-up (step ${warmup}): RSS ${rssWarm.toFixed(1)} MB, ${liveWarm} live tensors`);
console.log(`end (step ${steps}): RSS ${rssEnd.toFixed(1)} MB, ${torch.liveTensors()} live tensors`);
console.log(`drift: ${(rssEnd - rssWarm).toFixed(1)} MB (${(((rssEnd - rssWarm) / rssWarm) * 100).toFixed(1)}%), ` +
  `range ${rssMin.toFixed(1)}-${rssMax.toFixed(1)} MB, trend ${(slope * 10000).toFixed(2)} MB per 10k steps, ` +
  `live tensors ${torch.liveTensors() - liveWarm >= 0 ? '+' : ''}${torch.liveTensors() - liveWarm}`);
