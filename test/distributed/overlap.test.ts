// The overlapped gradient all-reduce (DDP's Reducer, src/distributed/buckets.ts): with one rank
// artificially slow, both ranks still end with bit-identical weights, the same as one process on
// the whole batches and as the synchronous exchange; parameters no rank uses keep no gradient and
// do not move; one that only rank 1 uses still gets rank 1's gradient on rank 0; every bucket's
// exchange starts before backward returns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/distributed/launch.js';
import { assignBuckets } from '../../src/distributed/buckets.js';
import { zeros } from '../../src/tensor/factories.js';

const WORKER = fileURLToPath(new URL('./overlap-worker.js', import.meta.url));
const SCRATCH_WORKER = fileURLToPath(new URL('./scratch-faults-worker.js', import.meta.url));

interface Out { rank: number; buckets: number; overlapped: number[]; weights: Record<string, number[]>; unusedGrad: boolean }

function run<T = Out>(env: NodeJS.ProcessEnv, o: object, worker = WORKER): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [worker, JSON.stringify(o)], { env: { ...process.env, ...env } });
    let out = '', err = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as T) : reject(new Error(`worker ${JSON.stringify(o)} exited ${code}: ${err}`))));
  });
}

async function group<T = Out>(o: object, worker = WORKER): Promise<T[]> {
  const port = await freePort();
  return Promise.all([0, 1].map((rank) => run<T>({ RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) }, o, worker)));
}

const MLP = ['w1', 'b1', 'w2', 'b2', 'w3', 'b3'];

function maxDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
}

test('buckets follow reverse parameter order under the caps, one dtype each', () => {
  // 4-byte floats: 4, 64, 4 and 100 elements (16, 256, 16, 400 bytes).
  const ps = [[4], [64], [4], [100]].map((s) => zeros(s).requiresGrad_(true));
  const frozen = zeros([3]);
  const order = [4, 3, 2, 1, 0];
  // First bucket capped at 20 bytes: the last parameter (400 bytes) alone; then up to 280 bytes
  // (16 + 256 fit, the next 16 do not), or 300 (all three fit); the frozen one is left out.
  assert.deepEqual(assignBuckets([...ps, frozen], order, 280, 20), [[3], [2, 1], [0]]);
  assert.deepEqual(assignBuckets([...ps, frozen], order, 300, 20), [[3], [2, 1, 0]]);
  assert.deepEqual(assignBuckets(ps, [0, 1, 2, 3], 1 << 20), [[0, 1, 2, 3]]);
  const half = zeros([4], { dtype: 'float64' }).requiresGrad_(true);
  assert.deepEqual(assignBuckets([ps[0]!, half, ps[2]!], [0, 1, 2], 1 << 20), [[0], [1], [2]]);
});

// ~1 s of CPU per process; the timeout allows for start-up on a loaded shared machine (8 s per
// process at load 24).
test('overlapped all-reduce with a slow rank: identical weights on both ranks, as one process and the synchronous exchange', { timeout: 240_000 }, async (t) => {
  const steps = 6;
  const [single, overlap, sync] = await Promise.all([
    run({}, { mode: 'single', steps }),
    group({ mode: 'overlap', steps, slowRank: 1 }),
    group({ mode: 'sync', steps, slowRank: 1 }),
  ]);
  const [o0, o1] = overlap;
  // Both ranks hold the very same bits: each bucket's sum is computed once and shared.
  assert.deepEqual(o0!.weights, o1!.weights);
  assert.deepEqual(sync[0]!.weights, sync[1]!.weights);
  // The same arithmetic as the synchronous path (scale, sum of two terms), only started earlier.
  assert.deepEqual(o0!.weights, sync[0]!.weights);
  // One process on the whole 13-row batches: the 7- and 6-row shards' weighted means are the same
  // mean summed in another order, float32 rounding (~1e-7 relative) over 6 steps of lr 0.1 stays
  // far below 1e-5; a wrong shard weight (e.g. 1/2 instead of 7/13) moves weights by ~1e-2.
  const d = Math.max(...MLP.map((n) => maxDiff(o0!.weights[n]!, single.weights[n]!)));
  t.diagnostic(`max |w(1 proc) - w(2 procs, overlapped)| = ${d.toExponential(2)}`);
  assert.ok(d < 1e-5, `max diff ${d}`);
  // No rank uses 'unused': its gradient stays unset (the optimizer skips it) and it never moves.
  assert.equal(o0!.unusedGrad, false);
  assert.deepEqual(o0!.weights.unused, single.weights.unused);
  // Only rank 1 uses 'partial': rank 0 still receives its gradient and moves identically, away
  // from where a process that never uses it leaves it.
  assert.ok(maxDiff(o0!.weights.partial!, single.weights.partial!) > 1e-3);
  // Every one of the 5 buckets started its all-reduce before backward returned, on both ranks and
  // in every step ('unused' and rank 0's 'partial' are found unreachable from the loss up front).
  for (const r of overlap) {
    assert.equal(r.buckets, 5);
    assert.deepEqual(r.overlapped, Array(steps).fill(5));
  }
  assert.deepEqual(sync[0]!.overlapped, Array(steps).fill(0));
});

// Gloo mallocs a scratch buffer for every collective (~half the tensor here). With glibc's mmap
// threshold pinned at 128 KiB by the tensor allocator, each was a fresh mapping: >= 128 first-touch
// faults per 1 MiB collective (512 KiB / 4 KiB pages), plus an munmap, which made the MLP's
// exchange 5-10x slower than PyTorch's over the same Gloo (bench/distributed.ts). Served from the
// heap, the buffer is reused: after warm-up, 20 rounds usually fault a few pages in all. The count
// is the whole process's (V8's collector and Node's threads fault pages too: one run under load
// saw 260 in 20 rounds with the fix in place), so the bound is 64 per round: half of the >= 128 per
// round of a fresh mapping (2,583 in 20 rounds before the fix), far above that background.
test('collectives reuse their scratch memory: no page faults per all-reduce after warm-up', { timeout: 240_000 }, async () => {
  const rounds = 20;
  const out = await group<{ rank: number; allreduce: number; reducer: number }>({ rounds }, SCRATCH_WORKER);
  for (const r of out) {
    assert.ok(r.allreduce < 64 * rounds, `rank ${r.rank}: ${r.allreduce} page faults over ${rounds} all-reduces of 1 MiB`);
    assert.ok(r.reducer < 64 * rounds, `rank ${r.rank}: ${r.reducer} page faults over ${rounds} overlapped steps of a 1 MiB parameter`);
  }
});
