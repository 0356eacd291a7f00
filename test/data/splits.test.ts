import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Dataset } from '../../src/data/dataset.js';
import { split, subset, take } from '../../src/data/splits.js';

/** 100 samples of shape [2]: x = [i, -i]; labels i % 4 (25 each) unless skewed. */
function toy(n = 100, label = (i: number) => i % 4): Dataset {
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) { x[2 * i] = i; x[2 * i + 1] = -i; y[i] = label(i); }
  return { name: 'toy', sampleShape: [2], x, y, size: n, numClasses: 4, classNames: ['a', 'b', 'c', 'd'] };
}

test('split: sizes, disjoint parts covering everything, unlabeled has y = null', () => {
  const ds = toy();
  const s = split(ds, { heldOut: 10, unlabeled: 0.5, seed: 1 });
  assert.deepEqual([s.train.size, s.heldOut.size, s.unlabeled.size], [40, 10, 50]);
  assert.equal(s.unlabeled.y, null);
  const all = [...s.indices.train, ...s.indices.heldOut, ...s.indices.unlabeled].sort((a, b) => a - b);
  assert.deepEqual(all, Array.from({ length: 100 }, (_, i) => i));
  // Rows and labels follow their indices; origin maps back.
  s.indices.train.forEach((r, i) => {
    assert.equal(s.train.x[2 * i], r);
    assert.equal(s.train.y![i], r % 4);
    assert.equal(s.train.origin!.indices[i], r);
  });
  assert.equal(s.train.origin!.name, 'toy');
  assert.match(s.train.name, /^toy\[split seed=1 heldOut=10 unlabeled=50\]\.train$/);
  assert.deepEqual(s.train.classNames, ['a', 'b', 'c', 'd']);
});

test('split: deterministic in the seed, different across seeds', () => {
  const ds = toy();
  const a = split(ds, { heldOut: 0.2, seed: 7 });
  const b = split(ds, { heldOut: 0.2, seed: 7 });
  const c = split(ds, { heldOut: 0.2, seed: 8 });
  assert.deepEqual(a.indices, b.indices);
  assert.notDeepEqual(a.indices.heldOut, c.indices.heldOut);
  assert.equal(a.unlabeled.size, 0);
  assert.throws(() => split(ds, { heldOut: 60, unlabeled: 50 }), /exceed the 100 samples/);
  assert.throws(() => split(ds, { heldOut: 1.5 }), /count .* or a fraction/);
});

test('split: stratified keeps class proportions exactly when they divide', () => {
  const ds = toy();
  const s = split(ds, { heldOut: 20, unlabeled: 40, seed: 3, stratified: true });
  const hist = (_part: Dataset | null, idx: Int32Array): number[] => {
    const h = [0, 0, 0, 0];
    for (const r of idx) h[r % 4]++;
    return h;
  };
  assert.deepEqual(hist(s.heldOut, s.indices.heldOut), [5, 5, 5, 5]);
  assert.deepEqual(hist(s.unlabeled, s.indices.unlabeled), [10, 10, 10, 10]);
  assert.deepEqual(hist(s.train, s.indices.train), [10, 10, 10, 10]);
  // Skewed classes (70/10/10/10): 10 held out → 7/1/1/1.
  const skew = toy(100, (i) => (i < 70 ? 0 : 1 + (i % 3)));
  const t = split(skew, { heldOut: 10, seed: 0, stratified: true });
  const h = [0, 0, 0, 0];
  for (const r of t.indices.heldOut) h[skew.y![r]!]++;
  assert.deepEqual(h, [7, 1, 1, 1]);
  assert.throws(() => split({ ...ds, y: null }, { heldOut: 5, stratified: true }), /needs labels/);
});

test('subset, take: copies, composition of origin, validation', () => {
  const ds = toy();
  const a = subset(ds, [5, 3, 9]);
  assert.deepEqual(Array.from(a.x), [5, -5, 3, -3, 9, -9]);
  assert.deepEqual(Array.from(a.y!), [1, 3, 1]);
  const b = subset(a, [2, 0]);
  assert.deepEqual(Array.from(b.origin!.indices), [9, 5]);
  assert.equal(b.origin!.name, 'toy');
  assert.notEqual(subset(ds, [1, 2]).name, subset(ds, [2, 1]).name);
  assert.throws(() => subset(ds, [100]), /index 100 at position 0 out of range/);
  const t1 = take(ds, 12, 4);
  assert.equal(t1.size, 12);
  assert.deepEqual(take(ds, 12, 4).x, t1.x);
  assert.notDeepEqual(take(ds, 12, 5).x, t1.x);
  const ts = take(ds, 8, 1, { stratified: true });
  assert.deepEqual(Array.from(ts.y!).sort(), [0, 0, 1, 1, 2, 2, 3, 3]);
  assert.throws(() => take(ds, 101), /n must be an integer in \[0, 100\]/);
});
