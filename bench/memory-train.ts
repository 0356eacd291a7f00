// Long-run memory through the real trainer (a script, not a test): KD from an MLP teacher into a
// small MLP student on a Fashion-MNIST subset, with per-step logging, checkpoints, loss/gradient/
// teacher NaN checks and signal handling all on, for many steps. Prints resident memory, V8 heap
// and live native tensors at every epoch end, then the drift after warm-up.
//
//   npx tsc -p . && node --expose-gc dist/bench/memory-train.js [--steps 20000] [--batch 64]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setNumThreads, manualSeed, liveTensors } from '../src/tensor/torch.js';
import { loadFashionMnist } from '../src/data/fashion-mnist.js';
import { take } from '../src/data/splits.js';
import { DataLoader } from '../src/data/loader.js';
import { createModel } from '../src/nn/zoo/index.js';
import { getMethod } from '../src/methods/registry.js';
import { resolveParams } from '../src/methods/method.js';
import { ModuleTeacher } from '../src/teachers/sources.js';
import { train } from '../src/train/trainer.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}
const steps = Number(arg('steps', '20000'));
const batch = Number(arg('batch', '64'));
const samples = 6400;
const perEpoch = Math.ceil(samples / batch);
const epochs = Math.max(2, Math.round(steps / perEpoch));
const gc = (globalThis as { gc?: () => void }).gc;
const mb = (b: number): number => b / 2 ** 20;

setNumThreads(1);
manualSeed(0);
const data = take(loadFashionMnist({ split: 'train' }), samples, 1, { stratified: true });
const teacherNet = createModel({ arch: 'mlp', hidden: [128], numClasses: 10, inputShape: [1, 28, 28] });
const teacher = new ModuleTeacher(teacherNet, 10, 'random MLP teacher', 'bench');
const student = createModel({ arch: 'mlp', hidden: [32], numClasses: 10, inputShape: [1, 28, 28] });
const spec = getMethod('kd');
const method = spec.create(resolveParams(spec, { temperature: 4, alpha: 0.9 }));
const loader = new DataLoader(data, { batchSize: batch, seed: 0, prefetch: 'sync' });
const out = mkdtempSync(join(tmpdir(), 'kd-memtrain-'));

interface Sample { step: number; rss: number; heap: number; tensors: number }
const samplesTaken: Sample[] = [];
const sample = (step: number): void => {
  gc?.();
  const m = process.memoryUsage();
  samplesTaken.push({ step, rss: mb(m.rss), heap: mb(m.heapUsed), tensors: liveTensors() });
};
sample(0);
const t0 = Date.now();
const r = await train({
  student, teacher, method, numClasses: 10, epochs,
  train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epochSync(e, { startBatch: from }) },
  optimizer: { name: 'adam', lr: 1e-3 }, schedule: { name: 'cosine' },
  outDir: out, checkpointEvery: 500, evalEvery: 'end',
  onEpoch: (rec) => { if ((rec.epoch + 1) % 10 === 0 || rec.epoch === epochs - 1) sample(rec.step); },
});
const secs = (Date.now() - t0) / 1000;
rmSync(out, { recursive: true, force: true });

console.log(`memory-train: ${r.steps} KD steps (MLP 784-128-10 → 784-32-10, batch ${batch}, ${epochs} epochs, checkpoint every 500 steps), ${secs.toFixed(1)} s`);
console.log('step      rss MiB   heap MiB   live tensors');
for (const s of samplesTaken) console.log(`${String(s.step).padEnd(9)} ${s.rss.toFixed(1).padStart(8)} ${s.heap.toFixed(1).padStart(10)} ${String(s.tensors).padStart(14)}`);
// warm-up: allocator pools, JIT and caches settle over the first tenth of the run
const warm = samplesTaken.find((s) => s.step >= r.steps / 10) ?? samplesTaken[1]!;
const last = samplesTaken[samplesTaken.length - 1]!;
console.log(`drift after warm-up (step ${warm.step} → ${last.step}): rss ${(last.rss - warm.rss).toFixed(1)} MiB, heap ${(last.heap - warm.heap).toFixed(1)} MiB, live tensors ${last.tensors - warm.tensors}`);
