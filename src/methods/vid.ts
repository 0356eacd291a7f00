// Variational Information Distillation (Ahn, Hu, Damianou, Lawrence, Dai, CVPR 2019): maximise a
// variational lower bound on the mutual information between teacher and student features by
// fitting a Gaussian q(t | s) whose mean is a small regressor of the student's feature and whose
// variance is learned per teacher channel. As the authors' code (ssahn0215/variational-information-
// distillation, as RepDistiller's distiller_zoo/VID.py has it), per layer pair:
//   the larger map is average-pooled to the smaller's size,
//   μ = conv1×1(C_S→C_T) → ReLU → conv1×1(C_T→C_T) → ReLU → conv1×1(C_T→C_T)  (no biases)
//   σ²_c = softplus(α_c) + ε, α initialised to log(e^{5 − ε} − 1) (σ² = 5), ε = 1e-5
//   vid = mean over batch, channels and positions of ½·((μ − t)²/σ² + log σ²),
// summed over the pairs; loss = beta·Σ vid + CE (+ KD), beta = 1. The regressors and α are trained
// with the student. Vector features [D] are treated as 1×1 maps (the 1×1 convolutions are then
// linear layers), so the method also serves MLPs.
import { Module } from '../nn/module.js';
import { Conv2d, ReLU, Sequential } from '../nn/layers.js';
import { full } from '../tensor/factories.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { sumOf } from './fitnet.js';
import { defineMethod } from './method.js';
import { num } from './params.js';
import { alignDeepest, Layers, repdistillerKdParams, representationMethod, stageNames, stagePairsParam } from './representation.js';
import { poolToSmaller } from './nst.js';

const EPS = 1e-5;

/** [b, D] → [b, D, 1, 1]; maps unchanged. */
const asMap = (x: Tensor): Tensor => (x.shape.length === 2 ? x.reshape([x.shape[0]!, x.shape[1]!, 1, 1]) : x);

/** The mean regressor and the per-channel variance of one layer pair. */
export class VidRegressor extends Module {
  readonly regressor: Sequential;
  readonly logScale: Tensor;
  constructor(readonly inChannels: number, readonly midChannels: number, readonly outChannels: number, initVariance = 5) {
    super();
    const conv = (i: number, o: number): Conv2d => new Conv2d(i, o, 1, { bias: false });
    this.regressor = this.registerModule('regressor', new Sequential(conv(inChannels, midChannels), new ReLU(), conv(midChannels, midChannels), new ReLU(), conv(midChannels, outChannels)));
    this.logScale = this.registerParameter('log_scale', full([outChannels], Math.log(Math.exp(initVariance - EPS) - 1)));
  }
  /** The Gaussian negative log-likelihood (without ½·log 2π) of the teacher's feature t given s. */
  forward(s: Tensor, t?: unknown): Tensor {
    const target = t as Tensor;
    return tidy(() => {
      const [x, y] = poolToSmaller(asMap(s), asMap(target));
      const mean = this.regressor.call(x);
      const variance = this.logScale.exp().add(1).log().add(EPS).reshape([1, -1, 1, 1]);
      return mean.sub(y).square().div(variance).add(variance.log()).mul(0.5).mean();
    });
  }
}

export const vid = defineMethod({
  name: 'vid',
  summary: 'Variational information distillation: beta·Σ_pairs Gaussian NLL of the teacher\'s feature under a mean regressed from the student\'s (three 1×1 convs) and a learned ' +
    'per-channel variance (softplus); default: every stage output, paired from the deepest; plus (1−alpha)·CE and alpha·KD.',
  paper: 'Ahn, Hu, Damianou, Lawrence, Dai, "Variational Information Distillation for Knowledge Transfer", CVPR 2019 (loss of the authors\' code as RepDistiller\'s VID.py has it, beta = 1)',
  differs: 'none from the authors\' loss; vector features are taken as 1×1 maps (so MLPs work), and the default layers are every stage output of the zoo model where RepDistiller uses feat[1:-1] (no stem)',
  needsTeacher: true,
  params: {
    ...stagePairsParam('every stage output of each zoo model, paired from the deepest'),
    initVariance: num({ default: 5, min: 1e-4, description: 'Initial variance σ² of every teacher channel (authors: 5)' }),
    beta: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the VID term (RepDistiller\'s CIFAR-100 script: 1)' }),
    ...repdistillerKdParams('VID'),
  },
  create(p) {
    const layers = new Layers('vid', p.pairs, 'any', (s, t, ctx) => alignDeepest(stageNames(s, true, ctx, 'any'), stageNames(t, false, ctx, 'any'), 'vid'));
    let regressors: VidRegressor[] = [];
    return representationMethod({
      layers, kd: p,
      build() {
        const { student, teacher } = layers.shapes;
        regressors = layers.pairs.map((q, i) => {
          const s = student[i]!, t = teacher[i]!;
          if ((s.length !== 1 && s.length !== 3) || s.length !== t.length) {
            throw new Error(`method 'vid': the layers of a pair must both be maps [C, H, W] or both vectors [D]; '${q.student}' gives [${s.join(', ')}], '${q.teacher}' gives [${t.join(', ')}]`);
          }
          // RepDistiller builds VIDLoss(C_S, C_T, C_T): the middle width is the teacher's
          return new VidRegressor(s[0]!, t[0]!, t[0]!, p.initVariance);
        });
      },
      extras: () => regressors,
      terms: (_, fs) => ({ vid: sumOf(fs.map(({ s, t }, i) => regressors[i]!.call(s, t))).mul(p.beta) }),
    });
  },
});
