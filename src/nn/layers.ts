// The standard layers, with PyTorch's parameter/buffer names (so state dicts map 1:1 to
// PyTorch's), PyTorch's default initialisation and PyTorch's train/eval behaviour.
import { Module } from './module.js';
import { call, callInPlace, Tensor } from '../tensor/tensor.js';
import { empty, ones, zeros } from '../tensor/factories.js';
import * as F from '../tensor/functional.js';
import { kaimingUniform_, calculateFanInAndFanOut, normal_, uniform_ } from './init.js';
import { noGrad } from '../tensor/autograd.js';

type Pair = number | [number, number];

function posInt(owner: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`${owner}: ${name} must be a positive integer, got ${String(v)}`);
  return v;
}
function pairOf(owner: string, name: string, v: unknown, min: number): [number, number] {
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((x) => Number.isInteger(x) && x >= min)) {
    throw new RangeError(`${owner}: ${name} must be an integer ≥ ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p as [number, number];
}
function where(m: Module): string {
  return m.path ? `${m.constructor.name} '${m.path}'` : m.constructor.name;
}
function shapeStr(t: Tensor): string {
  return `[${t.shape.join(', ')}]`;
}

/** A new parameter-to-be, uninitialised (the caller initialises before registering). */
const fresh = (shape: number[]): Tensor => empty(shape);

// ---- layers with weights (what quantization fake-quantizes) -------------------------------

/**
 * What quantization-aware training puts into a Linear or Conv2d (src/nn/quantize.ts): it takes
 * over the layer's forward, computing with fake-quantized inputs and weights through compute().
 */
export interface LayerQuantizer extends Module {
  apply(layer: WeightLayer, x: Tensor): Tensor;
}

/** A Linear or Conv2d: a weight, an optional bias, and the one operation that uses them. */
export abstract class WeightLayer extends Module {
  abstract readonly weight: Tensor;
  abstract readonly bias: Tensor | null;
  /** The layer's fake quantization, once installed (registered as the child 'quant', so its observers are in the state dict). */
  quant: LayerQuantizer | null = null;
  /** The layer's operation with the given weight and bias (the quantizer passes fake-quantized ones). */
  abstract compute(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor;
  protected abstract checkInput(x: Tensor): void;
  forward(x: Tensor): Tensor {
    this.checkInput(x);
    return this.quant ? this.quant.apply(this, x) : this.compute(x, this.weight, this.bias);
  }
  setQuantizer(q: LayerQuantizer): void {
    if (this.quant) throw new Error(`${where(this)} already has a quantizer`);
    this.quant = this.registerModule('quant', q);
  }
}

// ---- linear ------------------------------------------------------------------------------

/** y = x Wᵀ + b. weight [out, in] ~ kaiming_uniform(a=√5), bias ~ U(±1/√in), as PyTorch. */
export class Linear extends WeightLayer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, o: { bias?: boolean } = {}) {
    super();
    posInt('Linear', 'inFeatures', inFeatures);
    posInt('Linear', 'outFeatures', outFeatures);
    const w = fresh([outFeatures, inFeatures]);
    kaimingUniform_(w, { a: Math.sqrt(5) });
    this.weight = this.registerParameter('weight', w);
    if (o.bias ?? true) {
      const b = fresh([outFeatures]);
      const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
      uniform_(b, -bound, bound);
      this.bias = this.registerParameter('bias', b);
    } else this.bias = null;
  }
  protected checkInput(x: Tensor): void {
    const s = x.shape;
    if (s.length === 0 || s[s.length - 1] !== this.inFeatures) {
      throw new RangeError(`${where(this)}: expected input [..., ${this.inFeatures}], got ${shapeStr(x)}`);
    }
  }
  compute(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
    return F.linear(x, weight, bias);
  }
}

// ---- convolution -------------------------------------------------------------------------

export interface Conv2dOptions {
  stride?: Pair;
  /** Zero padding per side, or 'same' / 'valid' as in PyTorch. */
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

/** 2-D convolution over [N, C, H, W]; weight [out, in/groups, kh, kw], init as PyTorch. */
export class Conv2d extends WeightLayer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same' | 'valid';
  readonly dilation: [number, number];
  readonly groups: number;
  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, o: Conv2dOptions = {}) {
    super();
    posInt('Conv2d', 'inChannels', inChannels);
    posInt('Conv2d', 'outChannels', outChannels);
    this.kernelSize = pairOf('Conv2d', 'kernelSize', kernelSize, 1);
    this.stride = pairOf('Conv2d', 'stride', o.stride ?? 1, 1);
    this.dilation = pairOf('Conv2d', 'dilation', o.dilation ?? 1, 1);
    const p = o.padding ?? 0;
    this.padding = p === 'same' || p === 'valid' ? p : pairOf('Conv2d', 'padding', p, 0);
    this.groups = posInt('Conv2d', 'groups', o.groups ?? 1);
    if (inChannels % this.groups || outChannels % this.groups) {
      throw new RangeError(`Conv2d: inChannels (${inChannels}) and outChannels (${outChannels}) must be divisible by groups (${this.groups})`);
    }
    if (this.padding === 'same' && this.stride.some((s) => s !== 1)) throw new RangeError("Conv2d: padding 'same' needs stride 1");
    const w = fresh([outChannels, inChannels / this.groups, ...this.kernelSize]);
    kaimingUniform_(w, { a: Math.sqrt(5) });
    this.weight = this.registerParameter('weight', w);
    if (o.bias ?? true) {
      const { fanIn } = calculateFanInAndFanOut(w);
      const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
      const b = fresh([outChannels]);
      uniform_(b, -bound, bound);
      this.bias = this.registerParameter('bias', b);
    } else this.bias = null;
  }
  protected checkInput(x: Tensor): void {
    const s = x.shape;
    if ((s.length !== 4 && s.length !== 3) || s[s.length - 3] !== this.inChannels) {
      throw new RangeError(`${where(this)}: expected input [N, ${this.inChannels}, H, W], got ${shapeStr(x)}`);
    }
  }
  compute(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
    if (typeof this.padding === 'string') {
      return call('conv2d.padding', x, weight, bias, this.stride, this.padding, this.dilation, this.groups);
    }
    return call('conv2d', x, weight, bias, this.stride, this.padding, this.dilation, this.groups);
  }
}

// ---- normalisation -----------------------------------------------------------------------

export interface BatchNormOptions {
  eps?: number;
  /** Weight of the new batch statistic in the running average; null = cumulative average. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/**
 * Batch normalisation with PyTorch's semantics: in training mode it normalises with the batch
 * statistics and updates running_mean / running_var (unbiased variance) with the momentum and
 * counts num_batches_tracked; in eval mode it uses the running statistics.
 */
abstract class BatchNormBase extends Module {
  readonly weight: Tensor | null = null;
  readonly bias: Tensor | null = null;
  readonly runningMean: Tensor | null = null;
  readonly runningVar: Tensor | null = null;
  readonly numBatchesTracked: Tensor | null = null;
  readonly eps: number;
  readonly momentum: number | null;
  protected abstract checkInput(x: Tensor): void;
  constructor(readonly numFeatures: number, o: BatchNormOptions = {}) {
    super();
    posInt(new.target.name, 'numFeatures', numFeatures);
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    if (o.affine ?? true) {
      this.weight = this.registerParameter('weight', ones([numFeatures]));
      this.bias = this.registerParameter('bias', zeros([numFeatures]));
    }
    if (o.trackRunningStats ?? true) {
      this.runningMean = this.registerBuffer('running_mean', zeros([numFeatures]));
      this.runningVar = this.registerBuffer('running_var', ones([numFeatures]));
      this.numBatchesTracked = this.registerBuffer('num_batches_tracked', zeros([], { dtype: 'int64' }));
    }
  }
  /** Back to the initial statistics (mean 0, variance 1, no batches seen). */
  resetRunningStats(): void {
    noGrad(() => {
      this.runningMean?.zero_();
      this.runningVar?.fill_(1);
      this.numBatchesTracked?.zero_();
    });
  }
  forward(x: Tensor): Tensor {
    this.checkInput(x);
    let factor = this.momentum ?? 0;
    if (this.training && this.numBatchesTracked) {
      callInPlace('add_.Scalar', this.numBatchesTracked, 1, 1);
      if (this.momentum === null) factor = 1 / this.numBatchesTracked.item();
    }
    const useBatchStats = this.training || this.runningMean === null;
    if (useBatchStats) {
      const s = x.shape;
      const perChannel = s[0]! * s.slice(2).reduce((a, b) => a * b, 1);
      if (perChannel <= 1) {
        throw new RangeError(`${where(this)}: expected more than 1 value per channel when training, got input size ${shapeStr(x)}`);
      }
    }
    return call('batch_norm', x, this.weight, this.bias, this.runningMean, this.runningVar, useBatchStats, factor, this.eps, false);
  }
  protected channelCheck(x: Tensor, dims: number[], layout: string): void {
    const s = x.shape;
    if (!dims.includes(s.length) || s[1] !== this.numFeatures) {
      throw new RangeError(`${where(this)}: expected input ${layout} with C = ${this.numFeatures}, got ${shapeStr(x)}`);
    }
  }
}

/** Batch norm over [N, C] or [N, C, L]. */
export class BatchNorm1d extends BatchNormBase {
  protected checkInput(x: Tensor): void { this.channelCheck(x, [2, 3], '[N, C] or [N, C, L]'); }
}
/** Batch norm over [N, C, H, W]. */
export class BatchNorm2d extends BatchNormBase {
  protected checkInput(x: Tensor): void { this.channelCheck(x, [4], '[N, C, H, W]'); }
}

/** Layer norm over the trailing normalizedShape dimensions; weight 1, bias 0. */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly weight: Tensor | null = null;
  readonly bias: Tensor | null = null;
  constructor(normalizedShape: number | number[], readonly eps = 1e-5, o: { elementwiseAffine?: boolean; bias?: boolean } = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    this.normalizedShape.forEach((d) => posInt('LayerNorm', 'normalizedShape', d));
    if (o.elementwiseAffine ?? true) {
      this.weight = this.registerParameter('weight', ones(this.normalizedShape));
      if (o.bias ?? true) this.bias = this.registerParameter('bias', zeros(this.normalizedShape));
    }
  }
  forward(x: Tensor): Tensor {
    const s = x.shape, k = this.normalizedShape.length;
    if (s.length < k || s.slice(s.length - k).join(',') !== this.normalizedShape.join(',')) {
      throw new RangeError(`${where(this)}: expected input [..., ${this.normalizedShape.join(', ')}], got ${shapeStr(x)}`);
    }
    return F.layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}

// ---- regularisation and lookup -----------------------------------------------------------

/** Zeroes elements with probability p in training (scaling the rest by 1/(1-p)); identity in eval. */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: p must be in [0, 1], got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training);
  }
}

/** Lookup table [num, dim] ~ N(0, 1); the paddingIdx row starts at zero and gets no gradient. */
export class Embedding extends Module {
  readonly weight: Tensor;
  readonly paddingIdx: number | null;
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, o: { paddingIdx?: number } = {}) {
    super();
    posInt('Embedding', 'numEmbeddings', numEmbeddings);
    posInt('Embedding', 'embeddingDim', embeddingDim);
    let p = o.paddingIdx ?? null;
    if (p !== null) {
      if (!Number.isInteger(p) || p >= numEmbeddings || p < -numEmbeddings) {
        throw new RangeError(`Embedding: paddingIdx must be within [-${numEmbeddings}, ${numEmbeddings}), got ${p}`);
      }
      if (p < 0) p += numEmbeddings;
    }
    this.paddingIdx = p;
    const w = fresh([numEmbeddings, embeddingDim]);
    normal_(w, 0, 1);
    if (p !== null) noGrad(() => { const row = w.select(0, p!); row.zero_(); row.dispose(); });
    this.weight = this.registerParameter('weight', w);
  }
  forward(indices: Tensor): Tensor {
    const d = indices.dtype;
    if (d !== 'int64' && d !== 'int32') throw new TypeError(`${where(this)}: indices must be int64 or int32, got ${d}`);
    return F.embedding(indices, this.weight, this.paddingIdx ?? -1);
  }
}

// ---- pooling and reshaping ---------------------------------------------------------------

export interface PoolOptions { stride?: Pair; padding?: Pair; ceilMode?: boolean }

export class MaxPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly ceilMode: boolean;
  constructor(kernelSize: Pair, o: PoolOptions & { dilation?: Pair } = {}) {
    super();
    this.kernelSize = pairOf('MaxPool2d', 'kernelSize', kernelSize, 1);
    this.stride = pairOf('MaxPool2d', 'stride', o.stride ?? this.kernelSize, 1);
    this.padding = pairOf('MaxPool2d', 'padding', o.padding ?? 0, 0);
    this.dilation = pairOf('MaxPool2d', 'dilation', o.dilation ?? 1, 1);
    this.ceilMode = o.ceilMode ?? false;
  }
  forward(x: Tensor): Tensor {
    return call('max_pool2d', x, this.kernelSize, this.stride, this.padding, this.dilation, this.ceilMode);
  }
}

export class AvgPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly ceilMode: boolean;
  readonly countIncludePad: boolean;
  readonly divisorOverride: number | null;
  constructor(kernelSize: Pair, o: PoolOptions & { countIncludePad?: boolean; divisorOverride?: number } = {}) {
    super();
    this.kernelSize = pairOf('AvgPool2d', 'kernelSize', kernelSize, 1);
    this.stride = pairOf('AvgPool2d', 'stride', o.stride ?? this.kernelSize, 1);
    this.padding = pairOf('AvgPool2d', 'padding', o.padding ?? 0, 0);
    this.ceilMode = o.ceilMode ?? false;
    this.countIncludePad = o.countIncludePad ?? true;
    this.divisorOverride = o.divisorOverride ?? null;
  }
  forward(x: Tensor): Tensor {
    return call('avg_pool2d', x, this.kernelSize, this.stride, this.padding, this.ceilMode, this.countIncludePad, this.divisorOverride);
  }
}

export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: [number, number];
  constructor(outputSize: Pair) {
    super();
    this.outputSize = pairOf('AdaptiveAvgPool2d', 'outputSize', outputSize, 1);
  }
  forward(x: Tensor): Tensor {
    return F.adaptiveAvgPool2d(x, this.outputSize);
  }
}

export class AdaptiveMaxPool2d extends Module {
  readonly outputSize: [number, number];
  constructor(outputSize: Pair) {
    super();
    this.outputSize = pairOf('AdaptiveMaxPool2d', 'outputSize', outputSize, 1);
  }
  forward(x: Tensor): Tensor {
    return F.adaptiveMaxPool2d(x, this.outputSize);
  }
}

/** Flattens dimensions startDim..endDim (default: all but the batch dimension). */
export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
}

// ---- activations -------------------------------------------------------------------------

export class ReLU extends Module {
  forward(x: Tensor): Tensor { return F.relu(x); }
}
export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') { super(); }
  forward(x: Tensor): Tensor { return F.gelu(x, this.approximate); }
}
export class SiLU extends Module {
  forward(x: Tensor): Tensor { return F.silu(x); }
}
export class Tanh extends Module {
  forward(x: Tensor): Tensor { return F.tanh(x); }
}
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor { return F.sigmoid(x); }
}
export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) { super(); }
  forward(x: Tensor): Tensor { return F.leakyRelu(x, this.negativeSlope); }
}
/** Returns its input; a named hook point for features (e.g. a residual block's pre-activation). */
export class Identity extends Module {
  forward(x: Tensor): Tensor { return x; }
}

export const ACTIVATIONS = ['relu', 'gelu', 'silu', 'tanh', 'sigmoid', 'leaky_relu', 'identity'] as const;
export type ActivationName = (typeof ACTIVATIONS)[number];
/** An activation module by name (what model specs use). */
export function activation(name: ActivationName): Module {
  switch (name) {
    case 'relu': return new ReLU();
    case 'gelu': return new GELU();
    case 'silu': return new SiLU();
    case 'tanh': return new Tanh();
    case 'sigmoid': return new Sigmoid();
    case 'leaky_relu': return new LeakyReLU();
    case 'identity': return new Identity();
    default: throw new TypeError(`unknown activation '${String(name)}' (known: ${ACTIVATIONS.join(', ')})`);
  }
}

// ---- containers --------------------------------------------------------------------------

/** Runs its children in order; they are named '0', '1', ... as in PyTorch. */
export class Sequential extends Module {
  #n = 0;
  constructor(...modules: Module[]) {
    super();
    for (const m of modules) this.append(m);
  }
  append(m: Module): this {
    this.registerModule(String(this.#n++), m);
    return this;
  }
  get length(): number {
    return this.#n;
  }
  at(i: number): Module {
    const c = this.children()[i < 0 ? this.#n + i : i];
    if (!c) throw new RangeError(`Sequential: index ${i} out of range (length ${this.#n})`);
    return c[1];
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const [, m] of this.children()) h = m.call(h);
    return h;
  }
}

/** y = body(x) + shortcut(x) (shortcut defaults to the identity). */
export class Residual extends Module {
  readonly body: Module;
  readonly shortcut: Module | null;
  constructor(body: Module, shortcut?: Module) {
    super();
    this.body = this.registerModule('body', body);
    this.shortcut = shortcut ? this.registerModule('shortcut', shortcut) : null;
  }
  forward(x: Tensor): Tensor {
    const y = this.body.call(x);
    const s = this.shortcut ? this.shortcut.call(x) : x;
    if (y.shape.join(',') !== s.shape.join(',')) {
      throw new RangeError(`${where(this)}: body output ${shapeStr(y)} and shortcut ${shapeStr(s)} differ; give a shortcut that matches`);
    }
    return y.add(s);
  }
}
