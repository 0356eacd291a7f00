// Where soft targets come from. A Teacher is frozen and in eval mode by construction: it only
// exposes outputs computed without gradients to its parameters.
import type { Tensor } from '../tensor/tensor.js';

export interface Teacher {
  /** Human-readable source, e.g. 'checkpoint runs/teacher/model.safetensors'. */
  readonly description: string;
  /** Content hash of the weights: keys the teacher-output cache. */
  readonly checksum: string;
  readonly numClasses: number;
  readonly numParameters: number;
  /** Logits for a batch, computed under noGrad in eval mode. */
  logits(x: Tensor): Tensor;
  /** Logits plus named intermediate outputs (feature-based methods). */
  features?(x: Tensor, names: string[]): { output: Tensor; features: Record<string, Tensor> };
}
