// Wide ResNets WRN-d-w (Zagoruyko & Komodakis 2016) as in the CRD / mdistiller repos:
// pre-activation blocks in three NetworkBlocks of (d-4)/6 blocks with widths 16w, 32w, 64w.
// Names follow mdistiller (block1.layer.0.bn1.weight, ...), so state dicts load 1:1. Pooling is
// adaptive (mdistiller's avg_pool2d(8) on 32×32 inputs), so 28×28 inputs work too.
import { Module } from '../module.js';
import { Tensor } from '../../tensor/tensor.js';
import * as F from '../../tensor/functional.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Sequential } from '../layers.js';
import { normal_, zeros_ } from '../init.js';
import { ZooModel, type ModelSpec } from './common.js';

/** bn-relu-conv-bn-relu-(dropout)-conv, added to x (or to a 1×1 conv of relu(bn(x)) when widths differ). */
export class WideBasicBlock extends Module {
  readonly bn1: BatchNorm2d;
  readonly relu1: ReLU;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly relu2: ReLU;
  readonly conv2: Conv2d;
  readonly convShortcut: Conv2d | null;
  readonly equalInOut: boolean;
  constructor(inPlanes: number, outPlanes: number, stride: number, readonly dropRate = 0) {
    super();
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(inPlanes));
    this.relu1 = this.registerModule('relu1', new ReLU());
    this.conv1 = this.registerModule('conv1', new Conv2d(inPlanes, outPlanes, 3, { stride, padding: 1, bias: false }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(outPlanes));
    this.relu2 = this.registerModule('relu2', new ReLU());
    this.conv2 = this.registerModule('conv2', new Conv2d(outPlanes, outPlanes, 3, { stride: 1, padding: 1, bias: false }));
    this.equalInOut = inPlanes === outPlanes;
    this.convShortcut = this.equalInOut ? null
      : this.registerModule('convShortcut', new Conv2d(inPlanes, outPlanes, 1, { stride, padding: 0, bias: false }));
  }
  forward(x: Tensor): Tensor {
    const a = this.relu1.call(this.bn1.call(x));
    let out = this.relu2.call(this.bn2.call(this.conv1.call(a)));
    if (this.dropRate > 0) out = F.dropout(out, this.dropRate, this.training);
    out = this.conv2.call(out);
    // As in the reference: the identity path adds raw x, the projection path projects relu(bn(x)).
    return (this.convShortcut ? this.convShortcut.call(a) : x).add(out);
  }
}

/** A stage of WRN blocks, held in `layer` as in mdistiller. */
export class NetworkBlock extends Module {
  readonly layer: Sequential;
  constructor(nbLayers: number, inPlanes: number, outPlanes: number, stride: number, dropRate = 0) {
    super();
    const seq = new Sequential();
    for (let i = 0; i < nbLayers; i++) seq.append(new WideBasicBlock(i === 0 ? inPlanes : outPlanes, outPlanes, i === 0 ? stride : 1, dropRate));
    this.layer = this.registerModule('layer', seq);
  }
  forward(x: Tensor): Tensor {
    return this.layer.call(x);
  }
}

export interface WRNSpec extends ModelSpec {
  arch: string;
  numClasses: number;
  inChannels: number;
  inputSize: [number, number];
  dropRate: number;
}

/** depth and widen factor from 'wrn_<depth>_<width>'. */
export function parseWRNArch(arch: string): { depth: number; widen: number } | null {
  const m = /^wrn_(\d+)_(\d+)$/.exec(arch);
  if (!m) return null;
  const depth = Number(m[1]), widen = Number(m[2]);
  if (depth < 10 || (depth - 4) % 6 !== 0 || widen < 1) return null;
  return { depth, widen };
}

export class WideResNet extends ZooModel {
  readonly spec: WRNSpec;
  readonly featureNames = ['conv1', 'block1', 'block2', 'block3', 'relu'];
  readonly embeddingName = 'flatten';
  readonly headName = 'fc';
  readonly inputShape: number[];
  readonly stageChannels: number[];
  readonly conv1: Conv2d;
  readonly block1: NetworkBlock;
  readonly block2: NetworkBlock;
  readonly block3: NetworkBlock;
  readonly bn1: BatchNorm2d;
  readonly relu: ReLU;
  readonly avgpool: AdaptiveAvgPool2d;
  readonly flatten: Flatten;
  readonly fc: Linear;

  constructor(spec: WRNSpec) {
    super();
    const parsed = parseWRNArch(spec.arch);
    if (!parsed) throw new RangeError(`wrn: arch '${spec.arch}' is not wrn_<depth>_<width> with depth = 6n + 4 ≥ 10`);
    this.spec = spec;
    this.inputShape = [spec.inChannels, ...spec.inputSize];
    const { depth, widen } = parsed;
    const ch = [16, 16 * widen, 32 * widen, 64 * widen];
    this.stageChannels = ch;
    const n = (depth - 4) / 6;
    this.conv1 = this.registerModule('conv1', new Conv2d(spec.inChannels, ch[0]!, 3, { stride: 1, padding: 1, bias: false }));
    this.block1 = this.registerModule('block1', new NetworkBlock(n, ch[0]!, ch[1]!, 1, spec.dropRate));
    this.block2 = this.registerModule('block2', new NetworkBlock(n, ch[1]!, ch[2]!, 2, spec.dropRate));
    this.block3 = this.registerModule('block3', new NetworkBlock(n, ch[2]!, ch[3]!, 2, spec.dropRate));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(ch[3]!));
    this.relu = this.registerModule('relu', new ReLU());
    this.avgpool = this.registerModule('avgpool', new AdaptiveAvgPool2d(1));
    this.flatten = this.registerModule('flatten', new Flatten());
    this.fc = this.registerModule('fc', new Linear(ch[3]!, spec.numClasses));
    // The reference init: convs N(0, 2/(k·k·out)), BN 1/0 (already), linear bias 0.
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d) normal_(m.weight, 0, Math.sqrt(2 / (m.kernelSize[0] * m.kernelSize[1] * m.outChannels)));
      else if (m instanceof Linear && m.bias) zeros_(m.bias);
    }
  }

  forward(x: Tensor): Tensor {
    let h = this.conv1.call(x);
    h = this.block3.call(this.block2.call(this.block1.call(h)));
    h = this.relu.call(this.bn1.call(h));
    return this.fc.call(this.flatten.call(this.avgpool.call(h)));
  }
}
