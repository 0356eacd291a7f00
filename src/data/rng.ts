// A small, fast, seeded PRNG for data pipelines: xoshiro128** (Blackman & Vigna), 32-bit ops only.
// Streams are derived from (seed, ...keys), e.g. (seed, epoch, batch), so any batch's randomness
// can be recreated without replaying earlier ones: that is what makes resume exact and lets a
// worker thread produce the same augmentation as the main thread.

export type RngState = [number, number, number, number];

/** murmur3's 32-bit finaliser: a good avalanche for seeding. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const TWO32 = 2 ** 32;

export class Rng {
  #s0 = 0;
  #s1 = 0;
  #s2 = 0;
  #s3 = 0;

  /**
   * @param seed any safe integer
   * @param keys further safe integers naming an independent stream (e.g. epoch, batch)
   */
  constructor(seed = 0, ...keys: number[]) {
    // Two independent hash chains over every 32-bit half of every key give 64 bits of stream
    // identity; the 128-bit state is then expanded from them.
    let a = 0x9e3779b9;
    let b = 0x7f4a7c15;
    for (const k of [seed, ...keys]) {
      if (!Number.isSafeInteger(k)) throw new TypeError(`Rng: seed and keys must be safe integers, got ${k}`);
      const lo = k >>> 0;
      const hi = Math.floor(k / TWO32) >>> 0;
      for (const w of [lo, hi]) {
        a = fmix32((a ^ w) + 0x6a09e667);
        b = fmix32(Math.imul(b ^ w, 0x2545f491) + 0x3c6ef372);
      }
      a = fmix32(a + 0x243f6a88); // separates keys so (1, 0) and (1) differ from (0, 1)
    }
    this.#s0 = fmix32(a + 0x9e3779b9);
    this.#s1 = fmix32(b + 0x3c6ef372);
    this.#s2 = fmix32(a ^ 0xdaa66d2b);
    this.#s3 = fmix32(b ^ 0x1b873593);
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1; // all-zero state is a fixed point
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s1 = this.#s1;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return r;
  }

  /** Uniform float in [0, 1) with 24 random bits (every value exactly representable in float32). */
  nextFloat(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextDouble(): number {
    return ((this.nextUint32() >>> 5) * 67108864 + (this.nextUint32() >>> 6)) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias; 1 <= n <= 2^32. */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO32) throw new RangeError(`Rng.nextInt: n must be an integer in [1, 2^32], got ${n}`);
    const limit = TWO32 - (TWO32 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /** Fisher–Yates shuffle in place; returns its argument. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /** The full generator state, for checkpoints. */
  getState(): RngState {
    return [this.#s0 >>> 0, this.#s1 >>> 0, this.#s2 >>> 0, this.#s3 >>> 0];
  }

  setState(s: readonly number[]): this {
    if (s.length !== 4 || s.some((v) => !Number.isInteger(v) || v < 0 || v >= TWO32) || s.every((v) => v === 0)) {
      throw new RangeError(`Rng.setState: expected 4 uint32 words, not all zero, got [${s.join(', ')}]`);
    }
    [this.#s0, this.#s1, this.#s2, this.#s3] = s.map((v) => v | 0) as RngState;
    return this;
  }

  static fromState(s: readonly number[]): Rng {
    return new Rng().setState(s);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
