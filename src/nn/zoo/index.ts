// The model zoo registry: createModel(spec) builds a model from a plain JSON object (what
// experiment files and checkpoint metadata hold), validating every field; listModels() tells
// what exists, its options and the feature names that forwardWithFeatures accepts.
import { ACTIVATIONS, type ActivationName } from '../layers.js';
import { ZooModel } from './common.js';
import { CifarResNet, parseResNetArch } from './resnet.js';
import { WideResNet, parseWRNArch } from './wrn.js';
import { VGG, VGG_CONFIGS } from './vgg.js';
import { LeNet5, lenetGeometry } from './lenet.js';
import { MLP } from './mlp.js';
import { CNN } from './cnn.js';
import { BertEncoder } from './transformer.js';

export { ZooModel, type ModelSpec } from './common.js';
export { CifarResNet, BasicBlock, type ResNetSpec } from './resnet.js';
export { WideResNet, WideBasicBlock, NetworkBlock, type WRNSpec } from './wrn.js';
export { VGG, VGG_CONFIGS, type VGGSpec } from './vgg.js';
export { LeNet5, type LeNetSpec } from './lenet.js';
export { MLP, MLPBlock, type MLPSpec } from './mlp.js';
export { CNN, type CNNSpec } from './cnn.js';
export { BertEncoder, initStudentFromTeacher, EncoderLayer, MultiHeadSelfAttention, BertEmbeddings, MlmHead, Pooler, paddingMask, PAD_ID, type BertSpec } from './transformer.js';

export interface OptionInfo { type: string; default?: unknown; required?: boolean; description: string }
export interface ModelInfo {
  arch: string;
  family: 'resnet' | 'wrn' | 'vgg' | 'lenet' | 'mlp' | 'cnn' | 'bert';
  description: string;
  options: Record<string, OptionInfo>;
  /** Names for forwardWithFeatures: stage outputs, the flattened embedding and the logits. */
  features: string[];
  embedding: string;
  head: string;
  /** Other names that also work (dotted paths of any submodule). */
  featureNotes: string;
}

const NUM_CLASSES: OptionInfo = { type: 'integer ≥ 2', required: true, description: 'number of output classes (logits)' };
const IN_CHANNELS: OptionInfo = { type: 'integer ≥ 1', default: 3, description: 'input channels (1 for Fashion-MNIST)' };
const INPUT_SIZE: OptionInfo = { type: '[height, width] or an integer', default: [32, 32], description: 'input image size' };
const INPUT_SHAPE_CONV: OptionInfo = { type: '[channels, height, width]', description: 'alternative to inChannels + inputSize' };

const RESNETS = ['resnet8', 'resnet14', 'resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110', 'resnet8x4', 'resnet32x4'];
const WRNS = ['wrn_16_1', 'wrn_16_2', 'wrn_40_1', 'wrn_40_2', 'wrn_28_4', 'wrn_28_10'];

function resnetInfo(arch: string): ModelInfo {
  const p = parseResNetArch(arch)!;
  const n = (p.depth - 2) / 6;
  return {
    arch, family: 'resnet',
    description: `CIFAR ResNet-${p.depth} (${n} BasicBlocks per stage, widths ${p.filters.join('/')}) as in CRD/mdistiller`,
    options: { numClasses: NUM_CLASSES, inChannels: IN_CHANNELS, inputSize: INPUT_SIZE, inputShape: INPUT_SHAPE_CONV },
    features: ['relu', 'layer1', 'layer2', 'layer3'], embedding: 'flatten', head: 'fc',
    featureNotes: `relu = stem output; layer<k> = stage outputs (after the last block's relu); layer<k>.<i>.preact = block i's sum before its relu (i in 0..${n - 1}); avgpool = [N, C, 1, 1]`,
  };
}
function wrnInfo(arch: string): ModelInfo {
  const p = parseWRNArch(arch)!;
  return {
    arch, family: 'wrn',
    description: `Wide ResNet-${p.depth}-${p.widen} (${(p.depth - 4) / 6} blocks per stage, widths ${[16, 16 * p.widen, 32 * p.widen, 64 * p.widen].join('/')}) as in CRD/mdistiller`,
    options: {
      numClasses: NUM_CLASSES, inChannels: IN_CHANNELS, inputSize: INPUT_SIZE, inputShape: INPUT_SHAPE_CONV,
      dropRate: { type: 'number in [0, 1)', default: 0, description: 'dropout between the two convs of each block' },
    },
    features: ['conv1', 'block1', 'block2', 'block3', 'relu'], embedding: 'flatten', head: 'fc',
    featureNotes: 'conv1 = stem; block<k> = stage outputs (pre-activation); relu = relu(bn1(block3)); block<k>.layer.<i>.bn1 = pre-relu BN outputs',
  };
}
function vggInfo(arch: string): ModelInfo {
  return {
    arch, family: 'vgg',
    description: `VGG-style CNN ${arch} (conv widths ${VGG_CONFIGS[arch]!.map((b) => b.join('-')).join(' | ')}), global average pool, one linear layer, as in CRD/mdistiller`,
    options: {
      numClasses: NUM_CLASSES, inChannels: IN_CHANNELS, inputSize: INPUT_SIZE, inputShape: INPUT_SHAPE_CONV,
      batchNorm: { type: 'boolean', default: true, description: 'batch norm after every conv' },
    },
    features: ['block0', 'block1', 'block2', 'block3', 'block4'], embedding: 'flatten', head: 'classifier',
    featureNotes: 'block<k> = post-relu block outputs at scales 1, 1/2, 1/4, 1/8, 1/8 (1/16 for ≥ 64×64 inputs); pool<k> = pooled',
  };
}
const LENET_INFO: ModelInfo = {
  arch: 'lenet5', family: 'lenet',
  description: 'LeNet-5 style CNN: conv5×5(6) → pool → conv5×5(16) → pool → 120 → 84 → classes',
  options: {
    numClasses: NUM_CLASSES, inChannels: { ...IN_CHANNELS, default: 1 }, inputSize: { ...INPUT_SIZE, default: [28, 28] }, inputShape: INPUT_SHAPE_CONV,
    activation: { type: ACTIVATIONS.join(' | '), default: 'relu', description: 'activation after every layer but the last' },
    width: { type: 'number > 0', default: 1, description: "multiplies every layer's width (6, 16, 120, 84); 0.5 = DAFL's LeNet-5-half" },
  },
  features: ['act1', 'act2', 'act3', 'act4'], embedding: 'act4', head: 'fc3',
  featureNotes: 'act1/act2 = conv outputs after activation (pool1/pool2 after pooling); act3/act4 = hidden linear outputs',
};
const CNN_INFO: ModelInfo = {
  arch: 'cnn', family: 'cnn',
  description: 'plain CNN: per stage conv3×3 → batch norm → ReLU → max pool 2×2, then linear(hidden) → ReLU → dropout → classes',
  options: {
    numClasses: NUM_CLASSES, inChannels: { ...IN_CHANNELS, default: 1 }, inputSize: { ...INPUT_SIZE, default: [28, 28] }, inputShape: INPUT_SHAPE_CONV,
    channels: { type: 'array of integers ≥ 1', default: [32, 64], description: 'output channels of each conv stage' },
    hidden: { type: 'integer ≥ 1', default: 256, description: 'width of the hidden linear layer' },
    dropout: { type: 'number in [0, 1)', default: 0, description: 'dropout after the hidden layer' },
  },
  features: ['stage1', '…', 'stage<k>', 'fc1'], embedding: 'fc1', head: 'fc2',
  featureNotes: 'stage<i> = output of the i-th conv stage after pooling; fc1 = hidden representation',
};
const MLP_INFO: ModelInfo = {
  arch: 'mlp', family: 'mlp',
  description: 'multi-layer perceptron: flatten → [linear → (batch norm) → activation → (dropout)] per hidden width → linear',
  options: {
    inputShape: { type: 'array of integers ≥ 1', required: true, description: 'per-sample input shape, e.g. [1, 28, 28] or [16]' },
    hidden: { type: 'array of integers ≥ 1', default: [], description: 'hidden layer widths, e.g. [256, 256]' },
    numClasses: NUM_CLASSES,
    activation: { type: ACTIVATIONS.join(' | '), default: 'relu', description: 'hidden activation' },
    dropout: { type: 'number in [0, 1)', default: 0, description: 'dropout after each hidden activation' },
    inputDropout: { type: 'number in [0, 1)', default: 0, description: 'dropout on the input features (0.2 in Hinton et al.\'s MNIST nets)' },
    batchNorm: { type: 'boolean', default: false, description: 'batch norm before each hidden activation (the linear then has no bias)' },
  },
  features: ['layer1', '…', 'layer<k>'], embedding: 'layer<k> (flatten when hidden is empty)', head: 'fc',
  featureNotes: 'layer<i> = i-th hidden representation after activation (and dropout); layer<i>.linear = its pre-activation',
};

const BERT_INFO: ModelInfo = {
  arch: 'bert', family: 'bert',
  description: 'BERT-style text encoder: token + position embeddings, post-LN self-attention layers with a padding mask (id 0), GELU FFN, tanh pooler on [CLS], classifier; optional tied MLM head',
  options: {
    vocabSize: { type: 'integer ≥ 2', required: true, description: 'vocabulary size of the tokenizer (ids 0..vocabSize-1, 0 = [PAD])' },
    maxLen: { type: 'integer ≥ 1', default: 128, description: 'longest input sequence (position embeddings)' },
    layers: { type: 'integer ≥ 1', default: 4, description: 'encoder layers' },
    hidden: { type: 'integer ≥ 1', default: 128, description: 'hidden width (divisible by heads)' },
    heads: { type: 'integer ≥ 1', default: 4, description: 'attention heads' },
    ffn: { type: 'integer ≥ 1', default: 512, description: 'feed-forward width' },
    numClasses: { ...NUM_CLASSES, description: 'classes (softmax) or labels (multiLabel)' },
    multiLabel: { type: 'boolean', default: false, description: 'independent per-label sigmoid logits instead of one softmax' },
    dropout: { type: 'number in [0, 1)', default: 0.1, description: 'dropout on embeddings, attention probabilities and residual branches' },
    mlm: { type: 'boolean', default: false, description: 'build the masked-language-model head (tied to the token embeddings)' },
    typeVocabSize: { type: 'integer ≥ 0', default: 0, description: "token-type (segment) embeddings, as Hugging Face's BERT (2 there); every input token has type 0" },
    layerNormEps: { type: 'number > 0', default: 1e-12, description: 'LayerNorm epsilon' },
  },
  features: ['embeddings', 'layer0', '…', 'layer<n-1>'], embedding: 'pooler', head: 'classifier',
  featureNotes: 'inputs are token ids [B, L] (float32 or int64, 0 = padding); embeddings/layer<i> = [B, L, H] hidden states; layer<i>.attention.scores = pre-softmax maps [B, h, L, L] (0 on padded keys); layer<i>.attention.probs = attention probabilities',
};

/** Every named architecture with its options and feature names. */
export function listModels(): ModelInfo[] {
  return [...RESNETS.map(resnetInfo), ...WRNS.map(wrnInfo), ...Object.keys(VGG_CONFIGS).map(vggInfo), LENET_INFO, CNN_INFO, MLP_INFO, BERT_INFO];
}

function archInfo(arch: string): ModelInfo | null {
  if (parseResNetArch(arch)) return resnetInfo(arch);
  if (parseWRNArch(arch)) return wrnInfo(arch);
  if (arch in VGG_CONFIGS) return vggInfo(arch);
  if (arch === 'lenet5') return LENET_INFO;
  if (arch === 'mlp') return MLP_INFO;
  if (arch === 'cnn') return CNN_INFO;
  if (arch === 'bert') return BERT_INFO;
  return null;
}

// ---- validation ------------------------------------------------------------------------

class SpecReader {
  constructor(private readonly spec: Record<string, unknown>, private readonly arch: string) {}
  private fail(field: string, want: string): never {
    throw new TypeError(`model spec (arch '${this.arch}'): '${field}' must be ${want}, got ${JSON.stringify(this.spec[field])}`);
  }
  has(field: string): boolean {
    return this.spec[field] !== undefined;
  }
  int(field: string, min: number, def?: number): number {
    const v = this.spec[field] ?? def;
    if (v === undefined) throw new TypeError(`model spec (arch '${this.arch}'): '${field}' is required (an integer ≥ ${min})`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(field, `an integer ≥ ${min}`);
    return v;
  }
  fraction(field: string, def: number): number {
    const v = this.spec[field] ?? def;
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) this.fail(field, 'a number in [0, 1)');
    return v;
  }
  positive(field: string): number {
    const v = this.spec[field];
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) this.fail(field, 'a finite number > 0');
    return v;
  }
  bool(field: string, def: boolean): boolean {
    const v = this.spec[field] ?? def;
    if (typeof v !== 'boolean') this.fail(field, 'true or false');
    return v;
  }
  intList(field: string, min: number, len?: number, def?: number[]): number[] {
    const v = this.spec[field] ?? def;
    if (v === undefined) throw new TypeError(`model spec (arch '${this.arch}'): '${field}' is required (an array of integers ≥ ${min})`);
    const ok = Array.isArray(v) && (len === undefined || v.length === len) && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= min);
    if (!ok) this.fail(field, `an array of ${len ?? 'any number of'} integers ≥ ${min}`);
    return [...(v as number[])];
  }
  size(field: string, def: [number, number]): [number, number] {
    const v = this.spec[field];
    if (typeof v === 'number') return [this.int(field, 1), this.int(field, 1)];
    return this.intList(field, 1, 2, def) as [number, number];
  }
  activation(field: string): ActivationName {
    const v = this.spec[field] ?? 'relu';
    if (typeof v !== 'string' || !(ACTIVATIONS as readonly string[]).includes(v)) this.fail(field, `one of ${ACTIVATIONS.join(', ')}`);
    return v as ActivationName;
  }
  /** Image input: inChannels + inputSize, or inputShape [C, H, W] (not contradicting them). */
  image(defChannels: number, defSize: [number, number]): { inChannels: number; inputSize: [number, number] } {
    let inChannels = this.int('inChannels', 1, defChannels);
    let inputSize = this.size('inputSize', defSize);
    if (this.has('inputShape')) {
      const s = this.intList('inputShape', 1, 3);
      if ((this.has('inChannels') && s[0] !== inChannels) || (this.has('inputSize') && (s[1] !== inputSize[0] || s[2] !== inputSize[1]))) {
        throw new TypeError(`model spec (arch '${this.arch}'): 'inputShape' ${JSON.stringify(s)} contradicts 'inChannels'/'inputSize'`);
      }
      inChannels = s[0]!;
      inputSize = [s[1]!, s[2]!];
    }
    return { inChannels, inputSize };
  }
}

/** Builds a zoo model from its spec; throws naming the field at fault (or the known archs). */
/**
 * Activations under which a network of linear layers, convolutions, max pooling and (eval-mode)
 * batch norm is piecewise linear in its input: its Hessian is zero almost everywhere.
 */
export const PIECEWISE_LINEAR_ACTIVATIONS: readonly string[] = ['relu', 'leaky_relu', 'identity'];

/**
 * A zoo model's hidden nonlinearity, read from its spec: mlp and lenet5 name theirs, the cnn,
 * resnet, wrn and vgg families are ReLU networks, bert uses GELU. null when not a zoo model.
 */
export function modelActivation(model: unknown): string | null {
  if (!(model instanceof ZooModel)) return null;
  const { arch, activation } = model.spec;
  if (typeof activation === 'string') return activation;
  const family = archInfo(arch)?.family;
  if (family === 'bert') return 'gelu';
  return family === 'cnn' || family === 'resnet' || family === 'wrn' || family === 'vgg' ? 'relu' : null;
}

export function createModel(spec: unknown): ZooModel {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw new TypeError(`model spec must be an object like { arch: 'resnet8', numClasses: 10 }, got ${JSON.stringify(spec)}`);
  }
  const s = spec as Record<string, unknown>;
  const arch = s.arch;
  const info = typeof arch === 'string' ? archInfo(arch) : null;
  if (typeof arch !== 'string' || !info) {
    throw new TypeError(`model spec: unknown 'arch' ${JSON.stringify(arch)}; known: ${listModels().map((m) => m.arch).join(', ')} ` +
      `(also any resnet<6n+2>, resnet<6n+2>x4 and wrn_<6n+4>_<width>)`);
  }
  const allowed = new Set(['arch', ...Object.keys(info.options)]);
  const extra = Object.keys(s).filter((k) => !allowed.has(k));
  if (extra.length) {
    throw new TypeError(`model spec (arch '${arch}'): unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => `'${k}'`).join(', ')}; ` +
      `allowed: ${[...allowed].join(', ')}`);
  }
  const r = new SpecReader(s, arch);
  const numClasses = r.int('numClasses', 2);
  switch (info.family) {
    case 'resnet': {
      const img = r.image(3, [32, 32]);
      return new CifarResNet({ arch, numClasses, ...img });
    }
    case 'wrn': {
      const img = r.image(3, [32, 32]);
      return new WideResNet({ arch, numClasses, ...img, dropRate: r.fraction('dropRate', 0) });
    }
    case 'vgg': {
      const img = r.image(3, [32, 32]);
      if (Math.min(...img.inputSize) < 8) throw new TypeError(`model spec (arch '${arch}'): 'inputSize' must be at least 8×8 (three 2×2 pools), got ${JSON.stringify(img.inputSize)}`);
      return new VGG({ arch, numClasses, ...img, batchNorm: r.bool('batchNorm', true) });
    }
    case 'lenet': {
      const img = r.image(1, [28, 28]);
      if (!lenetGeometry(img.inputSize)) throw new TypeError(`model spec (arch 'lenet5'): 'inputSize' must be at least 12×12, got ${JSON.stringify(img.inputSize)}`);
      const width = r.has('width') ? r.positive('width') : 1;
      return new LeNet5({ arch: 'lenet5', numClasses, ...img, activation: r.activation('activation'), ...(width !== 1 ? { width } : {}) });
    }
    case 'cnn': {
      const img = r.image(1, [28, 28]);
      return new CNN({
        arch: 'cnn', numClasses, ...img, channels: r.intList('channels', 1, undefined, [32, 64]),
        hidden: r.int('hidden', 1, 256), dropout: r.fraction('dropout', 0),
      });
    }
    case 'bert': {
      const hidden = r.int('hidden', 1, 128), heads = r.int('heads', 1, 4);
      if (hidden % heads !== 0) throw new TypeError(`model spec (arch 'bert'): 'hidden' ${hidden} must be divisible by 'heads' ${heads}`);
      return new BertEncoder({
        arch: 'bert', numClasses, vocabSize: r.int('vocabSize', 2), maxLen: r.int('maxLen', 1, 128), layers: r.int('layers', 1, 4),
        hidden, heads, ffn: r.int('ffn', 1, 512), multiLabel: r.bool('multiLabel', false), dropout: r.fraction('dropout', 0.1), mlm: r.bool('mlm', false),
        // Optional keys stay out of the spec when unset, so older models' specs are unchanged.
        ...(r.int('typeVocabSize', 0, 0) > 0 ? { typeVocabSize: r.int('typeVocabSize', 0) } : {}),
        ...(r.has('layerNormEps') ? { layerNormEps: r.positive('layerNormEps') } : {}),
      });
    }
    case 'mlp':
      return new MLP({
        arch: 'mlp', numClasses,
        inputShape: ((): number[] => {
          const v = r.intList('inputShape', 1);
          if (v.length === 0) throw new TypeError("model spec (arch 'mlp'): 'inputShape' must not be empty");
          return v;
        })(),
        hidden: r.intList('hidden', 1, undefined, []),
        activation: r.activation('activation'),
        dropout: r.fraction('dropout', 0),
        inputDropout: r.fraction('inputDropout', 0),
        batchNorm: r.bool('batchNorm', false),
      });
  }
}
