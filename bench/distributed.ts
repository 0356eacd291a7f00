// Data-parallel benchmark (issues 10, 23): training throughput (samples/s) with the KD loss (CE +
// KL at T=4 against fixed teacher logits), SGD with momentum, global batch 128, as 1 process × 2
// threads against 2 processes × 1 thread (each on its half of every batch, gradients all-reduced
// over Gloo), for kdistill (c10d through the addon, through DataParallel as the trainer uses it:
// the overlapped exchange and the synchronous one, `distributed.overlap: false`) and PyTorch DDP
// (Gloo) side by side, in one run, on this machine. Two students: the 784-256-256-10 MLP and the
// benchmark table's CNN ({arch: cnn, channels: [8, 16], hidden: 32} on 1×28×28 inputs). kdistill's
// workers are pinned to a CPU each as its launcher does by default, plus one unpinned row.
//
// Each configuration is a fresh set of processes; they are run in turn, in alternating order
// over the repeats, so drift of the shared machine's load hits all of them. Reported: the median
// over repeats of samples/s, and the spread (min–max).
//
//   node dist/bench/distributed.js [--repeats 3] [--steps 200] [--warmup 20] [--models mlp,cnn] [--out bench/results/distributed.json]
// A single rank as a probe: RANK=0 WORLD_SIZE=2 node dist/bench/distributed.js --worker --model cnn --threads 1 --exchange 0
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';
import { root, median } from './_common.js';
import { allowedCpus, cpuSlices } from '../src/distributed/launch.js';

export const benchmark = { name: 'distributed', description: 'data-parallel throughput (MLP, CNN), 1×2 threads vs 2×1 overlapped / after backward, kdistill vs PyTorch DDP (Gloo)' };

const GLOBAL_BATCH = 128;
const T = 4;
const ALPHA = 0.9;
const PYTHON = '/usr/bin/python3';


function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

// ---------------------------------------------------------------------------------------------
// Worker: one rank of the kdistill side. Prints {"samplesPerSec": ...} on rank 0.
// ---------------------------------------------------------------------------------------------
async function worker(): Promise<void> {
  const { manualSeed, setNumThreads } = await import('../src/tensor/torch.js');
  const { torch } = await import('../src/torch.js');
  const F = await import('../src/tensor/functional.js');
  const { tidy } = await import('../src/tensor/scope.js');
  const { createModel } = await import('../src/nn/zoo/index.js');
  const { ProcessGroup } = await import('../src/distributed/group.js');
  const { DataParallel } = await import('../src/distributed/data-parallel.js');
  const { shardBatch } = await import('../src/distributed/shard.js');
  type Tensor = InstanceType<typeof torch.Tensor>;
  const world = Number(process.env.WORLD_SIZE ?? 1), rank = Number(process.env.RANK ?? 0);
  const steps = Number(arg('steps', '200')), warmup = Number(arg('warmup', '20'));
  const model = arg('model', 'mlp'), overlap = arg('overlap', '1') === '1';
  // --exchange 0: this rank trains on its slice without any process group (a probe of what the
  // workers cost without the all-reduce; rank 0 then reports its own pace).
  const exchange = arg('exchange', '1') === '1';
  setNumThreads(Number(arg('threads', '1')));
  manualSeed(0);
  let params: Tensor[];
  let forward: (x: Tensor) => Tensor;
  let inShape: number[];
  if (model === 'cnn') {
    const net = createModel({ arch: 'cnn', channels: [8, 16], hidden: 32, numClasses: 10, inputShape: [1, 28, 28] });
    params = net.parameters();
    forward = (x) => net.call(x);
    inShape = [1, 28, 28];
  } else {
    const uniform = (shape: number[], fanIn: number): Tensor => {
      const b = 1 / Math.sqrt(fanIn);
      return tidy(() => torch.rand(shape).mul(2 * b).sub(b)).requiresGrad_(true).keep();
    };
    params = [uniform([256, 784], 784), uniform([256], 784), uniform([256, 256], 256), uniform([256], 256), uniform([10, 256], 256), uniform([10], 256)];
    const [w1, b1, w2, b2, w3, b3] = params as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
    forward = (x) => F.linear(F.relu(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)), w3, b3);
    inShape = [784];
  }
  manualSeed(1 + rank); // each rank its own shard of (synthetic) data
  const pg = world > 1 && exchange ? await ProcessGroup.init({ worldSize: world, rank, masterAddr: '127.0.0.1', masterPort: Number(process.env.MASTER_PORT) }) : null;
  // A global batch of which this rank keeps its slice, with the weight the trainer gives it.
  const batch = shardBatch({ x: torch.randn([GLOBAL_BATCH, ...inShape]).keep(), y: torch.randint(0, 10, [GLOBAL_BATCH]).keep() }, rank, world);
  const teacher = tidy(() => torch.randn([batch.x.shape[0]!, 10]).mul(3)).keep();
  const opt = new torch.optim.SGD(params, { lr: 0.01, momentum: 0.9 });
  const dp = pg ? new DataParallel(pg, { overlap }) : null;
  const step = (): void => {
    opt.zeroGrad(true);
    tidy(() => {
      const s = forward(batch.x);
      const ce = F.crossEntropy(s, batch.y!);
      const kd = F.klDiv(F.logSoftmax(s.div(T), 1), F.logSoftmax(teacher.div(T), 1), { reduction: 'batchmean', logTarget: true });
      const loss = ce.mul(1 - ALPHA).add(kd.mul(ALPHA * T * T));
      dp?.beforeBackward(loss, params, batch);
      loss.backward();
    });
    dp?.reduceGradients(params, batch);
    opt.step();
  };
  for (let i = 0; i < warmup; i++) step();
  pg?.barrier();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  pg?.barrier();
  const sec = (performance.now() - t0) / 1000;
  if (rank === 0) process.stdout.write(JSON.stringify({ samplesPerSec: (steps * GLOBAL_BATCH) / sec, buckets: dp?.bucketCount ?? 0, overlappedBuckets: dp?.overlappedBuckets ?? 0 }) + '\n');
  pg?.destroy();
}

// ---------------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------------
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

// pin: kdistill's workers on their own CPUs as its launcher places them by default (PyTorch's
// side is left as torchrun leaves it, unpinned).
interface Config { name: string; model: string; engine: 'kdistill' | 'pytorch'; procs: number; threads: number; overlap: boolean; pin: boolean }

async function runConfig(c: Config, steps: number, warmup: number): Promise<number> {
  const port = await freePort();
  const common = ['--steps', String(steps), '--warmup', String(warmup), '--threads', String(c.threads), '--model', c.model];
  const slices = c.pin ? cpuSlices(c.procs, allowedCpus()) : null;
  const procs = Array.from({ length: c.procs }, (_, rank) => {
    const env = { ...process.env, RANK: String(rank), WORLD_SIZE: String(c.procs), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: String(c.threads) };
    const p = c.engine === 'kdistill'
      ? spawn(slices ? '/usr/bin/taskset' : process.execPath, [...(slices ? ['-c', slices[rank]!.join(','), process.execPath] : []), fileURLToPath(import.meta.url), '--worker', ...common, '--overlap', c.overlap ? '1' : '0'], { env, cwd: root })
      : spawn(PYTHON, [join(root, 'bench', 'python', 'ddp.py'), ...common], { env, cwd: root });
    let out = '', err = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    return new Promise<string>((res, rej) => p.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`${c.name} rank ${rank} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`)))));
  });
  const outs = await Promise.all(procs);
  const line = outs[0]!.trim().split('\n').pop()!;
  return (JSON.parse(line) as { samplesPerSec: number }).samplesPerSec;
}

const MODELS: Record<string, string> = { mlp: 'MLP 784-256-256-10', cnn: 'CNN {channels: [8, 16], hidden: 32} on 1×28×28' };

function configsOf(model: string): Config[] {
  const m = model.toUpperCase();
  return [
    { name: `${m} kdistill 1 proc × 2 threads`, model, engine: 'kdistill', procs: 1, threads: 2, overlap: true, pin: true },
    { name: `${m} kdistill 2 procs × 1 thread, overlapped`, model, engine: 'kdistill', procs: 2, threads: 1, overlap: true, pin: true },
    { name: `${m} kdistill 2 procs × 1 thread, after backward`, model, engine: 'kdistill', procs: 2, threads: 1, overlap: false, pin: true },
    { name: `${m} pytorch 1 proc × 2 threads`, model, engine: 'pytorch', procs: 1, threads: 2, overlap: true, pin: false },
    { name: `${m} pytorch DDP 2 procs × 1 thread`, model, engine: 'pytorch', procs: 2, threads: 1, overlap: true, pin: false },
    { name: `${m} kdistill 2 procs × 1 thread, overlapped, unpinned`, model, engine: 'kdistill', procs: 2, threads: 1, overlap: true, pin: false },
  ];
}

async function main(): Promise<void> {
  const repeats = Number(arg('repeats', '3')), steps = Number(arg('steps', '200')), warmup = Number(arg('warmup', '20'));
  const models = arg('models', 'mlp,cnn').split(',').filter(Boolean);
  for (const m of models) if (!MODELS[m]) throw new Error(`--models: unknown model '${m}' (known: ${Object.keys(MODELS).join(', ')})`);
  const configs = models.flatMap(configsOf);
  const loadBefore = loadavg();
  console.log(`${models.map((m) => MODELS[m]).join('; ')}; KD loss, SGD momentum, global batch ${GLOBAL_BATCH}; ${steps} timed steps after ${warmup} warm-up, ${repeats} repeats; ${cpus().length} cores, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
  const results = new Map<string, number[]>(configs.map((c) => [c.name, []]));
  for (let r = 0; r < repeats; r++) {
    const order = r % 2 ? [...configs].reverse() : configs;
    for (const c of order) results.get(c.name)!.push(await runConfig(c, steps, warmup));
  }
  const loadAfter = loadavg();
  const med = (n: string): number => median(results.get(n)!);
  const rows = configs.map((c) => {
    const v = results.get(c.name)!;
    return { config: c.name, model: c.model, samplesPerSec: med(c.name), min: Math.min(...v), max: Math.max(...v) };
  });
  for (const r of rows) console.log(`${r.config.padEnd(50)} ${r.samplesPerSec.toFixed(0).padStart(7)} samples/s  (${r.min.toFixed(0)}–${r.max.toFixed(0)})`);
  const ratio = (a: string, b: string): string => (med(a) / med(b)).toFixed(2);
  const ratios: Record<string, Record<string, number>> = {};
  for (const m of models) {
    const [one, over, sync, pt1, ptd, free] = configsOf(m).map((c) => c.name) as [string, string, string, string, string, string];
    console.log(`\n${m}: 2 procs / 1 proc × 2 threads:  kdistill overlapped ${ratio(over, one)}   after backward ${ratio(sync, one)}   overlapped unpinned ${ratio(free, one)}   pytorch DDP ${ratio(ptd, pt1)}`);
    console.log(`${m}: kdistill / pytorch (throughput, > 1 means kdistill is faster):  1×2 threads ${ratio(one, pt1)}   2 procs×1 thread ${ratio(over, ptd)}`);
    ratios[m] = { overlappedVsOneProc: med(over) / med(one), afterBackwardVsOneProc: med(sync) / med(one), pytorchDdpVsOneProc: med(ptd) / med(pt1), unpinnedOverlappedVsOneProc: med(free) / med(one) };
  }
  console.log(`load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`);
  const out = arg('out', join(root, 'bench', 'results', 'distributed.json'));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), globalBatch: GLOBAL_BATCH, steps, warmup, repeats, loadBefore, loadAfter, rows, ratios, raw: Object.fromEntries(results) }, null, 2) + '\n');
}

if (process.argv.includes('--worker')) await worker();
else await main();
