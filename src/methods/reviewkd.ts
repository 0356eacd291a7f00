// ReviewKD (Chen, Liu, Zhao, Jia, CVPR 2021): each teacher stage is matched by a fusion of the
// student's same stage and all its deeper ones ("knowledge review"). As in the authors' code
// (dvlab-research/ReviewKD; mdistiller's ReviewKD.py), with levels 1…n shallow to deep (the stage
// outputs, then the penultimate embedding as a 1×1 map):
//   ABF_l (attention-based fusion), from the deepest level down, on student feature s_l:
//     x = BN(conv1×1(s_l → m))                       m = min(512, channels of the student's embedding)
//     if l < n: r = nearest-upsample(r_{l+1} to s_l's size); [a, b] = sigmoid(conv1×1(cat(x, r)) → 2 maps)
//               x = x·a + r·b                        (per-pixel attention between the two)
//     r_l = x (nearest-resized to the teacher's size if it differs),  out_l = BN(conv3×3(r_l → C_T,l))
//   HCL (hierarchical context loss) per level: (mse(out, t) + Σ_{k∈{4,2,1}, k<h} 2^-j·mse(pool_k(out), pool_k(t)))
//     / (1 + Σ 2^-j), j = 1, 2, 3 in turn over the pooled sizes used (adaptive average pooling)
//   reviewkd = weight·min((epoch + 1)/warmupEpochs, 1)·Σ_l HCL_l     (mdistiller counts epochs from 1)
//   loss = ceWeight·CE + reviewkd.
// Convolutions are bias-free except the attention's; conv1/conv2 weights are kaiming-uniform (a = 1).
import { Module } from '../nn/module.js';
import { BatchNorm2d, Conv2d, Sequential, Sigmoid } from '../nn/layers.js';
import { kaimingUniform_ } from '../nn/init.js';
import { noGrad } from '../tensor/autograd.js';
import { adaptiveAvgPool2d, crossEntropy, mseLoss } from '../tensor/functional.js';
import { cat } from '../tensor/factories.js';
import { tidy } from '../tensor/scope.js';
import { call, type Tensor } from '../tensor/tensor.js';
import { sumOf } from './fitnet.js';
import { defineMethod, type Method } from './method.js';
import { num } from './params.js';
import { alignDeepest, embeddingParams, featurePairs, Layers, stageNames, stagePairsParam } from './representation.js';

const nearest = (x: Tensor, h: number, w: number): Tensor => (x.shape[2] === h && x.shape[3] === w ? x : call('upsample_nearest2d', x, [h, w], null, null));
/** [b, C] → [b, C, 1, 1]; maps unchanged. */
const asMap = (x: Tensor): Tensor => (x.shape.length === 2 ? x.reshape([x.shape[0]!, x.shape[1]!, 1, 1]) : x);

/** Attention-based fusion of one level (ABF). */
export class Abf extends Module {
  readonly conv1: Sequential;
  readonly conv2: Sequential;
  readonly attConv: Sequential | null;
  constructor(readonly inChannels: number, readonly midChannels: number, readonly outChannels: number, fuse: boolean) {
    super();
    const c1 = new Conv2d(inChannels, midChannels, 1, { bias: false }), c2 = new Conv2d(midChannels, outChannels, 3, { padding: 1, bias: false });
    noGrad(() => { kaimingUniform_(c1.weight, { a: 1 }); kaimingUniform_(c2.weight, { a: 1 }); });
    this.conv1 = this.registerModule('conv1', new Sequential(c1, new BatchNorm2d(midChannels)));
    this.conv2 = this.registerModule('conv2', new Sequential(c2, new BatchNorm2d(outChannels)));
    this.attConv = fuse ? this.registerModule('att_conv', new Sequential(new Conv2d(2 * midChannels, 2, 1), new Sigmoid())) : null;
  }
  forward(): Tensor {
    throw new Error('Abf: call fuse(x, residual, outSize)');
  }
  /** [out, residual] of student feature x given the deeper level's residual (null at the deepest). */
  fuse(s: Tensor, residual: Tensor | null, outSize: [number, number]): [Tensor, Tensor] {
    const [n, , h, w] = s.shape as [number, number, number, number];
    let x = this.conv1.call(s);
    if (this.attConv) {
      if (!residual) throw new Error('Abf: a fusing level needs the deeper level\'s residual');
      const r = nearest(residual, h, w);
      const z = this.attConv.call(cat([x, r], 1));
      x = x.mul(z.narrow(1, 0, 1).reshape([n, 1, h, w])).add(r.mul(z.narrow(1, 1, 1).reshape([n, 1, h, w])));
    }
    x = nearest(x, outSize[0], outSize[1]);
    return [this.conv2.call(x), x];
  }
}

/** The fused student features, shallow to deep, from the ABFs (shallow to deep) and student features. */
export function reviewFeatures(abfs: Abf[], student: Tensor[], teacherSizes: [number, number][]): Tensor[] {
  const n = abfs.length, out: Tensor[] = new Array<Tensor>(n);
  let residual: Tensor | null = null;
  for (let l = n - 1; l >= 0; l--) [out[l], residual] = abfs[l]!.fuse(asMap(student[l]!), residual, teacherSizes[l]!);
  return out;
}

/** The hierarchical context loss of one level's fused feature and teacher feature [b, C, h, w]. */
export function hclLoss(fs: Tensor, ft: Tensor): Tensor {
  return tidy(() => {
    const h = fs.shape[2]!;
    let loss = mseLoss(fs, ft), weight = 1, total = 1;
    for (const k of [4, 2, 1]) {
      if (k >= h) continue;
      weight /= 2;
      loss = loss.add(mseLoss(adaptiveAvgPool2d(fs, [k, k]), adaptiveAvgPool2d(ft, [k, k])).mul(weight));
      total += weight;
    }
    return loss.div(total);
  });
}

export const reviewkd = defineMethod({
  name: 'reviewkd',
  summary: 'ReviewKD: attention-based fusion of each student stage with its deeper ones (ABF), matched to the teacher\'s stages and embedding by the hierarchical context loss (HCL: MSE plus ' +
    'MSE of 4×4, 2×2, 1×1 pooled maps), ramped up over warmupEpochs; plus ceWeight·CE. Needs feature maps (not an MLP).',
  paper: 'Chen, Liu, Zhao, Jia, "Distilling Knowledge via Knowledge Review", CVPR 2021 (arXiv:2104.09044; ABF, HCL and CIFAR defaults of the authors\' code as mdistiller\'s ReviewKD.py has it)',
  differs: 'the teacher\'s stage outputs are taken after their activation where the authors\' code and mdistiller take its pre-activation features (the student\'s are post-activation in both; kdistill\'s zoo names post-activation outputs); ' +
    'by default every spatial stage output is a level, the stem\'s included (zoo ResNet pairs: stem, 3 stages and the embedding, 5 levels), where the authors\' code and mdistiller\'s leave the stem out ' +
    '(their CIFAR ResNet levels: 3 stages and the embedding, 4; here pairs: [layer1, layer2, layer3])',
  needsTeacher: true,
  params: {
    ...stagePairsParam('every spatial stage output of each zoo model, paired from the deepest (the embedding pair is added as the last level)'),
    ...embeddingParams('embedding, the deepest level as a 1×1 map'),
    weight: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the ReviewKD term (mdistiller\'s default 1; the authors\' CIFAR-100 scripts set 0.6–8 per pair, 5 for most, as mdistiller\'s resnet32x4 → resnet8x4 config does)' }),
    warmupEpochs: num({ default: 20, unit: 'epochs', min: 0, description: 'The term\'s weight grows linearly to full over this many epochs (mdistiller: 20; 0: none)' }),
    ceWeight: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the label cross-entropy (mdistiller: 1)' }),
  },
  create(p) {
    const given = p.pairs.length && p.studentLayer && p.teacherLayer ? [...p.pairs, { student: p.studentLayer, teacher: p.teacherLayer }] : [];
    const layers = new Layers('reviewkd', given, 'any', (s, t, ctx) => [
      ...(p.pairs.length ? p.pairs : alignDeepest(stageNames(s, true, ctx, 'maps'), stageNames(t, false, ctx, 'maps'), 'reviewkd')),
      { student: p.studentLayer || s.embeddingName, teacher: p.teacherLayer || t.embeddingName },
    ]);
    let abfs: Abf[] | null = null;
    let sizes: [number, number][] = [];
    const method: Method = {
      get features() { return layers.features; },
      setup(ctx) {
        layers.setup(ctx);
        const { student, teacher } = layers.shapes, n = student.length;
        layers.pairs.forEach((q, i) => {
          const want = i < n - 1 ? 3 : 1;
          for (const [who, name, shape] of [['student', q.student, student[i]!], ['teacher', q.teacher, teacher[i]!]] as const) {
            if (shape.length !== want && !(i === n - 1 && shape.length === 3 && shape[1] === 1 && shape[2] === 1)) {
              throw new Error(`method 'reviewkd': the ${who}'s layer '${name}' gives [${shape.join(', ')}]; the stage levels need feature maps [C, H, W] ` +
                '(an MLP has none) and the last level an embedding [D]');
            }
          }
        });
        const mid = Math.min(512, student[n - 1]![0]!);
        abfs = student.map((s, i) => new Abf(s[0]!, mid, teacher[i]![0]!, i < n - 1));
        sizes = teacher.map((t) => (t.length === 3 ? [t[1]!, t[2]!] : [1, 1]));
      },
      extraModules: () => abfs ?? [],
      losses(ctx) {
        if (!abfs) throw new Error("method 'reviewkd': setup() was not called, so its fusion modules do not exist (the trainer calls it before building the optimizer)");
        const a = abfs;
        return tidy(() => {
          const f = featurePairs(ctx, layers.pairs, 'reviewkd');
          const fused = reviewFeatures(a, f.map((q) => q.s), sizes);
          const ramp = p.warmupEpochs > 0 ? Math.min((ctx.info.epoch + 1) / p.warmupEpochs, 1) : 1;
          const out: Record<string, Tensor> = { reviewkd: sumOf(fused.map((x, i) => hclLoss(x, asMap(f[i]!.t)))).mul(p.weight * ramp) };
          return ctx.batch.y === null ? out : { ce: crossEntropy(ctx.studentLogits, ctx.batch.y).mul(p.ceWeight), ...out };
        });
      },
    };
    return method;
  },
});
