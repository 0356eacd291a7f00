// Teacher-output cache benchmark (issue 4): E epochs of KD of an MLP student (784-32-10) from the
// CNN teacher {arch: cnn, channels: [32, 64], hidden: 256} on the first N Fashion-MNIST training
// images, timed three ways on this machine in one run:
//   kdistill, live teacher     the teacher runs on every batch of every epoch
//   kdistill, cache (cold)     one no-grad pass over the transfer set writes the cache, then E epochs
//   kdistill, cache (warm)     a later run: the cache file is validated and read, then E epochs
//   PyTorch, live teacher      the same models, data, loss and optimizer, recomputing the teacher
//                              every epoch as torchdistill and mdistiller do (bench/python/cache.py)
// Each run is its own process (one heavy process at a time; the machine is shared); sides are
// alternated per repeat and medians reported. The teacher has seeded random weights: timing does
// not depend on them (pass --teacher model.safetensors to use a trained one).
//
//   node dist/bench/cache.js [--epochs 3] [--samples 10000] [--batch 128] [--threads 1]
//        [--repeats 3] [--teacher path] [--out bench/results/cache.json]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { root, median, runBenchmark, runJson } from './_common.js';

export const benchmark = { name: 'cache', description: 'E-epoch KD with the teacher-output cache vs without, and vs PyTorch recomputing the teacher' };

const PYTHON = '/usr/bin/python3';
const T = 4;
const ALPHA = 0.9;
const LR = 0.05;



interface RunResult {
  /** Wall time of the whole distillation: cache open/build (if any) + E epochs. */
  seconds: number;
  /** Cache open (validate + read, or build + write) alone. */
  cacheSeconds?: number;
  epochSeconds: number[];
  steps: number;
  loss: number;
  cacheStatus?: string;
}

// ---------------------------------------------------------------------------------------
// Worker: the kdistill side, one run per process. Imported lazily so the orchestrator never
// loads libtorch.
// ---------------------------------------------------------------------------------------
async function worker(args: Map<string, string>): Promise<void> {
  const { setNumThreads, manualSeed } = await import('../src/tensor/torch.js');
  const { loadFashionMnist } = await import('../src/data/fashion-mnist.js');
  const { subset } = await import('../src/data/splits.js');
  const { DataLoader } = await import('../src/data/loader.js');
  const { createModel } = await import('../src/nn/zoo/index.js');
  const { saveModel } = await import('../src/nn/safetensors.js');
  const { getMethod } = await import('../src/methods/registry.js');
  const { resolveParams } = await import('../src/methods/method.js');
  const { checkpointTeacher } = await import('../src/teachers/sources.js');
  const { cachedTeacher } = await import('../src/teachers/cache.js');
  const { train } = await import('../src/train/trainer.js');

  const threads = Number(args.get('threads') ?? 1);
  setNumThreads(threads);
  const teacherPath = args.get('teacher')!;
  if (args.get('worker') === 'prepare') {
    // Seeded random weights in kdistill's checkpoint format, which the PyTorch side reads too.
    manualSeed(Number(args.get('seed') ?? 0));
    const t = createModel({ arch: 'cnn', channels: [32, 64], hidden: 256, numClasses: 10, inputShape: [1, 28, 28] });
    saveModel(teacherPath, t);
    process.stdout.write(JSON.stringify({ parameters: t.numParameters() }) + '\n');
    return;
  }
  const mode = args.get('worker') as 'live' | 'cached';
  const samples = Number(args.get('samples'));
  const epochs = Number(args.get('epochs'));
  const batch = Number(args.get('batch'));
  const full = loadFashionMnist({ split: 'train' });
  // The first N images, as the PyTorch side reads them; a subset keeps origin indices for the cache.
  const data = samples >= full.size ? full : subset(full, Int32Array.from({ length: samples }, (_, i) => i), `${full.name}[:${samples}]`);
  manualSeed(Number(args.get('seed') ?? 0));
  const student = createModel({ arch: 'mlp', hidden: [32], numClasses: 10, inputShape: [1, 28, 28] });
  const live = checkpointTeacher(teacherPath);
  const spec = getMethod('kd');
  const method = spec.create(resolveParams(spec, { temperature: T, alpha: ALPHA }));
  // No worker thread, as PyTorch's DataLoader(num_workers=0) on the other side.
  const loader = new DataLoader(data, { batchSize: batch, seed: 0, shuffle: true, prefetch: 'sync' });

  const t0 = performance.now();
  let teacher: typeof live | ReturnType<typeof cachedTeacher> = live;
  let cacheSeconds: number | undefined;
  let cacheStatus: string | undefined;
  if (mode === 'cached') {
    const c = cachedTeacher(live, data, { dir: args.get('cache-dir')!, notice: () => {} });
    cacheSeconds = (performance.now() - t0) / 1000;
    cacheStatus = c.cache.status;
    teacher = c;
  }
  const r = await train({
    student, teacher, method, numClasses: 10, epochs,
    train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
    optimizer: { name: 'sgd', lr: LR, momentum: 0.9 },
  });
  const seconds = (performance.now() - t0) / 1000;
  const out: RunResult = {
    seconds, epochSeconds: r.epochs.map((e) => e.seconds), steps: r.steps, loss: r.epochs.at(-1)!.train.loss!,
    ...(cacheSeconds !== undefined ? { cacheSeconds, cacheStatus: cacheStatus! } : {}),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

// ---------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------
type Side = 'kdLive' | 'kdCold' | 'kdWarm' | 'pyLive';

async function orchestrate(args: Map<string, string>): Promise<void> {
  const epochs = Number(args.get('epochs') ?? 3);
  const samples = Number(args.get('samples') ?? 10000);
  const batch = Number(args.get('batch') ?? 128);
  const threads = Number(args.get('threads') ?? 1);
  const repeats = Number(args.get('repeats') ?? 3);
  const out = resolve(root, args.get('out') ?? 'bench/results/cache.json');
  const work = mkdtempSync(join(tmpdir(), 'kdistill-bench-cache-'));
  const self = fileURLToPath(import.meta.url);
  // Same BLAS threading on both sides; libtorch threads are set per process to --threads.
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1', KDISTILL_QUIET: '1' };
  delete env.OMP_NUM_THREADS;

  try {
    let teacher = args.get('teacher');
    let teacherNote = teacher ? `trained weights from ${teacher}` : 'seeded random weights';
    if (!teacher) {
      teacher = join(work, 'teacher.safetensors');
      const p = runJson('prepare', process.execPath, [self, '--worker', 'prepare', '--teacher', teacher], env);
      teacherNote += ` (${p.parameters} parameters)`;
    }
    const common = ['--teacher', teacher, '--samples', String(samples), '--epochs', String(epochs), '--batch', String(batch), '--threads', String(threads)];
    console.log(`cache benchmark: KD (T=${T}, alpha ${ALPHA}) of an MLP 784-32-10 from CNN [32, 64]/256 (${teacherNote}), ` +
      `first ${samples} Fashion-MNIST images, batch ${batch}, ${epochs} epochs, SGD lr ${LR} momentum 0.9, ${threads} thread(s), ${repeats} repeats`);
    console.log(`machine: ${cpus().length} cpus (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

    const res: Record<Side, RunResult[]> = { kdLive: [], kdCold: [], kdWarm: [], pyLive: [] };
    const kd = (mode: 'live' | 'cached', dir?: string): RunResult =>
      runJson(`kdistill ${mode}`, process.execPath, [self, '--worker', mode, ...common, ...(dir ? ['--cache-dir', dir] : [])], env) as unknown as RunResult;
    const pyRun = (): RunResult => runJson('pytorch', PYTHON, [join(root, 'bench', 'python', 'cache.py'), ...common], env) as unknown as RunResult;
    for (let r = 0; r < repeats; r++) {
      const dir = join(work, `cache-${r}`);
      // Alternate the order so slow drift of the shared machine's load hits every side alike.
      const jobs: [Side, () => RunResult][] = [
        ['kdLive', () => kd('live')],
        ['kdCold', () => kd('cached', dir)],
        ['kdWarm', () => kd('cached', dir)], // must follow kdCold: it reuses that file
        ['pyLive', pyRun],
      ];
      const order = r % 2 === 0 ? [0, 1, 2, 3] : [3, 1, 2, 0];
      for (const i of order) {
        const [side, run] = jobs[i]!;
        const x = run();
        if (side === 'kdCold' && x.cacheStatus !== 'built') throw new Error(`cold run found a cache (${x.cacheStatus})`);
        if (side === 'kdWarm' && x.cacheStatus !== 'loaded') throw new Error(`warm run did not reuse the cache (${x.cacheStatus})`);
        res[side].push(x);
        process.stderr.write(`  [repeat ${r + 1}/${repeats}] ${side}: ${x.seconds.toFixed(2)} s\n`);
      }
      rmSync(dir, { recursive: true, force: true });
    }

    const rows: { side: Side; label: string; total: number; perEpoch: number; cache: number | null; runs: number[] }[] = [
      { side: 'kdLive', label: 'kdistill, live teacher (every epoch)' },
      { side: 'kdCold', label: 'kdistill, cache cold (build + epochs)' },
      { side: 'kdWarm', label: 'kdistill, cache warm (reuse + epochs)' },
      { side: 'pyLive', label: 'PyTorch, live teacher (every epoch)' },
    ].map(({ side, label }) => {
      const rs = res[side as Side];
      return {
        side: side as Side, label,
        total: median(rs.map((x) => x.seconds)),
        perEpoch: median(rs.map((x) => median(x.epochSeconds))),
        cache: side === 'kdCold' || side === 'kdWarm' ? median(rs.map((x) => x.cacheSeconds!)) : null,
        runs: rs.map((x) => x.seconds),
      };
    });
    const py = rows.find((r) => r.side === 'pyLive')!;
    const live = rows.find((r) => r.side === 'kdLive')!;
    const f = (x: number): string => x.toFixed(2);
    const header = ['run', `total s (${epochs} epochs)`, 's/epoch', 'cache open s', 'vs kdistill live', 'vs PyTorch'];
    const body = rows.map((r) => [
      r.label, `${f(r.total)} (${f(Math.min(...r.runs))}–${f(Math.max(...r.runs))})`, f(r.perEpoch), r.cache === null ? '–' : f(r.cache),
      `${(r.total / live.total).toFixed(2)}×`, `${(r.total / py.total).toFixed(2)}×`,
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    const line = (cols: string[]): string => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ');
    console.log('\n' + line(header));
    console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const b of body) console.log(line(b));
    console.log(`\nmedians of ${repeats} runs (min–max of totals); ratios are total time / the reference's total time. ` +
      `kdistill's epoch times include its per-step NaN checks; 'cache open' is inside the total.`);

    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify({
      benchmark: 'cache',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? null, loadavgAtEnd: loadavg(), node: process.version },
      config: { epochs, samples, batch, threads, repeats, temperature: T, alpha: ALPHA, lr: LR, teacher: teacherNote, student: 'mlp [32]' },
      rows: rows.map(({ side, label, total, perEpoch, cache, runs }) => ({ side, label, totalSeconds: total, secondsPerEpoch: perEpoch, cacheOpenSeconds: cache, runs, vsKdistillLive: total / live.total, vsPytorch: total / py.total })),
      raw: res,
    }, null, 2) + '\n');
    console.log(`results written to ${out}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

runBenchmark(import.meta.url, worker, orchestrate);
