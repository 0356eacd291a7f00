// Multi-layer perceptron: flatten, optional input dropout, then one block per hidden width (linear
// → optional batch norm → activation → optional dropout), then the linear head `fc`. Block i (1-based) is
// `layer<i>` with children linear/bn/act/dropout, so `layer2` is the second hidden representation.
import { Module } from '../module.js';
import { Tensor } from '../../tensor/tensor.js';
import { activation, BatchNorm1d, Dropout, Flatten, Linear, type ActivationName } from '../layers.js';
import { ZooModel, type ModelSpec } from './common.js';

export interface MLPSpec extends ModelSpec {
  arch: 'mlp';
  inputShape: number[];
  hidden: number[];
  numClasses: number;
  activation: ActivationName;
  dropout: number;
  /** Dropout on the input features (Hinton et al. 2012 / Srivastava et al. 2014 use 0.2 on MNIST pixels). */
  inputDropout: number;
  batchNorm: boolean;
}

export class MLPBlock extends Module {
  readonly linear: Linear;
  readonly bn: BatchNorm1d | null;
  readonly act: Module;
  readonly dropout: Dropout | null;
  constructor(inF: number, outF: number, act: ActivationName, dropout: number, batchNorm: boolean) {
    super();
    // A bias before batch norm is cancelled by its mean subtraction, so it is left out.
    this.linear = this.registerModule('linear', new Linear(inF, outF, { bias: !batchNorm }));
    this.bn = batchNorm ? this.registerModule('bn', new BatchNorm1d(outF)) : null;
    this.act = this.registerModule('act', activation(act));
    this.dropout = dropout > 0 ? this.registerModule('dropout', new Dropout(dropout)) : null;
  }
  forward(x: Tensor): Tensor {
    let h = this.linear.call(x);
    if (this.bn) h = this.bn.call(h);
    h = this.act.call(h);
    return this.dropout ? this.dropout.call(h) : h;
  }
}

export class MLP extends ZooModel {
  readonly spec: MLPSpec;
  readonly featureNames: string[];
  readonly embeddingName: string;
  readonly headName = 'fc';
  readonly inputShape: number[];
  readonly flatten: Flatten;
  readonly inputDropout: Dropout | null;
  readonly layers: MLPBlock[] = [];
  readonly fc: Linear;

  constructor(spec: MLPSpec) {
    super();
    this.spec = spec;
    this.inputShape = [...spec.inputShape];
    this.flatten = this.registerModule('flatten', new Flatten());
    this.inputDropout = spec.inputDropout > 0 ? this.registerModule('inputDropout', new Dropout(spec.inputDropout)) : null;
    let inF = spec.inputShape.reduce((a, b) => a * b, 1);
    spec.hidden.forEach((w, i) => {
      this.layers.push(this.registerModule(`layer${i + 1}`, new MLPBlock(inF, w, spec.activation, spec.dropout, spec.batchNorm)));
      inF = w;
    });
    this.fc = this.registerModule('fc', new Linear(inF, spec.numClasses));
    this.featureNames = spec.hidden.map((_, i) => `layer${i + 1}`);
    this.embeddingName = this.featureNames[this.featureNames.length - 1] ?? 'flatten';
  }

  forward(x: Tensor): Tensor {
    // Any layout with the right number of features per sample is accepted (e.g. [N, 784] for [1, 28, 28]).
    const want = this.inputShape.reduce((a, b) => a * b, 1);
    const got = x.shape.slice(1).reduce((a, b) => a * b, 1);
    if (x.ndim < 2 || got !== want) {
      throw new RangeError(`MLP: expected input [N, ${this.inputShape.join(', ')}] (${want} features per sample), got [${x.shape.join(', ')}]`);
    }
    let h = this.flatten.call(x);
    if (this.inputDropout) h = this.inputDropout.call(h);
    for (const l of this.layers) h = l.call(h);
    return this.fc.call(h);
  }
}
