// Decoupled Knowledge Distillation (Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge
// Distillation", CVPR 2022). KD's KL splits into a target-class term (TCKD) and a non-target term
// (NCKD); DKD weights them separately: α·TCKD + β·NCKD.
import type { Tensor } from '../tensor/tensor.js';
import { call } from '../tensor/tensor.js';
import { arange } from '../tensor/factories.js';
import { tidy } from '../tensor/scope.js';
import { checkLogits, checkTemperature, klFromLogProbs } from './tempered.js';

/**
 * Logits of the non-target classes, [B, N−1], in class order: column j holds class j + [j ≥ y].
 * Selecting them (rather than subtracting a large constant from the target logit, as the
 * authors' code does) keeps the target class out exactly, whatever the logit range.
 */
function nonTargetLogits(logits: Tensor, y: Tensor): Tensor {
  return tidy(() => {
    const n = logits.shape[1]!;
    const cols = arange(n - 1).unsqueeze(0);
    const idx = cols.add(cols.ge(y.reshape([-1, 1])));
    return logits.gather(1, idx);
  });
}

export interface DkdTerms {
  /** T² · KL(b_T ‖ b_S) over the binary [target, non-target] distributions, batchmean. */
  tckd: Tensor;
  /** T² · KL(p̂_T ‖ p̂_S) over the distributions among the non-target classes, batchmean. */
  nckd: Tensor;
}

/**
 * TCKD and NCKD (unweighted), at temperature T, as in the DKD paper (eq. 4) and mdistiller's
 * dkd_loss: with p = softmax(z/T) and target class t,
 *   b = [p_t, 1 − p_t],    p̂_i = p_i / (1 − p_t) = softmax over the non-target logits,
 *   TCKD = T² · KL(b^T ‖ b^S),   NCKD = T² · KL(p̂^T ‖ p̂^S),   both summed and batchmean.
 * Numerically safe: everything is in log space (log b = log-softmax of
 * [z_t/T, logsumexp_{i≠t} z_i/T]), so logits of ±1e4 give finite values and gradients where
 * the authors' torch.log of gathered probabilities returns inf/NaN.
 *
 * Argument order is teacher first, as everywhere in src/losses (mdistiller puts the student first).
 *
 * Two classes: the non-target set holds one class, p̂ is the point mass on it for both networks,
 * and NCKD is exactly 0 with zero gradient. That is the correct value (there is no non-target
 * "dark knowledge" to transfer) and DKD reduces to α·TCKD, i.e. α·KD. Fewer than two classes is
 * refused.
 */
export function dkdTerms(teacherLogits: Tensor, studentLogits: Tensor, labels: Tensor, T: number): DkdTerms {
  checkLogits('dkd', teacherLogits, studentLogits);
  checkTemperature('dkd', T);
  const [b, n] = studentLogits.shape as [number, number];
  if (n < 2) throw new RangeError(`dkd: needs at least 2 classes to split target from non-target, got ${n}`);
  if (labels.numel() !== b) throw new RangeError(`dkd: expected ${b} labels (one per sample), got ${labels.numel()}`);
  if (labels.dtype !== 'int64') throw new TypeError(`dkd: labels must be int64 class indices, got ${labels.dtype}`);
  return tidy(() => {
    const y = labels.reshape([-1, 1]);
    const split = (z: Tensor): { binary: Tensor; others: Tensor } => {
      const zt = (T === 1 ? z : z.div(T));
      const others = nonTargetLogits(zt, y);
      const binaryLogits = call('cat', [zt.gather(1, y), others.logsumexp({ dim: 1, keepdim: true })], 1);
      return { binary: binaryLogits.logSoftmax(1), others: others.logSoftmax(1) };
    };
    const s = split(studentLogits);
    const t = split(teacherLogits);
    return {
      tckd: klFromLogProbs(t.binary, s.binary).mul(T * T),
      nckd: klFromLogProbs(t.others, s.others).mul(T * T),
    };
  });
}

/** α·TCKD + β·NCKD (DKD paper eq. 5; mdistiller defaults α = 1, β = 8, T = 4). */
export function dkdLoss(teacherLogits: Tensor, studentLogits: Tensor, labels: Tensor,
  o: { alpha: number; beta: number; temperature: number }): Tensor {
  return tidy(() => {
    const { tckd, nckd } = dkdTerms(teacherLogits, studentLogits, labels, o.temperature);
    return tckd.mul(o.alpha).add(nckd.mul(o.beta));
  });
}
