// Evaluation passes: logits of a model (or teacher) over a whole dataset, batched, without
// gradients, in eval mode; read back once as log-probabilities for the metrics.
import { Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import type { Dataset } from '../data/dataset.js';
import type { Predictions } from './metrics.js';

/** Runs `logits` over the dataset in order and returns log-softmax predictions. */
export function predict(logits: (x: Tensor) => Tensor, data: Dataset, batchSize = 500): Predictions {
  const per = data.sampleShape.reduce((a, b) => a * b, 1);
  let out: Float32Array | null = null;
  let c = 0;
  noGrad(() => {
    for (let start = 0; start < data.size; start += batchSize) {
      const n = Math.min(batchSize, data.size - start);
      const lp = tidy(() => {
        const x = tensor(data.x.subarray(start * per, (start + n) * per), { shape: [n, ...data.sampleShape] });
        return logits(x).logSoftmax(1).data<Float32Array>();
      });
      if (out === null) {
        c = lp.length / n;
        out = new Float32Array(data.size * c);
      }
      out.set(lp, start * c);
    }
  });
  return { logProbs: out ?? new Float32Array(0), n: data.size, c };
}
