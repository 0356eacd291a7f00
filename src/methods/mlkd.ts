// Multi-Level Logit Distillation (Jin, Wang, Lin, CVPR 2023): the student matches the teacher's
// predictions at three levels, each at several temperatures T ∈ temperatures, with P = softmax(z/T):
//   instance  KD_T = T²·KL(P_t ‖ P_s), batchmean,
//   batch     BC_T = ‖P_t P_tᵀ − P_s P_sᵀ‖²_F / B   (the [B, B] sample-similarity Gram matrices),
//   class     CC_T = ‖P_tᵀP_t − P_sᵀP_s‖²_F / C    (the [C, C] class-correlation matrices).
// Following the authors' code (Jin-Ying/Multi-Level-Logit-Distillation, distillers/KD_ours.py;
// the same file as MLKD.py in sunshangquan/logit-standardization-KD), whose confidence masks
// multiply already-reduced losses, so they act as scalars:
//   m   = fraction of samples whose teacher confidence max softmax(z_t) is ≤ its batch median,
//   m_c = fraction of classes whose summed teacher probability over the batch is ≤ its median
//   (np.percentile(·, 50), linear interpolation, on the weak view).
// Their loss has a weak and a strong (augmented) view. kdistill has one view, used as both (the
// strong augmentation as the identity), which keeps the weights the authors tuned against each
// other: their CE on each view and the instance terms of both views, the class and batch terms
// of the weak view only (their strong-view cc/bc are computed but not added), so
//   ce = 2·ceWeight·CE,  kd = kdWeight·(1 + m)·Σ_T KD_T,  cc = kdWeight·m_c·Σ_T CC_T,
//   bc = kdWeight·m·Σ_T BC_T.
// `standardize` z-scores the logits of the instance terms only, as the logit-standardization code.
import { crossEntropy } from '../tensor/functional.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkLogits, klDivergence, temperedSoftmax } from '../losses/tempered.js';
import { maybeStandardize } from '../losses/standardize.js';
import { defineMethod, requireTeacherLogits } from './method.js';
import { num, numbers } from './params.js';
import { STANDARDIZE } from './kd.js';

/** ‖a aᵀ − b bᵀ‖²_F / rows: the batch term on [B, C] probabilities, the class term on their transposes. */
export function gramDistance(a: Tensor, b: Tensor): Tensor {
  return tidy(() => a.matmul(a.t()).sub(b.matmul(b.t())).square().sum().div(a.shape[0]!));
}

/** numpy.percentile(values, 50) (linear interpolation between the two middle order statistics). */
export function median(values: ArrayLike<number>): number {
  const v = Array.from(values).sort((p, q) => p - q);
  if (v.length === 0) throw new RangeError('median: no values');
  const pos = (v.length - 1) / 2, lo = Math.floor(pos), hi = Math.ceil(pos);
  return v[lo]! + (v[hi]! - v[lo]!) * (pos - lo);
}

/** Fraction of values ≤ their median: the mean of the authors' confidence masks. */
export function atMostMedian(values: ArrayLike<number>): number {
  const m = median(values);
  return Array.from(values).filter((x) => x <= m).length / values.length;
}

export const mlkd = defineMethod({
  name: 'mlkd',
  summary: 'Multi-level logit distillation: instance (T²·KL), batch (sample-similarity Gram) and class (class-correlation Gram) alignment of the ' +
    'softened predictions, summed over several temperatures, with the authors\' median-confidence masks; CE only on labelled batches.',
  paper: 'Jin, Wang, Lin, "Multi-Level Logit Distillation", CVPR 2023 (authors\' code Jin-Ying/Multi-Level-Logit-Distillation)',
  differs: 'one view instead of a weak and a strongly augmented one (no strong-augmentation pipeline): the batch stands in for both, ' +
    'so CE counts twice and the instance term (1 + m) times, as the authors\' loss with identical views',
  needsTeacher: true,
  params: {
    temperatures: numbers({ default: [2, 3, 4, 5, 6], min: 0.01, max: 100, description: 'Temperatures each level is summed over (authors: 4 and 3, 5, 2, 6)' }),
    kdWeight: num({ default: 0.9, unit: 'weight', min: 0, description: 'Weight of every distillation term, instance, batch and class (authors\' KD_WEIGHT)' }),
    ceWeight: num({ default: 0.1, unit: 'weight', min: 0, description: 'Weight of the label cross-entropy of each view (authors\' CE_WEIGHT)' }),
    standardize: STANDARDIZE,
  },
  create({ temperatures, kdWeight, ceWeight, standardize }) {
    if (temperatures.length === 0) throw new RangeError("method 'mlkd': 'temperatures' must list at least one temperature");
    return {
      losses(ctx) {
        const tl = requireTeacherLogits(ctx, 'mlkd');
        checkLogits('mlkd', tl, ctx.studentLogits);
        // The masks depend on the teacher alone (no gradient): fractions of the batch and of the classes.
        const { m, mc } = noGrad(() => tidy(() => {
          const pt = tl.softmax(1);
          return { m: atMostMedian(pt.max({ dim: 1 }).values.toFloat64Array()), mc: atMostMedian(pt.sum({ dim: 0 }).toFloat64Array()) };
        }));
        return tidy((): Record<string, Tensor> => {
          const zs = ctx.studentLogits;
          const sum = (f: (T: number) => Tensor): Tensor => temperatures.map(f).reduce((a, b) => a.add(b));
          const ss = maybeStandardize(zs, standardize), st = maybeStandardize(tl, standardize);
          const out: Record<string, Tensor> = {
            kd: sum((T) => klDivergence(st, ss, T)).mul(kdWeight * (1 + m)),
            cc: sum((T) => gramDistance(temperedSoftmax(tl, T).t(), temperedSoftmax(zs, T).t())).mul(kdWeight * mc),
            bc: sum((T) => gramDistance(temperedSoftmax(tl, T), temperedSoftmax(zs, T))).mul(kdWeight * m),
          };
          return ctx.batch.y === null ? out : { ce: crossEntropy(zs, ctx.batch.y).mul(2 * ceWeight), ...out };
        });
      },
    };
  },
});
