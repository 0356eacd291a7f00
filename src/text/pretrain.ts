// Masked-language-model pre-training of a BERT-style teacher on the task corpus (no labels), the
// step before it is fine-tuned and distilled; dynamic masking: a fresh corruption every epoch.
import { tensor } from '../tensor/factories.js';
import { crossEntropy } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import { Rng } from '../data/rng.js';
import type { Dataset } from '../data/dataset.js';
import { AdamW } from '../optim/optimizer.js';
import type { BertEncoder } from '../nn/zoo/transformer.js';
import { mlmMask } from './data.js';
import { ProgressBar } from '../util/progress.js';

export interface MlmOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed?: number;
  maskProb?: number;
  /** Called with the mean MLM loss after each epoch. */
  onEpoch?: (epoch: number, loss: number, seconds: number) => void;
}

/** Trains `model` (built with mlm: true) on the ids of `data`; returns the mean loss per epoch. */
export function pretrainMlm(model: BertEncoder, data: Dataset, o: MlmOptions): number[] {
  const L = data.sampleShape[0]!, V = model.spec.vocabSize;
  const opt = new AdamW(model.parameters(), { lr: o.lr, weightDecay: 0.01 });
  const losses: number[] = [];
  model.train();
  for (let e = 0; e < o.epochs; e++) {
    const t0 = Date.now();
    const rng = new Rng(o.seed ?? 0, 0x3d1, e);
    const perm = rng.permutation(data.size);
    let sum = 0, n = 0;
    const bar = new ProgressBar(`MLM epoch ${e + 1}/${o.epochs}`, Math.ceil(data.size / o.batchSize));
    for (let s = 0; s < data.size; s += o.batchSize) {
      bar.update(s / o.batchSize, n ? `loss ${(sum / n).toFixed(4)}` : '');
      const idx = perm.subarray(s, Math.min(data.size, s + o.batchSize));
      const ids = new Float32Array(idx.length * L);
      idx.forEach((j, i) => ids.set(data.x.subarray(j * L, (j + 1) * L), i * L));
      const { input, target } = mlmMask(ids, V, rng, o.maskProb ?? 0.15);
      if (!target.some((t) => t >= 0n)) continue;
      sum += tidy(() => {
        const x = tensor(input, { shape: [idx.length, L] });
        const y = tensor(target, { shape: [idx.length * L] });
        const logits = model.mlmLogits(x).reshape([idx.length * L, V]);
        const loss = crossEntropy(logits, y, { ignoreIndex: -100 });
        opt.zeroGrad();
        loss.backward();
        opt.step();
        return loss.item();
      });
      n++;
    }
    bar.done();
    losses.push(sum / Math.max(1, n));
    o.onEpoch?.(e, losses[e]!, (Date.now() - t0) / 1000);
  }
  return losses;
}
