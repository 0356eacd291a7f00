// `kdistill demo`: the README's main command. Distills the bundled Fashion-MNIST teacher (a CNN
// trained by `kdistill train experiments/fashion-mnist/teacher.yaml`) into a small MLP and
// compares it with the same MLP trained from scratch on the same budget. It runs the regime of
// Hinton et al.'s "soft targets as regularizers" (experiments/fashion-mnist/lowdata-*.yaml): the
// student sees 3% of the training images, where the teacher's soft targets help most.
import { parseArgs } from 'node:util';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../tensor/native.js';
import { parseExperiment, type Experiment } from '../config/experiment.js';
import { pct, num } from '../run/experiment.js';
import { runExperiment } from '../api.js';
import { loadFashionMnist } from '../data/fashion-mnist.js';
import { predict } from '../train/evaluate.js';
import { classificationMetrics } from '../train/metrics.js';
import { checkpointTeacher } from '../teachers/sources.js';
import { formatTable } from '../train/table.js';
import { inferenceMsPerSample } from '../train/timing.js';
import { kib } from './eval.js';
import { runHintonDemo } from './hinton.js';

export const DEMO_TEACHER = join(packageRoot, 'assets', 'fashion-mnist-teacher.safetensors');

/**
 * The demo's two students: the MLP from scratch, or distilled from DEMO_TEACHER (KD, T=4), on
 * `subset` training images. The browser demo (scripts/build-web.mjs) shows the distilled one,
 * runs/demo/kd, and with --calibrate N post-training-quantizes it to INT8.
 */
export function demoExperiment(kind: 'scratch' | 'kd', o: { seed: number; epochs: number; subset: number; output: string }): Experiment {
  const common = {
    seed: o.seed, epochs: o.epochs, threads: 1, student: { arch: 'mlp', hidden: [64] },
    data: { dataset: 'fashion-mnist', batchSize: 64, ...(o.subset < 60000 ? { subset: o.subset } : {}) },
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    schedule: { name: 'cosine' },
  };
  return kind === 'scratch'
    ? parseExperiment({ ...common, name: 'demo-scratch', output: join(o.output, 'scratch'), method: { name: 'scratch' } }, 'demo')
    : parseExperiment({
      ...common, name: 'demo-kd', output: join(o.output, 'kd'), teacher: { checkpoint: DEMO_TEACHER }, method: { name: 'kd', params: { temperature: 4, alpha: 0.9 } },
    }, 'demo');
}

export async function runDemo(argv: string[]): Promise<number> {
  // `--paper hinton`: the Hinton et al. (2015) §3 reproduction instead (src/cli/hinton.ts).
  const paperAt = argv.findIndex((a) => a === '--paper' || a.startsWith('--paper='));
  if (paperAt >= 0) {
    const paper = argv[paperAt]!.includes('=') ? argv[paperAt]!.split('=')[1] : argv[paperAt + 1];
    if (paper !== 'hinton') throw new Error(`--paper: the reproduced papers are: hinton (got '${paper ?? ''}')`);
    return runHintonDemo(argv);
  }
  const { values } = parseArgs({
    args: argv,
    options: {
      epochs: { type: 'string', default: '30' }, seed: { type: 'string', default: '1' }, output: { type: 'string', default: 'runs/demo' },
      // training images the students see (the teacher saw all 60,000)
      subset: { type: 'string', default: '1800' },
    },
  });
  const epochs = Number(values.epochs), seed = Number(values.seed);
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`--epochs must be a positive integer, got '${values.epochs}'`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got '${values.seed}'`);
  if (!existsSync(DEMO_TEACHER)) throw new Error(`the demo teacher ${DEMO_TEACHER} is missing; create it with: kdistill train experiments/fashion-mnist/teacher.yaml`);

  const out = values.output!;
  const subset = Number(values.subset);
  if (!Number.isInteger(subset) || subset < 10 || subset > 60000) throw new Error(`--subset must be an integer in [10, 60000], got '${values.subset}'`);
  process.stderr.write(`kdistill demo: Fashion-MNIST, teacher ${DEMO_TEACHER}\n` +
    `  students: MLP 784-64-10 on ${subset.toLocaleString('en-US')} training images, ${epochs} epochs, seed ${seed}; from scratch, then distilled (Hinton KD, T=4)\n`);
  const scratch = await runExperiment(demoExperiment('scratch', { seed, epochs, subset, output: out }), { mode: 'train', resume: false });
  const kd = await runExperiment(demoExperiment('kd', { seed, epochs, subset, output: out }), { mode: 'distill', resume: false });

  const test = loadFashionMnist({ split: 'test' });
  const teacher = checkpointTeacher(DEMO_TEACHER);
  const tp = predict((x) => teacher.logits(x), test);
  const tm = classificationMetrics(tp, test.y!);
  const row = (name: string, params: number, file: string, acc: number | undefined, agree: number | undefined, nll: number | undefined, ms: number): string[] =>
    [name, params.toLocaleString('en-US'), kib(statSync(file).size), pct(acc), pct(agree), num(nll), ms.toFixed(3)];
  const rows = [
    row('teacher (CNN)', teacher.numParameters, DEMO_TEACHER, tm.accuracy, undefined, tm.nll, inferenceMsPerSample((x) => teacher.logits(x), test)),
    row('student from scratch', scratch.student.numParameters(), join(out, 'scratch', 'model.safetensors'), scratch.result.final?.accuracy, undefined, scratch.result.final?.nll,
      inferenceMsPerSample((x) => scratch.student.eval().call(x), test)),
    row('student distilled (KD)', kd.student.numParameters(), join(out, 'kd', 'model.safetensors'), kd.result.final?.accuracy, kd.result.final?.agreement, kd.result.final?.nll,
      inferenceMsPerSample((x) => kd.student.eval().call(x), test)),
  ];
  process.stdout.write('\n' + formatTable(['Fashion-MNIST test (10,000)', 'params', 'size', 'accuracy', 'agrees w/ teacher', 'NLL', 'ms/image'], rows) + '\n');
  const gain = ((kd.result.final?.accuracy ?? 0) - (scratch.result.final?.accuracy ?? 0)) * 100;
  process.stdout.write(`\nKD vs scratch: ${gain >= 0 ? '+' : ''}${gain.toFixed(2)} points with ${(100 * kd.student.numParameters() / teacher.numParameters).toFixed(1)}% of the teacher's parameters. Runs, logs and models: ${out}/\n`);
  return 0;
}
