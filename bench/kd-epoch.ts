// Issue 3's benchmark: seconds per epoch of the Fashion-MNIST KD run (MLP 784-32-10 student,
// two-stage CNN teacher recomputed every batch, 60,000 images, batch 128) through kdistill's own
// trainer, against the same loop in PyTorch, side by side in one run. The two sides alternate in
// fresh processes; medians over repeats. Target: kdistill / PyTorch ≤ 1.10.
//
//   node dist/bench/kd-epoch.js [--repeats 3] [--epochs 1] [--threads 1,2] [--baseline stock|tuned|both]
// (--baseline: the PyTorch side with stock glibc malloc, glibc-tuned, or both, each its own ratio;
// bench/_common.ts)
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/tensor/native.js';
import { median, baselines, baselineEnv, baselineNote, BASELINE_LABEL, type Baseline } from './_common.js';

export const benchmark = { name: 'kd-epoch', description: 'seconds per KD epoch (CNN teacher → MLP student) vs PyTorch' };

async function kdistillSide(threads: number, epochs: number): Promise<number[]> {
  const { setNumThreads, manualSeed } = await import('../src/tensor/torch.js');
  const { loadFashionMnist } = await import('../src/data/fashion-mnist.js');
  const { DataLoader } = await import('../src/data/loader.js');
  const { createModel } = await import('../src/nn/zoo/index.js');
  const { getMethod } = await import('../src/methods/registry.js');
  const { resolveParams } = await import('../src/methods/method.js');
  const { ModuleTeacher } = await import('../src/teachers/sources.js');
  const { train } = await import('../src/train/trainer.js');
  setNumThreads(threads);
  manualSeed(0);
  const data = loadFashionMnist({ split: 'train' });
  const teacherNet = createModel({ arch: 'cnn', channels: [32, 64], hidden: 256, dropout: 0.3, numClasses: 10, inputShape: [1, 28, 28] });
  const teacher = new ModuleTeacher(teacherNet, 10, 'bench teacher', 'bench');
  const student = createModel({ arch: 'mlp', hidden: [32], numClasses: 10, inputShape: [1, 28, 28] });
  const spec = getMethod('kd');
  const loader = new DataLoader(data, { batchSize: 128, seed: 0 });
  const seconds: number[] = [];
  await train({
    student, teacher, method: spec.create(resolveParams(spec, { temperature: 4, alpha: 0.9 })), numClasses: 10, epochs,
    train: { batchesPerEpoch: loader.numBatches, batches: (e, from) => loader.epoch(e, { startBatch: from }) },
    optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    onEpoch: (r) => seconds.push(r.seconds),
  });
  await loader.close();
  return seconds;
}


async function main(): Promise<void> {
  const { values } = parseArgs({ options: { side: { type: 'string' }, threads: { type: 'string', default: '1,2' }, epochs: { type: 'string', default: '1' }, repeats: { type: 'string', default: '3' }, baseline: { type: 'string', default: 'both' } }, allowPositionals: true, strict: false });
  const epochs = Number(values.epochs);
  if (values.side === 'kdistill') {
    process.stdout.write(JSON.stringify({ seconds: await kdistillSide(Number(values.threads), epochs) }) + '\n');
    return;
  }
  const bs = baselines(String(values.baseline));
  type Side = 'kdistill' | Baseline;
  const rows: { threads: number; kdistill: number; pytorch: Partial<Record<Baseline, number>>; ratio: Partial<Record<Baseline, number>>; runs: Partial<Record<Side, number[]>> }[] = [];
  for (const threads of String(values.threads).split(',').map(Number)) {
    const runs = new Map<Side, number[]>([['kdistill', []], ...bs.map((b) => [b, []] as [Side, number[]])]);
    for (let r = 0; r < Number(values.repeats); r++) {
      const sides: [Side, () => number[]][] = [
        ['kdistill', () => run(process.execPath, [process.argv[1]!, '--side', 'kdistill', '--threads', String(threads), '--epochs', String(epochs)], 'kdistill')],
        ...bs.map((b) => [b, () => run('/usr/bin/python3', [join(packageRoot, 'bench', 'python', 'kd_epoch.py'), String(threads), String(epochs)], b)] as [Side, () => number[]]),
      ];
      // rotate who goes first so load drift hits every side alike
      const k = r % sides.length;
      for (const [name, f] of [...sides.slice(k), ...sides.slice(0, k)]) runs.get(name)!.push(median(f()));
    }
    const k = median(runs.get('kdistill')!);
    const pytorch = Object.fromEntries(bs.map((b) => [b, median(runs.get(b)!)]));
    rows.push({ threads, kdistill: k, pytorch, ratio: Object.fromEntries(bs.map((b) => [b, k / pytorch[b]!])), runs: Object.fromEntries(runs) });
  }
  console.log('KD epoch, Fashion-MNIST 60k, CNN teacher → MLP 784-32-10, batch 128 (median of repeats)');
  console.log(baselineNote(bs));
  console.log(`| threads | kdistill s/epoch | ${bs.map((b) => `${BASELINE_LABEL[b]} s/epoch`).join(' | ')} | ${bs.map((b) => `kdistill / ${BASELINE_LABEL[b]}`).join(' | ')} | target ≤ 1.10 |`);
  console.log(`|---:|---:|${bs.map(() => '---:|').join('')}${bs.map(() => '---:|').join('')}:---:|`);
  for (const r of rows) {
    console.log(`| ${r.threads} | ${r.kdistill.toFixed(2)} | ${bs.map((b) => r.pytorch[b]!.toFixed(2)).join(' | ')} | ${bs.map((b) => r.ratio[b]!.toFixed(3)).join(' | ')} | ${bs.map((b) => (r.ratio[b]! <= 1.1 ? '✓' : '✗')).join(' ')} |`);
  }
  mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
  writeFileSync(join(packageRoot, 'bench', 'results', 'kd-epoch.json'), JSON.stringify({ date: new Date().toISOString(), epochs, baselines: Object.fromEntries(bs.map((b) => [b, baselineEnv({}, b)])), rows }, null, 2) + '\n');
}

function run(cmd: string, args: string[], side: 'kdistill' | Baseline): number[] {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...baselineEnv(process.env, side), KDISTILL_QUIET: '1' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return (JSON.parse(line) as { seconds: number[] }).seconds;
}

await main();
