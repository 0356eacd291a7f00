// Sobolev benchmark (issue 6): the extra time per training step of stochastic Sobolev training
// (order 1: Jacobian–vector products; order 2: plus Hessian–vector projections, both by double
// backward) over a plain KD step, kdistill and PyTorch side by side on the same model, batch,
// directions, threads and loss.
//
// Model: teacher MLP 784-256-256-10, student MLP 784-128-10, tanh activations (so order 2 is not
// trivially zero), batch 128, SGD; derivatives of log-softmax outputs, one projection per sample.
// kdistill runs the library's own code path (src/losses/sobolev.ts); the Python worker
// (bench/python/sobolev.py) implements the same estimator by hand with torch.autograd.grad.
// Like bench/engine.ts, both sides are long-lived workers fed the same requests alternately, and
// we report medians over runs.
//
//   node dist/bench/sobolev.js [--repeats 5] [--steps 10] [--warmup 3] [--threads 1] [--baseline stock|tuned|both] [--out bench/results/sobolev.json]
// (--baseline: PyTorch with stock glibc malloc, glibc-tuned, or both, each its own worker and ratio; bench/_common.ts)
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';
import { root, baselines, baselineEnv, baselineNote, BASELINE_LABEL, runBenchmark, type Baseline } from './_common.js';

export const benchmark = { name: 'sobolev', description: 'extra step time of order-1/order-2 Sobolev training vs a KD step, vs PyTorch' };

const BATCH = 128;
const T = 4;
const ALPHA = 0.9;
const PYTHON = '/usr/bin/python3';
type Mode = 'kd' | 'sobolev1' | 'sobolev2';
const MODES: Mode[] = ['kd', 'sobolev1', 'sobolev2'];
interface Request { mode: Mode; threads: number; warmup: number; steps: number }
interface Reply { msPerStep: number; loss: number }


async function worker(): Promise<void> {
  const { torch, F, tidy, manualSeed, setNumThreads, getNumThreads, losses } = await import('../src/index.js');
  type Tensor = InstanceType<typeof torch.Tensor>;
  const uniform = (shape: number[], fanIn: number, grad: boolean): Tensor => {
    const b = 1 / Math.sqrt(fanIn);
    return tidy(() => torch.rand(shape).mul(2 * b).sub(b)).requiresGrad_(grad).keep();
  };
  manualSeed(0);
  const tp = [uniform([256, 784], 784, false), uniform([256], 784, false), uniform([256, 256], 256, false), uniform([256], 256, false), uniform([10, 256], 256, false), uniform([10], 256, false)];
  const sp = [uniform([128, 784], 784, true), uniform([128], 784, true), uniform([10, 128], 128, true), uniform([10], 128, true)];
  const teacher = (x: Tensor): Tensor => F.linear(F.tanh(F.linear(F.tanh(F.linear(x, tp[0]!, tp[1]!)), tp[2]!, tp[3]!)), tp[4]!, tp[5]!);
  const student = (x: Tensor): Tensor => F.linear(F.tanh(F.linear(x, sp[0]!, sp[1]!)), sp[2]!, sp[3]!);
  const x0 = torch.randn([BATCH, 784]).keep();
  const y = torch.randint(0, 10, [BATCH]).keep();
  const opt = new torch.optim.SGD(sp, { lr: 0.01, momentum: 0.9 });
  const gen = new torch.Generator(0);

  const step = (mode: Mode): number => {
    opt.zeroGrad(true);
    const v = tidy(() => {
      const x = x0.detach().requiresGrad_(mode !== 'kd');
      const zs = student(x);
      let loss: Tensor;
      if (mode === 'kd') {
        const zt = torch.noGrad(() => teacher(x));
        loss = F.crossEntropy(zs, y).mul(1 - ALPHA).add(losses.klDivergence(zt, zs, T).mul(ALPHA));
      } else {
        const xt = x.detach().requiresGrad_(true);
        const zt = teacher(xt);
        loss = F.crossEntropy(zs, y).mul(1 - ALPHA).add(losses.klDivergence(zt.detach(), zs, T).mul(ALPHA));
        const projections = losses.randomProjections([BATCH, 784], 10, 1, gen);
        const req = { order1: true, order2: mode === 'sobolev2', targets: null, projections };
        const dt = losses.derivatives(losses.sobolevOutput(zt, 'logprobs'), xt, { ...req, createGraph: false });
        const ds = losses.derivatives(losses.sobolevOutput(zs, 'logprobs'), x, { ...req, createGraph: true });
        const l = losses.sobolevLosses(ds, dt);
        loss = loss.add(l.order1!);
        if (l.order2) loss = loss.add(l.order2);
      }
      loss.backward(undefined, { inputs: sp });
      return loss.item();
    });
    opt.step();
    return v;
  };

  process.stdout.write(JSON.stringify({ hello: { torch: torch.version, defaultThreads: getNumThreads(), OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? null } }) + '\n');
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const req = JSON.parse(line) as Request & { quit?: boolean };
    if (req.quit) break;
    setNumThreads(req.threads);
    for (let i = 0; i < req.warmup; i++) step(req.mode);
    let loss = 0;
    const t0 = performance.now();
    for (let i = 0; i < req.steps; i++) loss = step(req.mode);
    const reply: Reply = { msPerStep: (performance.now() - t0) / req.steps, loss };
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
  rl.close();
}

class Worker {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly rl: Interface;
  readonly lines: AsyncIterator<string>;
  stderr = '';
  constructor(readonly label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv) {
    this.proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.proc.stderr.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    this.rl = createInterface({ input: this.proc.stdout });
    this.lines = this.rl[Symbol.asyncIterator]();
  }
  async next(): Promise<unknown> {
    for (;;) {
      const r = await this.lines.next();
      if (r.done) throw new Error(`${this.label} worker exited unexpectedly:\n${this.stderr}`);
      const s = r.value.trim();
      if (s.startsWith('{')) return JSON.parse(s);
    }
  }
  async run(req: Request): Promise<Reply> {
    this.proc.stdin.write(JSON.stringify(req) + '\n');
    return (await this.next()) as Reply;
  }
  async stop(): Promise<void> {
    this.proc.stdin.end(JSON.stringify({ quit: true }) + '\n');
    await new Promise<void>((res) => (this.proc.exitCode !== null ? res() : this.proc.on('exit', () => res())));
    this.rl.close();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function orchestrate(args: Map<string, string>): Promise<void> {
  const repeats = Number(args.get('repeats') ?? 5), steps = Number(args.get('steps') ?? 10), warmup = Number(args.get('warmup') ?? 3);
  const threads = Number(args.get('threads') ?? 1);
  const out = resolve(root, args.get('out') ?? 'bench/results/sobolev.json');
  console.log(`sobolev benchmark: teacher MLP 784-256-256-10, student 784-128-10 (tanh), batch ${BATCH}, ${threads} thread(s); ` +
    `${repeats} runs × (${warmup} warm-up + ${steps} timed steps), alternating sides`);
  console.log(`machine: ${cpus().length} cpus, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  // Both sides get the same OpenBLAS threads (kdistill's default, 1): left unset, PyTorch's
  // OpenBLAS starts one thread per core whatever torch.set_num_threads says.
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1' };
  console.log(`OPENBLAS_NUM_THREADS=${env.OPENBLAS_NUM_THREADS} for both sides`);
  const bs = baselines(args.get('baseline'));
  console.log(baselineNote(bs));
  type Side = 'kd' | Baseline;
  const kd = new Worker('kdistill', process.execPath, [fileURLToPath(import.meta.url), '--worker'], baselineEnv(env, 'kdistill'));
  const pys = bs.map((b) => [b, new Worker(`pytorch-${b}`, PYTHON, [join(root, 'bench', 'python', 'sobolev.py')], baselineEnv(env, b))] as [Side, Worker]);
  const sides: [Side, Worker][] = [['kd', kd], ...pys];
  for (const [, w] of sides) await w.next();
  const res = Object.fromEntries(MODES.map((mode) => [mode, { ms: new Map<Side, number[]>(sides.map(([n]) => [n, []])), loss: new Map<Side, number>() }])) as Record<Mode, { ms: Map<Side, number[]>; loss: Map<Side, number> }>;
  try {
    for (const mode of MODES) for (const [, w] of sides) await w.run({ mode, threads, warmup: 1, steps: 1 });
    for (let r = 0; r < repeats; r++) {
      for (const [i, mode] of MODES.entries()) {
        const req = { mode, threads, warmup, steps };
        // rotate who goes first, so load drift hits every side alike
        const k = (r + i) % sides.length;
        for (const [n, w] of [...sides.slice(k), ...sides.slice(0, k)]) {
          const a = await w.run(req);
          res[mode].ms.get(n)!.push(a.msPerStep);
          res[mode].loss.set(n, a.loss);
        }
      }
      process.stderr.write(`  run ${r + 1}/${repeats} done\n`);
    }
  } finally {
    for (const [, w] of sides) await w.stop();
  }
  const m = (mode: Mode, side: Side): number => median(res[mode].ms.get(side)!);
  const rows = MODES.map((mode) => ({
    mode,
    kdistillMs: m(mode, 'kd'),
    pytorchMs: Object.fromEntries(bs.map((b) => [b, m(mode, b)])),
    ratio: Object.fromEntries(bs.map((b) => [b, m(mode, 'kd') / m(mode, b)])),
    extraKdistillMs: m(mode, 'kd') - m('kd', 'kd'),
    extraPytorchMs: Object.fromEntries(bs.map((b) => [b, m(mode, b) - m('kd', b)])),
    extraRatio: Object.fromEntries(bs.map((b) => [b, mode === 'kd' ? null : (m(mode, 'kd') - m('kd', 'kd')) / (m(mode, b) - m('kd', b))])),
    runs: Object.fromEntries(res[mode].ms),
  }));
  const f = (x: number): string => x.toFixed(2);
  const L = (b: Baseline): string => BASELINE_LABEL[b];
  const header = ['step', 'kdistill ms', ...bs.map((b) => `${L(b)} ms`), ...bs.map((b) => `kdistill / ${L(b)}`),
    'extra vs KD: kdistill ms', ...bs.map((b) => `${L(b)} ms`), ...bs.map((b) => `extra: kdistill / ${L(b)}`)];
  const body = rows.map((r) => [r.mode === 'kd' ? 'KD (CE + T²KL)' : r.mode === 'sobolev1' ? 'KD + Sobolev order 1' : 'KD + Sobolev orders 1+2',
    f(r.kdistillMs), ...bs.map((b) => f(r.pytorchMs[b]!)), ...bs.map((b) => r.ratio[b]!.toFixed(3)),
    r.mode === 'kd' ? '–' : f(r.extraKdistillMs), ...bs.map((b) => (r.mode === 'kd' ? '–' : f(r.extraPytorchMs[b]!))),
    ...bs.map((b) => { const x = r.extraRatio[b]; return x === null || x === undefined ? '–' : x.toFixed(3); })]);
  const w = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]): string => c.map((s, i) => s.padEnd(w[i]!)).join('  ');
  console.log('\n' + line(header) + '\n' + w.map((n) => '-'.repeat(n)).join('  '));
  for (const b of body) console.log(line(b));
  console.log(`\nmedians of ${repeats} runs; each ratio = kdistill / the PyTorch baseline its column names. Final losses (kdistill, ${bs.map(L).join(', ')}): ` +
    MODES.map((mo) => `${mo} ${sides.map(([n]) => (res[mo].loss.get(n) ?? NaN).toFixed(4)).join(', ')}`).join('; '));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ benchmark: 'sobolev', date: new Date().toISOString(), machine: { cpus: cpus().length, loadavgAtEnd: loadavg() },
    config: { batch: BATCH, temperature: T, alpha: ALPHA, threads, repeats, steps, warmup, projections: 1, output: 'logprobs' },
    baselines: Object.fromEntries(bs.map((b) => [b, baselineEnv({}, b)])), rows }, null, 2) + '\n');
  console.log(`results written to ${out}`);
}


runBenchmark(import.meta.url, worker, orchestrate);
