// VGG-style CNNs with batch norm for small images, as in the CRD / mdistiller repos (vgg8 =
// config 'S', vgg11/13/16/19): five conv blocks separated by 2×2 max pools, global average
// pooling and one linear classifier. Names follow mdistiller (block0.0.weight, classifier.weight).
// Each block also ends with the ReLU that mdistiller applies functionally, so the block's output
// is the post-activation feature; parameter-free, it leaves the state-dict keys unchanged.
import { Tensor } from '../../tensor/tensor.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Identity, Linear, MaxPool2d, ReLU, Sequential } from '../layers.js';
import type { Module } from '../module.js';
import { normal_, ones_, zeros_ } from '../init.js';
import { ZooModel, type ModelSpec } from './common.js';

export const VGG_CONFIGS: Record<string, number[][]> = {
  vgg8: [[64], [128], [256], [512], [512]],
  vgg11: [[64], [128], [256, 256], [512, 512], [512, 512]],
  vgg13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
  vgg16: [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
  vgg19: [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
};

export interface VGGSpec extends ModelSpec {
  arch: string;
  numClasses: number;
  inChannels: number;
  inputSize: [number, number];
  batchNorm: boolean;
}

export class VGG extends ZooModel {
  readonly spec: VGGSpec;
  readonly featureNames = ['block0', 'block1', 'block2', 'block3', 'block4'];
  readonly embeddingName = 'flatten';
  readonly headName = 'classifier';
  readonly inputShape: number[];
  readonly blocks: Sequential[] = [];
  readonly pools: Module[] = [];
  readonly flatten: Flatten;
  readonly classifier: Linear;

  constructor(spec: VGGSpec) {
    super();
    const cfg = VGG_CONFIGS[spec.arch];
    if (!cfg) throw new RangeError(`vgg: unknown arch '${spec.arch}' (known: ${Object.keys(VGG_CONFIGS).join(', ')})`);
    this.spec = spec;
    this.inputShape = [spec.inChannels, ...spec.inputSize];
    let inC = spec.inChannels;
    for (let i = 0; i < 5; i++) {
      this.blocks.push(this.registerModule(`block${i}`, this.makeBlock(cfg[i]!, spec.batchNorm, inC)));
      inC = cfg[i]![cfg[i]!.length - 1]!;
    }
    // mdistiller applies pool3 only for 64×64 inputs; smaller inputs keep block4 at the 1/8 scale.
    const pool3 = Math.min(...spec.inputSize) >= 64 ? new MaxPool2d(2, { stride: 2 }) : new Identity();
    for (let i = 0; i < 3; i++) this.pools.push(this.registerModule(`pool${i}`, new MaxPool2d(2, { stride: 2 })));
    this.pools.push(this.registerModule('pool3', pool3));
    this.pools.push(this.registerModule('pool4', new AdaptiveAvgPool2d(1)));
    this.flatten = this.registerModule('flatten', new Flatten());
    this.classifier = this.registerModule('classifier', new Linear(inC, spec.numClasses));
    for (const [, m] of this.namedModules()) {
      if (m instanceof Conv2d) {
        normal_(m.weight, 0, Math.sqrt(2 / (m.kernelSize[0] * m.kernelSize[1] * m.outChannels)));
        if (m.bias) zeros_(m.bias);
      } else if (m instanceof BatchNorm2d) {
        if (m.weight) ones_(m.weight);
        if (m.bias) zeros_(m.bias);
      } else if (m instanceof Linear) {
        normal_(m.weight, 0, 0.01);
        if (m.bias) zeros_(m.bias);
      }
    }
  }

  private makeBlock(widths: number[], bn: boolean, inC: number): Sequential {
    const seq = new Sequential();
    for (const w of widths) {
      seq.append(new Conv2d(inC, w, 3, { padding: 1 }));
      if (bn) seq.append(new BatchNorm2d(w));
      seq.append(new ReLU());
      inC = w;
    }
    return seq;
  }

  forward(x: Tensor): Tensor {
    let h = this.blocks[0]!.call(x);
    for (let i = 1; i < 5; i++) h = this.blocks[i]!.call(this.pools[i - 1]!.call(h));
    return this.classifier.call(this.flatten.call(this.pools[4]!.call(h)));
  }
}
