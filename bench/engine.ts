// Engine benchmark (issue 2): the training-step time of a 784-256-256-10 MLP and a small CNN
// (two 3x3 conv + 2x2 max-pool layers), batch 128, KD loss (CE + KL at T=4 against fixed teacher
// logits), SGD with momentum — kdistill and PyTorch side by side, in one run, on this machine.
//
// Both engines run as long-lived row workers (bench/_rows.ts serveRows, bench/python/_common.py
// serve_rows; one per side and environment, because OPENBLAS_NUM_THREADS is read when OpenBLAS
// loads); each step reads its loss value, as a training loop does. This process only
// orchestrates: it sends the same request to each side in turn, alternating which side goes
// first, so slow drift of the shared machine's load hits both equally. Each request = warm-up steps + timed steps = one "run";
// we report the median of the runs' ms/step, and the spread (min–max).
//
//   node dist/bench/engine.js [--repeats 7] [--steps 30] [--warmup 5] [--threads 1,2]
//        [--models mlp,cnn] [--loss kd|ce] [--sweep] [--baseline stock|tuned|both] [--out bench/results/engine.json]
//   --sweep also compares OPENBLAS_NUM_THREADS = unset, 1, 2 (for both sides).
//   --baseline: PyTorch with stock glibc malloc, glibc-tuned, or both (default; bench/_common.ts),
//   each in its own worker, each with its own ratio column.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';
import { root, median, baselines, baselineEnv, baselineNote, BASELINE_LABEL, Worker, runBenchmark, type Baseline } from './_common.js';
import { serveRows, type BuiltRow, type RowBase, type RowReply } from './_rows.js';

export const benchmark = { name: 'engine', description: 'training-step time of an MLP and a small CNN vs PyTorch' };

const BATCH = 128;
const T = 4;
const ALPHA = 0.9;
const SEED = 0;
const TARGET = 1.1;
const PYTHON = '/usr/bin/python3';

type ModelName = 'mlp' | 'cnn';
type LossKind = 'kd' | 'ce';
/** One model and loss: a row of the row workers' protocol (bench/_rows.ts serveRows, bench/python/_common.py serve_rows). */
interface EngineRow extends RowBase { model: ModelName; loss: LossKind }
interface Request { row: EngineRow; threads: number; warmup: number; steps: number }


// ---------------------------------------------------------------------------------------
// Worker: the kdistill side. Loaded lazily so the orchestrator never loads libtorch/OpenBLAS.
// ---------------------------------------------------------------------------------------
async function worker(): Promise<void> {
  // the engine layer only (src/tensor, src/optim), not the whole library
  const { manualSeed } = await import('../src/tensor/torch.js');
  const { torch } = await import('../src/torch.js');
  const F = await import('../src/tensor/functional.js');
  const { tidy } = await import('../src/tensor/scope.js');
  type Tensor = InstanceType<typeof torch.Tensor>;

  const uniform = (shape: number[], fanIn: number): Tensor => {
    const b = 1 / Math.sqrt(fanIn);
    return tidy(() => torch.rand(shape).mul(2 * b).sub(b)).requiresGrad_(true).keep();
  };

  interface Built { params: Tensor[]; x: Tensor; y: Tensor; teacher: Tensor; forward: (x: Tensor) => Tensor; opt: InstanceType<typeof torch.optim.SGD> }
  function buildModel(model: ModelName): Built {
    manualSeed(SEED);
    let params: Tensor[];
    let x: Tensor;
    let forward: (x: Tensor) => Tensor;
    if (model === 'mlp') {
      params = [
        uniform([256, 784], 784), uniform([256], 784),
        uniform([256, 256], 256), uniform([256], 256),
        uniform([10, 256], 256), uniform([10], 256),
      ];
      x = torch.randn([BATCH, 784]).keep();
      const [w1, b1, w2, b2, w3, b3] = params as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
      forward = (x) => {
        let h = F.relu(F.linear(x, w1, b1));
        h = F.relu(F.linear(h, w2, b2));
        return F.linear(h, w3, b3);
      };
    } else {
      params = [
        uniform([16, 1, 3, 3], 9), uniform([16], 9),
        uniform([32, 16, 3, 3], 144), uniform([32], 144),
        uniform([10, 32 * 7 * 7], 32 * 7 * 7), uniform([10], 32 * 7 * 7),
      ];
      x = torch.randn([BATCH, 1, 28, 28]).keep();
      const [c1, d1, c2, d2, w, b] = params as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
      forward = (x) => {
        let h = F.maxPool2d(F.relu(F.conv2d(x, c1, d1, { stride: 1, padding: 1 })), 2);
        h = F.maxPool2d(F.relu(F.conv2d(h, c2, d2, { stride: 1, padding: 1 })), 2);
        return F.linear(h.flatten(1), w, b);
      };
    }
    const y = torch.randint(0, 10, [BATCH]).keep();
    const teacher = tidy(() => torch.randn([BATCH, 10]).mul(3)).keep();
    const opt = new torch.optim.SGD(params, { lr: 0.01, momentum: 0.9 });
    return { params, x, y, teacher, forward, opt };
  }

  function makeStep(m: Built, loss: LossKind): () => number {
    const { x, y, teacher, forward, opt } = m;
    return () => {
      opt.zeroGrad(true);
      const value = tidy(() => {
        const s = forward(x);
        const ce = F.crossEntropy(s, y);
        let l: Tensor = ce;
        if (loss === 'kd') {
          const kd = F.klDiv(F.logSoftmax(s.div(T), 1), F.logSoftmax(teacher.div(T), 1), { reduction: 'batchmean', logTarget: true });
          l = ce.mul(1 - ALPHA).add(kd.mul(ALPHA * T * T));
        }
        l.backward();
        return l.item();
      });
      opt.step();
      return value;
    };
  }

  const build = (row: EngineRow): BuiltRow => {
    const m = buildModel(row.model);
    return { step: makeStep(m, row.loss), params: m.params.reduce((n, p) => n + p.numel(), 0), teacherParams: null };
  };
  await serveRows(build);
}

// ---------------------------------------------------------------------------------------
// Orchestrator
// ---------------------------------------------------------------------------------------
/** OPENBLAS_NUM_THREADS setting: 'default' = what kdistill picks (the Python side gets the same value); '' = unset. */
type BlasSetting = 'default' | 'unset' | string;

function envFor(blas: BlasSetting, side: 'kd' | 'py', kdDefault: string | null): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OMP_NUM_THREADS; // threads are set per request with set_num_threads on both sides
  if (blas === 'default') {
    if (side === 'py') {
      if (kdDefault === null) delete env.OPENBLAS_NUM_THREADS;
      else env.OPENBLAS_NUM_THREADS = kdDefault;
    }
  } else if (blas === 'unset') {
    // kdistill's load() fills OPENBLAS_NUM_THREADS in only when it is absent; an empty value
    // counts as set and is, for OpenBLAS, the same as unset (atoi('') = 0 -> its own default).
    if (side === 'kd') env.OPENBLAS_NUM_THREADS = '';
    else delete env.OPENBLAS_NUM_THREADS;
  } else env.OPENBLAS_NUM_THREADS = blas;
  return env;
}



interface Stat { medianMs: number; minMs: number; maxMs: number; runs: number[] }
interface Row {
  model: ModelName; threads: number; blas: string; loss: LossKind;
  kdistill: Stat;
  /** One entry per PyTorch baseline run (stock, glibc-tuned). */
  pytorch: Partial<Record<Baseline, Stat>>;
  /** kdistill median / that baseline's median, per baseline. */
  ratio: Partial<Record<Baseline, number>>; ratioRuns: Partial<Record<Baseline, number[]>>; pass: Partial<Record<Baseline, boolean>>;
}

async function orchestrate(args: Map<string, string>): Promise<void> {
  const repeats = Number(args.get('repeats') ?? 7);
  const warmup = Number(args.get('warmup') ?? 5);
  const stepsArg = args.get('steps');
  const threadsList = (args.get('threads') ?? '1,2').split(',').map(Number);
  const models = (args.get('models') ?? 'mlp,cnn').split(',') as ModelName[];
  const loss = (args.get('loss') ?? 'kd') as LossKind;
  const sweep = args.has('sweep');
  const blasList: BlasSetting[] = args.has('blas') ? args.get('blas')!.split(',') : sweep ? ['unset', '1', '2'] : ['default'];
  const out = resolve(root, args.get('out') ?? (sweep ? 'bench/results/engine-sweep.json' : 'bench/results/engine.json'));
  const bs = baselines(args.get('baseline'));
  // steps per run: enough for ~0.1-0.3 s of work per run on each side
  const stepsFor = (m: ModelName): number => Number(stepsArg ?? (m === 'mlp' ? 60 : 8));

  const kdScript = fileURLToPath(import.meta.url);
  const pyScript = join(root, 'bench', 'python', 'engine.py');
  const rows: Row[] = [];
  const blasSeen: Record<string, { kdistill: string | null; pytorch: string | null }> = {};
  let kdDefaultThreads = 0, pyDefaultThreads = 0;

  console.log(`engine benchmark: batch ${BATCH}, loss ${loss === 'kd' ? `KD (CE + KL at T=${T})` : 'CE'}, SGD momentum 0.9; ` +
    `${repeats} runs per cell (${warmup} warm-up + MLP ${stepsFor('mlp')} / CNN ${stepsFor('cnn')} timed steps), alternating sides`);
  console.log(`machine: ${cpus().length} cpus (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(baselineNote(bs));

  for (const blas of blasList) {
    const kdEnv = baselineEnv(envFor(blas, 'kd', null), 'kdistill');
    const kd = await new Worker('kdistill', process.execPath, [kdScript, '--worker'], kdEnv).start();
    const kdBlas = kd.hello.OPENBLAS_NUM_THREADS ?? null;
    // One PyTorch worker per baseline: glibc reads its tunables when the process starts.
    const pys = new Map<Baseline, Worker>();
    for (const b of bs) pys.set(b, await new Worker(`pytorch-${b}`, PYTHON, [pyScript], baselineEnv(envFor(blas, 'py', kdBlas), b)).start());
    const py0 = pys.get(bs[0]!)!;
    kdDefaultThreads = kd.hello.defaultThreads;
    pyDefaultThreads = py0.hello.defaultThreads;
    const blasLabel = blas === 'default' ? `default(${kdBlas === null ? 'unset' : kdBlas})` : blas;
    blasSeen[blasLabel] = { kdistill: kdBlas, pytorch: py0.hello.OPENBLAS_NUM_THREADS ?? null };
    try {
      const cells: Request[] = [];
      for (const model of models) {
        for (const threads of threadsList) cells.push({ row: { name: `${model} ${loss}`, model, loss, batch: BATCH, warmup, steps: stepsFor(model) }, threads, warmup, steps: stepsFor(model) });
      }
      const sides: ['kdistill' | Baseline, Worker][] = [['kdistill', kd], ...[...pys].map(([b, w]) => [b, w] as ['kdistill' | Baseline, Worker])];
      const res = new Map<Request, Map<'kdistill' | Baseline, number[]>>(cells.map((c) => [c, new Map(sides.map(([n]) => [n, [] as number[]]))]));
      // one untimed pass over every cell first: builds models, warms allocators and thread pools,
      // and checks that the sides built the same network (parameter counts)
      for (const c of cells) {
        const counts: [string, number][] = [];
        for (const [name, w] of sides) counts.push([name, (await w.run<RowReply>({ ...c, steps: 1 })).params]);
        for (const [name, p] of counts) {
          if (p !== counts[0]![1]) throw new Error(`engine: ${c.row.name}: ${name} has ${p} parameters, kdistill ${counts[0]![1]}: not the same network`);
        }
      }
      for (let r = 0; r < repeats; r++) {
        for (const [i, c] of cells.entries()) {
          // rotate who goes first, so slow drift of the machine's load hits every side alike
          const k = (r + i) % sides.length;
          for (const [name, w] of [...sides.slice(k), ...sides.slice(0, k)]) res.get(c)!.get(name)!.push((await w.run<RowReply>(c)).msPerStep);
        }
        process.stderr.write(`  [blas ${blasLabel}] run ${r + 1}/${repeats} done\n`);
      }
      for (const c of cells) {
        const m = res.get(c)!, k = m.get('kdistill')!;
        const stat = (xs: number[]): Stat => ({ medianMs: median(xs), minMs: Math.min(...xs), maxMs: Math.max(...xs), runs: xs });
        const row: Row = { model: c.row.model, threads: c.threads, blas: blasLabel, loss, kdistill: stat(k), pytorch: {}, ratio: {}, ratioRuns: {}, pass: {} };
        for (const b of bs) {
          const p = m.get(b)!;
          row.pytorch[b] = stat(p);
          row.ratio[b] = median(k) / median(p);
          row.ratioRuns[b] = k.map((x, i) => x / p[i]!);
          row.pass[b] = row.ratio[b]! <= TARGET;
        }
        rows.push(row);
      }
    } finally {
      await kd.stop();
      for (const w of pys.values()) await w.stop();
    }
  }

  // ---- table ----------------------------------------------------------------------------
  const f = (x: number): string => x.toFixed(2);
  const header = ['model', 'threads', 'OPENBLAS_NUM_THREADS', 'kdistill ms/step (min–max)',
    ...bs.map((b) => `${BASELINE_LABEL[b]} ms/step (min–max)`), ...bs.map((b) => `kdistill / ${BASELINE_LABEL[b]} (runs min–max)`), `target ≤${TARGET.toFixed(2)}`];
  const body = rows.map((r) => [
    r.model === 'mlp' ? 'MLP 784-256-256-10' : 'CNN 2×(conv3×3+pool)',
    String(r.threads), r.blas,
    `${f(r.kdistill.medianMs)} (${f(r.kdistill.minMs)}–${f(r.kdistill.maxMs)})`,
    ...bs.map((b) => { const p = r.pytorch[b]!; return `${f(p.medianMs)} (${f(p.minMs)}–${f(p.maxMs)})`; }),
    ...bs.map((b) => `${r.ratio[b]!.toFixed(3)} (${Math.min(...r.ratioRuns[b]!).toFixed(2)}–${Math.max(...r.ratioRuns[b]!).toFixed(2)})`),
    bs.map((b) => (r.pass[b] ? '✓' : '✗')).join(' '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cols: string[]): string => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log('\n' + line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
  console.log(`\nmedians of ${repeats} runs; each ratio = kdistill median / that PyTorch baseline's median (${bs.map((b) => BASELINE_LABEL[b]).join(', ')}). ` +
    `Default libtorch threads: kdistill ${kdDefaultThreads}, PyTorch ${pyDefaultThreads}.`);

  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({
    benchmark: 'engine',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? null, loadavgAtEnd: loadavg(), node: process.version },
    config: { batch: BATCH, loss, temperature: T, alpha: ALPHA, optimizer: 'SGD lr 0.01 momentum 0.9', repeats, warmup,
      steps: { mlp: stepsFor('mlp'), cnn: stepsFor('cnn') }, target: TARGET },
    defaults: { kdistillThreads: kdDefaultThreads, pytorchThreads: pyDefaultThreads, openblas: blasSeen },
    baselines: Object.fromEntries(bs.map((b) => [b, baselineEnv({}, b)])),
    rows,
  }, null, 2) + '\n');
  console.log(`results written to ${out}`);
}

runBenchmark(import.meta.url, worker, orchestrate);
