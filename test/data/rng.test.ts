import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/data/rng.js';

test('rng: same seed same stream; keys give independent streams', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 8 }, () => a.nextUint32());
  assert.deepEqual(Array.from({ length: 8 }, () => b.nextUint32()), xs);
  const firsts = new Set([new Rng(42).nextUint32(), new Rng(43).nextUint32(), new Rng(42, 0).nextUint32(), new Rng(42, 1).nextUint32(),
    new Rng(42, 0, 1).nextUint32(), new Rng(42, 1, 0).nextUint32(), new Rng(2 ** 40).nextUint32(), new Rng(0).nextUint32()]);
  assert.equal(firsts.size, 8);
  assert.throws(() => new Rng(0.5), /safe integers/);
});

test('rng: ranges and rough uniformity', () => {
  const r = new Rng(1);
  const counts = new Array(7).fill(0);
  for (let i = 0; i < 70000; i++) {
    const f = r.nextFloat();
    assert.ok(f >= 0 && f < 1);
    counts[r.nextInt(7)]++;
  }
  for (const c of counts) assert.ok(Math.abs(c - 10000) < 500, `bucket ${c}`);
  const d = r.nextDouble();
  assert.ok(d >= 0 && d < 1);
  assert.throws(() => r.nextInt(0), /integer in \[1, 2\^32\]/);
  const p = r.permutation(1000);
  assert.deepEqual(Array.from(p).sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
});

test('rng: state get/set resumes the stream exactly', () => {
  const r = new Rng(9);
  for (let i = 0; i < 5; i++) r.nextUint32();
  const s = r.getState();
  const rest = Array.from({ length: 5 }, () => r.nextUint32());
  assert.deepEqual(Array.from({ length: 5 }, () => Rng.fromState(s).nextUint32()).slice(0, 1), rest.slice(0, 1));
  const q = Rng.fromState(s);
  assert.deepEqual(Array.from({ length: 5 }, () => q.nextUint32()), rest);
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s); // plain numbers: fits in a JSON checkpoint
  assert.throws(() => r.setState([0, 0, 0, 0]), /not all zero/);
});
