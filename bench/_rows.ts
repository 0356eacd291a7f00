// Row benchmarks (zoo, representation): a list of training-step rows run by long-lived workers,
// one per side (kdistill, PyTorch stock, PyTorch glibc-tuned), side by side in one run.
//
// Each request is one "run" (warm-up + timed steps) of one row, and the sides take turns, the
// first rotating, so the machine's load drift hits all alike. A row's number is the median over
// its runs of the mean ms/step. Both sides report their parameter counts and the run fails when
// they differ (the two definitions of a model must be the same network).
//
// A benchmark gives its rows, its kdistill worker (a `build(row)` served by `serveRows`) and its
// PyTorch worker script (bench/python/_common.py `serve_rows`); `compareRows` does the rest.
// Flags: [--rows a,b] (rows whose name starts with one of these) [--repeats 3] [--threads 1]
// [--baseline both] [--profile k] [--out bench/results/<name>.json]; --profile k: after timing,
// profile k steps on each side and print the top operators by self CPU time (libtorch's
// autograd profiler on both sides).
import { mkdirSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { root, median, baselines, baselineEnv, baselineNote, BASELINE_LABEL, Worker, type Baseline, type WorkerHello } from './_common.js';

/** What every row has; a benchmark's rows add what its workers need to build the step. */
export interface RowBase {
  name: string;
  batch: number;
  /** Warm-up steps (first run only) and timed steps per run. */
  warmup: number;
  steps: number;
}
export interface ProfileRow { name: string; calls: number; selfMs: number; totalMs: number }
/**
 * One run of a row. cpuMsPerStep (the process's user + system CPU time) and faultsPerStep (minor
 * page faults) say what wall time alone cannot: on a loaded machine wall time includes waiting for
 * a core while CPU time does not, and faults show buffers mapped in afresh every step. profileOpMs /
 * profileWallMs: the operators' summed self time and the wall time of the profiled steps; the
 * difference is what runs outside operators (autograd engine, dispatch, optimizer, JS or Python).
 */
export interface RowReply {
  ms: number[]; msPerStep: number; cpuMsPerStep: number; faultsPerStep: number; loss: number; params: number; teacherParams: number | null;
  profile?: ProfileRow[]; profileOpMs?: number; profileWallMs?: number;
}
/** One row built by a worker: its step (returns the loss) and the parameter counts the orchestrator compares. */
export interface BuiltRow { step: () => number; params: number; teacherParams: number | null }

/**
 * The kdistill worker's loop: hello, then one reply per request ({row, threads, warmup, steps[, profile]}),
 * each row built once by `build` and kept. Loads libtorch (lazily, so an orchestrator never does).
 */
export async function serveRows<R extends RowBase>(build: (row: R) => BuiltRow | Promise<BuiltRow>): Promise<void> {
  const { setNumThreads, getNumThreads } = await import('../src/tensor/torch.js');
  const { torch } = await import('../src/torch.js');
  const { profile } = await import('../src/tensor/profiler.js');
  const built = new Map<string, BuiltRow>();
  const hello: WorkerHello = { torch: torch.version, defaultThreads: getNumThreads(), OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? null, pid: process.pid };
  process.stdout.write(JSON.stringify({ hello }) + '\n');
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const req = JSON.parse(line) as { quit?: boolean; row: R; threads: number; warmup: number; steps: number; profile?: number };
    if (req.quit) break;
    setNumThreads(req.threads);
    let b = built.get(req.row.name);
    if (!b) built.set(req.row.name, (b = await build(req.row)));
    for (let i = 0; i < req.warmup; i++) b.step();
    const ms: number[] = [];
    let loss = NaN;
    const cpu0 = process.cpuUsage();
    const faults0 = process.resourceUsage().minorPageFault;
    for (let i = 0; i < req.steps; i++) {
      const t0 = performance.now();
      loss = b.step();
      ms.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    const reply: RowReply = {
      ms, msPerStep: ms.reduce((a, v) => a + v, 0) / ms.length, loss, params: b.params, teacherParams: b.teacherParams,
      cpuMsPerStep: (cpu.user + cpu.system) / 1000 / req.steps, faultsPerStep: (process.resourceUsage().minorPageFault - faults0) / req.steps,
    };
    if (req.profile) {
      const { ops, opMs, wallMs } = profile(() => { for (let i = 0; i < req.profile!; i++) b!.step(); });
      reply.profile = ops.slice(0, 40).map((o) => ({ name: o.name, calls: o.calls, selfMs: o.selfMs, totalMs: o.totalMs }));
      reply.profileOpMs = opMs;
      reply.profileWallMs = wallMs;
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
  rl.close();
}

type Side = 'kdistill' | Baseline;
/** Wall ms per step over the runs, and the medians of CPU ms and minor page faults per step. */
interface Stat { medianMs: number; minMs: number; maxMs: number; runs: number[]; cpuMs: number; faults: number }
interface SideProfile { opMs: number; wallMs: number; ops: ProfileRow[] }
interface Result {
  row: string; threads: number; batch: number; params: number; teacherParams: number | null; warmup: number; steps: number;
  kdistill: Stat; pytorch: Partial<Record<Baseline, Stat>>; ratio: Partial<Record<Baseline, number>>;
  profile?: Partial<Record<Side, SideProfile>>;
}

export interface RowBenchmark<R extends RowBase> {
  /** The benchmark's name: messages and the default result file bench/results/<name>.json. */
  name: string;
  rows: R[];
  /** The compiled kdistill worker script (run with --worker). */
  workerScript: string;
  /** The PyTorch worker, relative to bench/python/. */
  python: string;
  /** Extra fields of the result file's config. */
  config?: Record<string, unknown>;
}

export async function compareRows<R extends RowBase>(bench: RowBenchmark<R>, args: Map<string, string>): Promise<void> {
  const { name, rows: all } = bench;
  const repeats = Number(args.get('repeats') ?? 3);
  const threads = Number(args.get('threads') ?? 1);
  const profileSteps = Number(args.get('profile') ?? 0);
  const prefixes = args.get('rows')?.split(',').filter(Boolean);
  const rows = prefixes ? all.filter((r) => prefixes.some((p) => r.name.startsWith(p))) : all;
  if (rows.length === 0) throw new Error(`${name}: no row starts with ${prefixes!.join(' or ')}; rows: ${all.map((r) => r.name).join('; ')}`);
  const bs = baselines(args.get('baseline'));
  const out = resolve(root, args.get('out') ?? `bench/results/${name}.json`);
  const loadBefore = loadavg();
  console.log(`${name} benchmark: ${rows.length} rows, ${threads} thread(s), ${repeats} runs per row per side, alternating sides`);
  console.log(`machine: ${cpus().length} cpus (${cpus()[0]?.model ?? '?'}), load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(baselineNote(bs));

  // Same OpenBLAS setting on every side: kdistill's default (1), which its load() sets.
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1' };
  delete env.OMP_NUM_THREADS;
  const sides: [Side, Worker][] = [['kdistill', await new Worker('kdistill', process.execPath, [bench.workerScript, '--worker'], baselineEnv(env, 'kdistill')).start()]];
  for (const b of bs) sides.push([b, await new Worker(`pytorch-${b}`, '/usr/bin/python3', [join(root, 'bench', 'python', bench.python)], baselineEnv(env, b)).start()]);
  const results: Result[] = [];
  const stat = (reps: RowReply[]): Stat => {
    const xs = reps.map((r) => r.msPerStep);
    return { medianMs: median(xs), minMs: Math.min(...xs), maxMs: Math.max(...xs), runs: xs, cpuMs: median(reps.map((r) => r.cpuMsPerStep)), faults: median(reps.map((r) => r.faultsPerStep)) };
  };
  try {
    for (const [i, row] of rows.entries()) {
      const runs = new Map<Side, RowReply[]>(sides.map(([s]) => [s, []]));
      const counts = new Map<Side, [number, number | null]>();
      for (let r = 0; r < repeats; r++) {
        const k = (r + i) % sides.length;
        for (const [s, w] of [...sides.slice(k), ...sides.slice(0, k)]) {
          // The first run of a row builds the model and warms up. Later runs need none: the
          // worker keeps the model, its buffers and oneDNN's primitives; what the other sides'
          // runs disturb in between is the CPU caches, refilled in the first ms of a 30 ms–10 s step.
          const rep = await w.run<RowReply>({ row, threads, warmup: r === 0 ? row.warmup : 0, steps: row.steps });
          runs.get(s)!.push(rep);
          counts.set(s, [rep.params, rep.teacherParams]);
        }
      }
      const [kp, kt] = counts.get('kdistill')!;
      for (const [s, [p, t]] of counts) {
        if (p !== kp || t !== kt) throw new Error(`${name}: ${row.name}: ${s} has ${p} student / ${t} teacher parameters, kdistill ${kp} / ${kt}: not the same network`);
      }
      const k = stat(runs.get('kdistill')!);
      const res: Result = { row: row.name, threads, batch: row.batch, params: kp, teacherParams: kt, warmup: row.warmup, steps: row.steps, kdistill: k, pytorch: {}, ratio: {} };
      for (const b of bs) {
        res.pytorch[b] = stat(runs.get(b)!);
        res.ratio[b] = k.medianMs / res.pytorch[b]!.medianMs;
      }
      if (profileSteps > 0) {
        res.profile = {};
        for (const [s, w] of sides) {
          const rep = await w.run<RowReply>({ row, threads, warmup: 0, steps: 1, profile: profileSteps });
          res.profile[s] = { opMs: rep.profileOpMs!, wallMs: rep.profileWallMs!, ops: rep.profile! };
        }
        printProfiles(res.profile, profileSteps);
      }
      results.push(res);
      const cpuFaults = (st: Stat): string => `cpu ${st.cpuMs.toFixed(1)} ms, ${st.faults.toFixed(0)} faults`;
      console.log(`${row.name} (${kp.toLocaleString('en')} params${kt ? `, teacher ${kt.toLocaleString('en')}` : ''}): kdistill ${k.medianMs.toFixed(1)} ms/step (${cpuFaults(k)}), ` +
        bs.map((b) => `${BASELINE_LABEL[b]} ${res.pytorch[b]!.medianMs.toFixed(1)} (${cpuFaults(res.pytorch[b]!)}; ×${res.ratio[b]!.toFixed(2)})`).join(', '));
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
    benchmark: name, date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? null, loadavgBefore: loadBefore, loadavgAfter: loadAfter, node: process.version },
    config: { threads, repeats, profileSteps, openblasThreads: env.OPENBLAS_NUM_THREADS, ...bench.config },
    baselines: Object.fromEntries(bs.map((b) => [b, baselineEnv({}, b)])),
    rows: rows.map((r) => ({ ...r })), results,
  }, null, 2) + '\n');
  console.log(`results written to ${out}`);
}

/** The profiled operators of every side in one table (calls and self ms per side, the top 20 by
 *  their largest self time), then each side's time in operators and outside them. */
function printProfiles(profiles: Partial<Record<Side, SideProfile>>, steps: number): void {
  const sides = Object.keys(profiles) as Side[];
  const names = new Map<string, number>();
  for (const s of sides) for (const o of profiles[s]!.ops) names.set(o.name, Math.max(names.get(o.name) ?? 0, o.selfMs));
  const top = [...names].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([n]) => n);
  console.log(`  profile (${steps} steps): calls / self ms per side: ${sides.join(' | ')}`);
  for (const n of top) {
    const cells = sides.map((s) => {
      const o = profiles[s]!.ops.find((x) => x.name === n);
      return o ? `${String(o.calls).padStart(5)} ${o.selfMs.toFixed(1).padStart(8)}` : `${'-'.padStart(5)} ${'-'.padStart(8)}`;
    });
    console.log(`    ${n.slice(0, 48).padEnd(48)} ${cells.join(' | ')}`);
  }
  console.log(`    ${'in operators / wall / outside operators, ms'.padEnd(48)} ${sides.map((s) => {
    const p = profiles[s]!;
    return `${p.opMs.toFixed(1)} / ${p.wallMs.toFixed(1)} / ${(p.wallMs - p.opMs).toFixed(1)}`;
  }).join(' | ')}`);
}
