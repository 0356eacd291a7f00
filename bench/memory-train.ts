// Long-run memory through the real trainer, kdistill against a PyTorch reference side by side in
// one run: KD (T = 4, alpha = 0.9) from an MLP teacher 784-128-10 into an MLP student 784-32-10 on
// a 6,400-image Fashion-MNIST subset, batch 64, Adam lr 1e-3 with a per-epoch cosine schedule, for
// ~20,000 steps. RSS is sampled at the same step marks (step 0, then every 10 epochs and the last
// epoch) on both sides; prints RSS after warm-up, at the end, drift, trend per 10k steps, peak RSS,
// and kdistill/PyTorch ratios of peak RSS and time per step.
//
// The two sides are not the same code path, on purpose: the kdistill side is kdistill's full
// trainer (train() with per-step logging, checkpoints every 500 steps, loss/gradient/teacher NaN
// checks, signal handling, evaluation at the end), while the PyTorch side
// (bench/python/memory_train.py) is the bare KD loop with no checkpoints, logging or checks. So
// the time ratio includes the trainer's overhead, and the RSS columns compare the whole trainer
// with a minimal loop. Each side runs in its own process (1 torch thread, OPENBLAS_NUM_THREADS =
// kdistill's default 1 unless set), so each RSS is its own; this process never loads libtorch.
//
//   npx tsc -p . && node dist/bench/memory-train.js [--steps 20000] [--batch 64] [--out file.json]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root, parseArgs, rssMiB, rssKindsMiB, peakRssMiB, memoryTable, memoryMarks, runMemorySide, type MemorySide, type RssSample } from './_common.js';

export const benchmark = { name: 'memory-train', description: 'RSS drift over 20k KD steps through the trainer vs a PyTorch KD loop' };

const PYTHON = '/usr/bin/python3';
const args = parseArgs(process.argv.slice(2));
const steps = Number(args.get('steps') ?? '20000');
const batch = Number(args.get('batch') ?? '64');
const nSamples = 6400;
const perEpoch = Math.ceil(nSamples / batch);
const epochs = Math.max(2, Math.round(steps / perEpoch));
const isMark = (epoch: number): boolean => (epoch + 1) % 10 === 0 || epoch === epochs - 1;

interface Sample extends RssSample { heap?: number; tensors?: number; nativeInUse?: number }

// ---------------------------------------------------------------------------------------
// The kdistill side (child process): the real trainer.
// ---------------------------------------------------------------------------------------
async function kdistillSide(): Promise<void> {
  const { setNumThreads, manualSeed, liveTensors, torch } = await import('../src/tensor/torch.js');
  const { loadFashionMnist } = await import('../src/data/fashion-mnist.js');
  const { take } = await import('../src/data/splits.js');
  const { DataLoader } = await import('../src/data/loader.js');
  const { createModel } = await import('../src/nn/zoo/index.js');
  const { getMethod } = await import('../src/methods/registry.js');
  const { resolveParams } = await import('../src/methods/method.js');
  const { ModuleTeacher } = await import('../src/teachers/sources.js');
  const { train } = await import('../src/train/trainer.js');
  const gc = (globalThis as { gc?: () => void }).gc;

  setNumThreads(1);
  manualSeed(0);
  const data = take(loadFashionMnist({ split: 'train' }), nSamples, 1, { stratified: true });
  const teacherNet = createModel({ arch: 'mlp', hidden: [128], numClasses: 10, inputShape: [1, 28, 28] });
  const teacher = new ModuleTeacher(teacherNet, 10, 'random MLP teacher', 'bench');
  const student = createModel({ arch: 'mlp', hidden: [32], numClasses: 10, inputShape: [1, 28, 28] });
  const spec = getMethod('kd');
  const method = spec.create(resolveParams(spec, { temperature: 4, alpha: 0.9 }));
  const loader = new DataLoader(data, { batchSize: batch, seed: 0, prefetch: 'sync' });
  const out = mkdtempSync(join(tmpdir(), 'kd-memtrain-'));

  const samples: Sample[] = [];
  const log = (s: string): boolean => process.stderr.write(s + '\n');
  const sample = (step: number): void => {
    gc?.();
    const m = torch.nativeMemory(), k = rssKindsMiB();
    const s = { step, rss: rssMiB(), heap: process.memoryUsage().heapUsed / 2 ** 20, tensors: liveTensors(), nativeInUse: m.allocated / 2 ** 20 };
    samples.push(s);
    log(`[kdistill] step ${String(step).padEnd(7)} rss ${s.rss.toFixed(1).padStart(7)} MiB (anon ${k.anon.toFixed(1)}, file ${k.file.toFixed(1)})   heap ${s.heap.toFixed(1).padStart(6)} MiB   ` +
      `live tensors ${s.tensors}   native in use ${(m.allocated / 2 ** 20).toFixed(1)} MiB, held ${(m.reserved / 2 ** 20).toFixed(1)} MiB`);
  };
  log(`[kdistill] trainer: ${epochs} epochs × ${perEpoch} steps, batch ${batch}, libtorch ${torch.version}, node ${process.version}, gc ${gc ? 'exposed' : 'not exposed'}`);
  sample(0);
  const t0 = performance.now();
  const r = await train({
    student, teacher, method, numClasses: 10, epochs,
    train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
    optimizer: { name: 'adam', lr: 1e-3 }, schedule: { name: 'cosine' },
    outDir: out, checkpointEvery: 500, evalEvery: 'end',
    onEpoch: (rec) => { if (isMark(rec.epoch)) sample(rec.step); },
  });
  const ms = performance.now() - t0;
  rmSync(out, { recursive: true, force: true });
  process.stdout.write(JSON.stringify({
    side: 'kdistill', steps: r.steps, warmupStep: 0, samples, peakRss: peakRssMiB(), msPerStep: ms / r.steps,
    info: { libtorch: torch.version, node: process.version, epochs, gc: !!gc },
  } satisfies MemorySide) + '\n');
}

// ---------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------
/** Warm-up: allocator pools, JIT and caches settle over the first tenth of the run. */
function fromWarm(s: MemorySide): MemorySide & { all: Sample[] } {
  const all = s.samples as Sample[];
  const warm = all.find((p) => p.step >= s.steps / 10) ?? all[1] ?? all[0]!;
  return { ...s, warmupStep: warm.step, samples: all.filter((p) => p.step >= warm.step), all };
}

function main(): void {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.OMP_NUM_THREADS;
  if (env.OPENBLAS_NUM_THREADS === undefined) env.OPENBLAS_NUM_THREADS = '1';
  const common = ['--steps', String(steps), '--batch', String(batch)];
  const kd = fromWarm(runMemorySide(process.execPath, ['--expose-gc', process.argv[1]!, '--side', 'kdistill', ...common], env));
  const py = fromWarm(runMemorySide(PYTHON, [join(root, 'bench', 'python', 'memory_train.py'), ...common, '--samples', String(nSamples)], env));

  console.log(`\nmemory-train: ${kd.steps} KD steps, MLP 784-128-10 → 784-32-10, batch ${batch}, ${epochs} epochs, Adam + cosine, T=4 alpha=0.9, ` +
    `1 torch thread, OPENBLAS_NUM_THREADS=${env.OPENBLAS_NUM_THREADS}; each side in its own process; libtorch ${String(kd.info.libtorch)} vs PyTorch ${String(py.info.torch)}`);
  console.log('kdistill = the full trainer (train(): per-step logging, checkpoints every 500 steps, NaN checks, eval at end);');
  console.log('PyTorch  = a bare KD loop, same models/data/optimizer/schedule, no checkpoints (bench/python/memory_train.py).');
  console.log(memoryMarks({ ...kd, samples: kd.all }, { ...py, samples: py.all }));
  console.log();
  console.log(memoryTable(kd, py));
  const w = kd.all.find((p) => p.step === kd.warmupStep)!, l = kd.all[kd.all.length - 1]!;
  const signed = (v: number): string => `${v >= 0 ? '+' : ''}${v.toFixed(1)}`;
  console.log(`kdistill V8 heap ${signed(l.heap! - w.heap!)} MiB, native memory in use ${signed(l.nativeInUse! - w.nativeInUse!)} MiB, live native tensors ${w.tensors} → ${l.tensors} ` +
    `after warm-up; time per step = whole run / steps (kdistill's includes checkpoints and the final evaluation)`);
  const outFile = args.get('out');
  if (outFile) writeFileSync(outFile, JSON.stringify({ date: new Date().toISOString(), steps, batch, epochs, kdistill: kd, pytorch: py }, null, 2) + '\n');
}

if (args.get('side') === 'kdistill') await kdistillSide();
else main();
