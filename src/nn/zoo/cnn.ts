// A plain CNN: per stage a 3×3 conv → batch norm → ReLU → 2×2 max pool, then a hidden linear
// layer with dropout and the classifier. Cheap enough to train a strong Fashion-MNIST teacher on
// two CPU cores (channels [32, 64], hidden 256: ~0.8M parameters, ~4.6M multiply-adds per image).
import { Tensor } from '../../tensor/tensor.js';
import { BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential } from '../layers.js';
import type { Module } from '../module.js';
import { ZooModel, type ModelSpec } from './common.js';

export interface CNNSpec extends ModelSpec {
  arch: 'cnn';
  numClasses: number;
  inChannels: number;
  inputSize: [number, number];
  channels: number[];
  hidden: number;
  dropout: number;
}

export class CNN extends ZooModel {
  readonly spec: CNNSpec;
  readonly featureNames: string[];
  readonly embeddingName = 'fc1';
  readonly headName = 'fc2';
  readonly inputShape: number[];
  readonly #order: Module[] = [];

  constructor(spec: CNNSpec) {
    super();
    this.spec = spec;
    this.inputShape = [spec.inChannels, ...spec.inputSize];
    let [h, w] = spec.inputSize;
    let c = spec.inChannels;
    const add = (name: string, m: Module): void => { this.#order.push(this.registerModule(name, m)); };
    spec.channels.forEach((out, i) => {
      if (h < 2 || w < 2) throw new RangeError(`cnn: inputSize ${JSON.stringify(spec.inputSize)} is too small for ${spec.channels.length} pooling stages`);
      add(`stage${i + 1}`, new Sequential(new Conv2d(c, out, 3, { padding: 1, bias: false }), new BatchNorm2d(out), new ReLU(), new MaxPool2d(2)));
      c = out;
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
    });
    this.featureNames = spec.channels.map((_, i) => `stage${i + 1}`);
    add('flatten', new Flatten());
    add('fc1', new Sequential(new Linear(c * h * w, spec.hidden), new ReLU(), new Dropout(spec.dropout)));
    add('fc2', new Linear(spec.hidden, spec.numClasses));
  }

  forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this.#order) h = m.call(h);
    return h;
  }
}
