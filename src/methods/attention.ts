// Attention transfer (Zagoruyko & Komodakis, ICLR 2017): the student matches the teacher's
// normalised spatial attention maps at chosen layer pairs, plus the label loss (and optional KD).
// No connector: attention maps are channel-free, and differing spatial sizes are pooled.
import { tidy } from '../tensor/scope.js';
import { attentionLoss } from '../losses/features.js';
import { KD_PARAMS } from './kd.js';
import { labelAndKdTerms, pairFeatures, pairParams, sumOf, weightedPairs } from './fitnet.js';
import { defineMethod } from './method.js';
import { int, num } from './params.js';

export const attention = defineMethod({
  name: 'attention',
  summary: 'Attention transfer: beta·Σ w_i·mean((at(S_i) − at(T_i))²), at = L2-normalised channel mean of A^p, over layer pairs of [N, C, H, W] maps; ' +
    'plus (1−alpha)·CE and alpha·KD.',
  paper: 'Zagoruyko, Komodakis, "Paying More Attention to Attention: Improving the Performance of Convolutional Neural Networks via Attention Transfer", ICLR 2017 ' +
    '(arXiv:1612.03928; loss and weight of the authors\' code, szagoruyko/attention-transfer: beta·Σ_j mean((at_S − at_T)²) with beta = 1000)',
  differs: "none from the authors' code; the paper's eq. 2 writes β/2·Σ_j‖at_S − at_T‖_2 with β = 10³/(H·W·batch), half this default (beta: 500) " +
    'if its norm is read as squared; maps of different sizes are average-pooled (RepDistiller)',
  needsTeacher: true,
  params: {
    ...pairParams(['stage1', 'stage2'], ', of feature maps [N, C, H, W]'),
    beta: num({
      default: 1000, unit: 'weight', min: 0,
      description: 'Weight β on Σ_pairs w·mean_{batch, H·W}((at_S − at_T)²), the squared distance of the L2-normalised maps divided by batch·H·W; ' +
        "1000 is the authors' code (cifar.py: opt.beta·sum(at_losses), README --beta 1e+3) and RepDistiller's; the paper's eq. 2 writes it as β/2 (500 on this scale)",
    }),
    p: int({ default: 2, min: 1, max: 8, description: 'Power of the activations in the attention map (the paper uses 2)' }),
    ...KD_PARAMS,
    alpha: { ...KD_PARAMS.alpha, default: 0, description: 'Weight of the KD soft term (0: AT + label CE, as in the paper\'s AT runs); the label CE gets 1 − alpha' },
  },
  create(params) {
    const pairs = weightedPairs(params.pairs, params.weights, 'attention');
    const { beta, p: power } = params;
    const kd = { temperature: params.temperature, alpha: params.alpha, measure: params.measure };
    return {
      features: { student: pairs.map((q) => q.student), teacher: pairs.map((q) => q.teacher) },
      losses(ctx) {
        return tidy(() => {
          const parts = pairFeatures(ctx, pairs, 'attention').map(({ s, t, weight }) => attentionLoss(s, t, power).mul(weight));
          return { ...labelAndKdTerms(ctx, kd), at: sumOf(parts).mul(beta) };
        });
      },
    };
  },
});
