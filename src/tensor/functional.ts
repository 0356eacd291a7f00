// torch.nn.functional in camelCase: the neural-network functions, each a thin call into ATen.
import { call, callMulti, Tensor } from './tensor.js';

export type Reduction = 'none' | 'mean' | 'sum';
const REDUCTION: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };
function red(r: Reduction | undefined): number {
  const v = REDUCTION[r ?? 'mean'];
  if (v === undefined) throw new TypeError(`reduction must be 'none', 'mean' or 'sum', got '${String(r)}'`);
  return v;
}
const pair = (x: number | number[]): number[] => (typeof x === 'number' ? [x, x] : x);
const single = (x: number | number[]): number[] => (typeof x === 'number' ? [x] : x);

export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return call('linear', x, weight, bias ?? null);
}

export interface ConvOptions { stride?: number | number[]; padding?: number | number[]; dilation?: number | number[]; groups?: number }
export function conv1d(x: Tensor, w: Tensor, b?: Tensor | null, o: ConvOptions = {}): Tensor {
  return call('conv1d', x, w, b ?? null, single(o.stride ?? 1), single(o.padding ?? 0), single(o.dilation ?? 1), o.groups ?? 1);
}
export function conv2d(x: Tensor, w: Tensor, b?: Tensor | null, o: ConvOptions = {}): Tensor {
  return call('conv2d', x, w, b ?? null, pair(o.stride ?? 1), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.groups ?? 1);
}

export interface PoolOptions { stride?: number | number[]; padding?: number | number[]; ceilMode?: boolean }
export function maxPool1d(x: Tensor, kernel: number, o: PoolOptions = {}): Tensor {
  return call('max_pool1d', x, [kernel], single(o.stride ?? kernel), single(o.padding ?? 0), [1], o.ceilMode ?? false);
}
export function maxPool2d(x: Tensor, kernel: number | number[], o: PoolOptions = {}): Tensor {
  return call('max_pool2d', x, pair(kernel), pair(o.stride ?? kernel), pair(o.padding ?? 0), [1, 1], o.ceilMode ?? false);
}
export function avgPool1d(x: Tensor, kernel: number, o: PoolOptions = {}): Tensor {
  return call('avg_pool1d', x, [kernel], single(o.stride ?? kernel), single(o.padding ?? 0), o.ceilMode ?? false, true);
}
export function avgPool2d(x: Tensor, kernel: number | number[], o: PoolOptions = {}): Tensor {
  return call('avg_pool2d', x, pair(kernel), pair(o.stride ?? kernel), pair(o.padding ?? 0), o.ceilMode ?? false, true, null);
}
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | number[]): Tensor {
  return call('adaptive_avg_pool2d', x, pair(outputSize));
}
export function adaptiveMaxPool2d(x: Tensor, outputSize: number | number[]): Tensor {
  return callMulti('adaptive_max_pool2d', x, pair(outputSize))[0]!;
}
export function adaptiveAvgPool1d(x: Tensor, outputSize: number): Tensor {
  return call('adaptive_avg_pool1d', x, [outputSize]);
}
export function adaptiveMaxPool1d(x: Tensor, outputSize: number): Tensor {
  return callMulti('adaptive_max_pool1d', x, [outputSize])[0]!;
}

/** Batch norm; in training mode running statistics (if given) are updated in place. */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  o: { weight?: Tensor | null; bias?: Tensor | null; training?: boolean; momentum?: number; eps?: number } = {}): Tensor {
  return call('batch_norm', x, o.weight ?? null, o.bias ?? null, runningMean, runningVar, o.training ?? false, o.momentum ?? 0.1, o.eps ?? 1e-5, false);
}
export function layerNorm(x: Tensor, normalizedShape: number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return call('layer_norm', x, normalizedShape, weight ?? null, bias ?? null, eps, false);
}
export function groupNorm(x: Tensor, groups: number, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return call('group_norm', x, groups, weight ?? null, bias ?? null, eps, false);
}
/** Dropout with the global generator (seed it with torch.manualSeed for repeatable runs). */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  return call('dropout', x, p, training);
}
export function embedding(indices: Tensor, weight: Tensor, paddingIdx = -1): Tensor {
  return call('embedding', weight, indices, paddingIdx, false, false);
}

export const relu = (x: Tensor): Tensor => call('relu', x);
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor => call('gelu', x, approximate);
export const silu = (x: Tensor): Tensor => call('silu', x);
export const tanh = (x: Tensor): Tensor => call('tanh', x);
export const sigmoid = (x: Tensor): Tensor => call('sigmoid', x);
export const leakyRelu = (x: Tensor, slope = 0.01): Tensor => call('leaky_relu', x, slope);
export const softplus = (x: Tensor, beta = 1, threshold = 20): Tensor => call('softplus', x, beta, threshold);
export const logSigmoid = (x: Tensor): Tensor => call('log_sigmoid', x);
export const softmax = (x: Tensor, dim: number): Tensor => call('softmax.int', x, dim);
export const logSoftmax = (x: Tensor, dim: number): Tensor => call('log_softmax.int', x, dim);

export function oneHot(labels: Tensor, numClasses = -1): Tensor {
  return call('one_hot', labels, numClasses);
}
export function pad(x: Tensor, padding: number[], mode: 'constant' | 'reflect' | 'replicate' | 'circular' = 'constant', value = 0): Tensor {
  return call('pad', x, padding, mode, mode === 'constant' ? value : null);
}
/** x / max(||x||_p, eps) along dim (F.normalize). */
export function normalize(x: Tensor, p = 2, dim = 1, eps = 1e-12): Tensor {
  const n = x.norm({ p, dim, keepdim: true });
  const d = n.clampMin(eps).expandAs(x);
  const out = x.div(d);
  n.dispose();
  d.dispose();
  return out;
}

// ---- losses -------------------------------------------------------------------------
export interface CrossEntropyOptions { weight?: Tensor | null; reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number }
/** Cross-entropy from logits and class indices (or class probabilities of the logits' shape). */
export function crossEntropy(logits: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  return call('cross_entropy_loss', logits, target, o.weight ?? null, red(o.reduction), o.ignoreIndex ?? -100, o.labelSmoothing ?? 0);
}
export function nllLoss(logProbs: Tensor, target: Tensor, o: { weight?: Tensor | null; reduction?: Reduction; ignoreIndex?: number } = {}): Tensor {
  return call('nll_loss_nd', logProbs, target, o.weight ?? null, red(o.reduction), o.ignoreIndex ?? -100);
}
/**
 * KL divergence with PyTorch's argument order: input holds log-probabilities of the model,
 * target the reference distribution (log-probabilities when logTarget). 'batchmean' divides the
 * summed divergence by the batch size, the mathematically correct KL per sample.
 */
export function klDiv(input: Tensor, target: Tensor, o: { reduction?: Reduction | 'batchmean'; logTarget?: boolean } = {}): Tensor {
  if (o.reduction === 'batchmean') {
    const s = call('kl_div', input, target, REDUCTION.sum, o.logTarget ?? false);
    const out = s.div(input.shape[0] ?? 1);
    s.dispose();
    return out;
  }
  return call('kl_div', input, target, red(o.reduction), o.logTarget ?? false);
}
export function mseLoss(input: Tensor, target: Tensor, reduction?: Reduction): Tensor {
  return call('mse_loss', input, target, red(reduction));
}
export function l1Loss(input: Tensor, target: Tensor, reduction?: Reduction): Tensor {
  return call('l1_loss', input, target, red(reduction));
}
export function smoothL1Loss(input: Tensor, target: Tensor, reduction?: Reduction, beta = 1): Tensor {
  return call('smooth_l1_loss', input, target, red(reduction), beta);
}
export function huberLoss(input: Tensor, target: Tensor, reduction?: Reduction, delta = 1): Tensor {
  return call('huber_loss', input, target, red(reduction), delta);
}
export function cosineSimilarity(x1: Tensor, x2: Tensor, dim = 1, eps = 1e-8): Tensor {
  return call('cosine_similarity', x1, x2, dim, eps);
}
export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor,
  o: { weight?: Tensor | null; posWeight?: Tensor | null; reduction?: Reduction } = {}): Tensor {
  return call('binary_cross_entropy_with_logits', input, target, o.weight ?? null, o.posWeight ?? null, red(o.reduction));
}
export function binaryCrossEntropy(input: Tensor, target: Tensor, reduction?: Reduction): Tensor {
  return call('binary_cross_entropy', input, target, null, red(reduction));
}

/**
 * Scaled dot-product attention: softmax(q kᵀ / √d + mask) v. The mask is boolean (true = attend)
 * or additive (float), broadcast to [..., Lq, Lk]. Returns the output and the attention weights,
 * which TinyBERT-style distillation matches.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor,
  o: { mask?: Tensor | null; dropoutP?: number; training?: boolean; isCausal?: boolean } = {}): { output: Tensor; weights: Tensor } {
  const d = q.shape[q.ndim - 1]!;
  const kt = k.transpose(-2, -1);
  const raw = q.matmul(kt);
  let scores = raw.mul(1 / Math.sqrt(d));
  kt.dispose();
  raw.dispose();
  const replace = (t: Tensor): void => { scores.dispose(); scores = t; };
  if (o.isCausal) {
    const lq = q.shape[q.ndim - 2]!, lk = k.shape[k.ndim - 2]!;
    const ones = call('ones', [lq, lk], 11);
    const causal = ones.tril();
    const blocked = causal.logicalNot();
    replace(scores.maskedFill(blocked, -Infinity));
    ones.dispose(); causal.dispose(); blocked.dispose();
  }
  if (o.mask) {
    if (o.mask.dtype === 'bool') {
      const blocked = o.mask.logicalNot();
      replace(scores.maskedFill(blocked, -Infinity));
      blocked.dispose();
    } else replace(scores.add(o.mask));
  }
  let weights = scores.softmax(-1);
  scores.dispose();
  if (o.dropoutP && o.training !== false) {
    const dropped = dropout(weights, o.dropoutP, true);
    const output = dropped.matmul(v);
    dropped.dispose();
    return { output, weights };
  }
  return { output: weights.matmul(v), weights };
}
