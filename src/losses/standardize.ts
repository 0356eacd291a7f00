// Logit standardization (Sun, Ren, Li, Wang, Cao, "Logit Standardization in Knowledge
// Distillation", CVPR 2024). Sharing one temperature forces the student to match the teacher's
// logit range; z-scoring each row first lets it match only the relations between the logits:
//   Z(z) = (z − mean(z)) / (1e-7 + std(z)),  mean and std over the classes of one sample,
// std with Bessel's correction (N − 1), as torch.Tensor.std in the authors' `normalize`
// (sunshangquan/logit-standardization-KD, mdistiller/distillers/KD.py). The loss then applies its
// usual softmax(Z(z)/τ) with the *base* temperature τ (the authors' --base-temp, 2 on CIFAR-100)
// and its usual τ² factor; the paper's per-sample temperature is τ·std(z).
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';

/** The authors' epsilon, added to the standard deviation so a constant row maps to 0, not NaN. */
export const STANDARDIZE_EPS = 1e-7;

/** Z-score of every row of [batch, classes] logits: (z − mean) / (1e-7 + std), std unbiased. */
export function standardizeLogits(logits: Tensor): Tensor {
  if (logits.ndim !== 2) throw new RangeError(`standardizeLogits: logits must be [batch, classes], got shape [${logits.shape.join(', ')}]`);
  if (logits.shape[1]! < 2) throw new RangeError(`standardizeLogits: needs at least 2 classes for a standard deviation, got ${logits.shape[1]}`);
  return tidy(() => {
    const centred = logits.sub(logits.mean({ dim: 1, keepdim: true }));
    return centred.div(logits.std({ dim: 1, keepdim: true }).add(STANDARDIZE_EPS));
  });
}

/**
 * The logits a loss sees: standardized when `on` (the methods' `standardize` option), else the
 * same tensor. The label cross-entropy always uses the raw student logits, as the authors' code.
 */
export function maybeStandardize(logits: Tensor, on: boolean): Tensor {
  return on ? standardizeLogits(logits) : logits;
}
