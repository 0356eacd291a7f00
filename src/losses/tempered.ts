// The tempered softmax and KL divergence shared by the whole KD family (docs/losses.md).
// Every logit-based method goes through these functions, so methods differ only where their
// papers do.
import type { Tensor } from '../tensor/tensor.js';
import { klDiv } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';

/** Throws unless every tensor is [batch, classes] and, for a pair, both shapes agree. */
export function checkLogits(name: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.ndim !== 2) throw new RangeError(`${name}: logits must be [batch, classes], got shape [${t.shape.join(', ')}]`);
  }
  if (ts.length === 2 && ts[0]!.shape.join() !== ts[1]!.shape.join()) {
    throw new RangeError(`${name}: teacher and student logits differ in shape: [${ts[0]!.shape.join(', ')}] vs [${ts[1]!.shape.join(', ')}]`);
  }
}

export function checkTemperature(name: string, T: number): void {
  if (!(Number.isFinite(T) && T > 0)) throw new RangeError(`${name}: temperature must be a positive finite number, got ${T}`);
}

/**
 * log q_i with q_i = exp(z_i/T) / Σ_j exp(z_j/T), over dim 1 (Hinton et al., "Distilling the
 * Knowledge in a Neural Network", 2015). Computed as log-softmax, so it is finite for any finite
 * logits (no log(0) even when q_i underflows).
 */
export function temperedLogSoftmax(logits: Tensor, T: number): Tensor {
  checkTemperature('temperedLogSoftmax', T);
  if (T === 1) return logits.logSoftmax(1);
  return tidy(() => logits.div(T).logSoftmax(1));
}

/** Softmax with temperature T over dim 1 (the soft targets of Hinton et al. 2015). */
export function temperedSoftmax(logits: Tensor, T: number): Tensor {
  checkTemperature('temperedSoftmax', T);
  if (T === 1) return logits.softmax(1);
  return tidy(() => logits.div(T).softmax(1));
}

/**
 * KL(p ‖ q) = Σ_i p_i (log p_i − log q_i), summed over classes and averaged over the batch
 * (batchmean), from log-probabilities. Both arguments in log space: with finite log-probabilities
 * a vanishing p_i contributes exactly 0 (p_i = exp(log p_i) underflows to 0), never 0·∞.
 */
export function klFromLogProbs(logP: Tensor, logQ: Tensor): Tensor {
  return klDiv(logQ, logP, { reduction: 'batchmean', logTarget: true });
}

/**
 * The soft term of knowledge distillation (Hinton et al. 2015):
 *   T² · KL(p_T ‖ q_T),  p_T = softmax(teacher/T),  q_T = softmax(student/T),
 * summed over classes, batchmean. Why T²: the unscaled gradient is (q_i − p_i)/T per sample, and
 * for large T q_i − p_i ≈ (z_i − v_i)/(N·T), so it shrinks as 1/T²; the factor keeps the soft and
 * hard terms' relative weight unchanged when T is tuned.
 */
export function klDivergence(teacherLogits: Tensor, studentLogits: Tensor, T: number): Tensor {
  checkLogits('klDivergence', teacherLogits, studentLogits);
  return tidy(() => klFromLogProbs(temperedLogSoftmax(teacherLogits, T), temperedLogSoftmax(studentLogits, T)).mul(T * T));
}
