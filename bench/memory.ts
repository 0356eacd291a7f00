// Memory check, kdistill against PyTorch side by side in one run: trains a 784-256-256-10 MLP,
// batch 128, Adam (or SGD), for 20,000 steps with every step inside tidy(), sampling resident
// memory at the same step marks on both sides, then prints RSS after warm-up, at the end, the
// drift, its trend per 10k steps, peak RSS, and kdistill/PyTorch ratios of peak RSS and time per
// step.
//
// Each side runs in its own process (so each RSS is its own): this process only orchestrates and
// never loads libtorch. Both run with 1 torch thread and OPENBLAS_NUM_THREADS = kdistill's default
// (1) unless the environment sets it. The PyTorch side is bench/python/memory.py (Debian's torch at
// /usr/bin/python3): same model, init, data path (16 batches copied from host arrays each step),
// loss, optimizer and step marks.
//
//   npx tsc -p . && node dist/bench/memory.js [--steps 20000] [--every 1000] [--optim adam|sgd] [--out file.json]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, parseArgs, rssMiB, peakRssMiB, memoryTable, memoryMarks, runMemorySide, type MemorySide, type RssSample } from './_common.js';

export const benchmark = { name: 'memory', description: 'RSS drift over 20k MLP training steps vs PyTorch' };

const PYTHON = '/usr/bin/python3';
const BATCH = 128;
const SIZES = [784, 256, 256, 10];

const args = parseArgs(process.argv.slice(2));
const steps = Number(args.get('steps') ?? '20000');
const every = Number(args.get('every') ?? '1000');
const optimName = args.get('optim') ?? 'adam';
const warmup = Math.min(1000, Math.max(1, Math.floor(steps / 10)));
if (!(steps > 0 && every > 0) || (optimName !== 'adam' && optimName !== 'sgd')) {
  console.error('memory: --steps and --every must be positive, --optim adam|sgd');
  process.exit(2);
}

// ---------------------------------------------------------------------------------------
// The kdistill side (child process; loads libtorch lazily).
// ---------------------------------------------------------------------------------------
async function kdistillSide(): Promise<void> {
  // the engine layer only (src/tensor, src/optim), not the whole library
  const { torch, setNumThreads } = await import('../src/tensor/torch.js');
  const F = await import('../src/tensor/functional.js');
  const { tidy } = await import('../src/tensor/scope.js');
  const { SGD, Adam } = await import('../src/optim/optimizer.js');
  type Tensor = InstanceType<typeof torch.Tensor>;
  const gc = (globalThis as { gc?: () => void }).gc;
  setNumThreads(1);
  torch.manualSeed(0);
  // The model: raw parameters kept outside every scope.
  const params: Tensor[] = [];
  for (let i = 0; i + 1 < SIZES.length; i++) {
    const bound = 1 / Math.sqrt(SIZES[i]!);
    params.push(torch.rand([SIZES[i + 1]!, SIZES[i]!]).mul_(2 * bound).add_(-bound).requiresGrad_().keep());
    params.push(torch.zeros([SIZES[i + 1]!], { requiresGrad: true }).keep());
  }
  const forward = (x: Tensor): Tensor => {
    let h = x;
    for (let i = 0; i < params.length; i += 2) {
      h = F.linear(h, params[i]!, params[i + 1]!);
      if (i + 2 < params.length) h = F.relu(h);
    }
    return h;
  };
  const opt = optimName === 'sgd' ? new SGD(params, { lr: 0.05, momentum: 0.9 }) : new Adam(params, { lr: 1e-3 });

  // A JS-side "dataset" of 16 batches copied into tensors every step, as a data loader would:
  // labels are a fixed function of the inputs, so the loss falls.
  const nData = 16 * BATCH;
  const xs = new Float32Array(nData * 784);
  const ys = new BigInt64Array(nData);
  tidy(() => {
    const g = new torch.Generator(1);
    const x = torch.randn([nData, 784], { generator: g });
    const y = x.matmul(torch.randn([784, 10], { generator: g })).argmax({ dim: 1 });
    xs.set(x.data<Float32Array>());
    ys.set(y.data<BigInt64Array>());
  });

  const log = (s: string): boolean => process.stderr.write(s + '\n');
  log(`[kdistill] ${SIZES.join('-')} MLP, batch ${BATCH}, ${optimName}, ${steps} steps, ${torch.getNumThreads()} torch thread(s), ` +
    `OPENBLAS_NUM_THREADS=${process.env.OPENBLAS_NUM_THREADS ?? '(unset)'}, libtorch ${torch.version}, node ${process.version}, gc ${gc ? 'exposed' : 'not exposed'}`);
  log('[kdistill] step     ms/step   rss MiB   heap MiB   live tensors   loss');

  let stepMs = 0, intervalMs = 0, intervalSteps = 0, liveWarm = 0;
  let memWarm: ReturnType<typeof torch.nativeMemory> | null = null;
  const samples: RssSample[] = [];
  for (let s = 1; s <= steps; s++) {
    const b = (s - 1) % 16;
    const mark = s % every === 0 || s === warmup || s === steps;
    const t0 = performance.now();
    const loss = tidy(() => {
      const x = torch.tensor(xs.subarray(b * BATCH * 784, (b + 1) * BATCH * 784), { shape: [BATCH, 784] });
      const y = torch.tensor(ys.subarray(b * BATCH, (b + 1) * BATCH));
      opt.zeroGrad();
      const l = F.crossEntropy(forward(x), y);
      l.backward();
      opt.step();
      return mark ? l.item() : NaN;
    });
    const dt = performance.now() - t0;
    intervalMs += dt;
    intervalSteps++;
    if (s > warmup) stepMs += dt;
    if (!mark) continue;
    gc?.();
    const rss = rssMiB();
    if (s === warmup) { liveWarm = torch.liveTensors(); memWarm = torch.nativeMemory(); }
    if (s >= warmup) samples.push({ step: s, rss });
    if (s % every === 0 || s === steps) {
      log(`[kdistill] ${String(s).padStart(6)}  ${(intervalMs / intervalSteps).toFixed(2).padStart(8)}  ${rss.toFixed(1).padStart(7)}  ` +
        `${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1).padStart(8)}  ${String(torch.liveTensors()).padStart(13)}   ${loss.toFixed(4)}`);
      intervalMs = 0;
      intervalSteps = 0;
    }
  }
  const out: MemorySide = {
    side: 'kdistill', steps, warmupStep: warmup, samples, peakRss: peakRssMiB(),
    msPerStep: stepMs / Math.max(1, steps - warmup),
    info: { libtorch: torch.version, node: process.version, threads: torch.getNumThreads(), liveTensorsWarm: liveWarm, liveTensorsEnd: torch.liveTensors(), gc: !!gc,
      nativeMemoryWarm: memWarm, nativeMemoryEnd: torch.nativeMemory() },
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

// ---------------------------------------------------------------------------------------
// Orchestrator: kdistill child, then PyTorch child, then the table.
// ---------------------------------------------------------------------------------------
function main(): void {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.OMP_NUM_THREADS; // both sides set 1 torch thread themselves
  if (env.OPENBLAS_NUM_THREADS === undefined) env.OPENBLAS_NUM_THREADS = '1'; // kdistill's default, given to both
  const common = ['--steps', String(steps), '--every', String(every), '--optim', optimName, '--warmup', String(warmup)];
  const kd = runMemorySide(process.execPath, ['--expose-gc', process.argv[1]!, '--side', 'kdistill', ...common], env);
  const py = runMemorySide(PYTHON, [join(root, 'bench', 'python', 'memory.py'), ...common], env);

  console.log(`\nmemory: ${SIZES.join('-')} MLP, batch ${BATCH}, ${optimName}, ${steps} steps (warm-up ${warmup}), 1 torch thread, ` +
    `OPENBLAS_NUM_THREADS=${env.OPENBLAS_NUM_THREADS}; each side in its own process; libtorch ${String(kd.info.libtorch)} vs PyTorch ${String(py.info.torch)}`);
  console.log(memoryMarks(kd, py));
  console.log();
  console.log(memoryTable(kd, py));
  const lw = Number(kd.info.liveTensorsWarm), le = Number(kd.info.liveTensorsEnd);
  console.log(`kdistill live native tensors: ${lw} after warm-up → ${le} at end (${le - lw >= 0 ? '+' : ''}${le - lw}); ` +
    `time per step = mean over the post-warm-up steps, sampling excluded`);
  type Mem = { allocated: number; reserved: number } | null;
  const w = kd.info.nativeMemoryWarm as Mem, e = kd.info.nativeMemoryEnd as Mem;
  const mib = (b: number): string => (b / 2 ** 20).toFixed(2);
  if (w && e && w.allocated >= 0) console.log(`kdistill native memory (C heap, all arenas, + tensor buffers): in use ${mib(w.allocated)} → ${mib(e.allocated)} MiB, ` +
    `held from the OS ${mib(w.reserved)} → ${mib(e.reserved)} MiB (after warm-up → end)`);
  const outFile = args.get('out');
  if (outFile) writeFileSync(outFile, JSON.stringify({ date: new Date().toISOString(), steps, every, optim: optimName, kdistill: kd, pytorch: py }, null, 2) + '\n');
}

if (args.get('side') === 'kdistill') await kdistillSide();
else main();
