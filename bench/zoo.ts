// Zoo benchmark (issue 23): training steps of the models the experiments train — CIFAR-style
// ResNet-8/20 and WRN-16-1/16-4 students (KD loss against cached teacher logits, and one row with
// a live WRN-16-4 teacher forward), on 28×28×1 and 32×32×3 inputs, batch 128; and the Hinton
// MNIST MLPs (1200-1200 teacher with dropout and max-norm, 800-800 student distilled from it) —
// kdistill against the same models in PyTorch (bench/python/zoo.py), side by side in one run.
//
// Like bench/engine.ts, every side is a long-lived worker (kdistill, PyTorch stock, PyTorch
// glibc-tuned); each request is one "run" (warm-up + timed steps) of one row, and the sides take
// turns, the first rotating, so the machine's load drift hits all alike. A row's number is the
// median over its runs of the mean ms/step. Both sides report their parameter counts and the run
// fails when they differ (the two definitions of a model must be the same network).
//
//   node dist/bench/zoo.js [--rows resnet8,mlp] [--repeats 3] [--threads 1] [--baseline both]
//        [--profile 3] [--out bench/results/zoo.json]
//   --rows: rows whose name starts with one of these; --profile k: after timing, profile k steps
//   on each side and print the top operators by self CPU time (libtorch's autograd profiler).
import { mkdirSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';
import { root, median, baselines, baselineEnv, baselineNote, BASELINE_LABEL, Worker, runBenchmark, type Baseline, type WorkerHello } from './_common.js';

export const benchmark = { name: 'zoo', description: 'ResNet/WRN and Hinton-MLP training steps vs PyTorch' };

interface Arch { arch: string; hidden?: number[]; dropout?: number; inputDropout?: number }
interface Row {
  name: string;
  student: Arch;
  /** A live teacher (eval mode, no gradients) run every step; null = its logits come from a cache. */
  teacher: Arch | null;
  input: [number, number, number];
  batch: number;
  loss: { kind: 'kd'; T: number; alpha: number } | { kind: 'ce' };
  optim: { lr: number; momentum: number; nesterov?: boolean; weightDecay?: number; maxNorm?: number };
  /** Warm-up steps (first run only) and timed steps per run: enough to average over, few enough to keep the whole bench near 10 minutes. */
  warmup: number;
  steps: number;
}
interface ProfileRow { name: string; calls: number; selfMs: number; totalMs: number }
interface Reply { ms: number[]; msPerStep: number; loss: number; params: number; teacherParams: number | null; profile?: ProfileRow[] }

// mdistiller's CIFAR recipe: SGD lr 0.05, momentum 0.9, weight decay 5e-4; KD at T = 4, alpha 0.9.
const CIFAR_OPTIM = { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 };
const KD4 = { kind: 'kd', T: 4, alpha: 0.9 } as const;
const WRN164: Arch = { arch: 'wrn_16_4' };
// The Hinton reproduction (experiments/hinton-mnist/*.yaml): batch 128, SGD with Nesterov momentum.
const HINTON_TEACHER: Arch = { arch: 'mlp', hidden: [1200, 1200], dropout: 0.5, inputDropout: 0.2 };

const ROWS: Row[] = [
  ...(['resnet8', 'resnet20', 'wrn_16_1', 'wrn_16_4'] as const).flatMap((arch) =>
    ([[1, 28, 28], [3, 32, 32]] as [number, number, number][]).map((input): Row => ({
      name: `${arch} ${input.join('×')}`, student: { arch }, teacher: null, input, batch: 128, loss: KD4, optim: CIFAR_OPTIM,
      // a WRN-16-4 step is ~10 s on one core; the others 0.3–1.5 s
      ...(arch === 'wrn_16_4' ? { warmup: 1, steps: 2 } : { warmup: 2, steps: 5 }),
    }))),
  { name: 'wrn_16_4 teacher → resnet8 3×32×32', student: { arch: 'resnet8' }, teacher: WRN164, input: [3, 32, 32], batch: 128, loss: KD4, optim: CIFAR_OPTIM, warmup: 1, steps: 3 },
  { name: 'mlp 1200-1200 teacher (dropout, max-norm)', student: HINTON_TEACHER, teacher: null, input: [1, 28, 28], batch: 128, loss: { kind: 'ce' },
    optim: { lr: 0.1, momentum: 0.9, nesterov: true, maxNorm: 3.5 }, warmup: 5, steps: 20 },
  { name: 'mlp 800-800 ← 1200-1200 teacher, KD T=20', student: { arch: 'mlp', hidden: [800, 800] }, teacher: HINTON_TEACHER, input: [1, 28, 28], batch: 128,
    loss: { kind: 'kd', T: 20, alpha: 1 }, optim: { lr: 0.05, momentum: 0.9, nesterov: true }, warmup: 5, steps: 20 },
];

// ---------------------------------------------------------------------------------------
// Worker: the kdistill side, built from the library's own pieces (zoo, KD loss, optimizer,
// max-norm), as the trainer uses them. Loaded lazily so the orchestrator never loads libtorch.
// ---------------------------------------------------------------------------------------
async function worker(): Promise<void> {
  const { manualSeed, setNumThreads, getNumThreads } = await import('../src/tensor/torch.js');
  const { torch } = await import('../src/torch.js');
  const F = await import('../src/tensor/functional.js');
  const { tidy } = await import('../src/tensor/scope.js');
  const { noGrad } = await import('../src/tensor/autograd.js');
  const { profile } = await import('../src/tensor/profiler.js');
  const { createModel } = await import('../src/nn/zoo/index.js');
  const { makeOptimizer } = await import('../src/optim/optimizer.js');
  const { constrainedWeights, maxNorm_ } = await import('../src/optim/constraints.js');
  const { klDivergence } = await import('../src/losses/tempered.js');
  type Module = ReturnType<typeof createModel>;

  const model = (a: Arch, input: number[]): Module =>
    createModel(a.arch === 'mlp' ? { ...a, inputShape: input, numClasses: 10 } : { ...a, inChannels: input[0], inputSize: input.slice(1), numClasses: 10 });
  const count = (m: Module): number => m.parameters().reduce((s, p) => s + p.numel(), 0);

  function build(row: Row): { step: () => number; params: number; teacherParams: number | null } {
    manualSeed(0);
    const student = model(row.student, row.input).train();
    const teacher = row.teacher ? model(row.teacher, row.input).eval() : null;
    const opt = makeOptimizer({ name: 'sgd', ...row.optim }, student.parameters());
    const constrained = row.optim.maxNorm ? constrainedWeights(student) : [];
    const x = torch.randn([row.batch, ...row.input]).keep();
    const y = torch.randint(0, 10, [row.batch]).keep();
    const fixed = tidy(() => torch.randn([row.batch, 10]).mul(3)).keep();
    const loss = row.loss;
    const step = (): number => tidy(() => {
      const tl = teacher ? noGrad(() => teacher.call(x)) : fixed;
      const s = student.call(x);
      const l = loss.kind === 'kd'
        ? F.crossEntropy(s, y).mul(1 - loss.alpha).add(klDivergence(tl, s, loss.T).mul(loss.alpha))
        : F.crossEntropy(s, y);
      opt.zeroGrad();
      l.backward();
      opt.step();
      if (constrained.length) maxNorm_(constrained, row.optim.maxNorm!);
      return l.item();
    });
    return { step, params: count(student), teacherParams: teacher ? count(teacher) : null };
  }

  const built = new Map<string, ReturnType<typeof build>>();
  const hello: WorkerHello = { torch: torch.version, defaultThreads: getNumThreads(), OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? null, pid: process.pid };
  process.stdout.write(JSON.stringify({ hello }) + '\n');
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const req = JSON.parse(line) as { quit?: boolean; row: Row; threads: number; warmup: number; steps: number; profile?: number };
    if (req.quit) break;
    setNumThreads(req.threads);
    let b = built.get(req.row.name);
    if (!b) built.set(req.row.name, (b = build(req.row)));
    for (let i = 0; i < req.warmup; i++) b.step();
    const ms: number[] = [];
    let loss = NaN;
    for (let i = 0; i < req.steps; i++) {
      const t0 = performance.now();
      loss = b.step();
      ms.push(performance.now() - t0);
    }
    const reply: Reply = { ms, msPerStep: ms.reduce((a, v) => a + v, 0) / ms.length, loss, params: b.params, teacherParams: b.teacherParams };
    if (req.profile) {
      const { ops } = profile(() => { for (let i = 0; i < req.profile!; i++) b!.step(); });
      reply.profile = ops.slice(0, 25).map((o) => ({ name: o.name, calls: o.calls, selfMs: o.selfMs, totalMs: o.totalMs }));
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
  rl.close();
}

// ---------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------
type Side = 'kdistill' | Baseline;
interface Stat { medianMs: number; minMs: number; maxMs: number; runs: number[] }
interface Result {
  row: string; threads: number; batch: number; params: number; teacherParams: number | null; warmup: number; steps: number;
  kdistill: Stat; pytorch: Partial<Record<Baseline, Stat>>; ratio: Partial<Record<Baseline, number>>;
  profile?: Partial<Record<Side, ProfileRow[]>>;
}

async function orchestrate(args: Map<string, string>): Promise<void> {
  const repeats = Number(args.get('repeats') ?? 3);
  const threads = Number(args.get('threads') ?? 1);
  const profileSteps = Number(args.get('profile') ?? 0);
  const prefixes = args.get('rows')?.split(',').filter(Boolean);
  const rows = prefixes ? ROWS.filter((r) => prefixes.some((p) => r.name.startsWith(p))) : ROWS;
  if (rows.length === 0) throw new Error(`zoo: no row starts with ${prefixes!.join(' or ')}; rows: ${ROWS.map((r) => r.name).join('; ')}`);
  const bs = baselines(args.get('baseline'));
  const out = resolve(root, args.get('out') ?? 'bench/results/zoo.json');
  const loadBefore = loadavg();
  console.log(`zoo benchmark: ${rows.length} rows, ${threads} thread(s), ${repeats} runs per row per side, alternating sides`);
  console.log(`machine: ${cpus().length} cpus (${cpus()[0]?.model ?? '?'}), load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(baselineNote(bs));

  // Same OpenBLAS setting on every side: kdistill's default (1), which its load() sets.
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1' };
  delete env.OMP_NUM_THREADS;
  const sides: [Side, Worker][] = [['kdistill', await new Worker('kdistill', process.execPath, [fileURLToPath(import.meta.url), '--worker'], baselineEnv(env, 'kdistill')).start()]];
  for (const b of bs) sides.push([b, await new Worker(`pytorch-${b}`, '/usr/bin/python3', [join(root, 'bench', 'python', 'zoo.py')], baselineEnv(env, b)).start()]);
  const results: Result[] = [];
  const stat = (xs: number[]): Stat => ({ medianMs: median(xs), minMs: Math.min(...xs), maxMs: Math.max(...xs), runs: xs });
  try {
    for (const [i, row] of rows.entries()) {
      const runs = new Map<Side, number[]>(sides.map(([s]) => [s, []]));
      const counts = new Map<Side, [number, number | null]>();
      for (let r = 0; r < repeats; r++) {
        const k = (r + i) % sides.length;
        for (const [s, w] of [...sides.slice(k), ...sides.slice(0, k)]) {
          // The first run of a row builds the model and warms up. Later runs need none: the
          // worker keeps the model, its buffers and oneDNN's primitives; what the other sides'
          // runs disturb in between is the CPU caches, refilled in the first ms of a 30 ms–10 s step.
          const rep = await w.run<Reply>({ row, threads, warmup: r === 0 ? row.warmup : 0, steps: row.steps });
          runs.get(s)!.push(rep.msPerStep);
          counts.set(s, [rep.params, rep.teacherParams]);
        }
      }
      const [kp, kt] = counts.get('kdistill')!;
      for (const [s, [p, t]] of counts) {
        if (p !== kp || t !== kt) throw new Error(`zoo: ${row.name}: ${s} has ${p} student / ${t} teacher parameters, kdistill ${kp} / ${kt}: not the same network`);
      }
      const k = runs.get('kdistill')!;
      const res: Result = { row: row.name, threads, batch: row.batch, params: kp, teacherParams: kt, warmup: row.warmup, steps: row.steps, kdistill: stat(k), pytorch: {}, ratio: {} };
      for (const b of bs) {
        res.pytorch[b] = stat(runs.get(b)!);
        res.ratio[b] = median(k) / median(runs.get(b)!);
      }
      if (profileSteps > 0) {
        res.profile = {};
        for (const [s, w] of sides) res.profile[s] = (await w.run<Reply>({ row, threads, warmup: 0, steps: 1, profile: profileSteps })).profile;
        for (const [s, ops] of Object.entries(res.profile)) {
          console.log(`  profile ${s} (${profileSteps} steps), top by self CPU ms:`);
          for (const o of ops!.slice(0, 12)) console.log(`    ${o.name.padEnd(44)} ${String(o.calls).padStart(6)} calls  self ${o.selfMs.toFixed(1).padStart(8)}  total ${o.totalMs.toFixed(1).padStart(8)}`);
        }
      }
      results.push(res);
      console.log(`${row.name} (${kp.toLocaleString('en')} params${kt ? `, teacher ${kt.toLocaleString('en')}` : ''}): kdistill ${median(k).toFixed(1)} ms/step, ` +
        bs.map((b) => `${BASELINE_LABEL[b]} ${res.pytorch[b]!.medianMs.toFixed(1)} (×${res.ratio[b]!.toFixed(2)})`).join(', '));
    }
  } finally {
    for (const [, w] of sides) await w.stop();
  }
  const loadAfter = loadavg();
  console.log(`\n| row | kdistill ms/step | ${bs.map((b) => `${BASELINE_LABEL[b]} ms/step`).join(' | ')} | ${bs.map((b) => `kdistill / ${BASELINE_LABEL[b]}`).join(' | ')} |`);
  console.log(`|---|---:|${bs.map(() => '---:|---:|').join('')}`);
  for (const r of results) {
    console.log(`| ${r.row} | ${r.kdistill.medianMs.toFixed(1)} | ${bs.map((b) => r.pytorch[b]!.medianMs.toFixed(1)).join(' | ')} | ${bs.map((b) => r.ratio[b]!.toFixed(2)).join(' | ')} |`);
  }
  console.log(`\n${threads} thread(s); medians of ${repeats} runs per side; load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({
    benchmark: 'zoo', date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? null, loadavgBefore: loadBefore, loadavgAfter: loadAfter, node: process.version },
    config: { threads, repeats, profileSteps, openblasThreads: env.OPENBLAS_NUM_THREADS },
    baselines: Object.fromEntries(bs.map((b) => [b, baselineEnv({}, b)])),
    rows: rows.map((r) => ({ ...r })), results,
  }, null, 2) + '\n');
  console.log(`results written to ${out}`);
}

runBenchmark(import.meta.url, worker, orchestrate);
