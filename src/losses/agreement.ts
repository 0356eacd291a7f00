// Agreement measures between teacher and student logits: the choices for the soft term of KD.
// All are averaged over the batch; the probability-based ones follow the T² convention of
// klDivergence (docs/losses.md) so switching measure does not change the gradient scale.
import type { Tensor } from '../tensor/tensor.js';
import { call } from '../tensor/tensor.js';
import { mseLoss } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import { checkLogits, klDivergence, klFromLogProbs, temperedLogSoftmax } from './tempered.js';

/**
 * Soft cross-entropy −T² · Σ_i p_i log q_i, p = softmax(teacher/T), q = softmax(student/T), summed
 * over classes, batchmean (Hinton et al. 2015, the original objective). Equals the KL term plus
 * the teacher's entropy (constant in the student), so gradients coincide with klDivergence.
 */
export function softCrossEntropy(teacherLogits: Tensor, studentLogits: Tensor, T: number): Tensor {
  checkLogits('softCrossEntropy', teacherLogits, studentLogits);
  return tidy(() => {
    const p = temperedLogSoftmax(teacherLogits, T).exp();
    const logQ = temperedLogSoftmax(studentLogits, T);
    return p.mul(logQ).sum({ dim: 1 }).mean().mul(-T * T);
  });
}

/**
 * Mean squared error between logits, mean over batch and classes (PyTorch's F.mse_loss):
 * (1/(B·N)) Σ (z_i − v_i)² (Ba & Caruana, "Do Deep Nets Really Need to be Deep?", NeurIPS 2014).
 * Temperature-free: it is the high-temperature limit of the T²-scaled KL for zero-mean logits
 * (Hinton et al. 2015, section 2.1), up to a constant factor.
 */
export function logitMse(teacherLogits: Tensor, studentLogits: Tensor): Tensor {
  checkLogits('logitMse', teacherLogits, studentLogits);
  return mseLoss(studentLogits, teacherLogits, 'mean');
}

/**
 * Jensen–Shannon divergence T² · [½ KL(p ‖ m) + ½ KL(q ‖ m)], m = (p + q)/2, at temperature T,
 * summed over classes, batchmean (Lin, "Divergence measures based on the Shannon entropy", IEEE
 * Trans. Inf. Theory 1991). Symmetric and bounded by T² log 2 per sample. log m is computed as
 * logaddexp(log p, log q) − log 2, finite for any finite logits.
 */
export function jensenShannon(teacherLogits: Tensor, studentLogits: Tensor, T: number): Tensor {
  checkLogits('jensenShannon', teacherLogits, studentLogits);
  return tidy(() => {
    const logP = temperedLogSoftmax(teacherLogits, T);
    const logQ = temperedLogSoftmax(studentLogits, T);
    const logM = call('logaddexp', logP, logQ).sub(Math.LN2);
    return klFromLogProbs(logP, logM).add(klFromLogProbs(logQ, logM)).mul(0.5 * T * T);
  });
}

/**
 * Symmetric KL (Jeffreys divergence) T² · [KL(p ‖ q) + KL(q ‖ p)] at temperature T, summed over
 * classes, batchmean (Jeffreys 1946; used for mutual learning, Zhang et al., CVPR 2018). Unlike
 * JS it is unbounded: it also penalises the student for mass where the teacher has none.
 */
export function symmetricKl(teacherLogits: Tensor, studentLogits: Tensor, T: number): Tensor {
  checkLogits('symmetricKl', teacherLogits, studentLogits);
  return tidy(() => {
    const logP = temperedLogSoftmax(teacherLogits, T);
    const logQ = temperedLogSoftmax(studentLogits, T);
    return klFromLogProbs(logP, logQ).add(klFromLogProbs(logQ, logP)).mul(T * T);
  });
}

export const MEASURES = ['kl', 'soft_ce', 'mse', 'js', 'sym_kl'] as const;
export type Measure = (typeof MEASURES)[number];

/** The soft term under the chosen measure (T is ignored by 'mse'). */
export function agreement(measure: Measure, teacherLogits: Tensor, studentLogits: Tensor, T: number): Tensor {
  switch (measure) {
    case 'kl': return klDivergence(teacherLogits, studentLogits, T);
    case 'soft_ce': return softCrossEntropy(teacherLogits, studentLogits, T);
    case 'mse': return logitMse(teacherLogits, studentLogits);
    case 'js': return jensenShannon(teacherLogits, studentLogits, T);
    case 'sym_kl': return symmetricKl(teacherLogits, studentLogits, T);
    default: throw new RangeError(`unknown agreement measure '${String(measure)}' (known: ${MEASURES.join(', ')})`);
  }
}
