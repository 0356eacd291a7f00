// DeepInversion (Yin et al., "Dreaming to Distill: Data-free Knowledge Transfer via
// DeepInversion", CVPR 2020): a transfer set synthesised from a teacher with batch norm alone.
// Each batch of images x (noise at first, labels balanced over the classes) is optimised with Adam
// to minimise, as the authors' CIFAR-10 script (cifar10/deepinversion_cifar10.py, get_images):
//   ceWeight·CE(T(x̃), y) + bnWeight·Σ_BN layers (‖σ²_l − var_l(x̃)‖₂ + ‖μ_l − mean_l(x̃)‖₂)
//     + tvL2Weight·TV₂(x̃) + tvL1Weight·TV₁(x̃) + l2Weight·‖x̃‖₂
// where x̃ is x rolled by a random jitter of up to ±jitter pixels (and flipped, if asked) and the
// batch-norm terms compare the statistics of what enters each BN layer with its running ones
// (src/losses/datafree.ts). The lowest-loss images of each batch are kept, as the authors do.
//
// `kdistill synthesize file.yaml` writes, into the output folder, x.npy (the images in raw pixel
// units: the optimisation runs in the teacher's normalised input space and the images are mapped
// back through data.normalize, so a distill run with the same normalize feeds the teacher exactly
// what it saw), y.npy (the target labels), samples.png (the first images as a grid) and
// synthesis.json (the settings and final loss terms). An ordinary experiment then distils on it
// with data.transferFile: {x: …/x.npy, y: …/y.npy} while the test set stays real.
//
// Why a separate step and not a method: the images are made once, from the teacher alone, and
// then serve any number of students, methods and seeds (the authors also generate first and
// distil after); a distill run on them is an ordinary run with its checks, cache and report.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import { tidy, keep } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { randint, randn, tensor } from '../tensor/factories.js';
import { crossEntropy } from '../tensor/functional.js';
import { manualSeed, setNumThreads } from '../tensor/torch.js';
import { BatchNorm1d, BatchNorm2d } from '../nn/layers.js';
import { loadModel } from '../nn/safetensors.js';
import { Adam } from '../optim/optimizer.js';
import { writeNpy } from '../data/npy.js';
import { bnStatisticsLoss, imageL2, tvL1, tvL2 } from '../losses/datafree.js';
import { Checker } from '../config/validate.js';
import { readExperimentDocument } from '../config/experiment.js';
import { imageGridPng } from '../util/png.js';

export interface SynthesisConfig {
  file: string;
  /** A kdistill model file of the teacher (it must have batch-norm layers). */
  teacher: string;
  output: string;
  /** Images to make, in batches of batchSize (labels cycle through the classes). */
  images: number;
  batchSize: number;
  /** Adam steps per batch (authors, CIFAR-10: 2,000). */
  iterations: number;
  lr: number;
  bnWeight: number;
  ceWeight: number;
  tvL2Weight: number;
  tvL1Weight: number;
  l2Weight: number;
  jitter: number;
  flip: boolean;
  seed: number;
  threads: number;
  /** The normalisation the teacher's inputs had (its run's data.normalize); absent: raw inputs. */
  normalize?: { mean: number[]; std: number[] };
}

const TOP = ['teacher', 'output', 'images', 'batchSize', 'iterations', 'lr', 'bnWeight', 'ceWeight', 'tvL2Weight', 'tvL1Weight', 'l2Weight', 'jitter', 'flip', 'seed', 'threads', 'normalize'];

/** Reads a synthesis file; every error names the file and the field. Defaults: the authors' CIFAR-10 script. */
export function parseSynthesisConfig(raw: unknown, file: string): SynthesisConfig {
  const c = new Checker(file);
  const o = c.object(raw, '', TOP);
  const rel = (p: string): string => (isAbsolute(p) ? p : resolve(dirname(resolve(file)), p));
  const cfg: SynthesisConfig = {
    file,
    teacher: rel(c.string(o, 'teacher', '')),
    output: rel(c.string(o, 'output', '')),
    images: c.number(o, 'images', '', { int: true, min: 1, default: 256 }),
    batchSize: c.number(o, 'batchSize', '', { int: true, min: 2, default: 256 }),
    iterations: c.number(o, 'iterations', '', { int: true, min: 1, default: 2000 }),
    lr: c.number(o, 'lr', '', { min: 0, default: 0.1 }),
    bnWeight: c.number(o, 'bnWeight', '', { min: 0, default: 100 }),
    ceWeight: c.number(o, 'ceWeight', '', { min: 0, default: 1 }),
    tvL2Weight: c.number(o, 'tvL2Weight', '', { min: 0, default: 2.5e-5 }),
    tvL1Weight: c.number(o, 'tvL1Weight', '', { min: 0, default: 0 }),
    l2Weight: c.number(o, 'l2Weight', '', { min: 0, default: 0 }),
    jitter: c.number(o, 'jitter', '', { int: true, min: 0, default: 2 }),
    flip: c.bool(o, 'flip', '', false),
    seed: c.number(o, 'seed', '', { int: true, min: 0, default: 0 }),
    threads: c.number(o, 'threads', '', { int: true, min: 1, default: 1 }),
  };
  if (o.normalize !== undefined) {
    const n = c.object(o.normalize, 'normalize', ['mean', 'std']);
    const mean = c.numberList(n, 'mean', 'normalize'), std = c.numberList(n, 'std', 'normalize');
    if (!mean || !std || mean.length === 0 || mean.length !== std.length) return c.fail('normalize', 'needs mean and std lists of the same length (one per channel)');
    if (std.some((s) => !(s > 0))) c.fail('normalize.std', 'must be > 0');
    cfg.normalize = { mean, std };
  }
  return cfg;
}

export function loadSynthesisConfig(file: string): SynthesisConfig {
  return parseSynthesisConfig(readExperimentDocument(file).raw, file);
}

export interface SynthesisResult {
  x: string;
  y: string;
  png: string;
  /** Mean of each loss term over the batches at their best iterate (unweighted BN/TV/l2 sums, CE). */
  terms: Record<string, number>;
  seconds: number;
}

/** Synthesises cfg.images images from the teacher and writes them (see the file's header). */
export function synthesize(cfg: SynthesisConfig, log: (line: string) => void = () => {}): SynthesisResult {
  setNumThreads(cfg.threads);
  manualSeed(cfg.seed);
  const t0 = Date.now();
  const { model } = loadModel(cfg.teacher);
  model.eval().freeze();
  const bns = model.namedModules().filter(([, m]) => m instanceof BatchNorm2d || m instanceof BatchNorm1d);
  const bnLayers = bns.flatMap(([name, m]) => (m instanceof BatchNorm2d || m instanceof BatchNorm1d) && m.runningMean && m.runningVar ? [{ name, mean: m.runningMean, var: m.runningVar }] : []);
  if (bnLayers.length === 0) throw new Error(`${cfg.file}: 'teacher': ${cfg.teacher} has no batch-norm layer with running statistics, which DeepInversion matches; use a teacher with batch norm (e.g. arch cnn)`);
  const numClasses = Number(model.spec.numClasses);
  const shape = model.inputShape;
  if (shape.length !== 3) throw new Error(`${cfg.file}: 'teacher': DeepInversion synthesises images [C, H, W]; the teacher takes inputs of shape [${shape.join(', ')}]`);
  const [C, H, W] = shape as [number, number, number];
  if (cfg.normalize && cfg.normalize.mean.length !== 1 && cfg.normalize.mean.length !== C) throw new Error(`${cfg.file}: 'normalize' has ${cfg.normalize.mean.length} channels, the teacher's inputs ${C}`);
  const per = C * H * W;
  const xs = new Float32Array(cfg.images * per);
  const ys = new Int32Array(cfg.images);
  const sums: Record<string, number> = {};
  let batches = 0;
  for (let start = 0; start < cfg.images; start += cfg.batchSize) {
    const n = Math.min(cfg.batchSize, cfg.images - start);
    // Labels in class order, repeated (the authors' [0, 1, …, 9] * 25 + …).
    const labels = Int32Array.from({ length: n }, (_, i) => (start + i) % numClasses);
    const y = keep(tensor(labels, { dtype: 'int64' }));
    const x = keep(randn([n, C, H, W]).requiresGrad_(true));
    const opt = new Adam([x], { lr: cfg.lr });
    let best = Infinity;
    let bestX: Float32Array | null = null;
    let bestTerms: Record<string, number> = {};
    for (let it = 0; it < cfg.iterations; it++) {
      const out = tidy(() => {
        let xj: Tensor = x;
        if (cfg.jitter > 0) {
          const off = randint(-cfg.jitter, cfg.jitter + 1, [2], { dtype: 'int64' }).toFloat64Array();
          xj = xj.roll([off[0]!, off[1]!], [2, 3]);
        }
        if (cfg.flip && Math.random() < 0.5) xj = xj.flip([3]);
        const { output, inputs } = model.forwardWithInputs(xj, bnLayers.map((b) => b.name));
        const terms: Record<string, Tensor> = {
          ce: crossEntropy(output, y),
          bn: bnLayers.map((b) => bnStatisticsLoss(inputs[b.name]!, b.mean, b.var)).reduce((a, v) => a.add(v)),
          tvL2: tvL2(xj), tvL1: tvL1(xj), l2: imageL2(xj),
        };
        const total = terms.ce!.mul(cfg.ceWeight).add(terms.bn!.mul(cfg.bnWeight)).add(terms.tvL2!.mul(cfg.tvL2Weight))
          .add(terms.tvL1!.mul(cfg.tvL1Weight)).add(terms.l2!.mul(cfg.l2Weight));
        const loss = total.item();
        if (!Number.isFinite(loss)) throw new Error(`${cfg.file}: the synthesis loss became ${loss} at iteration ${it} of batch ${batches + 1} (lower lr or the weights)`);
        // The authors keep the inputs of the lowest loss, taken before this step's update.
        const values = loss < best ? Object.fromEntries(Object.entries(terms).map(([k, v]) => [k, v.item()])) : null;
        const snapshot = values ? noGrad(() => x.detach().contiguous().data<Float32Array>()) : null;
        opt.zeroGrad();
        total.backward();
        opt.step();
        return { loss, values, snapshot };
      });
      if (out.values) {
        best = out.loss;
        bestX = out.snapshot;
        bestTerms = out.values;
      }
      if (it % 200 === 0 || it === cfg.iterations - 1) log(`batch ${batches + 1}, iteration ${it + 1}/${cfg.iterations}: loss ${out.loss.toFixed(4)}`);
    }
    xs.set(bestX!, start * per);
    ys.set(labels, start);
    for (const [k, v] of Object.entries(bestTerms)) sums[k] = (sums[k] ?? 0) + v;
    batches++;
    x.dispose();
    y.dispose();
  }
  // Back to raw pixel units through the teacher's normalisation (data.normalize of the distill run).
  if (cfg.normalize) {
    const { mean, std } = cfg.normalize;
    for (let i = 0; i < xs.length; i++) {
      const ch = Math.floor((i % per) / (H * W));
      const k = mean.length === 1 ? 0 : ch;
      xs[i] = xs[i]! * std[k]! + mean[k]!;
    }
  }
  mkdirSync(cfg.output, { recursive: true });
  const res: SynthesisResult = {
    x: join(cfg.output, 'x.npy'), y: join(cfg.output, 'y.npy'), png: join(cfg.output, 'samples.png'),
    terms: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / batches])), seconds: (Date.now() - t0) / 1000,
  };
  writeNpy(res.x, { data: xs, shape: [cfg.images, C, H, W], dtype: 'float32' });
  writeNpy(res.y, { data: BigInt64Array.from(ys, (v) => BigInt(v)), shape: [cfg.images], dtype: 'int64' });
  const shown = Math.min(cfg.images, 100);
  writeFileSync(res.png, imageGridPng(xs.subarray(0, shown * per), [shown, C, H, W], 10));
  const { file: _file, ...settings } = cfg;
  writeFileSync(join(cfg.output, 'synthesis.json'), JSON.stringify({ method: 'deepinversion', settings, teacherBnLayers: bnLayers.map((b) => b.name), ...res }, null, 2) + '\n');
  model.dispose();
  return res;
}
