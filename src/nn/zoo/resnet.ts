// CIFAR-style ResNets as in the CRD / mdistiller repos (resnet8 ... resnet110, resnet8x4,
// resnet32x4): a 3×3 stem, three stages of BasicBlocks (stride 1, 2, 2), global average pooling
// and a linear head. Module names follow mdistiller, so state dicts load 1:1. Two deliberate
// differences: the input channel count is configurable, and the pooling is adaptive (equal to
// mdistiller's AvgPool2d(8) on 32×32 inputs, and still valid on 28×28 ones).
import { Module } from '../module.js';
import { Tensor } from '../../tensor/tensor.js';
import * as F from '../../tensor/functional.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Identity, Linear, ReLU, Sequential } from '../layers.js';
import { kaimingNormal_ } from '../init.js';
import { ZooModel, type ModelSpec } from './common.js';

const conv3x3 = (inp: number, out: number, stride = 1): Conv2d => new Conv2d(inp, out, 3, { stride, padding: 1, bias: false });

/**
 * conv-bn-relu-conv-bn, plus the shortcut (identity, or 1×1 conv + bn when the shape changes),
 * then relu. The sum before the last relu passes through `preact` (an Identity), so the
 * pre-activation feature that OFD-style methods read is `<block>.preact`.
 */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly relu: ReLU;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Module | null;
  readonly preact: Identity;
  constructor(inplanes: number, planes: number, stride = 1, downsample: Module | null = null) {
    super();
    this.conv1 = this.registerModule('conv1', conv3x3(inplanes, planes, stride));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.relu = this.registerModule('relu', new ReLU());
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.downsample = downsample ? this.registerModule('downsample', downsample) : null;
    this.preact = this.registerModule('preact', new Identity());
  }
  forward(x: Tensor): Tensor {
    let out = this.relu.call(this.bn1.call(this.conv1.call(x)));
    out = this.bn2.call(this.conv2.call(out));
    const residual = this.downsample ? this.downsample.call(x) : x;
    out = this.preact.call(out.add(residual));
    return F.relu(out);
  }
}

export interface ResNetSpec extends ModelSpec {
  arch: string;
  numClasses: number;
  inChannels: number;
  inputSize: [number, number];
}

/** depth and stage widths for 'resnet<depth>' and 'resnet<depth>x4'. */
export function parseResNetArch(arch: string): { depth: number; filters: number[] } | null {
  const m = /^resnet(\d+)(x4)?$/.exec(arch);
  if (!m) return null;
  const depth = Number(m[1]);
  if (depth < 8 || (depth - 2) % 6 !== 0) return null;
  return { depth, filters: m[2] ? [32, 64, 128, 256] : [16, 16, 32, 64] };
}

export class CifarResNet extends ZooModel {
  readonly spec: ResNetSpec;
  readonly featureNames = ['relu', 'layer1', 'layer2', 'layer3'];
  readonly embeddingName = 'flatten';
  readonly headName = 'fc';
  readonly inputShape: number[];
  /** Channels of relu (stem), layer1, layer2, layer3 outputs (mdistiller's stage_channels). */
  readonly stageChannels: number[];
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly relu: ReLU;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly avgpool: AdaptiveAvgPool2d;
  readonly flatten: Flatten;
  readonly fc: Linear;
  #inplanes: number;

  constructor(spec: ResNetSpec) {
    super();
    const parsed = parseResNetArch(spec.arch);
    if (!parsed) throw new RangeError(`resnet: arch '${spec.arch}' is not resnet<depth> or resnet<depth>x4 with depth = 6n + 2 ≥ 8`);
    this.spec = spec;
    this.inputShape = [spec.inChannels, ...spec.inputSize];
    const { depth, filters } = parsed;
    const n = (depth - 2) / 6;
    this.stageChannels = filters;
    this.#inplanes = filters[0]!;
    this.conv1 = this.registerModule('conv1', new Conv2d(spec.inChannels, filters[0]!, 3, { padding: 1, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(filters[0]!));
    this.relu = this.registerModule('relu', new ReLU());
    this.layer1 = this.registerModule('layer1', this.makeLayer(filters[1]!, n, 1));
    this.layer2 = this.registerModule('layer2', this.makeLayer(filters[2]!, n, 2));
    this.layer3 = this.registerModule('layer3', this.makeLayer(filters[3]!, n, 2));
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.flatten = this.registerModule('flatten', new Flatten());
    this.fc = this.registerModule('fc', new Linear(filters[3]! * BasicBlock.expansion, spec.numClasses));
    // mdistiller's init: He normal (fan_out) on convs, BN at 1/0 (already), fc keeps PyTorch's default.
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d) kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
    }
  }

  private makeLayer(planes: number, blocks: number, stride: number): Sequential {
    let downsample: Module | null = null;
    if (stride !== 1 || this.#inplanes !== planes * BasicBlock.expansion) {
      downsample = new Sequential(
        new Conv2d(this.#inplanes, planes * BasicBlock.expansion, 1, { stride, bias: false }),
        new BatchNorm2d(planes * BasicBlock.expansion),
      );
    }
    const seq = new Sequential(new BasicBlock(this.#inplanes, planes, stride, downsample));
    this.#inplanes = planes * BasicBlock.expansion;
    for (let i = 1; i < blocks; i++) seq.append(new BasicBlock(this.#inplanes, planes));
    return seq;
  }

  forward(x: Tensor): Tensor {
    let h = this.relu.call(this.bn1.call(this.conv1.call(x)));
    h = this.layer3.call(this.layer2.call(this.layer1.call(h)));
    return this.fc.call(this.flatten.call(this.avgpool.call(h)));
  }
}
