// LeNet-5 style CNN (LeCun et al. 1998, with max pooling and a chosen activation): two 5×5
// conv + pool stages and three linear layers (120, 84, classes). The first conv pads by 2 on
// inputs smaller than 32×32, so 28×28 MNIST-style images get LeNet's 32×32 geometry.
import { Tensor } from '../../tensor/tensor.js';
import { activation, Conv2d, Flatten, Linear, MaxPool2d, type ActivationName } from '../layers.js';
import type { Module } from '../module.js';
import { convOut, ZooModel, type ModelSpec } from './common.js';

export interface LeNetSpec extends ModelSpec {
  arch: 'lenet5';
  numClasses: number;
  inChannels: number;
  inputSize: [number, number];
  activation: ActivationName;
  /**
   * Multiplies every layer's width (6, 16, 120, 84); 0.5 is DAFL's LeNet-5-half (3, 8, 60, 42).
   * Absent: 1 (specs of models saved before it keep loading unchanged).
   */
  width?: number;
}

/** Spatial size after conv1(5, pad) → pool2 → conv2(5) → pool2, or null when too small. */
export function lenetGeometry(inputSize: [number, number]): { padding: number; out: [number, number] } | null {
  const padding = Math.min(...inputSize) < 32 ? 2 : 0;
  const f = (s: number): number => convOut(convOut(convOut(convOut(s, 5, 1, padding), 2, 2), 5), 2, 2);
  const out: [number, number] = [f(inputSize[0]), f(inputSize[1])];
  return out[0] >= 1 && out[1] >= 1 ? { padding, out } : null;
}

export class LeNet5 extends ZooModel {
  readonly spec: LeNetSpec;
  readonly featureNames = ['act1', 'act2', 'act3', 'act4'];
  readonly embeddingName = 'act4';
  readonly headName = 'fc3';
  readonly inputShape: number[];
  readonly #order: Module[] = [];

  constructor(spec: LeNetSpec) {
    super();
    this.spec = spec;
    this.inputShape = [spec.inChannels, ...spec.inputSize];
    const g = lenetGeometry(spec.inputSize);
    if (!g) throw new RangeError(`lenet5: inputSize [${spec.inputSize.join(', ')}] is too small (needs at least 12×12)`);
    const add = (name: string, m: Module): void => { this.#order.push(this.registerModule(name, m)); };
    const w = (n: number): number => Math.max(1, Math.round(n * (spec.width ?? 1)));
    add('conv1', new Conv2d(spec.inChannels, w(6), 5, { padding: g.padding }));
    add('act1', activation(spec.activation));
    add('pool1', new MaxPool2d(2));
    add('conv2', new Conv2d(w(6), w(16), 5));
    add('act2', activation(spec.activation));
    add('pool2', new MaxPool2d(2));
    add('flatten', new Flatten());
    add('fc1', new Linear(w(16) * g.out[0] * g.out[1], w(120)));
    add('act3', activation(spec.activation));
    add('fc2', new Linear(w(120), w(84)));
    add('act4', activation(spec.activation));
    add('fc3', new Linear(w(84), spec.numClasses));
  }

  forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this.#order) h = m.call(h);
    return h;
  }
}
