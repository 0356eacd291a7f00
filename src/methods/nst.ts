// Neuron Selectivity Transfer (Huang & Wang, 2017): each channel's spatial activation pattern is a
// sample of the network's "neuron selectivity"; the student's distribution of these patterns
// should match the teacher's, measured by the MMD with a polynomial kernel. As RepDistiller's
// distiller_zoo/NST.py computes it, per layer pair of maps [b, C, H, W]:
//   the larger map is average-pooled to the smaller's size; f = F.normalize(map.view(b, C, H·W), dim=2)
//   k(x, y) = (x·y)²,  mmd = mean k(T, T) + mean k(S, S) − 2·mean k(S, T)
//   (means over the batch and all channel pairs; the teacher's term carries no gradient),
// summed over the pairs; loss = beta·Σ mmd + CE (+ KD), beta = 50 (RepDistiller's script).
import { adaptiveAvgPool2d, normalize } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { sumOf } from './fitnet.js';
import { defineMethod } from './method.js';
import { num } from './params.js';
import { alignDeepest, Layers, repdistillerKdParams, representationMethod, stageNames, stagePairsParam } from './representation.js';

/** Mean over the batch and channel pairs of the squared inner products of rows of a and b [b, C, D]. */
const poly = (a: Tensor, b: Tensor): Tensor => a.bmm(b.transpose(1, 2)).square().mean();

/** Pools the larger of two maps [b, C, H, W] to the smaller's spatial size. */
export function poolToSmaller(s: Tensor, t: Tensor): [Tensor, Tensor] {
  const hs = s.shape[2]!, ht = t.shape[2]!;
  if (hs > ht) return [adaptiveAvgPool2d(s, [ht, t.shape[3]!]), t];
  if (hs < ht) return [s, adaptiveAvgPool2d(t, [hs, s.shape[3]!])];
  return [s, t];
}

/** The NST MMD for one pair of feature maps. */
export function nstLoss(fs: Tensor, ft: Tensor): Tensor {
  if (fs.shape.length !== 4 || ft.shape.length !== 4 || fs.shape[0] !== ft.shape[0]) {
    throw new RangeError(`nst: needs feature maps [b, C, H, W] with the same b, got [${fs.shape.join(', ')}] and [${ft.shape.join(', ')}]`);
  }
  return tidy(() => {
    const [s0, t0] = poolToSmaller(fs, ft);
    const s = normalize(s0.reshape([s0.shape[0]!, s0.shape[1]!, -1]), 2, 2);
    const t = normalize(t0.detach().reshape([t0.shape[0]!, t0.shape[1]!, -1]), 2, 2);
    return poly(t, t).add(poly(s, s)).sub(poly(s, t).mul(2));
  });
}

export const nst = defineMethod({
  name: 'nst',
  summary: 'Neuron selectivity transfer: beta·Σ_pairs MMD with polynomial kernel (x·y)² between the L2-normalised channel activation maps of student and teacher ' +
    '(default: every spatial stage output, paired from the deepest); plus (1−alpha)·CE and alpha·KD. Needs feature maps (not an MLP).',
  paper: 'Huang, Wang, "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer", arXiv:1707.01219, 2017 (loss and beta = 50 of RepDistiller\'s NST.py and CIFAR-100 script)',
  differs: 'none from RepDistiller\'s loss; its runs use the stage outputs without the stem (feat[1:-1]), the default here is every spatial stage output of the zoo model (ResNet/WRN: stem included), paired from the deepest',
  needsTeacher: true,
  params: {
    ...stagePairsParam('every spatial stage output of each zoo model, paired from the deepest'),
    beta: num({ default: 50, unit: 'weight', min: 0, description: 'Weight of the NST term (RepDistiller\'s CIFAR-100 script: 50)' }),
    ...repdistillerKdParams('NST'),
  },
  create(p) {
    return representationMethod({
      layers: new Layers('nst', p.pairs, 'maps', (s, t, ctx) => alignDeepest(stageNames(s, true, ctx, 'maps'), stageNames(t, false, ctx, 'maps'), 'nst')), kd: p,
      terms: (_, fs) => ({ nst: sumOf(fs.map(({ s, t }) => nstLoss(s, t))).mul(p.beta) }),
    });
  },
});
