// Weight constraints applied after an optimizer step.
import { noGrad } from '../tensor/autograd.js';
import { callInPlace, type Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';
import { Conv2d, Linear } from '../nn/layers.js';

/**
 * Max-norm constraint (Srivastava et al. 2014, §5.1; Hinton et al. 2012): after each update, every
 * unit's incoming weight vector w (a row of a linear weight [out, in], a filter of a conv weight
 * [out, ...]) is rescaled to ‖w‖₂ ≤ c, i.e. w ← w · min(1, c / ‖w‖₂) — `torch.renorm_(2, 0, c)`.
 * Biases, norms' scales and embeddings (1-D tensors) are left alone.
 */
export function maxNorm_(weights: readonly Tensor[], c: number): void {
  if (!(c > 0) || !Number.isFinite(c)) throw new RangeError(`maxNorm: the bound must be a positive number, got ${c}`);
  noGrad(() => {
    for (const w of weights) callInPlace('renorm_', w, 2, 0, c);
  });
}

/** The weights a max-norm constraint applies to: those of every linear and conv layer of `model` (not embeddings). */
export function constrainedWeights(model: Module): Tensor[] {
  return model.namedModules().flatMap(([, m]) => (m instanceof Linear || m instanceof Conv2d ? [m.weight] : []));
}
