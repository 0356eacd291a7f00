// Threads and seeds: with one thread, the same seed gives a bit-for-bit identical training run
// (initialisation, batches, dropout masks, optimizer updates).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch, Tensor } from '../../src/index.js';
import { makeMlp, makeOptimizer, trainStep } from './mlp.js';
import { assertBitEqual } from './helpers.js';

function run(seed: number, kind: 'sgd' | 'adam'): { params: Tensor[]; losses: number[] } {
  torch.manualSeed(seed);
  const model = makeMlp([20, 32, 32, 5], 0.25);
  const opt = makeOptimizer(kind, model.params);
  const losses: number[] = [];
  for (let s = 0; s < 25; s++) {
    const [x, y] = [torch.randn([16, 20]), torch.randint(0, 5, [16])];
    losses.push(trainStep(model, opt, x, y));
    torch.dispose(x, y);
  }
  return { params: model.params, losses };
}

for (const kind of ['sgd', 'adam'] as const) {
  test(`single-thread ${kind} training with dropout is bit-for-bit repeatable under the same seed`, () => {
    const threads = torch.getNumThreads();
    torch.setNumThreads(1);
    try {
      const a = run(123, kind);
      const b = run(123, kind);
      const c = run(124, kind);
      assert.deepEqual(a.losses, b.losses, 'identical loss sequences');
      a.params.forEach((p, i) => assertBitEqual(p, b.params[i]!, `parameter ${i}`));
      assert.notDeepEqual(a.losses, c.losses, 'another seed gives another run');
      assert.ok(!a.params[0]!.equal(c.params[0]!));
      torch.dispose(a.params, b.params, c.params);
    } finally {
      torch.setNumThreads(threads);
    }
  });
}
