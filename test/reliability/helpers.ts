// Shared by the reliability tests: a tiny Fashion-MNIST subset on disk (so a spawned `kdistill`
// starts fast), experiment files, and running the CLI as a child process.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import { encodeIdx, readIdx } from '../../src/data/idx.js';
import { DEBIAN_FASHION_MNIST_DIR } from '../../src/data/fashion-mnist.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = join(ROOT, 'bin', 'kdistill.js');
export const FIX = join(ROOT, 'test', 'fixtures', 'reliability');

/** Writes the first nTrain / nTest Fashion-MNIST samples as raw IDX files into dir. */
export function writeTinyFashionMnist(dir: string, nTrain = 512, nTest = 200): string {
  mkdirSync(dir, { recursive: true });
  for (const [prefix, n] of [['train', nTrain], ['t10k', nTest]] as const) {
    const img = readIdx(join(DEBIAN_FASHION_MNIST_DIR, `${prefix}-images-idx3-ubyte.gz`));
    const lbl = readIdx(join(DEBIAN_FASHION_MNIST_DIR, `${prefix}-labels-idx1-ubyte.gz`));
    const [, h, w] = img.shape as [number, number, number];
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), encodeIdx({ dtype: 'uint8', shape: [n, h, w], data: img.data.subarray(0, n * h * w) }));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), encodeIdx({ dtype: 'uint8', shape: [n], data: lbl.data.subarray(0, n) }));
  }
  return dir;
}

/** A tiny MLP experiment over that data; `extra` lines are appended as YAML. */
export function writeExperiment(dir: string, dataDir: string, o: { epochs?: number; checkpointEvery?: number; extra?: string; name?: string } = {}): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${o.name ?? 'tiny'}.yaml`);
  writeFileSync(file, [
    `name: ${o.name ?? 'tiny'}`,
    'seed: 5',
    'threads: 1',
    `data: {dataset: fashion-mnist, path: ${dataDir}, batchSize: 32}`,
    'student: {arch: mlp, hidden: [32], dropout: 0.1}',
    'optimizer: {name: sgd, lr: 0.05, momentum: 0.9}',
    'schedule: {name: cosine}',
    `epochs: ${o.epochs ?? 3}`,
    `checkpointEvery: ${o.checkpointEvery ?? 1}`,
    `output: ${join(dir, 'out')}`,
    o.extra ?? '',
  ].join('\n') + '\n');
  return file;
}

export interface CliRun { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

/** Spawns `kdistill ...args`; `onSpawn` may signal the child. Resolves when it exits. */
export function runCli(args: string[], onSpawn?: (c: ChildProcess) => void): Promise<CliRun> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, KDISTILL_QUIET: '1', OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '', stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  onSpawn?.(child);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 }));
  });
}

/** log.jsonl without wall-clock fields. */
export function stripTiming(log: string): string {
  return log.replace(/,?"seconds":[0-9.e+-]+/g, '');
}

/** A seeded PRNG (mulberry32) for kill moments and fuzz mutations. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
