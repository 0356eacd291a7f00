import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyAugmentations, compose, horizontalFlip, normalize, randomCrop } from '../../src/data/augment.js';
import { Rng } from '../../src/data/rng.js';

/** A batch [B, C, H, W] with value 1 + c*100 + h*10 + w (so 0 means padding). */
function batch(b: number, c: number, h: number, w: number): Float32Array {
  const x = new Float32Array(b * c * h * w);
  for (let n = 0; n < b; n++) for (let k = 0; k < c; k++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
    x[((n * c + k) * h + i) * w + j] = 1 + k * 100 + i * 10 + j;
  }
  return x;
}

test('randomCrop: each image is shifted by (dy, dx) in [-p, p] with zero fill, same shift for all channels', () => {
  const [B, C, H, W, P] = [64, 2, 5, 6, 2];
  const x = batch(B, C, H, W);
  applyAugmentations([randomCrop(P)], x, [B, C, H, W], new Rng(1));
  const seen = new Set<string>();
  for (let n = 0; n < B; n++) {
    // Recover the shift from the value of any in-range pixel, then check every pixel against it.
    const img = x.subarray(n * C * H * W, (n + 1) * C * H * W);
    const k = img.findIndex((v) => v !== 0);
    const i = Math.floor(k / W), j = k % W, v = img[k]! - 1;
    const dy = Math.floor(v / 10) % 10 - i, dx = (v % 10) - j;
    assert.ok(Math.abs(dy) <= P && Math.abs(dx) <= P);
    seen.add(`${dy},${dx}`);
    for (let c = 0; c < C; c++) for (let r = 0; r < H; r++) for (let q = 0; q < W; q++) {
      const sy = r + dy, sx = q + dx;
      const want = sy >= 0 && sy < H && sx >= 0 && sx < W ? 1 + c * 100 + sy * 10 + sx : 0;
      assert.equal(img[(c * H + r) * W + q], want, `image ${n} c${c} (${r},${q}) shift (${dy},${dx})`);
    }
  }
  assert.ok(seen.size > 15, `only ${seen.size} of 25 shifts drawn`);
});

test('randomCrop: a known shift on a known image (oracle by drawing the same rng)', () => {
  const x = batch(1, 1, 3, 3);
  const rng = new Rng(123);
  const probe = new Rng(123);
  const dy = probe.nextInt(3) - 1, dx = probe.nextInt(3) - 1;
  applyAugmentations([randomCrop(1)], x, [1, 1, 3, 3], rng);
  const expect = [0, 1, 2].flatMap((r) => [0, 1, 2].map((q) => {
    const sy = r + dy, sx = q + dx;
    return sy >= 0 && sy < 3 && sx >= 0 && sx < 3 ? 1 + sy * 10 + sx : 0;
  }));
  assert.deepEqual(Array.from(x), expect);
  const full = batch(1, 1, 2, 2);
  applyAugmentations([randomCrop(0)], full, [1, 1, 2, 2], new Rng(0));
  assert.deepEqual(Array.from(full), [1, 2, 11, 12]);
});

test('horizontalFlip: p=1 mirrors every row of every channel, p=0 is identity, p=0.5 about half', () => {
  const x = batch(2, 2, 2, 3);
  applyAugmentations([horizontalFlip(1)], x, [2, 2, 2, 3], new Rng(0));
  assert.deepEqual(Array.from(x.subarray(0, 12)), [3, 2, 1, 13, 12, 11, 103, 102, 101, 113, 112, 111]);
  const y = batch(2, 1, 2, 2);
  applyAugmentations([horizontalFlip(0)], y, [2, 1, 2, 2], new Rng(0));
  assert.deepEqual(y, batch(2, 1, 2, 2));
  const z = batch(1000, 1, 1, 2);
  applyAugmentations([horizontalFlip()], z, [1000, 1, 1, 2], new Rng(2));
  let flipped = 0;
  for (let n = 0; n < 1000; n++) if (z[2 * n] === 2) flipped++;
  assert.ok(flipped > 430 && flipped < 570, `${flipped}`);
  assert.throws(() => horizontalFlip(2), /p must be in \[0, 1\]/);
});

test('normalize: per channel for images, per feature for vectors', () => {
  const x = new Float32Array([1, 2, 10, 20, 3, 4, 30, 40]); // [2, 2, 1, 2]
  applyAugmentations([normalize([1, 10], [2, 10])], x, [2, 2, 1, 2], new Rng(0));
  assert.deepEqual(Array.from(x), [0, 0.5, 0, 1, 1, 1.5, 2, 3]);
  const v = new Float32Array([1, 5, 3, 7]); // [2, 2] features
  applyAugmentations([normalize(1, 2)], v, [2, 2], new Rng(0));
  assert.deepEqual(Array.from(v), [0, 2, 1, 3]);
  assert.throws(() => applyAugmentations([normalize([0, 0, 0], [1, 1, 1])], new Float32Array(4), [1, 2, 2], new Rng(0)), /do not match 2 channels/);
  assert.throws(() => normalize(0, 0), /std must be positive/);
});

test('compose: applied in order, deterministic for a given rng seed, custom functions allowed', () => {
  const shape = [8, 1, 4, 4];
  const pipe = compose(randomCrop(1), [horizontalFlip(0.5), normalize(0.5, 0.25)], (x: Float32Array) => { x[0] = 99; });
  const a = batch(8, 1, 4, 4), b = batch(8, 1, 4, 4), c = batch(8, 1, 4, 4);
  applyAugmentations(pipe, a, shape, new Rng(5, 1, 2));
  applyAugmentations(pipe, b, shape, new Rng(5, 1, 2));
  applyAugmentations(pipe, c, shape, new Rng(5, 1, 3));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.equal(a[0], 99);
  assert.equal(pipe.length, 4);
});
