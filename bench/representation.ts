// Representation-method benchmark (issue 19): the per-step cost of CRD with its memory bank and
// of ReviewKD — forward of the student and of the frozen teacher (with the features the method
// reads), the method's loss, backward, SGD step over the student and the method's own parts —
// with KD on the same pair as the reference row; kdistill against the same step in PyTorch
// (bench/python/representation.py, written from the authors' code), side by side in one run.
//
// The pair: CIFAR-style ResNet-20 teacher → ResNet-8 student, 3×32×32 inputs, batch 64
// (RepDistiller's CIFAR batch size), SGD lr 0.05, momentum 0.9, weight decay 5e-4.
//   kd       T = 4, alpha 0.9 (RepDistiller's and mdistiller's KD)
//   crd      the authors' defaults: embedding heads of width 128 on the penultimate features,
//            16,384 negatives per sample from memory banks over a transfer set of 10,000 rows,
//            momentum 0.5, T = 0.07; loss CE + 0.8·CRD (RepDistiller's -r 1 -a 0 -b 0.8).
//            Each step takes the next 64 rows of a shuffled permutation of the 10,000, as the
//            loader's indices are. Two rows: kdistill's default scoring (auto, here v·Mᵀ picked at
//            the indices) and the authors' gather of the bank's rows (src/methods/crd.ts
//            CrdScoring); the PyTorch side is the authors' gather in both.
//   reviewkd mdistiller's CIFAR ResNet levels: the three stage outputs and the pooled
//            embedding (its zip drops the stem), ABFs with 64 mid channels, HCL, CE weight 1.
// The kdistill side runs the methods through their contract as the trainer's step does
// (src/train/trainer.ts step(): forwardWithFeatures, the teacher's features under no-grad,
// method.losses, each term's value read, zeroGrad, backward, SGD step), without the trainer's
// non-finite checks of loss and gradients, which the PyTorch side has no counterpart of.
// Same worker protocol, alternation and parameter check as the zoo benchmark (bench/_rows.ts);
// the parameter count includes the method's own parts (embedding heads, ABFs).
//
//   node dist/bench/representation.js [--rows crd] [--repeats 3] [--threads 1] [--baseline both]
//        [--profile 3] [--out bench/results/representation.json]
import { fileURLToPath } from 'node:url';
import { runBenchmark } from './_common.js';
import { compareRows, serveRows, type BuiltRow, type RowBase } from './_rows.js';

export const benchmark = { name: 'representation', description: 'CRD (memory bank) and ReviewKD training steps, KD for reference, vs PyTorch' };

interface Row extends RowBase {
  student: string;
  teacher: string;
  input: [number, number, number];
  /** kdistill's method name and parameters; the PyTorch worker reads the same keys. */
  method: { name: 'kd' | 'crd' | 'reviewkd'; params: Record<string, unknown> };
  /** Rows of the transfer set the batch indices are drawn from (CRD's memory size). */
  datasetSize: number;
  optim: { lr: number; momentum: number; weightDecay: number };
}

const PAIR = { student: 'resnet8', teacher: 'resnet20', input: [3, 32, 32] as [number, number, number], batch: 64, datasetSize: 10000, optim: { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 } };
const ROWS: Row[] = [
  { name: 'kd resnet20 → resnet8', ...PAIR, method: { name: 'kd', params: { temperature: 4, alpha: 0.9 } }, warmup: 3, steps: 10 },
  // kdistill's default scoring (auto: v·Mᵀ here, N ≤ 8·(K+1)), then the authors' gather on both sides
  ...(['auto', 'gather'] as const).map((scoring): Row => ({
    name: `crd resnet20 → resnet8, K = 16384, N = 10000, kdistill scoring ${scoring}`, ...PAIR,
    method: { name: 'crd', params: { featDim: 128, numNegatives: 16384, nceTemperature: 0.07, momentum: 0.5, beta: 0.8, alpha: 0, scoring } }, warmup: 1, steps: 3,
  })),
  {
    name: 'reviewkd resnet20 → resnet8', ...PAIR,
    method: { name: 'reviewkd', params: { pairs: ['layer1', 'layer2', 'layer3'], studentLayer: 'flatten', teacherLayer: 'flatten', weight: 1, warmupEpochs: 20, ceWeight: 1 } }, warmup: 3, steps: 10,
  },
];

async function worker(): Promise<void> {
  const { manualSeed } = await import('../src/tensor/torch.js');
  const { torch } = await import('../src/torch.js');
  const { tidy } = await import('../src/tensor/scope.js');
  const { noGrad } = await import('../src/tensor/autograd.js');
  const { createModel } = await import('../src/nn/zoo/index.js');
  const { makeOptimizer } = await import('../src/optim/optimizer.js');
  const { getMethod } = await import('../src/methods/registry.js');
  const { resolveParams } = await import('../src/methods/method.js');
  const { ModuleTeacher } = await import('../src/teachers/sources.js');
  type Tensor = InstanceType<typeof torch.Tensor>;

  function build(row: Row): BuiltRow {
    manualSeed(0);
    const model = (arch: string) => createModel({ arch, inChannels: row.input[0], inputSize: row.input.slice(1), numClasses: 10 });
    const student = model(row.student).train();
    const teacherNet = model(row.teacher);
    const teacher = new ModuleTeacher(teacherNet, 10, `bench ${row.teacher}`, 'bench');
    const spec = getMethod(row.method.name);
    const method = spec.create(resolveParams(spec, row.method.params));
    const x = torch.randn([row.batch, ...row.input]).keep();
    const y = torch.randint(0, 10, [row.batch]).keep();
    const sample = tidy(() => x.narrow(0, 0, 2).clone()).keep();
    method.setup?.({ student, teacher, numClasses: 10, datasetSize: row.datasetSize, transferSet: null, sample });
    sample.dispose();
    const extras = method.extraModules?.() ?? [];
    const params = [student, ...extras].flatMap((m) => m.parameters());
    const opt = makeOptimizer({ name: 'sgd', ...row.optim }, params);
    const sfeat = method.features?.student ?? [], tfeat = method.features?.teacher ?? [];
    // The loader's indices: consecutive slices of a fresh shuffled permutation each epoch (a
    // seeded LCG; the bench needs indices spread over the transfer set, not a particular order).
    let seed = 12345, perm = new Int32Array(0), at = row.datasetSize;
    const nextRows = (): Int32Array => {
      if (at + row.batch > row.datasetSize) {
        perm = Int32Array.from({ length: row.datasetSize }, (_, i) => i);
        for (let i = perm.length - 1; i > 0; i--) {
          seed = (seed * 1103515245 + 12345) % 2147483648;
          const j = seed % (i + 1);
          [perm[i], perm[j]] = [perm[j]!, perm[i]!];
        }
        at = 0;
      }
      at += row.batch;
      return perm.subarray(at - row.batch, at);
    };
    const info = { epoch: 0, epochs: 1, step: 0, numClasses: 10 };
    const step = (): number => tidy(() => {
      const indices = nextRows();
      let studentLogits: Tensor, studentFeatures: Record<string, Tensor> = {};
      if (sfeat.length) ({ output: studentLogits, features: studentFeatures } = student.forwardWithFeatures(x, sfeat));
      else studentLogits = student.call(x);
      let teacherLogits!: Tensor, teacherFeatures: Record<string, Tensor> = {};
      noGrad(() => {
        if (tfeat.length) ({ output: teacherLogits, features: teacherFeatures } = teacher.features(x, tfeat));
        else teacherLogits = teacher.logits(x);
      });
      const terms = method.losses({ student, teacher, batch: { x, y }, indices, info, studentLogits, teacherLogits, studentFeatures, teacherFeatures });
      const names = Object.keys(terms);
      let total = terms[names[0]!]!;
      for (const n of names.slice(1)) total = total.add(terms[n]!);
      const loss = total.item();
      for (const n of names) terms[n]!.item();
      opt.zeroGrad();
      total.backward();
      opt.step();
      info.step++;
      return loss;
    });
    const count = (ms: { parameters(): Tensor[] }[]): number => ms.flatMap((m) => m.parameters()).reduce((s, p) => s + p.numel(), 0);
    return { step, params: count([student, ...extras]), teacherParams: count([teacherNet]) };
  }

  await serveRows(build);
}

const orchestrate = (args: Map<string, string>): Promise<void> =>
  compareRows({ name: 'representation', rows: ROWS, workerScript: fileURLToPath(import.meta.url), python: 'representation.py' }, args);

runBenchmark(import.meta.url, worker, orchestrate);
