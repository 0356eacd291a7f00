// Shared by the benchmarks (files named _* are not benchmarks themselves). Nothing here loads
// the libtorch addon, so an orchestrating process stays free of libtorch and OpenBLAS.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (where package.json and binding.gyp are), found from this file's location. */
export const root = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  let dir = here;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    dir = resolve(dir, '..');
  }
  throw new Error('bench: cannot find the package root above ' + here);
})();

/** Runs one side of a benchmark in its own process and parses the last JSON line it prints; a failure shows its stderr's tail. */
export function runJson<T = Record<string, unknown>>(label: string, cmd: string, argv: string[], env: NodeJS.ProcessEnv): T {
  const r = spawnSync(cmd, argv, { env, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${label} failed (exit ${r.status ?? r.signal}):\n${(r.stderr ?? '').trim().split('\n').slice(-15).join('\n')}`);
  const line = r.stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error(`${label} printed no result:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line) as T;
}

/**
 * A worker-or-orchestrator benchmark's entry: when `url` is the script node runs, calls
 * `worker(args)` under --worker and `orchestrate(args)` otherwise; exits 1 with the error's stack.
 */
export function runBenchmark(url: string, worker: (args: Map<string, string>) => Promise<void>, orchestrate: (args: Map<string, string>) => Promise<void>): void {
  if (!process.argv[1] || resolve(process.argv[1]) !== fileURLToPath(url)) return;
  const args = parseArgs(process.argv.slice(2));
  (args.has('worker') ? worker(args) : orchestrate(args)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.stack ?? e.message : e);
    process.exit(1);
  });
}

/** --key value, --key=value and bare --flag (= 'true'). */
export function parseArgs(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) m.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) m.set(a.slice(2), argv[++i]!);
    else m.set(a.slice(2), 'true');
  }
  return m;
}

// ---------------------------------------------------------------------------------------
// The PyTorch baselines (issue 14). Every benchmark can run its PyTorch side twice:
//   stock  glibc malloc as shipped. PyTorch's CPU tensors come from malloc; buffers above
//          glibc's (adaptive) mmap threshold are mmapped and unmapped again, so a training step
//          faults its activations and gradients in afresh every step (the CNN step's lead of
//          kdistill, whose own allocator keeps such buffers mapped, comes from this).
//   tuned  the same PyTorch with glibc told to keep them in one heap:
//          MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=1073741824.
// A ratio is kdistill / one of them, and every table says which. `--baseline stock|tuned|both`
// (default both) picks them. The kdistill side always runs with stock glibc settings.
// ---------------------------------------------------------------------------------------
export const GLIBC_TUNED: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '1073741824', MALLOC_TOP_PAD_: '1073741824' };
export type Baseline = 'stock' | 'tuned';
export const BASELINE_LABEL: Readonly<Record<Baseline, string>> = { stock: 'PyTorch stock', tuned: 'PyTorch glibc-tuned' };
export const GLIBC_TUNED_TEXT = Object.entries(GLIBC_TUNED).map(([k, v]) => `${k}=${v}`).join(' ');

/** The baselines a `--baseline` value asks for (stock, tuned, both; default both). */
export function baselines(value: string | undefined): Baseline[] {
  const v = value ?? 'both';
  if (v === 'both') return ['stock', 'tuned'];
  if (v === 'stock' || v === 'tuned') return [v];
  throw new Error(`--baseline must be stock, tuned or both, got '${v}'`);
}

/** `env` for one side: the glibc tunables removed (stock, and the kdistill side) or set (tuned). */
export function baselineEnv(env: NodeJS.ProcessEnv, b: Baseline | 'kdistill'): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const k of Object.keys(GLIBC_TUNED)) delete out[k];
  if (b === 'tuned') Object.assign(out, GLIBC_TUNED);
  return out;
}

/** One line saying what the baselines are, for a benchmark's header. */
export function baselineNote(bs: Baseline[]): string {
  return `PyTorch baselines: ${bs.map((b) => (b === 'stock' ? 'stock (glibc defaults)' : `glibc-tuned (${GLIBC_TUNED_TEXT})`)).join('; ')}`;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

// ---------------------------------------------------------------------------------------
// Memory benchmarks (bench/memory.ts, bench/memory-train.ts): both sides measure RSS the same
// way, from /proc/self/status (VmRSS = current, VmHWM = peak resident set size).
// ---------------------------------------------------------------------------------------
import { readFileSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';

/** Resident set size of this process in MiB (VmRSS from /proc/self/status = statm's resident pages × page size). */
export function rssMiB(): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
  return kb / 1024;
}
/** Resident memory by kind in MiB: anonymous (heaps, tensors) and file-backed (code of the loaded libraries, paged in as it runs). */
export function rssKindsMiB(): { anon: number; file: number } {
  const st = readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(st)?.[1] ?? NaN);
  return { anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024 };
}
/** Peak resident set size of this process (VmHWM) in MiB. */
export function peakRssMiB(): number {
  const kb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
  return kb / 1024;
}

export interface RssSample { step: number; rss: number }
/** One side's result, printed by the child as its last stdout line (JSON). */
export interface MemorySide {
  side: string;
  steps: number;
  warmupStep: number;
  /** post-warm-up samples first at warmupStep; rss in MiB */
  samples: RssSample[];
  peakRss: number;
  msPerStep: number;
  info: Record<string, unknown>;
}

/** Least-squares slope of RSS over the samples, in MiB per 10,000 steps. */
export function rssTrendPer10k(samples: RssSample[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mx = samples.reduce((a, p) => a + p.step, 0) / n, my = samples.reduce((a, p) => a + p.rss, 0) / n;
  const sxx = samples.reduce((a, p) => a + (p.step - mx) ** 2, 0);
  return sxx > 0 ? (samples.reduce((a, p) => a + (p.step - mx) * (p.rss - my), 0) / sxx) * 10000 : 0;
}

/** Runs one side in its own process (stderr passes through for progress) and parses its last stdout line. */
export function runMemorySide(cmd: string, args: string[], env: NodeJS.ProcessEnv): MemorySide {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as MemorySide;
}

/** The side-by-side memory table (markdown), kdistill against PyTorch, with ratios. */
export function memoryTable(kd: MemorySide, py: MemorySide): string {
  const row = (s: MemorySide): { warm: number; end: number; drift: number; trend: number; peak: number; ms: number } => {
    const warm = s.samples[0]!.rss, end = s.samples[s.samples.length - 1]!.rss;
    return { warm, end, drift: end - warm, trend: rssTrendPer10k(s.samples), peak: s.peakRss, ms: s.msPerStep };
  };
  const k = row(kd), p = row(py);
  const f = (x: number, d = 1): string => x.toFixed(d);
  const sg = (x: number, d = 1): string => (x >= 0 ? '+' : '') + x.toFixed(d);
  const lines = [
    '| | kdistill | PyTorch | kdistill / PyTorch |',
    '|---|---:|---:|---:|',
    `| RSS after warm-up (step ${kd.warmupStep}), MiB | ${f(k.warm)} | ${f(p.warm)} | |`,
    `| RSS at end (step ${kd.steps}), MiB | ${f(k.end)} | ${f(p.end)} | |`,
    `| drift after warm-up, MiB | ${sg(k.drift)} | ${sg(p.drift)} | |`,
    `| drift trend, MiB per 10k steps (least squares) | ${sg(k.trend, 2)} | ${sg(p.trend, 2)} | |`,
    `| peak RSS (VmHWM), MiB | ${f(k.peak)} | ${f(p.peak)} | ${(k.peak / p.peak).toFixed(2)} |`,
    `| time per step, ms | ${f(k.ms, 3)} | ${f(p.ms, 3)} | ${(k.ms / p.ms).toFixed(2)} |`,
  ];
  return lines.join('\n');
}

/** The per-mark RSS of both sides (MiB), one row per step mark present on both. */
export function memoryMarks(kd: MemorySide, py: MemorySide): string {
  const pm = new Map(py.samples.map((s) => [s.step, s.rss]));
  const out = ['step      kdistill MiB   PyTorch MiB'];
  for (const s of kd.samples) {
    const p = pm.get(s.step);
    out.push(`${String(s.step).padEnd(9)} ${s.rss.toFixed(1).padStart(12)} ${(p === undefined ? '—' : p.toFixed(1)).padStart(13)}`);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------
// Long-lived benchmark workers (engine, zoo): one process per side and environment, speaking one
// JSON object per line. The first line a worker prints is {"hello": {...}}; then one reply per
// request; {"quit": true} ends it. Non-JSON lines are passed through to stderr, labelled.
// ---------------------------------------------------------------------------------------
export interface WorkerHello { OPENBLAS_NUM_THREADS?: string | null; defaultThreads: number; [k: string]: unknown }

export class Worker {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly lines: AsyncIterator<string>;
  readonly rl: Interface;
  stderr = '';
  hello!: WorkerHello;

  constructor(readonly label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv) {
    this.proc = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    this.rl = createInterface({ input: this.proc.stdout });
    this.lines = this.rl[Symbol.asyncIterator]();
  }
  private async next(): Promise<unknown> {
    for (;;) {
      const r = await this.lines.next();
      if (r.done) throw new Error(`${this.label} worker exited unexpectedly:\n${this.stderr}`);
      const s = r.value.trim();
      if (s.startsWith('{')) return JSON.parse(s);
      if (s) process.stderr.write(`[${this.label}] ${s}\n`);
    }
  }
  async start(): Promise<this> {
    this.hello = ((await this.next()) as { hello: WorkerHello }).hello;
    return this;
  }
  async run<Reply = unknown>(req: object): Promise<Reply> {
    this.proc.stdin.write(JSON.stringify(req) + '\n');
    return (await this.next()) as Reply;
  }
  async stop(): Promise<void> {
    this.proc.stdin.write(JSON.stringify({ quit: true }) + '\n');
    this.proc.stdin.end();
    await new Promise<void>((res) => {
      if (this.proc.exitCode !== null) res();
      else this.proc.on('exit', () => res());
    });
    this.rl.close();
  }
}
