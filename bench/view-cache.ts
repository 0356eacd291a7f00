// Teacher view-cache benchmark (issue 21): a 5-trial "sweep" (runs differing in seed and learning
// rate, sharing one augmentation seed) of E epochs of KD with random crop (padding 2) and horizontal
// flip, timed two ways on this machine in one run:
//   kdistill, view cache      trial 1 builds the teacher's outputs on every view of E epochs in
//                             one no-grad pass (data.augment.seed makes the views replayable);
//                             trials 2–5 find the file (same teacher, data, recipe, augmentation
//                             seed) and only train the student
//   PyTorch, live teacher     every trial recomputes the teacher on every augmented batch, as
//                             torchdistill and mdistiller do (bench/python/view_cache.py), with
//                             stock and/or glibc-tuned malloc (--baseline, bench/_common.ts)
// and, with --with-live, kdistill recomputing the teacher too: the view cache's own gain, apart
// from the engines' difference in training the student.
// Student: zoo cnn [8, 16]/64; teacher: the repo's Fashion-MNIST CNN (assets/fashion-mnist-teacher.safetensors,
// cnn [32, 64]/256); the first N training images, batch 128, SGD momentum 0.9, T = 4, alpha 0.9.
// Each trial is its own process (one heavy process at a time; the machine is shared); kdistill
// builds batches on the main thread, as PyTorch's DataLoader(num_workers=0).
// Size: the defaults are the issue's sweep (5 trials × 10 epochs) on the first 5,000 images. Both
// sides start their clock after loading the data, and the build, the training and the teacher's
// recomputation all grow with images × epochs, so to first order the ratios do not depend on the
// image count; 5,000 (not 60,000) keeps the 15 trials (20 with --with-live) to minutes on 2 cores.
// bench/results/view-cache.json was run with --samples 500 through /work/wt/quiet-bench.sh (README).
//
//   node dist/bench/view-cache.js [--trials 5] [--epochs 10] [--samples 5000] [--batch 128]
//        [--threads 1] [--with-live] [--baseline stock|tuned|both] [--out bench/results/view-cache.json]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { root, parseArgs, runJson, baselines, baselineEnv, baselineNote, BASELINE_LABEL, type Baseline } from './_common.js';

export const benchmark = { name: 'view-cache', description: '5-trial sweep with crop+flip: kdistill with the teacher view cache vs PyTorch recomputing the teacher' };

const PYTHON = '/usr/bin/python3';
const T = 4;
const ALPHA = 0.9;
const PAD = 2;
const AUGMENT_SEED = 0;
/** (seed, lr) of the trials: the shape of a small seed/lr sweep. */
const TRIALS: [number, number][] = [[0, 0.05], [1, 0.05], [2, 0.05], [0, 0.02], [0, 0.1]];

interface TrialResult {
  seconds: number;
  /** Cache open (build, or validate + read) alone; inside `seconds`. */
  cacheSeconds?: number;
  cacheStatus?: string;
  epochSeconds: number[];
  steps: number;
  loss: number;
}

// The kdistill side, one trial per process; imported lazily so the orchestrator never loads libtorch.
async function worker(args: Map<string, string>): Promise<void> {
  const { setNumThreads, manualSeed } = await import('../src/tensor/torch.js');
  const { loadFashionMnist } = await import('../src/data/fashion-mnist.js');
  const { subset } = await import('../src/data/splits.js');
  const { DataLoader } = await import('../src/data/loader.js');
  const { randomCrop, horizontalFlip } = await import('../src/data/augment.js');
  const { createModel } = await import('../src/nn/zoo/index.js');
  const { getMethod } = await import('../src/methods/registry.js');
  const { resolveParams } = await import('../src/methods/method.js');
  const { checkpointTeacher } = await import('../src/teachers/sources.js');
  const { TeacherViewCache, ViewCachedTeacher } = await import('../src/teachers/view-cache.js');
  const { train } = await import('../src/train/trainer.js');

  setNumThreads(Number(args.get('threads') ?? 1));
  const samples = Number(args.get('samples'));
  const epochs = Number(args.get('epochs'));
  const seed = Number(args.get('seed'));
  const full = loadFashionMnist({ split: 'train' });
  // The first N images, as the PyTorch side reads them; a subset keeps origin indices for the cache.
  const data = samples >= full.size ? full : subset(full, Int32Array.from({ length: samples }, (_, i) => i), `${full.name}[:${samples}]`);
  const augment = [randomCrop(PAD), horizontalFlip()];
  manualSeed(seed);
  const student = createModel({ arch: 'cnn', channels: [8, 16], hidden: 64, dropout: 0, numClasses: 10, inputShape: [1, 28, 28] });
  const live = checkpointTeacher(join(root, 'assets', 'fashion-mnist-teacher.safetensors'));
  const spec = getMethod('kd');
  const method = spec.create(resolveParams(spec, { temperature: T, alpha: ALPHA }));
  const loader = new DataLoader(data, { batchSize: Number(args.get('batch')), seed, shuffle: true, augment, augmentSeed: AUGMENT_SEED, prefetch: 'sync' });

  const t0 = performance.now();
  let teacher: typeof live | InstanceType<typeof ViewCachedTeacher> = live;
  let cache: { cacheSeconds: number; cacheStatus: string } | null = null;
  if (args.get('worker') === 'views') {
    const c = TeacherViewCache.open(live, data, { dir: args.get('cache-dir')!, augment, augmentSeed: AUGMENT_SEED, epochs, notice: () => {} });
    cache = { cacheSeconds: (performance.now() - t0) / 1000, cacheStatus: c.status };
    teacher = new ViewCachedTeacher(live, c);
  }
  const r = await train({
    student, teacher, method, numClasses: 10, epochs,
    train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
    optimizer: { name: 'sgd', lr: Number(args.get('lr')), momentum: 0.9 },
  });
  const out: TrialResult = { seconds: (performance.now() - t0) / 1000, epochSeconds: r.epochs.map((e) => e.seconds), steps: r.steps, loss: r.epochs.at(-1)!.train.loss!, ...(cache ?? {}) };
  process.stdout.write(JSON.stringify(out) + '\n');
}

type Side = 'kdViews' | 'kdLive' | Baseline;

async function orchestrate(args: Map<string, string>): Promise<void> {
  const trials = Number(args.get('trials') ?? 5);
  const epochs = Number(args.get('epochs') ?? 10);
  const samples = Number(args.get('samples') ?? 5000);
  const batch = Number(args.get('batch') ?? 128);
  const threads = Number(args.get('threads') ?? 1);
  const withLive = args.has('with-live');
  const bs = baselines(args.get('baseline'));
  if (!(trials >= 1 && trials <= TRIALS.length)) throw new Error(`--trials must be 1..${TRIALS.length}, got ${trials}`);
  const out = resolve(root, args.get('out') ?? 'bench/results/view-cache.json');
  const work = mkdtempSync(join(tmpdir(), 'kdistill-bench-views-'));
  const self = fileURLToPath(import.meta.url);
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1', KDISTILL_QUIET: '1' };
  delete env.OMP_NUM_THREADS;
  const loadBefore = loadavg();
  console.log(`view-cache benchmark: ${trials}-trial sweep (seed, lr) ∈ ${JSON.stringify(TRIALS.slice(0, trials))}, augmentation seed ${AUGMENT_SEED} shared; ` +
    `KD (T=${T}, alpha ${ALPHA}) of cnn [8, 16]/64 from the Fashion-MNIST teacher cnn [32, 64]/256, first ${samples} images, crop ${PAD} + flip, batch ${batch}, ${epochs} epochs, ${threads} thread(s)`);
  console.log(baselineNote(bs));
  console.log(`machine: ${cpus().length} cpus (${cpus()[0]?.model ?? '?'}), load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
  try {
    const common = ['--samples', String(samples), '--epochs', String(epochs), '--batch', String(batch), '--threads', String(threads)];
    const dir = join(work, 'cache');
    const res: Record<Side, TrialResult[]> = { kdViews: [], kdLive: [], stock: [], tuned: [] };
    const kdEnv = baselineEnv(env, 'kdistill');
    for (let i = 0; i < trials; i++) {
      const [seed, lr] = TRIALS[i]!;
      const trial = [...common, '--seed', String(seed), '--lr', String(lr)];
      // Alternate which side goes first so the shared machine's drifting load hits both alike.
      const jobs: [Side, () => TrialResult][] = [
        ['kdViews', () => runJson<TrialResult>('kdistill views', process.execPath, [self, '--worker', 'views', '--cache-dir', dir, ...trial], kdEnv)],
        ...bs.map((b): [Side, () => TrialResult] => [b, () => runJson<TrialResult>(BASELINE_LABEL[b], PYTHON,
          [join(root, 'bench', 'python', 'view_cache.py'), '--teacher', join(root, 'assets', 'fashion-mnist-teacher.safetensors'), '--pad', String(PAD), ...trial], baselineEnv(env, b))]),
        ...(withLive ? [['kdLive', () => runJson<TrialResult>('kdistill live', process.execPath, [self, '--worker', 'live', ...trial], kdEnv)] as [Side, () => TrialResult]] : []),
      ];
      for (const [side, run] of i % 2 === 0 ? jobs : [...jobs].reverse()) {
        const x = run();
        if (side === 'kdViews' && x.cacheStatus !== (i === 0 ? 'built' : 'loaded')) throw new Error(`trial ${i + 1}: the view cache was ${x.cacheStatus}, expected ${i === 0 ? 'built' : 'loaded'}`);
        res[side].push(x);
        process.stderr.write(`  [trial ${i + 1}/${trials}] ${side}: ${x.seconds.toFixed(2)} s${x.cacheSeconds !== undefined ? ` (cache ${x.cacheStatus} in ${x.cacheSeconds.toFixed(2)} s)` : ''}, final loss ${x.loss.toFixed(3)}\n`);
      }
    }
    const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    const sides: [Side, string][] = [['kdViews', 'kdistill, view cache (built in trial 1)'], ...(withLive ? [['kdLive', 'kdistill, live teacher every step']] as [Side, string][] : []),
      ...bs.map((b): [Side, string] => [b, `${BASELINE_LABEL[b]}, live teacher every step`])];
    const rows = sides.map(([side, label]) => ({ side, label, total: sum(res[side].map((x) => x.seconds)), trials: res[side].map((x) => x.seconds) }));
    const total = (s: Side): number => rows.find((r) => r.side === s)!.total;
    const f = (x: number): string => x.toFixed(1);
    const header = ['side', `sweep s (${trials} × ${epochs} epochs)`, 'per trial s', ...bs.map((b) => `vs ${BASELINE_LABEL[b]}`), ...(withLive ? ['vs kdistill live'] : [])];
    const body = rows.map((r) => [r.label, f(r.total), r.trials.map(f).join(' / '), ...bs.map((b) => `${(r.total / total(b)).toFixed(2)}×`),
      ...(withLive ? [`${(r.total / total('kdLive')).toFixed(2)}×`] : [])]);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    const line = (cols: string[]): string => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ');
    console.log('\n' + line(header));
    console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const b of body) console.log(line(b));
    const build = res.kdViews[0]!.cacheSeconds!;
    const reuse = res.kdViews.slice(1).map((x) => x.cacheSeconds!);
    console.log(`\nview cache: built once in ${f(build)} s (${epochs} epochs × ${samples} views), opened by later trials in ${reuse.map((x) => x.toFixed(2)).join(' / ')} s; ` +
      `load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ${loadavg().map((x) => x.toFixed(2)).join(' ')} after (2 cores shared).`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify({
      benchmark: 'view-cache', date: new Date().toISOString(),
      baselines: bs, machine: { cpus: cpus().length, model: cpus()[0]?.model ?? null, loadavgBefore: loadBefore, loadavgAfter: loadavg(), node: process.version },
      config: { trials: TRIALS.slice(0, trials), augmentSeed: AUGMENT_SEED, epochs, samples, batch, threads, temperature: T, alpha: ALPHA, crop: PAD, flip: true, student: 'cnn [8, 16]/64', teacher: 'assets/fashion-mnist-teacher.safetensors' },
      rows: rows.map((r) => ({ ...r, ...Object.fromEntries(bs.map((b) => [`vs_${b}`, r.total / total(b)])) })), cache: { buildSeconds: build, openSeconds: reuse }, raw: res,
    }, null, 2) + '\n');
    console.log(`results written to ${out}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = parseArgs(process.argv.slice(2));
  (args.has('worker') ? worker(args) : orchestrate(args)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.stack ?? e.message : e);
    process.exit(1);
  });
}
