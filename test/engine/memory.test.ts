// Memory: dispose(), tidy scopes, keep(), and a training loop whose live native tensors and
// resident memory stay flat (the long 20,000-step version is bench/memory.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { torch, F, tidy, keep, Tensor } from '../../src/index.js';
import { scopeDepth } from '../../src/tensor/scope.js';
import { makeMlp, makeOptimizer, trainStep } from './mlp.js';

test('dispose() frees the native tensor; using it again is a clear JS error', () => {
  const base = torch.liveTensors();
  const t = torch.ones([2, 2]);
  assert.equal(torch.liveTensors(), base + 1);
  assert.equal(t.isDisposed, false);
  t.dispose();
  assert.equal(t.isDisposed, true);
  assert.equal(torch.liveTensors(), base);
  t.dispose(); // idempotent
  assert.equal(torch.liveTensors(), base);
  assert.equal(String(t), 'Tensor(disposed)');
  assert.throws(() => t.add(1), { name: 'Error', message: /tensor used after dispose\(\)/ });
  assert.throws(() => t.shape, /tensor used after dispose\(\)/);
  assert.throws(() => t.data(), /tensor used after dispose\(\)/);
  const u = torch.ones([2, 2]);
  assert.throws(() => u.add(t), /tensor used after dispose\(\)/, 'as an argument too');
  assert.throws(() => torch.cat([u, t]), /tensor used after dispose\(\)/);
  u.dispose();
  torch.dispose([torch.ones([1]), torch.ones([1])], null, undefined);
});

test('tidy frees everything created inside except what it returns', () => {
  const base = torch.liveTensors();
  const outer = torch.ones([3]);
  let inner: Tensor | undefined;
  const r = tidy(() => {
    inner = outer.mul(2);
    const a = inner.add(1);
    const b = a.exp();
    return { b, list: [a.sum()], n: 5 };
  });
  assert.equal(inner!.isDisposed, true);
  assert.equal(outer.isDisposed, false, 'tensors from outside the scope are untouched');
  assert.equal(r.b.isDisposed, false);
  assert.equal(r.list[0]!.isDisposed, false);
  assert.equal(r.n, 5);
  assert.equal(torch.liveTensors(), base + 3);
  torch.dispose(outer, r.b, r.list);
  assert.equal(torch.liveTensors(), base);
});

test('nested tidy moves returned tensors to the enclosing scope; keep() exempts a tensor', () => {
  const base = torch.liveTensors();
  let mid: Tensor | undefined;
  let kept: Tensor | undefined;
  const out = tidy(() => {
    mid = tidy(() => torch.ones([2]).add(1));
    assert.equal(scopeDepth(), 1);
    kept = keep(torch.zeros([2]));
    return mid.mul(3);
  });
  assert.equal(mid!.isDisposed, true, 'the inner result belonged to the outer scope, which freed it');
  assert.equal(kept!.isDisposed, false);
  assert.deepEqual(out.tolist(), [6, 6]);
  assert.equal(scopeDepth(), 0);
  torch.dispose(out, kept);
  assert.equal(torch.liveTensors(), base);
});

test('tidy frees its tensors when fn throws, and refuses an async fn', () => {
  const base = torch.liveTensors();
  let made: Tensor | undefined;
  assert.throws(() => tidy(() => {
    made = torch.ones([4]);
    made.matmul(torch.ones([3])); // shape error from libtorch
  }), /inconsistent tensor size|size/);
  assert.equal(made!.isDisposed, true);
  assert.equal(scopeDepth(), 0);
  assert.throws(() => tidy((async () => torch.ones([1])) as unknown as () => Tensor), /Promise/);
  assert.equal(torch.liveTensors(), base);
});

test('grads and autograd results inside tidy are freed; parameters and their .grad survive', () => {
  const w = torch.ones([3], { requiresGrad: true });
  const base = torch.liveTensors();
  tidy(() => {
    const loss = w.mul(w).sum();
    loss.backward();
    const [g] = torch.autograd.grad(w.mul(2).sum(), w);
    assert.deepEqual(g!.tolist(), [2, 2, 2]);
  });
  assert.equal(torch.liveTensors(), base);
  assert.deepEqual(tidy(() => w.grad!.tolist()), [2, 2, 2], 'disposing a .grad wrapper leaves the gradient itself');
  assert.deepEqual(tidy(() => w.grad!.tolist()), [2, 2, 2]);
  w.dispose();
});

function rssMB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

test('an 1,800-step MLP training loop holds live tensors exactly flat and RSS bounded', (t) => {
  torch.manualSeed(0);
  const model = makeMlp([64, 128, 128, 10], 0.1);
  const opt = makeOptimizer('adam', model.params);
  const x = torch.randn([64, 64]).keep();
  const y = torch.randint(0, 10, [64]).keep();
  // The allocator keeps growing its arenas for a few hundred steps after start-up (seen up to
  // +18 MB between steps 300 and 600 on a loaded machine, flat after); measure after that.
  const warm = 600, total = 1800;
  let liveAtWarm = 0, first = 0, last = 0;
  const rss: number[] = [];
  for (let s = 0; s < total; s++) {
    const l = trainStep(model, opt, x, y);
    if (s === 0) first = l;
    last = l;
    if (s === warm) liveAtWarm = torch.liveTensors();
    if (s >= warm && s % 100 === 0) {
      rss.push(rssMB());
      assert.equal(torch.liveTensors(), liveAtWarm, `live tensors at step ${s}`);
    }
  }
  const liveEnd = torch.liveTensors();
  // The allocator makes RSS jumpy; a leak raises its floor. Compare the lowest RSS of the first
  // and of the last four samples (~800 steps apart). One leaked 128x128 float gradient per step
  // would raise the floor by ~50 MB.
  const floorEarly = Math.min(...rss.slice(0, 4));
  const floorLate = Math.min(...rss.slice(-4));
  t.diagnostic(`live tensors ${liveAtWarm} -> ${liveEnd}; RSS floor ${floorEarly.toFixed(1)} -> ${floorLate.toFixed(1)} MB ` +
    `(samples ${rss.map((r) => r.toFixed(0)).join(' ')})`);
  assert.equal(liveEnd, liveAtWarm, 'no tensor handle leaks per step');
  assert.ok(floorLate - floorEarly < 20, `RSS floor rose ${(floorLate - floorEarly).toFixed(1)} MB`);
  assert.ok(last < first, `training made progress (${first} -> ${last})`);
  torch.dispose(model.params, x, y);
});

test('the live-tensor criterion does catch a leak', () => {
  const x = torch.randn([8, 4]);
  const w = torch.randn([3, 4], { requiresGrad: true });
  const before = torch.liveTensors();
  const leaked: Tensor[] = [];
  for (let s = 0; s < 50; s++) leaked.push(F.linear(x, w).relu()); // no tidy: intermediates stay alive
  assert.ok(torch.liveTensors() >= before + 50);
  torch.dispose(leaked, x, w);
});

test('garbage collection is the safety net: forgotten tensors are freed during GC, synchronously', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc(); // collect what earlier tests forgot, so the baseline is stable
  const live = torch.liveTensors();
  const held = torch.heldTensors();
  let refs: Tensor[] | null = [];
  for (let i = 0; i < 2000; i++) {
    const a = torch.ones([16]);
    refs.push(a, a.mul(2)); // never disposed
  }
  gc();
  assert.equal(torch.heldTensors(), held + 4000, 'reachable handles keep their memory through a collection');
  refs = null; // forget them
  // Finalizers run inside the collection itself, not on a later event-loop turn, so even a
  // synchronous loop that never yields gets the memory back.
  gc();
  gc();
  assert.ok(torch.heldTensors() < held + 100, `after GC ${torch.heldTensors() - held} handles still hold memory`);
  // liveTensors() is the deterministic leak count: collection does not hide the leak.
  assert.equal(torch.liveTensors(), live + 4000);
});
