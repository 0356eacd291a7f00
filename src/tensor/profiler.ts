// Op-level profiles from libtorch's autograd profiler (native/profiler.cc): every ATen operator
// the code under it calls, forward and backward, aggregated by name like PyTorch's
// `prof.key_averages()` — calls, self CPU time (the op minus the ops it called) and total.
import { native } from './native.js';

export interface OpProfile {
  name: string;
  calls: number;
  /** Time inside the op itself, not in the ops it called, in ms. */
  selfMs: number;
  /** Time from entering the op to leaving it, in ms (nested ops counted again in their callers). */
  totalMs: number;
}

export interface Profile {
  /** Sorted by self time, largest first. */
  ops: OpProfile[];
  /** Sum of every op's self time: the CPU time spent in libtorch operators, ms. */
  opMs: number;
  /** Wall-clock time of the profiled code, ms (opMs / wallMs = the share spent in operators). */
  wallMs: number;
}

let running = false;

/** Starts recording (one profile at a time). */
export function startProfile(): void {
  if (running) throw new Error('profiler: a profile is already being recorded');
  native.profilerStart();
  running = true;
}

/** Stops recording and returns the operators seen since startProfile(); wallMs is what the caller measured. */
export function stopProfile(wallMs: number): Profile {
  if (!running) throw new Error('profiler: no profile is being recorded');
  running = false;
  const { ops } = native.profilerStop();
  const out = ops.map((o) => ({ name: o.name, calls: o.calls, selfMs: o.selfUs / 1000, totalMs: o.totalUs / 1000 }))
    .sort((a, b) => b.selfMs - a.selfMs);
  return { ops: out, opMs: out.reduce((s, o) => s + o.selfMs, 0), wallMs };
}

/** Profiles `fn` (synchronous) and returns its operators. */
export function profile(fn: () => void): Profile {
  startProfile();
  const t0 = performance.now();
  let ok = false;
  try {
    fn();
    ok = true;
  } finally {
    if (!ok) stopProfile(0); // so that the next profile can start; fn's error propagates
  }
  return stopProfile(performance.now() - t0);
}

/** The top `n` operators as a text table: name, calls, self ms, total ms, % of the op time. */
export function formatProfile(p: Profile, n = 20): string {
  const top = p.ops.slice(0, n);
  const w = Math.max(8, ...top.map((o) => o.name.length));
  const lines = [`${'operator'.padEnd(w)}  ${'calls'.padStart(7)}  ${'self ms'.padStart(10)}  ${'total ms'.padStart(10)}  ${'self %'.padStart(6)}`];
  for (const o of top) {
    lines.push(`${o.name.padEnd(w)}  ${String(o.calls).padStart(7)}  ${o.selfMs.toFixed(2).padStart(10)}  ${o.totalMs.toFixed(2).padStart(10)}  ${(p.opMs > 0 ? (100 * o.selfMs) / p.opMs : 0).toFixed(1).padStart(6)}`);
  }
  lines.push(`${p.ops.length} operators, ${p.opMs.toFixed(1)} ms in operators of ${p.wallMs.toFixed(1)} ms wall-clock` +
    (p.ops.length > n ? ` (top ${n} shown)` : ''));
  return lines.join('\n');
}
