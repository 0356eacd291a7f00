// Fake quantization for quantization-aware training (QAT) and post-training calibration, on
// libtorch's fake_quantize_per_tensor_affine / fake_quantize_per_channel_affine (their backward is
// the straight-through estimator: gradient 1 inside the quantization range, 0 where clamped).
//
// Scheme (what the INT8 ONNX export writes as QuantizeLinear/DequantizeLinear, src/export/qdq.ts):
// every Linear and Conv2d quantizes its *input* per tensor to uint8 (affine, scale and zero point
// from an observer of the values seen in training or calibration) and its *weight* to int8 (per
// output channel or per tensor; symmetric as PyTorch's default QAT weights, or affine). Bias and
// the layer's output stay float. Observers and their qparams follow PyTorch 1.13's MinMaxObserver,
// MovingAverageMinMaxObserver and PerChannelMinMaxObserver (_calculate_qparams), computed with the
// same float32 tensor operations so the golden tests match PyTorch exactly.
//
// Batch-norm folding: a Linear/Conv2d followed by a BatchNorm quantizes the folded weight
// W·γ/√(running_var+ε), as PyTorch's ConvBn QAT modules (_ConvBnNd._forward_approximate): the
// layer computes conv(x, fq(W·s)) / s + b, so the batch norm after it still trains with batch
// statistics, and in eval mode the pair equals one conv with the folded, quantized weight and
// bias (b − mean)·s + β, which is what the export writes (the batch norm is then left out).
import { Module } from './module.js';
import { Tensor, call } from '../tensor/tensor.js';
import { tensor, zeros, where } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { BatchNorm1d, BatchNorm2d, Conv2d, Linear, Sequential, WeightLayer, type LayerQuantizer } from './layers.js';
import { MLPBlock } from './zoo/mlp.js';
import { BasicBlock, CifarResNet } from './zoo/resnet.js';

export type ObserverKind = 'minmax' | 'moving-average';

/** How a model is quantized (the experiment's `quantize:` section without its startEpoch). */
export interface QuantizeSpec {
  weights: 'int8';
  activations: 'uint8';
  /** One scale (and zero point) per output channel of a weight, else one per weight tensor. */
  perChannel: boolean;
  /** Weight zero points: 0 (symmetric, PyTorch's default for QAT weights) or fitted (affine). */
  weightScheme: 'symmetric' | 'affine';
  /** Activation range: running min/max, or PyTorch's moving average of each batch's min/max. */
  observer: ObserverKind;
  /** Weight of a new batch in the moving average (PyTorch's default 0.01). */
  averagingConstant: number;
}

export const DEFAULT_QUANTIZE: QuantizeSpec = {
  weights: 'int8', activations: 'uint8', perChannel: true, weightScheme: 'symmetric', observer: 'moving-average', averagingConstant: 0.01,
};

/**
 * A QuantizeSpec from a plain object (a file's metadata, the experiment's section), missing
 * fields at their defaults; a wrong field is named with the values it may take.
 */
export function quantizeSpecOf(v: unknown): QuantizeSpec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`quantize must be a mapping, got ${JSON.stringify(v)}`);
  const o = v as Record<string, unknown>;
  const known = Object.keys(DEFAULT_QUANTIZE);
  const extra = Object.keys(o).filter((k) => !known.includes(k));
  if (extra.length) throw new TypeError(`quantize: unknown field${extra.length > 1 ? 's' : ''} ${extra.join(', ')} (known: ${known.join(', ')})`);
  const pick = <K extends keyof QuantizeSpec>(k: K, ok: (x: unknown) => boolean, want: string): QuantizeSpec[K] => {
    if (o[k] === undefined) return DEFAULT_QUANTIZE[k];
    if (!ok(o[k])) throw new TypeError(`quantize.${k} must be ${want}, got ${JSON.stringify(o[k])}`);
    return o[k] as QuantizeSpec[K];
  };
  return {
    weights: pick('weights', (x) => x === 'int8', "'int8'"),
    activations: pick('activations', (x) => x === 'uint8', "'uint8'"),
    perChannel: pick('perChannel', (x) => typeof x === 'boolean', 'true or false'),
    weightScheme: pick('weightScheme', (x) => x === 'symmetric' || x === 'affine', "'symmetric' or 'affine'"),
    observer: pick('observer', (x) => x === 'minmax' || x === 'moving-average', "'minmax' or 'moving-average'"),
    averagingConstant: pick('averagingConstant', (x) => typeof x === 'number' && x > 0 && x <= 1, 'a number in (0, 1]'),
  };
}

/** Integer ranges: uint8 activations, int8 weights (PyTorch's qint8 range −128..127). */
export const ACT_RANGE = [0, 255] as const;
export const WEIGHT_RANGE = [-128, 127] as const;
/** torch.finfo(torch.float32).eps: the smallest scale PyTorch's observers give. */
const EPS = 1.1920928955078125e-7;

export interface QParams {
  /** float32, one value per tensor or per channel. */
  scale: Tensor;
  /** int32, same shape as scale. */
  zeroPoint: Tensor;
}

/**
 * PyTorch's _calculate_qparams from observed min/max (tensors of equal shape): the range is
 * widened to include 0 (so zero is exactly representable, as padding and ReLU need).
 */
export function qparamsFromRange(minVal: Tensor, maxVal: Tensor, qmin: number, qmax: number, symmetric: boolean): QParams {
  return noGrad(() => {
    const zero = zeros(minVal.shape);
    const minNeg = minVal.minimum(zero), maxPos = maxVal.maximum(zero);
    const eps = tensor(Float32Array.of(EPS), { shape: [] });
    if (symmetric) {
      const scale = minNeg.neg().maximum(maxPos).div((qmax - qmin) / 2).maximum(eps);
      // Zero point 0 for a signed range (int8); the middle of an unsigned one.
      const zp = zeros(scale.shape, { dtype: 'int32' }).add(qmin < 0 ? 0 : Math.floor((qmin + qmax + 1) / 2));
      return { scale, zeroPoint: zp.to('int32') };
    }
    const scale = maxPos.sub(minNeg).div(qmax - qmin).maximum(eps);
    const zp = minNeg.div(scale).round().to('int32').neg().add(qmin).clamp(qmin, qmax).to('int32');
    return { scale, zeroPoint: zp };
  });
}

/** Per-tensor affine fake quantization with tensor qparams ([] or [1] shaped). */
export function fakeQuantPerTensor(x: Tensor, q: QParams, qmin: number, qmax: number): Tensor {
  return call('fake_quantize_per_tensor_affine.tensor_qparams', x, q.scale.reshape([]), q.zeroPoint.reshape([]), qmin, qmax);
}

/** Per-channel fake quantization along `axis` (scale and zero point of length size(axis)). */
export function fakeQuantPerChannel(x: Tensor, q: QParams, axis: number, qmin: number, qmax: number): Tensor {
  return call('fake_quantize_per_channel_affine', x, q.scale, q.zeroPoint, axis, qmin, qmax);
}

/** Weight qparams as PyTorch's (Per)ChannelMinMaxObserver on this weight alone (axis 0 = output channels). */
export function weightQParams(w: Tensor, spec: Pick<QuantizeSpec, 'perChannel' | 'weightScheme'>): QParams {
  if (w.ndim < 2) throw new RangeError(`weightQParams: expected a weight [out, ...], got shape [${w.shape.join(', ')}]`);
  return noGrad(() => {
    // Per channel: the range of each output channel (all dimensions but the first); else of the whole tensor.
    const over = spec.perChannel ? { dim: Array.from({ length: w.ndim - 1 }, (_, i) => i + 1) } : {};
    return qparamsFromRange(w.amin(over), w.amax(over), WEIGHT_RANGE[0], WEIGHT_RANGE[1], spec.weightScheme === 'symmetric');
  });
}

/** fq(w) with weightQParams(w): per channel along axis 0, or per tensor. */
export function fakeQuantWeight(w: Tensor, spec: Pick<QuantizeSpec, 'perChannel' | 'weightScheme'>, q = weightQParams(w, spec)): Tensor {
  return spec.perChannel ? fakeQuantPerChannel(w, q, 0, WEIGHT_RANGE[0], WEIGHT_RANGE[1]) : fakeQuantPerTensor(w, q, WEIGHT_RANGE[0], WEIGHT_RANGE[1]);
}

/** Set while calibrating (post-training quantization): observers then record in eval mode too. */
let calibrating = false;

/**
 * Per-tensor uint8 fake quantization of activations with an observer. It records the range in
 * training mode (and while calibrating), never in eval mode, so evaluation does not move it.
 * Buffers (in state dicts and checkpoints): min_val, max_val (±inf until the first batch) and
 * enabled (0 during a float warm-up: the module is then the identity and observes nothing).
 */
export class ActivationFakeQuant extends Module {
  readonly minVal: Tensor;
  readonly maxVal: Tensor;
  readonly enabled: Tensor;
  constructor(readonly observer: ObserverKind = 'moving-average', readonly averagingConstant = 0.01) {
    super();
    if (observer !== 'minmax' && observer !== 'moving-average') throw new TypeError(`ActivationFakeQuant: observer must be 'minmax' or 'moving-average', got '${String(observer)}'`);
    if (!(averagingConstant > 0 && averagingConstant <= 1)) throw new RangeError(`ActivationFakeQuant: averagingConstant must be in (0, 1], got ${averagingConstant}`);
    this.minVal = this.registerBuffer('min_val', tensor(Float32Array.of(Infinity), { shape: [] }));
    this.maxVal = this.registerBuffer('max_val', tensor(Float32Array.of(-Infinity), { shape: [] }));
    this.enabled = this.registerBuffer('enabled', zeros([], { dtype: 'int64' }));
  }
  get isEnabled(): boolean {
    return this.enabled.item() !== 0;
  }
  /** True once a batch has been observed. */
  get observed(): boolean {
    return Number.isFinite(this.minVal.item());
  }
  setEnabled(on: boolean): void {
    noGrad(() => this.enabled.fill_(on ? 1 : 0));
  }
  /** Updates min_val/max_val with x's range (MinMaxObserver or MovingAverageMinMaxObserver). */
  observe(x: Tensor): void {
    noGrad(() => {
      const mn = x.amin(), mx = x.amax();
      if (this.observer === 'minmax') {
        this.minVal.copy_(this.minVal.minimum(mn));
        this.maxVal.copy_(this.maxVal.maximum(mx));
      } else {
        // The first batch sets the range; later ones move it by averagingConstant of the difference.
        const first = this.minVal.isinf();
        const c = this.averagingConstant;
        this.minVal.copy_(where(first, mn, this.minVal.add(mn.sub(this.minVal).mul(c))));
        this.maxVal.copy_(where(first, mx, this.maxVal.add(mx.sub(this.maxVal).mul(c))));
      }
    });
  }
  qparams(): QParams {
    return qparamsFromRange(this.minVal, this.maxVal, ACT_RANGE[0], ACT_RANGE[1], false);
  }
  /** The scale and zero point as numbers (what the export writes). */
  qparamValues(): { scale: number; zeroPoint: number } {
    const q = this.qparams();
    try {
      return { scale: q.scale.item(), zeroPoint: q.zeroPoint.item() };
    } finally {
      q.scale.dispose();
      q.zeroPoint.dispose();
    }
  }
  forward(x: Tensor): Tensor {
    if (!this.isEnabled) return x;
    if (this.training || calibrating) this.observe(x);
    if (!this.observed) {
      throw new Error(`${this.path || 'ActivationFakeQuant'}: quantization is on but no batch has been observed yet (train a step or calibrate first)`);
    }
    return fakeQuantPerTensor(x, this.qparams(), ACT_RANGE[0], ACT_RANGE[1]);
  }
}

/** The weight, bias and scaling a quantized layer computes with (batch norm folded in when it has one). */
interface FoldedWeights {
  weight: Tensor;
  /** Per output channel: the batch norm's γ/√(running_var+ε), or null without folding. */
  factor: Tensor | null;
}

/**
 * A Linear's or Conv2d's fake quantization: `input` (an ActivationFakeQuant, child 'input') and
 * its weight, folded with `bn` when the layer feeds a batch norm.
 */
export class LayerFakeQuant extends Module implements LayerQuantizer {
  readonly input: ActivationFakeQuant;
  constructor(readonly spec: QuantizeSpec, readonly bn: BatchNorm1d | BatchNorm2d | null = null) {
    super();
    this.input = this.registerModule('input', new ActivationFakeQuant(spec.observer, spec.averagingConstant));
  }
  forward(): Tensor {
    throw new Error(`${this.path}: a LayerFakeQuant runs through its layer's forward`);
  }
  /** The weight to quantize: W, or W·γ/√(var+ε) per output channel with a folded batch norm. */
  folded(layer: WeightLayer): FoldedWeights {
    if (!this.bn) return { weight: layer.weight, factor: null };
    const bn = this.bn;
    // γ / √(var+ε) with PyTorch's operations in its order, so the folded weight rounds as its ConvBn modules'.
    const std = noGrad(() => bn.runningVar!.add(bn.eps).sqrt());
    const f = bn.weight ? bn.weight.div(std) : std.reciprocal();
    const shape = [-1, ...new Array<number>(layer.weight.ndim - 1).fill(1)];
    return { weight: layer.weight.mul(f.reshape(shape)), factor: f };
  }
  apply(layer: WeightLayer, x: Tensor): Tensor {
    if (!this.input.isEnabled) return layer.compute(x, layer.weight, layer.bias);
    const xq = this.input.call(x);
    const { weight, factor } = this.folded(layer);
    const wq = fakeQuantWeight(weight, this.spec);
    if (!factor) return layer.compute(xq, wq, layer.bias);
    // conv(x, fq(W·s)) / s + b: the batch norm that follows sees the layer's own scale.
    const y = layer.compute(xq, wq, null);
    const chan = [1, -1, ...new Array<number>(Math.max(0, y.ndim - 2)).fill(1)];
    const out = y.div(factor.reshape(chan));
    return layer.bias ? out.add(layer.bias.reshape(chan)) : out;
  }
}

/** Linear/Conv2d → BatchNorm pairs the zoo's models run back to back (the ones folding applies to). */
function batchNormPairs(model: Module): Map<WeightLayer, BatchNorm1d | BatchNorm2d> {
  const pairs = new Map<WeightLayer, BatchNorm1d | BatchNorm2d>();
  const add = (l: Module | null, b: Module | null): void => {
    const bnOk = (b instanceof BatchNorm1d || b instanceof BatchNorm2d) && b.runningVar !== null;
    if (!bnOk || !(l instanceof WeightLayer)) return;
    const out = l instanceof Linear ? l.outFeatures : (l as Conv2d).outChannels;
    if (out === b.numFeatures && !pairs.has(l)) pairs.set(l, b);
  };
  for (const [, m] of model.namedModules()) {
    if (m instanceof Sequential) {
      const cs = m.children().map(([, c]) => c);
      for (let i = 0; i + 1 < cs.length; i++) add(cs[i]!, cs[i + 1]!);
    } else if (m instanceof MLPBlock) add(m.linear, m.bn);
    else if (m instanceof BasicBlock) {
      add(m.conv1, m.bn1);
      add(m.conv2, m.bn2);
    }
  }
  // The CIFAR ResNet stem (conv1 → bn1) lives on the model itself (a WRN's bn1 is its last layer, not conv1's).
  for (const [, m] of model.namedModules()) if (m instanceof CifarResNet) add(m.conv1, m.bn1);
  return pairs;
}

/** The quantization a model was prepared with, by model (what saveModel records and the export reads). */
const PREPARED = new WeakMap<Module, QuantizeSpec>();

/**
 * Installs fake quantization (off: the model computes in float until setQuantization(model, true))
 * into every Linear and Conv2d of the model, with batch-norm folding where a layer feeds a batch
 * norm. Returns the layers' quantizers.
 */
export function prepareQuantization(model: Module, spec: QuantizeSpec = DEFAULT_QUANTIZE): LayerFakeQuant[] {
  if (PREPARED.has(model)) throw new Error(`${model.constructor.name} is already prepared for quantization`);
  if (spec.weights !== 'int8' || spec.activations !== 'uint8') {
    throw new RangeError(`quantize: only weights int8 and activations uint8 are supported, got weights ${String(spec.weights)}, activations ${String(spec.activations)}`);
  }
  const pairs = batchNormPairs(model);
  const out: LayerFakeQuant[] = [];
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof WeightLayer)) continue;
    const q = new LayerFakeQuant(spec, pairs.get(m) ?? null);
    // In the layer's mode: a quantizer added to a model in eval mode must not observe (record ranges) in its forward passes.
    q.train(m.training);
    m.setQuantizer(q);
    out.push(q);
  }
  if (out.length === 0) throw new Error(`${model.constructor.name} has no Linear or Conv2d layer to quantize`);
  // Only the spec's own fields (an experiment's section also carries startEpoch): saved with the model.
  const { weights, activations, perChannel, weightScheme, observer, averagingConstant } = spec;
  PREPARED.set(model, { weights, activations, perChannel, weightScheme, observer, averagingConstant });
  return out;
}

/** The spec a model was prepared with, or null. */
export function quantizationOf(model: Module): QuantizeSpec | null {
  return PREPARED.get(model) ?? null;
}

/** Every layer quantizer of a model (its Linear/Conv2d in module order). */
export function layerQuantizers(model: Module): { layer: WeightLayer; quant: LayerFakeQuant }[] {
  const out: { layer: WeightLayer; quant: LayerFakeQuant }[] = [];
  for (const [, m] of model.namedModules()) if (m instanceof WeightLayer && m.quant instanceof LayerFakeQuant) out.push({ layer: m, quant: m.quant });
  return out;
}

/** Turns fake quantization (and observation) on or off in every layer. */
export function setQuantization(model: Module, on: boolean): void {
  const qs = layerQuantizers(model);
  if (qs.length === 0) throw new Error(`${model.constructor.name} is not prepared for quantization (prepareQuantization)`);
  for (const { quant } of qs) quant.input.setEnabled(on);
}

/** True when the model has quantizers and they are on. */
export function isQuantized(model: Module): boolean {
  const qs = layerQuantizers(model);
  return qs.length > 0 && qs.every(({ quant }) => quant.input.isEnabled);
}

/** Runs fn with every observer recording even in eval mode (post-training calibration). */
export function calibrate<T>(fn: () => T): T {
  const prev = calibrating;
  calibrating = true;
  try {
    return fn();
  } finally {
    calibrating = prev;
  }
}

/** The batch norm folded into this layer's quantized weight, if any (the export leaves it out). */
export function foldedBatchNorms(model: Module): Set<Module> {
  return new Set(layerQuantizers(model).flatMap(({ quant }) => (quant.bn ? [quant.bn] : [])));
}

/**
 * What the INT8 export writes for a quantized layer (in eval semantics): the input's uint8 scale
 * and zero point, the int8 weight with its scales and zero points, and the float bias (folded
 * with the batch norm when there is one).
 */
export interface QuantizedLayer {
  input: { scale: number; zeroPoint: number };
  weight: { values: Int8Array; shape: number[]; scale: Float32Array; zeroPoint: Int8Array; perChannel: boolean };
  bias: Float32Array | null;
  /** The bias includes a batch norm folded into this layer. */
  folded: boolean;
}

export function quantizedLayer(layer: WeightLayer): QuantizedLayer {
  const q = layer.quant;
  if (!(q instanceof LayerFakeQuant)) throw new Error(`${layer.path || layer.constructor.name} is not prepared for quantization`);
  return tidy(() => noGrad(() => {
    const { weight, factor } = q.folded(layer);
    const wq = weightQParams(weight, q.spec);
    // The integers fake_quantize computes: clamp(nearbyint(w · (1/scale)) + zp) (its float32 steps).
    const shape = q.spec.perChannel ? [-1, ...new Array<number>(weight.ndim - 1).fill(1)] : [];
    const inv = wq.scale.reciprocal().reshape(shape);
    const ints = weight.mul(inv).round().add(wq.zeroPoint.reshape(shape)).clamp(WEIGHT_RANGE[0], WEIGHT_RANGE[1]).to('int8');
    let bias: Float32Array | null = null;
    if (factor) {
      const bn = q.bn!;
      // (b − mean)·s + β: the eval-mode batch norm applied to the layer's bias.
      let b = (layer.bias ?? zeros(factor.shape)).sub(bn.runningMean!).mul(factor);
      if (bn.bias) b = b.add(bn.bias);
      bias = b.data<Float32Array>().slice();
    } else if (layer.bias) bias = layer.bias.data<Float32Array>().slice();
    const out: QuantizedLayer = {
      input: q.input.qparamValues(),
      weight: {
        values: ints.data<Int8Array>().slice(), shape: [...weight.shape],
        scale: wq.scale.reshape([-1]).data<Float32Array>().slice(),
        zeroPoint: Int8Array.from(wq.zeroPoint.reshape([-1]).data<Int32Array>()), perChannel: q.spec.perChannel,
      },
      bias, folded: factor !== null,
    };
    return out;
  }));
}
