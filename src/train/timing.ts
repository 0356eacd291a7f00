// Inference latency: median milliseconds per image at batch size 1, in eval mode, no grad, on ONE
// libtorch intra-op thread, whatever the process's thread count is.
//
// Why one thread: the same teacher was reported at 0.59 ms/sample in a run's own report and at
// 71.8 ms in `kdistill report`'s comparison. Both measured batch-1 latency with the same code on
// the same model (no cache, no TorchScript/ONNX warm-up difference: both warm up first); what
// differed was the intra-op thread count: a run measures with its experiment's `threads`
// (default 1), `kdistill report` with whatever its process had (OMP_NUM_THREADS, else libtorch's
// machine-dependent default), and in a comparison a teacher trained by kdistill is also the
// student row of its own run, measured with that run's `threads`. A batch-1 forward of a small model is a few microseconds of
// work per operator, so with 2+ threads it is dominated by waking and joining the thread pool,
// and on a machine whose cores are busy with other processes every parallel region waits for a
// descheduled thread: measured here on 2 busy cores, the Fashion-MNIST CNN teacher takes 0.52 ms
// on 1 thread and 60 ms on 2. Pinning the measurement to one thread makes every table (run
// report, comparison, result.json, `eval`, `demo`) measure the same thing: single-stream,
// single-thread batch-1 latency. An ONNX teacher runs on onnxruntime's own pool, sized when it is
// loaded (src/teachers/onnx.ts: the libtorch thread count at that moment); a run and
// `kdistill report` both load it with the experiment's `threads` (src/report/data.ts).
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
