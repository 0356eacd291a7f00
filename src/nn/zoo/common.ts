// What every zoo model shares: the spec it was built from (so a checkpoint can rebuild it), the
// names of its stage outputs for feature distillation, and a helper to probe feature shapes.
import { Module } from '../module.js';
import { Tensor } from '../../tensor/tensor.js';
import { zeros } from '../../tensor/factories.js';
import { noGrad } from '../../tensor/autograd.js';
import { tidy } from '../../tensor/scope.js';

/** A plain, JSON-serialisable model description ({ arch: 'resnet8', numClasses: 10, ... }). */
export type ModelSpec = { arch: string } & Record<string, unknown>;

export abstract class ZooModel extends Module {
  /** The full spec, defaults filled in. */
  abstract readonly spec: ModelSpec;
  /** Stage outputs, shallow to deep (what FitNet/AT/... hook into). */
  abstract readonly featureNames: string[];
  /** The penultimate, flattened representation [N, D] (what CRD/RKD/... use). */
  abstract readonly embeddingName: string;
  /** The module that produces the logits. */
  abstract readonly headName: string;
  /** Input shape without the batch dimension, e.g. [1, 28, 28] or [784]. */
  abstract readonly inputShape: number[];

  /**
   * Shapes (without the batch dimension) of the named outputs, found by one no-grad forward
   * pass on a zero batch of 2 in eval mode; every module's mode is restored afterwards.
   */
  featureShapes(names: string[] = [...this.featureNames, this.embeddingName, this.headName]): Record<string, number[]> {
    return this.inEvalMode(() => tidy(() => noGrad(() => {
      const x: Tensor = zeros([2, ...this.inputShape]);
      const { features } = this.forwardWithFeatures(x, names);
      const out: Record<string, number[]> = {};
      for (const n of names) out[n] = features[n]!.shape.slice(1);
      return out;
    })));
  }
}

/** Output size of a conv/pool along one axis (PyTorch's floor formula). */
export function convOut(size: number, kernel: number, stride = 1, padding = 0): number {
  return Math.floor((size + 2 * padding - kernel) / stride) + 1;
}
