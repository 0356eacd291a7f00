// Data-parallel training on loopback: `--nproc 2` ends with the weights one process reaches on the
// same global batches and seed (within float tolerance), with the teacher cache built in
// parallel; a killed worker stops the group with an error naming it, the last checkpoint stays
// loadable, and the same command resumes the whole group to the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { loadSafetensors, saveModel } from '../../src/nn/safetensors.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { manualSeed } from '../../src/tensor/torch.js';
import { shardRange, splitRange } from '../../src/distributed/shard.js';
import { stripLauncherFlags } from '../../src/distributed/launch.js';
import { distributedArgs } from '../../src/distributed/cli.js';
import { runCli, writeTinyFashionMnist } from '../reliability/helpers.js';

function tensors(path: string): Map<string, Float32Array> {
  const { tensors: ts } = loadSafetensors(path);
  const m = new Map<string, Float32Array>();
  for (const [k, t] of ts) {
    if (t.dtype === 'float32') m.set(k, t.data<Float32Array>().slice());
    t.dispose();
  }
  return m;
}

function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  let d = 0;
  for (const [k, x] of a) {
    const y = b.get(k)!;
    assert.equal(x.length, y.length, k);
    for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  }
  return d;
}

function experiment(dir: string, data: string, teacher: string, o: { name: string; epochs: number; checkpointEvery?: number; cache: string }): string {
  const file = join(dir, `${o.name}.yaml`);
  writeFileSync(file, [
    `name: ${o.name}`,
    'seed: 7',
    'threads: 1',
    `data: {dataset: fashion-mnist, path: ${data}, batchSize: 64}`,
    `teacher: {checkpoint: ${teacher}}`,
    'student: {arch: mlp, hidden: [32]}', // no dropout: the same computation in 1 or 2 processes
    'method: {name: kd, params: {temperature: 4, alpha: 0.5}}',
    'optimizer: {name: sgd, lr: 0.05, momentum: 0.9}',
    `epochs: ${o.epochs}`,
    `checkpointEvery: ${o.checkpointEvery ?? 0}`,
    `teacherCache: {mode: on, dir: ${o.cache}}`,
    `output: ${join(dir, o.name)}`,
  ].join('\n') + '\n');
  return file;
}

const base = mkdtempSync(join(tmpdir(), 'kd-dist-'));
const data = writeTinyFashionMnist(join(base, 'data'), 500, 100);
const teacherPath = join(base, 'teacher.safetensors');
manualSeed(3);
saveModel(teacherPath, createModel({ arch: 'mlp', hidden: [64], numClasses: 10, inputShape: [1, 28, 28] }));

test('shards split every global batch exactly, short batches go whole to every rank', () => {
  for (const [n, w] of [[64, 2], [65, 2], [7, 3], [1, 2], [2, 2]] as const) {
    let rows = 0, weight = 0;
    for (let r = 0; r < w; r++) {
      const s = shardRange(n, r, w);
      rows += s.count;
      weight += s.weight;
      assert.ok(s.count > 0);
    }
    assert.ok(Math.abs(weight - 1) < 1e-12, `weights of ${n} rows over ${w} sum to 1`);
    if (n >= w) assert.equal(rows, n);
  }
  assert.deepEqual([0, 1, 2].map((r) => splitRange(7, r, 3)), [{ start: 0, count: 3 }, { start: 3, count: 2 }, { start: 5, count: 2 }]);
  assert.deepEqual(stripLauncherFlags(['distill', 'a.yaml', '--nproc', '2', '--epochs=3', '--master=h:1', '--rank', '0']), ['distill', 'a.yaml', '--epochs=3']);
  assert.deepEqual(distributedArgs({ nproc: '2' }, {}), { kind: 'launch', nproc: 2, worldSize: 2, firstRank: 0 });
  assert.deepEqual(distributedArgs({ 'world-size': '4', rank: '2', master: '10.0.0.1:29500' }, {}),
    { kind: 'worker', options: { worldSize: 4, rank: 2, masterAddr: '10.0.0.1', masterPort: 29500 } });
  assert.deepEqual(distributedArgs({}, {}), { kind: 'single' });
  assert.throws(() => distributedArgs({ 'world-size': '2' }, {}), /--master/);
  assert.throws(() => distributedArgs({ 'world-size': '2', rank: '2', master: 'h:1' }, {}), /rank 2 is outside/);
});

test('2 processes reach the weights of 1 process (same global batch and seed)', { timeout: 60_000 }, async (t) => {
  const one = experiment(base, data, teacherPath, { name: 'one', epochs: 2, cache: join(base, 'cache1') });
  const two = experiment(base, data, teacherPath, { name: 'two', epochs: 2, cache: join(base, 'cache2') });
  const r1 = await runCli(['distill', one]);
  assert.equal(r1.code, 0, r1.stderr);
  const r2 = await runCli(['distill', two, '--nproc', '2']);
  assert.equal(r2.code, 0, r2.stderr);
  const d = maxDiff(tensors(join(base, 'one', 'model.safetensors')), tensors(join(base, 'two', 'model.safetensors')));
  assert.ok(d < 1e-4, `max |w1 - w2| = ${d}`);
  t.diagnostic(`max |w(1 proc) - w(2 procs)| = ${d.toExponential(2)}`);
  assert.equal((JSON.parse(readFileSync(join(base, 'two', 'run.json'), 'utf8')) as { worldSize?: number }).worldSize, 2);
  // Rank 0 logs its own shard's loss: different numbers from the single process's, same weights.
  const firstLoss = (dir: string): number => (JSON.parse(readFileSync(join(base, dir, 'log.jsonl'), 'utf8').split('\n')[0]!) as { loss: number }).loss;
  assert.notEqual(firstLoss('one'), firstLoss('two'));
  // Rank 0 alone wrote the run folder and printed the summary.
  assert.equal((r2.stdout.match(/outputs: /g) ?? []).length, 1, r2.stdout);
  const log = readFileSync(join(base, 'two', 'log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; train?: { loss: number }; eval?: { accuracy: number } });
  const epochs = log.filter((r) => r.type === 'epoch');
  assert.equal(epochs.length, 2);
  assert.ok(epochs.every((r) => Number.isFinite(r.train!.loss) && r.eval!.accuracy > 0));
  // The cache built in parallel holds the same logits as the one built by one process.
  const c1 = readdirSync(join(base, 'cache1')), c2 = readdirSync(join(base, 'cache2'));
  assert.deepEqual(c1, c2);
  assert.ok(maxDiff(tensors(join(base, 'cache1', c1[0]!)), tensors(join(base, 'cache2', c2[0]!))) < 1e-6);
});

/** The PIDs of a process's children, with their RANK. */
function workers(pid: number): { pid: number; rank: number }[] {
  const out: { pid: number; rank: number }[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const kids = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    for (const k of kids ? kids.split(/\s+/).map(Number) : []) {
      const env = readFileSync(`/proc/${k}/environ`, 'utf8').split('\0');
      const rank = env.find((e) => e.startsWith('RANK='));
      if (rank) out.push({ pid: k, rank: Number(rank.slice(5)) });
    }
  }
  return out;
}

test('a killed worker stops the group with a clear error; the checkpoint survives and the group resumes', { timeout: 60_000 }, async (t) => {
  const file = experiment(base, data, teacherPath, { name: 'killed', epochs: 30, checkpointEvery: 3, cache: join(base, 'cache2') });
  const out = join(base, 'killed');
  let killedAt = 0;
  const r = await runCli(['distill', file, '--nproc', '2'], (launcher) => {
    const poll = setInterval(() => {
      // Kill rank 1 once training is under way (a few checkpoints written).
      let steps = 0;
      try { steps = readFileSync(join(out, 'log.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"step"')).length; } catch { /* not yet */ }
      if (steps < 20) return;
      const w = workers(launcher.pid!).find((x) => x.rank === 1);
      if (!w) return;
      clearInterval(poll);
      killedAt = Date.now();
      process.kill(w.pid, 'SIGKILL');
    }, 5);
    launcher.on('exit', () => clearInterval(poll));
  });
  assert.ok(killedAt > 0, 'rank 1 was killed mid-run');
  t.diagnostic(r.stderr.trim().replace(/\n/g, ' / '));
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /worker rank 1 of 2 was killed by SIGKILL/);
  assert.match(r.stderr, /last complete checkpoint/);
  // Rank 0 stopped at once, not at a timeout: either its next exchange failed on the broken
  // connection, or the launcher's SIGTERM came first and it checkpointed after its last full step.
  assert.ok(Date.now() - killedAt < 15_000);
  assert.match(r.stderr, /rank 0 of 2: .*(closed|reset|peer)|interrupted by SIGTERM .* checkpoint saved/i);
  const { tensors: ck, metadata } = loadSafetensors(join(out, 'checkpoint.safetensors'));
  for (const t of ck.values()) t.dispose();
  assert.equal(metadata.kind, 'kdistill-checkpoint');
  const step = (JSON.parse(metadata.state!) as { step: number }).step;
  assert.ok(step > 0 && step < 30 * 8, `checkpoint at step ${step}`);
  assert.ok(!existsSync(join(out, 'model.safetensors')));
  // The same command continues the whole group from that checkpoint to the end.
  const again = await runCli(['distill', file, '--nproc', '2']);
  assert.equal(again.code, 0, again.stderr);
  const log = readFileSync(join(out, 'log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; step: number });
  assert.equal(log.filter((x) => x.type === 'epoch').length, 30);
  assert.equal(log.filter((x) => x.type === 'step').length, 30 * 8);
  assert.ok(existsSync(join(out, 'model.safetensors')));
});
