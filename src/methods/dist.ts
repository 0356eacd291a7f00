// DIST (Huang, You, Wang, Qian, Xu, NeurIPS 2022): instead of KL's exact match, the student keeps
// the teacher's *relations*: the Pearson correlation between student and teacher class
// distributions per sample (inter-class) and between their per-class columns across the batch
// (intra-class), on softmax(z/τ). Following the authors' code (hunto/image_classification_sota,
// lib/models/losses/dist_kd.py):
//   pearson(a, b) = Σ(a−ā)(b−b̄) / (‖a−ā‖·‖b−b̄‖ + 1e-8), rows of a [n, m] pair,
//   inter = τ²·(1 − mean_i pearson(P_S[i,:], P_T[i,:])),
//   intra = τ²·(1 − mean_c pearson(P_S[:,c], P_T[:,c])),
//   loss  = ceWeight·CE + beta·inter + gamma·intra.
// That file has no temperature (τ = 1, the default here); versions of the loss with one divide the
// logits by τ and scale both terms by τ², as KD does, and so does this one. `standardize` z-scores
// both logits per sample before the softmax (Sun et al., CVPR 2024), as that paper's code does for
// KD, DKD and MLKD.
import { crossEntropy } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { temperedSoftmax } from '../losses/tempered.js';
import { maybeStandardize } from '../losses/standardize.js';
import { defineMethod, requireTeacherLogits } from './method.js';
import { num } from './params.js';
import { STANDARDIZE } from './kd.js';

/** 1 − mean over rows of the Pearson correlation between rows of a and b ([n, m] each). */
export function relationLoss(a: Tensor, b: Tensor): Tensor {
  return tidy(() => {
    const ca = a.sub(a.mean({ dim: 1, keepdim: true })), cb = b.sub(b.mean({ dim: 1, keepdim: true }));
    const r = ca.mul(cb).sum({ dim: 1 }).div(ca.norm({ dim: 1 }).mul(cb.norm({ dim: 1 })).add(1e-8));
    return r.mean().neg().add(1);
  });
}

export const dist = defineMethod({
  name: 'dist',
  summary: 'DIST: ceWeight·CE + beta·τ²·(1 − Pearson of student/teacher class distributions per sample) + gamma·τ²·(1 − Pearson per class across the batch), ' +
    'on softmax(z/τ); matches relations, not exact probabilities. Only the relation terms on unlabeled data.',
  paper: 'Huang, You, Wang, Qian, Xu, "Knowledge Distillation from A Stronger Teacher", NeurIPS 2022 (arXiv:2205.10536; authors\' code hunto/DIST_KD)',
  needsTeacher: true,
  params: {
    beta: num({ default: 1, unit: 'weight', min: 0, description: 'Weight β of the inter-class relation term (authors: 1)' }),
    gamma: num({ default: 1, unit: 'weight', min: 0, description: 'Weight γ of the intra-class relation term (authors: 1)' }),
    temperature: num({ default: 1, unit: 'temperature', min: 0.01, max: 100, description: 'Softmax temperature τ of both networks; both terms are scaled by τ² (the authors\' file has none: 1)' }),
    ceWeight: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the label cross-entropy' }),
    standardize: STANDARDIZE,
  },
  create({ beta, gamma, temperature: T, ceWeight, standardize }) {
    return {
      losses(ctx) {
        const tl = requireTeacherLogits(ctx, 'dist');
        return tidy((): Record<string, Tensor> => {
          const ps = temperedSoftmax(maybeStandardize(ctx.studentLogits, standardize), T), pt = temperedSoftmax(maybeStandardize(tl, standardize), T);
          const out: Record<string, Tensor> = {
            inter: relationLoss(ps, pt).mul(beta * T * T),
            intra: relationLoss(ps.t(), pt.t()).mul(gamma * T * T),
          };
          return ctx.batch.y === null ? out : { ce: crossEntropy(ctx.studentLogits, ctx.batch.y).mul(ceWeight), ...out };
        });
      },
    };
  },
});
