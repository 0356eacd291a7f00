// `kdistill distill <config> --nproc N`: starts N worker processes of the same command (as
// torchrun does), each with RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT in its environment, and
// watches them. A worker that dies ends the group: the others are stopped (SIGTERM, then SIGKILL)
// and the error names the rank and how it ended. Checkpoints are written atomically by rank 0
// alone, so the last complete one survives any of this.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { availableParallelism, constants } from 'node:os';
import { native, packageRoot } from '../tensor/native.js';

export interface LaunchOptions {
  /** Worker processes to start on this machine. */
  nproc: number;
  /** The worker's kdistill arguments (command, experiment file, flags), without the launcher's flags. */
  args: string[];
  /** Processes in the whole group, on all machines (default nproc). */
  worldSize?: number;
  /** Global rank of this machine's first worker (default 0). */
  firstRank?: number;
  /** Rendezvous: rank 0's address and port (default 127.0.0.1 and a free port). */
  masterAddr?: string;
  masterPort?: number;
  /** Extra environment for the workers. */
  env?: NodeJS.ProcessEnv;
  /** After a failure, how long the other workers get to end on their own before SIGTERM (default 3 s), and then before SIGKILL (default 10 s). */
  termAfterMs?: number;
  killAfterMs?: number;
  /** Where the launcher's own messages go (default stderr). */
  log?: (line: string) => void;
  /**
   * Pin each worker to its own share of the launcher's CPUs (local rank i to the i-th of nproc
   * equal contiguous slices), as `taskset` does. Default: on when every worker gets at least one
   * CPU and `taskset` exists; `KDISTILL_PIN=0` / `1` in the environment overrides the default.
   * Why: unpinned, the scheduler moves a worker and its helper threads (Gloo's, Node's) across
   * cores, and at every all-reduce each rank waits for the one that was moved (see the README's
   * data-parallel note for the measurement).
   */
  pin?: boolean;
  /** The script each worker runs (default kdistill's CLI). */
  script?: string;
}

const TASKSET = '/usr/bin/taskset';

/** The CPUs this process may run on (Linux: its affinity list), else 0 .. availableParallelism-1. */
export function allowedCpus(status = '/proc/self/status'): number[] {
  try {
    const line = readFileSync(status, 'utf8').split('\n').find((l) => l.startsWith('Cpus_allowed_list:'));
    if (line) return parseCpuList(line.slice('Cpus_allowed_list:'.length));
  } catch { /* not Linux */ }
  return Array.from({ length: availableParallelism() }, (_, i) => i);
}

/** '0-2,5' → [0, 1, 2, 5] (the kernel's and taskset's list format). */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number) as [number, number | undefined];
    for (let c = a; c <= (b ?? a); c++) out.push(c);
  }
  return out;
}

/** Each local rank's CPUs: nproc equal contiguous slices of cpus (the remainder left unused), or null when there are fewer CPUs than workers. */
export function cpuSlices(nproc: number, cpus: number[]): number[][] | null {
  const k = Math.floor(cpus.length / nproc);
  if (k < 1) return null;
  return Array.from({ length: nproc }, (_, i) => cpus.slice(i * k, (i + 1) * k));
}

function pinDefault(env: NodeJS.ProcessEnv): boolean {
  if (env.KDISTILL_PIN === '0') return false;
  if (env.KDISTILL_PIN === '1') return true;
  return process.platform === 'linux' && existsSync(TASKSET);
}

/** A free TCP port on the loopback interface (released just before the workers bind it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const LAUNCHER_FLAGS = new Set(['--nproc', '--world-size', '--rank', '--master']);

/** argv without --nproc/--world-size/--rank/--master (as `--flag value` or `--flag=value`). */
export function stripLauncherFlags(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const name = a.split('=')[0]!;
    if (LAUNCHER_FLAGS.has(name)) {
      if (!a.includes('=')) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

/**
 * Runs the workers to the end; resolves to the exit code for the launcher: 0 when all succeed,
 * rank 0's code after an interruption (130/143, checkpoint saved), else 1 with the failure named.
 */
export async function launch(o: LaunchOptions): Promise<number> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const world = o.worldSize ?? o.nproc;
  const first = o.firstRank ?? 0;
  if (!Number.isInteger(o.nproc) || o.nproc < 1) throw new Error(`--nproc must be a positive integer, got ${o.nproc}`);
  if (first + o.nproc > world) throw new Error(`--rank ${first} with --nproc ${o.nproc} needs ranks up to ${first + o.nproc - 1}, but --world-size is ${world}`);
  const masterAddr = o.masterAddr ?? '127.0.0.1';
  const masterPort = o.masterPort ?? (await freePort());
  const cli = o.script ?? join(packageRoot, 'bin', 'kdistill.js');
  const slices = (o.pin ?? pinDefault({ ...process.env, ...o.env })) ? cpuSlices(o.nproc, allowedCpus()) : null;
  if (slices && !existsSync(TASKSET)) throw new Error(`pinning workers to CPUs needs ${TASKSET} (util-linux); set KDISTILL_PIN=0 to run unpinned`);
  const termAfter = o.termAfterMs ?? 3_000;
  const killAfter = o.killAfterMs ?? 10_000;

  const children: { rank: number; child: ChildProcess; exited: boolean; code: number | null; signal: NodeJS.Signals | null }[] = [];
  let failure: { rank: number; code: number | null; signal: NodeJS.Signals | null } | null = null;
  let interrupted: NodeJS.Signals | null = null;
  const timers: NodeJS.Timeout[] = [];

  // The survivors normally fail on their own within milliseconds: their next exchange with the
  // dead worker hits a closed connection. A SIGTERM right away would race that error (and its
  // message); it is for a worker busy elsewhere (e.g. rank 0 evaluating), which then finishes its
  // step and checkpoints; SIGKILL for one that does not stop at all.
  const stopOthers = (): void => {
    if (timers.length) return;
    timers.push(setTimeout(() => {
      for (const c of children) if (!c.exited && !(interrupted && c.rank === 0)) c.child.kill('SIGTERM');
    }, termAfter), setTimeout(() => {
      for (const c of children) if (!c.exited) c.child.kill('SIGKILL');
    }, termAfter + killAfter));
  };

  // Workers run in their own process group: a Ctrl-C on the terminal reaches the launcher only,
  // which hands it to rank 0 once (rank 0 finishes the step, checkpoints, exits 130); the other
  // ranks then end on the broken connection. Forwarding to everyone would race the checkpoint.
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted = sig;
    const lead = children.find((c) => c.rank === 0 && !c.exited);
    if (lead) lead.child.kill(sig);
    else for (const c of children) if (!c.exited) c.child.kill(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await new Promise<void>((resolve) => {
      let running = o.nproc;
      for (let i = 0; i < o.nproc; i++) {
        const rank = first + i;
        // taskset execs node in the same process, so every thread Node and libtorch start
        // inherits the CPU set, and signals still reach the worker itself.
        const slice = slices?.[i];
        const child = spawn(slice ? TASKSET : process.execPath, [...(slice ? ['-c', slice.join(','), process.execPath] : []), cli, ...o.args], {
          stdio: 'inherit',
          detached: true,
          env: {
            ...process.env, ...o.env,
            RANK: String(rank), LOCAL_RANK: String(i), WORLD_SIZE: String(world),
            MASTER_ADDR: masterAddr, MASTER_PORT: String(masterPort),
            KDISTILL_LAUNCHER_PID: String(process.pid),
            // One progress bar and one summary: rank 0's.
            ...(rank !== 0 ? { KDISTILL_QUIET: '1' } : {}),
          },
        });
        const rec = { rank, child, exited: false, code: null as number | null, signal: null as NodeJS.Signals | null };
        children.push(rec);
        const done = (code: number | null, signal: NodeJS.Signals | null): void => {
          if (rec.exited) return;
          rec.exited = true;
          rec.code = code;
          rec.signal = signal;
          if ((code !== 0 || signal) && !failure && !interrupted) {
            failure = { rank, code, signal };
            stopOthers();
          } else if (interrupted && rank === 0) stopOthers();
          if (--running === 0) resolve();
        };
        child.on('exit', done);
        child.on('error', (e) => {
          log(`kdistill: cannot start worker rank ${rank}: ${e.message}`);
          done(1, null);
        });
      }
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const t of timers) clearTimeout(t);
  }

  if (interrupted) {
    const lead = children.find((c) => c.rank === 0);
    const code = lead ? lead.code ?? 128 + (constants.signals[lead.signal ?? 'SIGTERM'] ?? 15) : 130;
    log(`kdistill: interrupted (${interrupted}); rank 0 ${describeExit(lead?.code ?? null, lead?.signal ?? null)}${lead?.code === 130 || lead?.code === 143 ? ' after saving a checkpoint' : ''}`);
    return code;
  }
  if (failure) {
    const f = failure as { rank: number; code: number | null; signal: NodeJS.Signals | null };
    const others = children.filter((c) => c.rank !== f.rank).map((c) => `rank ${c.rank} ${describeExit(c.code, c.signal)}`).join(', ');
    log(`kdistill: worker rank ${f.rank} of ${world} ${describeExit(f.code, f.signal)}; the other workers were stopped (${others}). ` +
      `The last complete checkpoint in the output folder is intact: run the same command again to resume.`);
    return 1;
  }
  return 0;
}

/**
 * In a worker the launcher started: end with the launcher (a killed launcher must not leave
 * workers training on their own) — the kernel sends SIGTERM when it dies.
 */
export function followLauncher(env: NodeJS.ProcessEnv = process.env): void {
  const pid = Number(env.KDISTILL_LAUNCHER_PID);
  if (!pid) return;
  native.setParentDeathSignal(constants.signals.SIGTERM);
  // It may have died before the line above ran.
  if (process.ppid !== pid) process.kill(process.pid, 'SIGTERM');
}
