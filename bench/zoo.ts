// Zoo benchmark (issue 23): training steps of the models the experiments train — CIFAR-style
// ResNet-8/20 and WRN-16-1/16-4 students (KD loss against cached teacher logits, and one row with
// a live WRN-16-4 teacher forward), on 28×28×1 and 32×32×3 inputs, batch 128; and the Hinton
// MNIST MLPs (1200-1200 teacher with dropout and max-norm, 800-800 student distilled from it) —
// kdistill against the same models in PyTorch (bench/python/zoo.py), side by side in one run.
//
// Every side is a long-lived worker (kdistill, PyTorch stock, PyTorch glibc-tuned) taking turns
// row by row, with parameter counts checked equal (bench/_rows.ts).
//
//   node dist/bench/zoo.js [--rows resnet8,mlp] [--repeats 3] [--threads 1] [--baseline both]
//        [--profile 3] [--out bench/results/zoo.json]
//   --rows: rows whose name starts with one of these; --profile k: after timing, profile k steps
//   on each side and print the top operators by self CPU time (libtorch's autograd profiler).
import { fileURLToPath } from 'node:url';
import { runBenchmark } from './_common.js';
import { compareRows, serveRows, type BuiltRow, type RowBase } from './_rows.js';

export const benchmark = { name: 'zoo', description: 'ResNet/WRN and Hinton-MLP training steps vs PyTorch' };

interface Arch { arch: string; hidden?: number[]; dropout?: number; inputDropout?: number }
interface Row extends RowBase {
  name: string;
  student: Arch;
  /** A live teacher (eval mode, no gradients) run every step; null = its logits come from a cache. */
  teacher: Arch | null;
  input: [number, number, number];
  batch: number;
  loss: { kind: 'kd'; T: number; alpha: number } | { kind: 'ce' };
  optim: { lr: number; momentum: number; nesterov?: boolean; weightDecay?: number; maxNorm?: number };
  /** Warm-up steps (first run only) and timed steps per run: enough to average over, few enough to keep the whole bench near 10 minutes. */
  warmup: number;
  steps: number;
}

// mdistiller's CIFAR recipe: SGD lr 0.05, momentum 0.9, weight decay 5e-4; KD at T = 4, alpha 0.9.
const CIFAR_OPTIM = { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 };
const KD4 = { kind: 'kd', T: 4, alpha: 0.9 } as const;
const WRN164: Arch = { arch: 'wrn_16_4' };
// The Hinton reproduction (experiments/hinton-mnist/*.yaml): batch 128, SGD with Nesterov momentum.
const HINTON_TEACHER: Arch = { arch: 'mlp', hidden: [1200, 1200], dropout: 0.5, inputDropout: 0.2 };

const ROWS: Row[] = [
  ...(['resnet8', 'resnet20', 'wrn_16_1', 'wrn_16_4'] as const).flatMap((arch) =>
    ([[1, 28, 28], [3, 32, 32]] as [number, number, number][]).map((input): Row => ({
      name: `${arch} ${input.join('×')}`, student: { arch }, teacher: null, input, batch: 128, loss: KD4, optim: CIFAR_OPTIM,
      // a WRN-16-4 step is ~10 s on one core; the others 0.3–1.5 s
      ...(arch === 'wrn_16_4' ? { warmup: 1, steps: 2 } : { warmup: 2, steps: 5 }),
    }))),
  { name: 'wrn_16_4 teacher → resnet8 3×32×32', student: { arch: 'resnet8' }, teacher: WRN164, input: [3, 32, 32], batch: 128, loss: KD4, optim: CIFAR_OPTIM, warmup: 1, steps: 3 },
  { name: 'mlp 1200-1200 teacher (dropout, max-norm)', student: HINTON_TEACHER, teacher: null, input: [1, 28, 28], batch: 128, loss: { kind: 'ce' },
    optim: { lr: 0.1, momentum: 0.9, nesterov: true, maxNorm: 3.5 }, warmup: 5, steps: 20 },
  { name: 'mlp 800-800 ← 1200-1200 teacher, KD T=20', student: { arch: 'mlp', hidden: [800, 800] }, teacher: HINTON_TEACHER, input: [1, 28, 28], batch: 128,
    loss: { kind: 'kd', T: 20, alpha: 1 }, optim: { lr: 0.05, momentum: 0.9, nesterov: true }, warmup: 5, steps: 20 },
];

// ---------------------------------------------------------------------------------------
// Worker: the kdistill side, built from the library's own pieces (zoo, KD loss, optimizer,
// max-norm), as the trainer uses them. Loaded lazily so the orchestrator never loads libtorch.
// ---------------------------------------------------------------------------------------
async function worker(): Promise<void> {
  const { manualSeed } = await import('../src/tensor/torch.js');
  const { torch } = await import('../src/torch.js');
  const F = await import('../src/tensor/functional.js');
  const { tidy } = await import('../src/tensor/scope.js');
  const { noGrad } = await import('../src/tensor/autograd.js');
  const { createModel } = await import('../src/nn/zoo/index.js');
  const { makeOptimizer } = await import('../src/optim/optimizer.js');
  const { constrainedWeights, maxNorm_ } = await import('../src/optim/constraints.js');
  const { klDivergence } = await import('../src/losses/tempered.js');
  type Module = ReturnType<typeof createModel>;

  const model = (a: Arch, input: number[]): Module =>
    createModel(a.arch === 'mlp' ? { ...a, inputShape: input, numClasses: 10 } : { ...a, inChannels: input[0], inputSize: input.slice(1), numClasses: 10 });
  const count = (m: Module): number => m.parameters().reduce((s, p) => s + p.numel(), 0);

  function build(row: Row): BuiltRow {
    manualSeed(0);
    const student = model(row.student, row.input).train();
    const teacher = row.teacher ? model(row.teacher, row.input).eval() : null;
    const opt = makeOptimizer({ name: 'sgd', ...row.optim }, student.parameters());
    const constrained = row.optim.maxNorm ? constrainedWeights(student) : [];
    const x = torch.randn([row.batch, ...row.input]).keep();
    const y = torch.randint(0, 10, [row.batch]).keep();
    const fixed = tidy(() => torch.randn([row.batch, 10]).mul(3)).keep();
    const loss = row.loss;
    const step = (): number => tidy(() => {
      const tl = teacher ? noGrad(() => teacher.call(x)) : fixed;
      const s = student.call(x);
      const l = loss.kind === 'kd'
        ? F.crossEntropy(s, y).mul(1 - loss.alpha).add(klDivergence(tl, s, loss.T).mul(loss.alpha))
        : F.crossEntropy(s, y);
      opt.zeroGrad();
      l.backward();
      opt.step();
      if (constrained.length) maxNorm_(constrained, row.optim.maxNorm!);
      return l.item();
    });
    return { step, params: count(student), teacherParams: teacher ? count(teacher) : null };
  }

  await serveRows(build);
}

const orchestrate = (args: Map<string, string>): Promise<void> =>
  compareRows({ name: 'zoo', rows: ROWS, workerScript: fileURLToPath(import.meta.url), python: 'zoo.py' }, args);

runBenchmark(import.meta.url, worker, orchestrate);
