// Inference latency: median milliseconds per image at batch size 1, in eval mode, no grad, on ONE
// libtorch intra-op thread, whatever the process's thread count is.
//
// Why one thread: batch-1 forwards of small models are microseconds of work per operator, so with
// 2+ threads they measure the thread pool's wake-ups (on 2 busy cores the Fashion-MNIST CNN teacher
// took 0.52 ms on 1 thread, 60 ms on 2). Runs, `kdistill report`, `eval` and `demo` had measured
// with different thread counts (0.59 vs 71.8 ms for one teacher); now every table measures the same
// thing. An ONNX teacher runs on onnxruntime's own pool, sized with the experiment's `threads`
// when it is loaded (src/teachers/onnx.ts, src/report/data.ts).
import { getNumThreads, setNumThreads } from '../tensor/torch.js';
import { tensor } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Dataset } from '../data/dataset.js';

export function inferenceMsPerSample(forward: (x: Tensor) => Tensor, data: Dataset, samples = 200, warmup = 20): number {
  const per = data.sampleShape.reduce((a, b) => a * b, 1);
  const times: number[] = [];
  const threads = getNumThreads();
  if (threads !== 1) setNumThreads(1);
  try {
    noGrad(() => {
      for (let i = 0; i < warmup + samples; i++) {
        const j = i % data.size;
        const t0 = process.hrtime.bigint();
        tidy(() => forward(tensor(data.x.subarray(j * per, (j + 1) * per), { shape: [1, ...data.sampleShape] })).data());
        const dt = Number(process.hrtime.bigint() - t0) / 1e6;
        if (i >= warmup) times.push(dt);
      }
    });
  } finally {
    if (threads !== 1) setNumThreads(threads);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
