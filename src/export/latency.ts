// Batch-1 latency as both runtimes measure it (onnxruntime-node in src/export/index.ts,
// onnxruntime-web in src/export/web.ts): the same warm-up, the same number of single runs each
// timed on its own, summarised here by one function so the two columns mean the same thing.

/** Untimed runs first: the first runs allocate buffers and (in wasm) tier up the compiled code. */
export const LATENCY_WARMUP = 50;
/** Timed single runs: 500 of a ~0.05–5 ms model take at most a few seconds and give a stable p90. */
export const LATENCY_RUNS = 500;

export interface LatencyOptions {
  warmup?: number;
  runs?: number;
}

/** The warm-up and run counts, checked (a zero or fractional count would time nothing or crash the loop). */
export function latencyCounts(o: LatencyOptions = {}): { warmup: number; runs: number } {
  const warmup = o.warmup ?? LATENCY_WARMUP, runs = o.runs ?? LATENCY_RUNS;
  if (!Number.isInteger(warmup) || warmup < 0) throw new RangeError(`latency: warmup must be a non-negative integer, got ${warmup}`);
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`latency: runs must be a positive integer, got ${runs}`);
  return { warmup, runs };
}

/** Median and 90th percentile (nearest rank) of per-run times in ms. */
export function summarizeLatency(times: readonly number[]): { median: number; p90: number } {
  if (times.length === 0) throw new RangeError('latency: no timed runs');
  const s = [...times].sort((a, b) => a - b);
  const rank = (p: number): number => s[Math.max(0, Math.ceil(p * s.length) - 1)]!;
  return { median: rank(0.5), p90: rank(0.9) };
}
