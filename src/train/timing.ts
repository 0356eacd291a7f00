// Inference latency: median milliseconds per image at batch size 1, in eval mode, no grad.
import { tensor } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Dataset } from '../data/dataset.js';

export function inferenceMsPerSample(forward: (x: Tensor) => Tensor, data: Dataset, samples = 200, warmup = 20): number {
  const per = data.sampleShape.reduce((a, b) => a * b, 1);
  const times: number[] = [];
  noGrad(() => {
    for (let i = 0; i < warmup + samples; i++) {
      const j = i % data.size;
      const t0 = process.hrtime.bigint();
      tidy(() => forward(tensor(data.x.subarray(j * per, (j + 1) * per), { shape: [1, ...data.sampleShape] })).data());
      const dt = Number(process.hrtime.bigint() - t0) / 1e6;
      if (i >= warmup) times.push(dt);
    }
  });
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
