// ONNX export of kdistill models, written by hand (see onnx-graph.ts / protobuf.ts): no
// protobuf or onnx dependency. A model is walked module by module; each module class has an
// exporter that emits its ONNX nodes and initializers (weights come from the state dict, named
// by their state-dict keys). New layers plug in with registerOnnxExporter(Class, fn), e.g. the
// transformer encoder when it lands: its exporter emits MatMul/Softmax/Transpose nodes through
// the same context and reuses ctx.module() for its Linear/LayerNorm/Dropout children (the
// transformer's exporters are at the end of this file).
//
// Only the module given is exported: a method's extra parts (connectors, discriminators, peers)
// live outside the student's module tree and never reach the file.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { packageRoot } from '../tensor/native.js';
import {
  AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Embedding, Flatten, GELU, Identity,
  LayerNorm, LeakyReLU, Linear, MaxPool2d, ReLU, Residual, Sequential, Sigmoid, SiLU, Tanh, type WeightLayer,
} from '../nn/layers.js';
import { foldedBatchNorms, isQuantized, quantizationOf, quantizedLayer } from '../nn/quantize.js';
import { ZooModel } from '../nn/zoo/common.js';
import { MLP, MLPBlock } from '../nn/zoo/mlp.js';
import { CNN } from '../nn/zoo/cnn.js';
import { LeNet5 } from '../nn/zoo/lenet.js';
import { VGG } from '../nn/zoo/vgg.js';
import { BasicBlock, CifarResNet } from '../nn/zoo/resnet.js';
import { NetworkBlock, WideBasicBlock, WideResNet } from '../nn/zoo/wrn.js';
import { BertEmbeddings, BertEncoder, EncoderLayer, MultiHeadSelfAttention, PAD_ID, Pooler, Tap } from '../nn/zoo/transformer.js';
import { OnnxGraph, type AttrValue, type OnnxDType, type Value } from './onnx-graph.js';

export type { Value } from './onnx-graph.js';
export const MIN_OPSET = 13;
export const MAX_OPSET = 17;
export const DEFAULT_OPSET = 17;

/** What a layer exporter works with. */
export interface ExportContext {
  readonly graph: OnnxGraph;
  readonly opset: number;
  /** Emits `m` (through its registered exporter) applied to `x`. */
  module(m: Module, x: Value): Value;
  /** One node with a single output of shape `shape`; the output is named after `name` (a module path). */
  node(op: string, inputs: (Value | string)[], shape: (number | null)[], name: string, attrs?: Record<string, AttrValue>, dtype?: OnnxDType): Value;
  /** A weight as an initializer named by its state-dict key (float32; float64 weights are narrowed). */
  weight(m: Module, key: string, t: Tensor, reshape?: number[]): Value;
  /** A constant float32 (or int64) initializer. */
  constant(name: string, values: number[], dims?: number[], dtype?: 'float32' | 'int64'): Value;
  /** True when writing the INT8 (QDQ) graph of a quantization-aware model; false writes it in float. */
  readonly quantized: boolean;
  /** Batch norms folded into the quantized layer before them (left out of the QDQ graph). */
  readonly folded: ReadonlySet<Module>;
}

export type LayerExporter<M extends Module = Module> = (ctx: ExportContext, m: M, x: Value) => Value;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Ctor<M> = abstract new (...args: any[]) => M;

const EXPORTERS = new Map<Ctor<Module>, LayerExporter>();

/** Registers how a module class becomes ONNX; subclasses inherit it unless they register their own. */
export function registerOnnxExporter<M extends Module>(cls: Ctor<M>, fn: LayerExporter<M>): void {
  EXPORTERS.set(cls as Ctor<Module>, fn as LayerExporter);
}

function exporterFor(m: Module): LayerExporter | null {
  for (let p: object | null = Object.getPrototypeOf(m); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    const f = EXPORTERS.get((p as { constructor: Ctor<Module> }).constructor);
    if (f) return f;
  }
  return null;
}

export interface OnnxExportOptions {
  /** 13–17 (default 17: LayerNormalization is a single node from 17 on). */
  opset?: number;
  /** Per-sample input shape; defaults to a zoo model's inputShape. */
  inputShape?: number[];
  inputName?: string;
  /** Element type of the graph input; default int64 for token-id models (arch 'bert'), float32 otherwise. */
  inputDtype?: 'float32' | 'int64';
  outputName?: string;
  /** Fixed batch size; default: a symbolic 'batch' dimension. */
  batchSize?: number;
  /**
   * Write a model prepared for quantization (src/nn/quantize.ts, quantizers on) as INT8 QDQ:
   * QuantizeLinear/DequantizeLinear on each Linear/Conv2d input (uint8) and int8 weights with their
   * DequantizeLinear, scales and zero points from the observers. Default false: the float graph.
   */
  quantize?: boolean;
  /** Extra key/value pairs stored in the model's metadata_props (e.g. class names). */
  metadata?: Record<string, string>;
  /**
   * arch 'bert' only: Hugging Face's inputs (input_ids, attention_mask, token_type_ids, int64
   * [batch, sequence], any length up to maxLen), as transformers.js feeds them, instead of one
   * fixed-length id input whose padding mask comes from id 0.
   */
  huggingfaceInputs?: boolean;
  docString?: string;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0';
  }
}

/** The model (in eval semantics) as ONNX ModelProto bytes. The model's own mode is not changed. */
export function exportOnnx(model: Module, o: OnnxExportOptions = {}): Uint8Array {
  const opset = o.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new RangeError(`ONNX export: opset must be an integer in ${MIN_OPSET}..${MAX_OPSET}, got ${opset}`);
  }
  const inputShape = o.inputShape ?? (model instanceof ZooModel ? model.inputShape : undefined);
  if (!inputShape) throw new Error(`ONNX export: ${model.constructor.name} is not a zoo model; pass inputShape (per sample, without the batch dimension)`);
  if (o.quantize && !isQuantized(model)) {
    throw new Error(`ONNX export: quantize needs a model whose quantizers are on (quantization-aware training, or prepareQuantization + calibration); ${model.constructor.name} has ${quantizationOf(model) ? 'them off' : 'none'}`);
  }
  const g = new OnnxGraph();
  const ctx: ExportContext = {
    graph: g,
    opset,
    quantized: o.quantize ?? false,
    folded: o.quantize ? foldedBatchNorms(model) : new Set(),
    module(m, x) {
      const f = exporterFor(m);
      if (!f) {
        throw new Error(`ONNX export: no exporter for ${m.constructor.name}${m.path ? ` at '${m.path}'` : ''}; ` +
          `register one with registerOnnxExporter(${m.constructor.name}, (ctx, module, x) => ...) from src/export/onnx.ts`);
      }
      return f(ctx, m, x);
    },
    node(op, inputs, shape, name, attrs, dtype) {
      return g.addNode(op, inputs, shape, { name, ...(attrs ? { attrs } : {}), ...(dtype ? { dtype } : {}) });
    },
    weight(m, key, t, reshape) {
      const full = m.path ? `${m.path}.${key}` : key;
      const d = noGrad(() => t.data());
      const f32 = d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>, Number);
      return g.addInitializer(full, reshape ?? t.shape, f32);
    },
    constant(name, values, dims = [values.length], dtype = 'float32') {
      const data = dtype === 'int64' ? BigInt64Array.from(values, (v) => BigInt(v)) : Float32Array.from(values);
      return g.addInitializer(name, dims, data, dtype);
    },
  };
  const batch = o.batchSize ?? null;
  const inputDtype = o.inputDtype ?? (model instanceof BertEncoder ? 'int64' : 'float32');
  let x: Value;
  if (o.huggingfaceInputs) {
    if (!(model instanceof BertEncoder)) throw new Error(`ONNX export: Hugging Face inputs apply to arch 'bert' only, not ${model.constructor.name}`);
    x = g.addInput('input_ids', [batch, null], 'int64');
    HF_INPUTS.set(g, { mask: g.addInput('attention_mask', [batch, null], 'int64'), types: g.addInput('token_type_ids', [batch, null], 'int64') });
  } else x = g.addInput(o.inputName ?? 'input', [batch, ...inputShape], inputDtype);
  const y = ctx.module(model, x);
  // A named output even when the last module passes its input through (Identity, Dropout).
  const out = g.addNode('Identity', [y], y.shape, { name: o.outputName ?? 'logits' });
  g.addOutput(out);
  const metadata: Record<string, string> = { ...(o.metadata ?? {}) };
  if (model instanceof ZooModel) metadata.model = JSON.stringify(model.spec);
  return g.encode({ opset, producerVersion: packageVersion(), metadata, ...(o.docString ? { docString: o.docString } : {}) });
}

// ---- shape helpers -----------------------------------------------------------------------

const known = (v: Value, dims: number): number[] => {
  const s = v.shape.slice(v.shape.length - dims);
  if (s.some((d) => d === null)) throw new Error(`ONNX export: '${v.name}' needs static trailing dimensions, has [${v.shape.join(', ')}]`);
  return s as number[];
};
const poolOut = (size: number, k: number, s: number, p: number, d: number, ceil: boolean): number => {
  const span = size + 2 * p - d * (k - 1) - 1;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // PyTorch's rule: with ceil_mode the last window must start inside the input or left padding.
  if (ceil && (out - 1) * s >= size + p) out--;
  return out;
};
const where = (m: Module): string => `${m.constructor.name}${m.path ? ` '${m.path}'` : ''}`;
const nameOf = (m: Module, suffix = ''): string => (m.path || m.constructor.name.toLowerCase()) + suffix;

function chainChildren(ctx: ExportContext, m: Module, x: Value): Value {
  let h = x;
  for (const [, c] of m.children()) h = ctx.module(c, h);
  return h;
}

// ---- layers ------------------------------------------------------------------------------

/**
 * A Linear's or Conv2d's operands: its input, weight and bias as the float graph has them, or in
 * the QDQ graph the input through QuantizeLinear→DequantizeLinear (uint8), the weight as int8
 * through DequantizeLinear (per output channel: axis 0, or 1 for a transposed MatMul weight), and
 * the float bias (folded with the batch norm that follows, when there is one).
 */
function layerOperands(ctx: ExportContext, m: WeightLayer, x: Value, transposed = false): { x: Value; weight: Value; bias: Value | null } {
  if (!ctx.quantized || !m.quant) {
    const wt = transposed ? noGrad(() => m.weight.t().contiguous()) : null;
    try {
      return { x, weight: ctx.weight(m, 'weight', wt ?? m.weight), bias: m.bias ? ctx.weight(m, 'bias', m.bias) : null };
    } finally {
      wt?.dispose();
    }
  }
  const q = quantizedLayer(m);
  const g = ctx.graph, base = nameOf(m);
  const xs = g.addInitializer(`${base}.input_scale`, [], Float32Array.of(q.input.scale));
  const xz = g.addInitializer(`${base}.input_zero_point`, [], Uint8Array.of(q.input.zeroPoint), 'uint8');
  const xq = ctx.node('QuantizeLinear', [x, xs, xz], x.shape, `${base}.input_quantized`, undefined, 'uint8');
  const xd = ctx.node('DequantizeLinear', [xq, xs, xz], x.shape, `${base}.input_dequantized`, undefined, 'float32');
  let { values, shape } = q.weight;
  if (transposed) {
    const [o, i] = shape as [number, number];
    const t = new Int8Array(values.length);
    for (let r = 0; r < o; r++) for (let c = 0; c < i; c++) t[c * o + r] = values[r * i + c]!;
    values = t;
    shape = [i, o];
  }
  const per = q.weight.perChannel ? [q.weight.scale.length] : [];
  const wi = g.addInitializer(`${base}.weight_int8`, shape, values, 'int8');
  const ws = g.addInitializer(`${base}.weight_scale`, per, q.weight.scale);
  const wz = g.addInitializer(`${base}.weight_zero_point`, per, q.weight.zeroPoint, 'int8');
  const wd = ctx.node('DequantizeLinear', [wi, ws, wz], shape, `${base}.weight_dequantized`, q.weight.perChannel ? { axis: transposed ? 1 : 0 } : undefined, 'float32');
  const bias = q.bias ? g.addInitializer(`${base}.${q.folded ? 'bias_folded' : 'bias'}`, [q.bias.length], q.bias) : null;
  return { x: xd, weight: wd, bias };
}

registerOnnxExporter(Linear, (ctx, m, x) => {
  const rank = x.shape.length;
  const out = [...x.shape.slice(0, -1), m.outFeatures];
  if (rank === 2) {
    const p = layerOperands(ctx, m, x);
    return ctx.node('Gemm', [p.x, p.weight, ...(p.bias ? [p.bias] : [])], out, nameOf(m), { transB: 1 });
  }
  // Batched matmul over leading dimensions (e.g. [N, T, D] in a transformer): MatMul with Wᵀ stored transposed.
  const p = layerOperands(ctx, m, x, true);
  const y = ctx.node('MatMul', [p.x, p.weight], out, nameOf(m, '.matmul'));
  return p.bias ? ctx.node('Add', [y, p.bias], out, nameOf(m)) : y;
});

registerOnnxExporter(Conv2d, (ctx, m, x) => {
  const [c, h, w] = known(x, 3);
  const [kh, kw] = m.kernelSize, [sh, sw] = m.stride, [dh, dw] = m.dilation;
  let pads: [number, number, number, number];
  if (m.padding === 'valid') pads = [0, 0, 0, 0];
  else if (m.padding === 'same') {
    // PyTorch pads 'same' with the odd extra element at the end (bottom/right).
    const th = dh * (kh - 1), tw = dw * (kw - 1);
    pads = [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
  } else pads = [m.padding[0], m.padding[1], m.padding[0], m.padding[1]];
  if (c !== m.inChannels) throw new Error(`ONNX export: ${where(m)} expects ${m.inChannels} channels, gets [${x.shape.join(', ')}]`);
  const oh = Math.floor((h + pads[0] + pads[2] - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + pads[1] + pads[3] - dw * (kw - 1) - 1) / sw) + 1;
  const p = layerOperands(ctx, m, x);
  const inputs = [p.x, p.weight, ...(p.bias ? [p.bias] : [])];
  return ctx.node('Conv', inputs, [(x.shape[0] ?? null), m.outChannels, oh, ow], nameOf(m), {
    kernel_shape: [kh, kw], strides: [sh, sw], pads, dilations: [dh, dw], group: m.groups,
  });
});

function batchNorm(ctx: ExportContext, m: BatchNorm1d | BatchNorm2d, x: Value): Value {
  if (ctx.folded.has(m)) return x; // in the quantized layer's weight and bias
  if (!m.runningMean || !m.runningVar) {
    throw new Error(`ONNX export: ${where(m)} has no running statistics (trackRunningStats: false), so its eval output depends on the batch; it cannot be exported as BatchNormalization`);
  }
  const n = m.numFeatures;
  const scale = m.weight ? ctx.weight(m, 'weight', m.weight) : ctx.constant(nameOf(m, '.weight'), new Array<number>(n).fill(1));
  const bias = m.bias ? ctx.weight(m, 'bias', m.bias) : ctx.constant(nameOf(m, '.bias'), new Array<number>(n).fill(0));
  const inputs = [x, scale, bias, ctx.weight(m, 'running_mean', m.runningMean), ctx.weight(m, 'running_var', m.runningVar)];
  return ctx.node('BatchNormalization', inputs, x.shape, nameOf(m), { epsilon: { float: m.eps } });
}
registerOnnxExporter(BatchNorm1d, batchNorm);
registerOnnxExporter(BatchNorm2d, batchNorm);

registerOnnxExporter(LayerNorm, (ctx, m, x) => {
  const k = m.normalizedShape.length;
  const wshape = m.normalizedShape;
  const count = wshape.reduce((a, b) => a * b, 1);
  const scale = m.weight ? ctx.weight(m, 'weight', m.weight) : ctx.constant(nameOf(m, '.weight'), new Array<number>(count).fill(1), wshape);
  const bias = m.bias ? ctx.weight(m, 'bias', m.bias) : ctx.constant(nameOf(m, '.bias'), new Array<number>(count).fill(0), wshape);
  if (ctx.opset >= 17) return ctx.node('LayerNormalization', [x, scale, bias], x.shape, nameOf(m), { axis: -k, epsilon: { float: m.eps } });
  // Before opset 17: (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance as PyTorch.
  const axes = Array.from({ length: k }, (_, i) => i - k);
  const red = [...x.shape.slice(0, -k), ...new Array<number>(k).fill(1)];
  const mean = ctx.node('ReduceMean', [x], red, nameOf(m, '.mean'), { axes, keepdims: 1 });
  const d = ctx.node('Sub', [x, mean], x.shape, nameOf(m, '.centered'));
  const v = ctx.node('ReduceMean', [ctx.node('Mul', [d, d], x.shape, nameOf(m, '.sq'))], red, nameOf(m, '.var'), { axes, keepdims: 1 });
  const std = ctx.node('Sqrt', [ctx.node('Add', [v, ctx.constant(nameOf(m, '.eps'), [m.eps], [])], red, nameOf(m, '.var_eps'))], red, nameOf(m, '.std'));
  const nrm = ctx.node('Div', [d, std], x.shape, nameOf(m, '.normed'));
  return ctx.node('Add', [ctx.node('Mul', [nrm, scale], x.shape, nameOf(m, '.scaled')), bias], x.shape, nameOf(m));
});

registerOnnxExporter(Embedding, (ctx, m, x) => {
  // Indices in, vectors out: the graph input must then be int64 (a text model's token ids).
  return ctx.node('Gather', [ctx.weight(m, 'weight', m.weight), x], [...x.shape, m.embeddingDim], nameOf(m), { axis: 0 }, 'float32');
});

registerOnnxExporter(Dropout, (_ctx, _m, x) => x); // identity at inference
registerOnnxExporter(Identity, (_ctx, _m, x) => x);

registerOnnxExporter(MaxPool2d, (ctx, m, x) => {
  const [c, h, w] = known(x, 3);
  const [kh, kw] = m.kernelSize, [sh, sw] = m.stride, [ph, pw] = m.padding, [dh, dw] = m.dilation;
  const out = [(x.shape[0] ?? null), c, poolOut(h, kh, sh, ph, dh, m.ceilMode), poolOut(w, kw, sw, pw, dw, m.ceilMode)];
  return ctx.node('MaxPool', [x], out, nameOf(m), {
    kernel_shape: [kh, kw], strides: [sh, sw], pads: [ph, pw, ph, pw], dilations: [dh, dw], ceil_mode: m.ceilMode ? 1 : 0,
  });
});

registerOnnxExporter(AvgPool2d, (ctx, m, x) => {
  if (m.divisorOverride !== null) throw new Error(`ONNX export: ${where(m)} uses divisorOverride, which ONNX AveragePool cannot express`);
  const [c, h, w] = known(x, 3);
  const [kh, kw] = m.kernelSize, [sh, sw] = m.stride, [ph, pw] = m.padding;
  const out = [(x.shape[0] ?? null), c, poolOut(h, kh, sh, ph, 1, m.ceilMode), poolOut(w, kw, sw, pw, 1, m.ceilMode)];
  return ctx.node('AveragePool', [x], out, nameOf(m), {
    kernel_shape: [kh, kw], strides: [sh, sw], pads: [ph, pw, ph, pw], ceil_mode: m.ceilMode ? 1 : 0, count_include_pad: m.countIncludePad ? 1 : 0,
  });
});

function adaptivePool(kind: 'Average' | 'Max') {
  return (ctx: ExportContext, m: AdaptiveAvgPool2d | AdaptiveMaxPool2d, x: Value): Value => {
    const [c, h, w] = known(x, 3);
    const [oh, ow] = m.outputSize;
    const out = [(x.shape[0] ?? null), c, oh, ow];
    if (oh === 1 && ow === 1) return ctx.node(`Global${kind}Pool`, [x], out, nameOf(m));
    // Equal windows only: PyTorch's adaptive windows overlap unevenly otherwise.
    if (h % oh !== 0 || w % ow !== 0) throw new Error(`ONNX export: ${where(m)} maps ${h}×${w} to ${oh}×${ow}, which is not a whole-number pooling window`);
    const k = [h / oh, w / ow];
    return ctx.node(`${kind}Pool`, [x], out, nameOf(m), { kernel_shape: k, strides: k });
  };
}
registerOnnxExporter(AdaptiveAvgPool2d, adaptivePool('Average'));
registerOnnxExporter(AdaptiveMaxPool2d, adaptivePool('Max'));

registerOnnxExporter(Flatten, (ctx, m, x) => {
  const r = x.shape.length;
  const s = m.startDim < 0 ? m.startDim + r : m.startDim, e = m.endDim < 0 ? m.endDim + r : m.endDim;
  if (s === 1 && e === r - 1) {
    const f = known(x, r - 1).reduce((a, b) => a * b, 1);
    return ctx.node('Flatten', [x], [(x.shape[0] ?? null), f], nameOf(m), { axis: 1 });
  }
  if (s === 0) throw new Error(`ONNX export: ${where(m)} flattens the batch dimension, which an exported model keeps dynamic`);
  const merged = known(x, r - s).slice(0, e - s + 1).reduce((a, b) => a * b, 1);
  const shape = [...x.shape.slice(0, s), merged, ...x.shape.slice(e + 1)];
  // Reshape's 0 copies the (dynamic) batch dimension from the input.
  const target = ctx.constant(nameOf(m, '.shape'), shape.map((d) => d ?? 0), [shape.length], 'int64');
  return ctx.node('Reshape', [x, target], shape, nameOf(m));
});

// ---- activations -------------------------------------------------------------------------

registerOnnxExporter(ReLU, (ctx, m, x) => ctx.node('Relu', [x], x.shape, nameOf(m)));
registerOnnxExporter(Sigmoid, (ctx, m, x) => ctx.node('Sigmoid', [x], x.shape, nameOf(m)));
registerOnnxExporter(Tanh, (ctx, m, x) => ctx.node('Tanh', [x], x.shape, nameOf(m)));
registerOnnxExporter(LeakyReLU, (ctx, m, x) => ctx.node('LeakyRelu', [x], x.shape, nameOf(m), { alpha: { float: m.negativeSlope } }));
registerOnnxExporter(SiLU, (ctx, m, x) => ctx.node('Mul', [x, ctx.node('Sigmoid', [x], x.shape, nameOf(m, '.sigmoid'))], x.shape, nameOf(m)));
/** GELU as ONNX nodes (ONNX has Gelu only from opset 20): 0.5·x·(1 + erf(x/√2)), or the tanh approximation. */
function geluNodes(ctx: ExportContext, x: Value, approximate: 'none' | 'tanh', base: string): Value {
  const s = x.shape;
  let inner: Value;
  if (approximate === 'tanh') {
    const x3 = ctx.node('Mul', [x, ctx.node('Mul', [x, x], s, `${base}.x2`)], s, `${base}.x3`);
    const poly = ctx.node('Add', [x, ctx.node('Mul', [x3, ctx.constant(`${base}.c`, [0.044715], [])], s, `${base}.cx3`)], s, `${base}.poly`);
    const arg = ctx.node('Mul', [poly, ctx.constant(`${base}.k`, [Math.sqrt(2 / Math.PI)], [])], s, `${base}.arg`);
    inner = ctx.node('Tanh', [arg], s, `${base}.tanh`);
  } else {
    inner = ctx.node('Erf', [ctx.node('Div', [x, ctx.constant(`${base}.sqrt2`, [Math.SQRT2], [])], s, `${base}.scaled`)], s, `${base}.erf`);
  }
  const onePlus = ctx.node('Add', [inner, ctx.constant(`${base}.one`, [1], [])], s, `${base}.one_plus`);
  const half = ctx.node('Mul', [x, ctx.constant(`${base}.half`, [0.5], [])], s, `${base}.half_x`);
  return ctx.node('Mul', [half, onePlus], s, base);
}
registerOnnxExporter(GELU, (ctx, m, x) => geluNodes(ctx, x, m.approximate, nameOf(m)));

// ---- containers --------------------------------------------------------------------------

registerOnnxExporter(Sequential, chainChildren);
registerOnnxExporter(Residual, (ctx, m, x) => {
  const y = ctx.module(m.body, x);
  const s = m.shortcut ? ctx.module(m.shortcut, x) : x;
  return ctx.node('Add', [y, s], y.shape, nameOf(m));
});

// ---- model zoo ---------------------------------------------------------------------------
// These models' forward() runs their children in registration order, so the generic chain is
// exact; the export tests compare each family's ONNX output with kdistill's.
for (const cls of [MLP, MLPBlock, CNN, LeNet5, CifarResNet, WideResNet, NetworkBlock]) registerOnnxExporter(cls as Ctor<Module>, chainChildren);

registerOnnxExporter(VGG, (ctx, m, x) => {
  // forward interleaves blocks and pools: block0, pool0, block1, ..., pool3, block4, pool4.
  let h = ctx.module(m.blocks[0]!, x);
  for (let i = 1; i < 5; i++) h = ctx.module(m.blocks[i]!, ctx.module(m.pools[i - 1]!, h));
  return ctx.module(m.classifier, ctx.module(m.flatten, ctx.module(m.pools[4]!, h)));
});

registerOnnxExporter(BasicBlock, (ctx, m, x) => {
  let out = ctx.module(m.relu, ctx.module(m.bn1, ctx.module(m.conv1, x)));
  out = ctx.module(m.bn2, ctx.module(m.conv2, out));
  const residual = m.downsample ? ctx.module(m.downsample, x) : x;
  const sum = ctx.module(m.preact, ctx.node('Add', [out, residual], out.shape, nameOf(m, '.add')));
  return ctx.node('Relu', [sum], sum.shape, nameOf(m));
});

registerOnnxExporter(WideBasicBlock, (ctx, m, x) => {
  const a = ctx.module(m.relu1, ctx.module(m.bn1, x));
  let out = ctx.module(m.relu2, ctx.module(m.bn2, ctx.module(m.conv1, a)));
  out = ctx.module(m.conv2, out); // the functional dropout between the convs is the identity in eval
  const short = m.convShortcut ? ctx.module(m.convShortcut, a) : x;
  return ctx.node('Add', [short, out], out.shape, nameOf(m));
});

// ---- transformer encoder (arch 'bert') ---------------------------------------------------
// Graph input: int64 token ids [batch, L], the batch dynamic and L fixed at export time (the
// model's maxLen unless inputShape says otherwise; at most maxLen). Shorter texts are right-padded
// with id 0 up to L: padded keys are masked out of every attention row and the pooler reads
// position 0, so the logits equal kdistill's on the unpadded ids. The padding mask is computed in
// the graph from the ids (Equal/Not/Unsqueeze, then Where(mask, scores, −∞) before Softmax, as
// kdistill's maskedFill), so the file takes one input like every other exported model.
// The MLM head is not part of forward() (the classifier's logits) and is not exported.

/** The key mask of the encoder being exported, for its attention layers (forward passes it as an argument). */
const KEY_MASK = new WeakMap<OnnxGraph, Value>();
/** The attention_mask and token_type_ids inputs of a graph exported with huggingfaceInputs. */
const HF_INPUTS = new WeakMap<OnnxGraph, { mask: Value; types: Value }>();

registerOnnxExporter(Tap, (_ctx, _m, x) => x);

registerOnnxExporter(BertEmbeddings, (ctx, m, ids) => {
  if (ids.dtype !== 'int64' || ids.shape.length !== 2) {
    throw new Error(`ONNX export: ${where(m)} takes int64 token ids [batch, length], gets ${ids.dtype} [${ids.shape.join(', ')}]`);
  }
  const L = ids.shape[1]!;
  if (L !== null && L > m.position.numEmbeddings) throw new RangeError(`ONNX export: ${where(m)}: sequence length ${L} exceeds maxLen ${m.position.numEmbeddings}`);
  const word = ctx.module(m.word, ids);
  const N = L ?? m.position.numEmbeddings;
  let posIds = ctx.constant(nameOf(m, '.position_ids'), Array.from({ length: N }, (_, i) => i), [N], 'int64');
  if (L === null) {
    // Any length: the first Shape(ids)[1] positions.
    const shape = ctx.node('Shape', [ids], [2], nameOf(m, '.ids_shape'), undefined, 'int64');
    const zero = ctx.constant(nameOf(m, '.zero'), [0], [1], 'int64'), one = ctx.constant(nameOf(m, '.one'), [1], [1], 'int64');
    const len = ctx.node('Slice', [shape, one, ctx.constant(nameOf(m, '.two'), [2], [1], 'int64'), zero], [1], nameOf(m, '.length'), undefined, 'int64');
    posIds = ctx.node('Slice', [posIds, zero, len, zero], [null], nameOf(m, '.positions'), undefined, 'int64');
  }
  const pos = ctx.module(m.position, posIds);
  let sum = ctx.node('Add', [word, pos], word.shape, nameOf(m, '.sum'));
  const hf = HF_INPUTS.get(ctx.graph);
  if (m.tokenType && hf) {
    sum = ctx.node('Add', [sum, ctx.module(m.tokenType, hf.types)], word.shape, nameOf(m, '.sum_type'));
  } else if (m.tokenType) {
    // Segment embeddings: every token has type 0, so row 0 is added (as BertEmbeddings.forward).
    const row = noGrad(() => m.tokenType!.weight.select(0, 0).contiguous());
    try {
      sum = ctx.node('Add', [sum, ctx.weight(m, 'token_type_row0', row)], word.shape, nameOf(m, '.sum_type'));
    } finally {
      row.dispose();
    }
  }
  return ctx.module(m.drop, ctx.module(m.norm, sum));
});

registerOnnxExporter(MultiHeadSelfAttention, (ctx, m, x) => {
  const B = x.shape[0] ?? null;
  const [H] = known(x, 1) as [number];
  const L = x.shape[1] ?? null;
  const nh = m.heads, d = m.headDim;
  if (H !== m.hidden) throw new Error(`ONNX export: ${where(m)} expects hidden size ${m.hidden}, gets [${x.shape.join(', ')}]`);
  // Reshape's 0 copies the (dynamic) batch dimension.
  const heads = ctx.constant(nameOf(m, '.heads_shape'), [0, L ?? -1, nh, d], [4], 'int64');
  const split = (v: Value, tag: string, perm: number[], shape: (number | null)[]): Value =>
    ctx.node('Transpose', [ctx.node('Reshape', [v, heads], [B, L, nh, d], nameOf(m, `.${tag}_split`))], shape, nameOf(m, `.${tag}_heads`), { perm });
  const q = split(ctx.module(m.query, x), 'q', [0, 2, 1, 3], [B, nh, L, d]);
  const kT = split(ctx.module(m.key, x), 'k', [0, 2, 3, 1], [B, nh, d, L]);
  const v = split(ctx.module(m.value, x), 'v', [0, 2, 1, 3], [B, nh, L, d]);
  const s4 = [B, nh, L, L];
  const raw = ctx.node('Mul', [ctx.node('MatMul', [q, kT], s4, nameOf(m, '.qk')), ctx.constant(nameOf(m, '.inv_sqrt_d'), [1 / Math.sqrt(d)], [])], s4, nameOf(m, '.raw_scores'));
  const mask = KEY_MASK.get(ctx.graph);
  const logits = mask
    ? ctx.node('Where', [mask, raw, ctx.constant(nameOf(m, '.neg_inf'), [-Infinity], [])], s4, nameOf(m, '.masked_scores'), undefined, 'float32')
    : raw;
  const probs = ctx.module(m.probs, ctx.node('Softmax', [logits], s4, nameOf(m, '.softmax'), { axis: -1 }));
  const ctxHeads = ctx.node('MatMul', [ctx.module(m.drop, probs), v], [B, nh, L, d], nameOf(m, '.context'));
  const merged = ctx.node('Reshape', [
    ctx.node('Transpose', [ctxHeads], [B, L, nh, d], nameOf(m, '.context_t'), { perm: [0, 2, 1, 3] }),
    ctx.constant(nameOf(m, '.merge_shape'), [0, L ?? -1, H], [3], 'int64'),
  ], [B, L, H], nameOf(m, '.merged'));
  return ctx.module(m.output, merged);
});

registerOnnxExporter(EncoderLayer, (ctx, m, x) => {
  const a = ctx.module(m.drop, ctx.module(m.attention, x));
  const h = ctx.module(m.attnNorm, ctx.node('Add', [x, a], x.shape, nameOf(m, '.attn_residual')));
  const inter = ctx.module(m.intermediate, h);
  const f = ctx.module(m.drop, ctx.module(m.output, geluNodes(ctx, inter, 'none', nameOf(m, '.gelu'))));
  return ctx.module(m.outNorm, ctx.node('Add', [h, f], h.shape, nameOf(m, '.ffn_residual')));
});

registerOnnxExporter(Pooler, (ctx, m, h) => {
  const H = known(h, 1)[0]!;
  const cls = ctx.node('Gather', [h, ctx.constant(nameOf(m, '.cls_index'), [0], [], 'int64')], [h.shape[0] ?? null, H], nameOf(m, '.cls'), { axis: 1 });
  const y = ctx.module(m.dense, cls);
  return ctx.node('Tanh', [y], y.shape, nameOf(m));
});

registerOnnxExporter(BertEncoder, (ctx, m, ids) => {
  if (ids.dtype !== 'int64' || ids.shape.length !== 2) {
    throw new Error(`ONNX export: ${where(m)} takes int64 token ids [batch, length] (inputDtype 'int64'), gets ${ids.dtype} [${ids.shape.join(', ')}]`);
  }
  // Key mask [B, 1, 1, L]: true where the token is real (id != PAD_ID), as paddingMask(); with
  // Hugging Face's inputs, where attention_mask is 1 (its tokenizer pads with [PAD] = 0 and mask 0).
  const hf = HF_INPUTS.get(ctx.graph);
  const attend = hf
    ? ctx.node('Cast', [hf.mask], ids.shape, nameOf(m, '.attend'), { to: 9 }, 'bool')
    : ctx.node('Not', [ctx.node('Equal', [ids, ctx.constant(nameOf(m, '.pad_id'), [PAD_ID], [], 'int64')], ids.shape, nameOf(m, '.is_pad'), undefined, 'bool')], ids.shape, nameOf(m, '.attend'), undefined, 'bool');
  const mask = ctx.node('Unsqueeze', [attend, ctx.constant(nameOf(m, '.mask_axes'), [1, 2], [2], 'int64')], [ids.shape[0] ?? null, 1, 1, ids.shape[1]!], nameOf(m, '.key_mask'), undefined, 'bool');
  let h = ctx.module(m.embeddings, ids);
  KEY_MASK.set(ctx.graph, mask);
  try {
    for (const l of m.layers) h = ctx.module(l, h);
  } finally {
    KEY_MASK.delete(ctx.graph);
  }
  return ctx.module(m.classifier, ctx.module(m.drop, ctx.module(m.pooler, h)));
});
