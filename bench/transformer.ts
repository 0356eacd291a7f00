// Issue 8's benchmark: one training step (forward, cross-entropy, backward, AdamW) of the
// BERT-style encoder, kdistill against the same model in PyTorch (bench/python/transformer.py),
// same shapes, padding pattern, dropout, threads. The sides alternate in fresh processes; the
// table reports medians of the per-step medians.
//
//   node dist/bench/transformer.js [--repeats 3] [--steps 10] [--threads 1] [--config teacher,student] [--baseline stock|tuned|both]
// (--baseline: the PyTorch side with stock glibc malloc, glibc-tuned, or both, each its own ratio;
// bench/_common.ts)
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/tensor/native.js';
import { median, baselines, baselineEnv, baselineNote, BASELINE_LABEL, type Baseline } from './_common.js';

export const benchmark = { name: 'transformer', description: 'BERT-style encoder training step vs PyTorch' };

interface Shape { name: string; batch: number; length: number; vocab: number; layers: number; hidden: number; heads: number; ffn: number }
const SHAPES: Shape[] = [
  // the experiments' teacher and student (experiments/text/spam.yaml), and a wider encoder
  { name: 'teacher 4L-64H', batch: 32, length: 48, vocab: 3000, layers: 4, hidden: 64, heads: 4, ffn: 128 },
  { name: 'student 2L-32H', batch: 32, length: 48, vocab: 3000, layers: 2, hidden: 32, heads: 4, ffn: 64 },
  { name: 'wide 4L-128H', batch: 32, length: 64, vocab: 4000, layers: 4, hidden: 128, heads: 4, ffn: 512 },
];
const args = (s: Shape): string[] => [s.batch, s.length, s.vocab, s.layers, s.hidden, s.heads, s.ffn].map(String);

async function kdistillSide(threads: number, steps: number, s: Shape): Promise<number[]> {
  const { setNumThreads, manualSeed } = await import('../src/tensor/torch.js');
  const { createModel } = await import('../src/nn/zoo/index.js');
  const { AdamW } = await import('../src/optim/optimizer.js');
  const { crossEntropy } = await import('../src/tensor/functional.js');
  const { tensor } = await import('../src/tensor/factories.js');
  const { tidy } = await import('../src/tensor/scope.js');
  const { Rng } = await import('../src/data/rng.js');
  setNumThreads(threads);
  manualSeed(0);
  const model = createModel({ arch: 'bert', vocabSize: s.vocab, maxLen: s.length, layers: s.layers, hidden: s.hidden, heads: s.heads, ffn: s.ffn, numClasses: 2, dropout: 0.1 });
  const opt = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.01 });
  const rng = new Rng(1);
  const ids = new Float32Array(s.batch * s.length);
  for (let b = 0; b < s.batch; b++) {
    const len = Math.floor(s.length / 4) + rng.nextInt(s.length - Math.floor(s.length / 4) + 1);
    for (let j = 0; j < len; j++) ids[b * s.length + j] = 5 + rng.nextInt(s.vocab - 5);
  }
  const x = tensor(ids, { shape: [s.batch, s.length] }).keep();
  const y = tensor(BigInt64Array.from({ length: s.batch }, () => BigInt(rng.nextInt(2)))).keep();
  const ms: number[] = [];
  for (let i = 0; i < steps + 3; i++) {
    const t0 = process.hrtime.bigint();
    tidy(() => {
      const loss = crossEntropy(model.call(x), y);
      opt.zeroGrad();
      loss.backward();
      opt.step();
      loss.item();
    });
    if (i >= 3) ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return ms;
}


function run(cmd: string, argv: string[], side: 'kdistill' | Baseline): number[] {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...baselineEnv(process.env, side), OPENBLAS_NUM_THREADS: '1', KDISTILL_QUIET: '1' } });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stderr}`);
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number[] }).ms;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { side: { type: 'string' }, shape: { type: 'string' }, threads: { type: 'string', default: '1' }, steps: { type: 'string', default: '10' }, repeats: { type: 'string', default: '3' }, config: { type: 'string' }, baseline: { type: 'string', default: 'both' } }, allowPositionals: true, strict: false });
  const steps = Number(values.steps);
  if (values.side === 'kdistill') {
    const s = SHAPES.find((x) => x.name === values.shape)!;
    process.stdout.write(JSON.stringify({ ms: await kdistillSide(Number(values.threads), steps, s) }) + '\n');
    return;
  }
  const shapes = values.config ? SHAPES.filter((s) => String(values.config).split(',').some((c) => s.name.startsWith(c))) : SHAPES;
  const bs = baselines(String(values.baseline));
  console.log(baselineNote(bs));
  const rows: { shape: string; threads: number; kdistill: number; pytorch: Partial<Record<Baseline, number>>; ratio: Partial<Record<Baseline, number>> }[] = [];
  for (const threads of String(values.threads).split(',').map(Number)) {
    for (const s of shapes) {
      const kd: number[] = [];
      const py = new Map<Baseline, number[]>(bs.map((b) => [b, []]));
      for (let r = 0; r < Number(values.repeats); r++) {
        const sides: [number[], () => number[]][] = [
          [kd, () => run(process.execPath, [process.argv[1]!, '--side', 'kdistill', '--shape', s.name, '--threads', String(threads), '--steps', String(steps)], 'kdistill')],
          ...bs.map((b) => [py.get(b)!, () => run('/usr/bin/python3', [join(packageRoot, 'bench', 'python', 'transformer.py'), String(threads), String(steps), ...args(s)], b)] as [number[], () => number[]]),
        ];
        // rotate who goes first so load drift hits every side alike
        const k = r % sides.length;
        for (const [into, f] of [...sides.slice(k), ...sides.slice(0, k)]) into.push(median(f()));
      }
      const pytorch = Object.fromEntries(bs.map((b) => [b, median(py.get(b)!)]));
      const row = { shape: s.name, threads, kdistill: median(kd), pytorch, ratio: Object.fromEntries(bs.map((b) => [b, median(kd) / pytorch[b]!])) };
      rows.push(row);
      console.log(`${s.name} (batch ${s.batch}×${s.length}), ${threads} thread(s): kdistill ${row.kdistill.toFixed(1)} ms/step, ` +
        bs.map((b) => `${BASELINE_LABEL[b]} ${row.pytorch[b]!.toFixed(1)} ms/step (ratio ${row.ratio[b]!.toFixed(2)})`).join(', '));
    }
  }
  console.log(`\n| model | threads | kdistill ms/step | ${bs.map((b) => `${BASELINE_LABEL[b]} ms/step`).join(' | ')} | ${bs.map((b) => `kdistill / ${BASELINE_LABEL[b]}`).join(' | ')} |\n|---|---|---|${bs.map(() => '---|---|').join('')}`);
  for (const r of rows) console.log(`| ${r.shape} | ${r.threads} | ${r.kdistill.toFixed(1)} | ${bs.map((b) => r.pytorch[b]!.toFixed(1)).join(' | ')} | ${bs.map((b) => r.ratio[b]!.toFixed(2)).join(' | ')} |`);
  mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
  writeFileSync(join(packageRoot, 'bench', 'results', 'transformer.json'), JSON.stringify({ date: new Date().toISOString(), steps, baselines: Object.fromEntries(bs.map((b) => [b, baselineEnv({}, b)])), rows }, null, 2));
}

await main();
