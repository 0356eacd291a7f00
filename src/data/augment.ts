// Batch augmentation on plain Float32Arrays laid out [B, C, H, W] (row-major), in place.
// Built-in augmentations are plain data (structured-cloneable), so a loader worker thread can run
// them; a function augmentation also works but keeps the loader on the main thread.
// Randomness comes only from the Rng passed in, drawn in a fixed order (augmentation by
// augmentation, sample by sample), so the result depends only on that Rng's seed.
import { Rng } from './rng.js';
import type { Dataset } from './dataset.js';

export type AugmentSpec =
  | { readonly kind: 'randomCrop'; readonly padding: number }
  | { readonly kind: 'hflip'; readonly p: number }
  | { readonly kind: 'normalize'; readonly mean: readonly number[]; readonly std: readonly number[] };

/** A custom augmentation: modifies the batch `x` of shape `shape` in place. */
export type AugmentFn = (x: Float32Array, shape: readonly number[], rng: Rng) => void;
export type Augmentation = AugmentSpec | AugmentFn;

/**
 * Pads each image with `padding` zeros on every side and crops a random H×W window, i.e. shifts it
 * by (dy, dx) uniform in [-padding, padding]² with zero fill (CIFAR-style). Apply it before
 * normalize() so the fill is black, as torchvision's RandomCrop(padding=...) on [0, 1] images.
 */
export function randomCrop(padding: number): AugmentSpec {
  if (!Number.isInteger(padding) || padding < 0) throw new RangeError(`randomCrop: padding must be a non-negative integer, got ${padding}`);
  return { kind: 'randomCrop', padding };
}

/** Mirrors each image left-right with probability p. */
export function horizontalFlip(p = 0.5): AugmentSpec {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`horizontalFlip: p must be in [0, 1], got ${p}`);
  return { kind: 'hflip', p };
}

/**
 * (x - mean[c]) / std[c] along dim 1 (channels of images, or features of [B, F] vectors);
 * a single number applies to every channel.
 */
export function normalize(mean: number | readonly number[], std: number | readonly number[]): AugmentSpec {
  const m = typeof mean === 'number' ? [mean] : [...mean];
  const s = typeof std === 'number' ? [std] : [...std];
  if (m.length === 0 || m.some((v) => !Number.isFinite(v))) throw new RangeError(`normalize: mean must be finite numbers, got [${m.join(', ')}]`);
  if (s.length === 0 || s.some((v) => !(v > 0) || !Number.isFinite(v))) throw new RangeError(`normalize: std must be positive finite numbers, got [${s.join(', ')}]`);
  return { kind: 'normalize', mean: m, std: s };
}

/** Flattens augmentations (and lists of them) into one pipeline, applied left to right. */
export function compose(...augs: (Augmentation | readonly Augmentation[])[]): Augmentation[] {
  return augs.flat() as Augmentation[];
}

export function isSerializable(augs: readonly Augmentation[]): boolean {
  return augs.every((a) => typeof a !== 'function');
}

function imageDims(shape: readonly number[], what: string): [number, number, number, number] {
  if (shape.length !== 4) throw new RangeError(`${what}: needs a batch of images [B, C, H, W], got shape [${shape.join(', ')}]`);
  return shape as unknown as [number, number, number, number];
}

function crop(x: Float32Array, shape: readonly number[], pad: number, rng: Rng): void {
  const [b, c, h, w] = imageDims(shape, 'randomCrop');
  if (pad === 0) return;
  const plane = h * w;
  const img = c * plane;
  const tmp = new Float32Array(img);
  for (let n = 0; n < b; n++) {
    const dy = rng.nextInt(2 * pad + 1) - pad;
    const dx = rng.nextInt(2 * pad + 1) - pad;
    if (dx === 0 && dy === 0) continue;
    const base = n * img;
    tmp.set(x.subarray(base, base + img));
    // out[y][x] = in[y + dy][x + dx], zero where that falls outside the image.
    const x0 = Math.max(0, -dx);
    const x1 = Math.min(w, w - dx);
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        const o = base + ch * plane + y * w;
        const sy = y + dy;
        if (sy < 0 || sy >= h || x0 >= x1) {
          x.fill(0, o, o + w);
          continue;
        }
        const s = ch * plane + sy * w;
        x.fill(0, o, o + x0);
        x.set(tmp.subarray(s + x0 + dx, s + x1 + dx), o + x0);
        x.fill(0, o + x1, o + w);
      }
    }
  }
}

function hflip(x: Float32Array, shape: readonly number[], p: number, rng: Rng): void {
  const [b, c, h, w] = imageDims(shape, 'horizontalFlip');
  const img = c * h * w;
  for (let n = 0; n < b; n++) {
    if (!(rng.nextFloat() < p)) continue;
    for (let r = 0; r < c * h; r++) {
      let i = n * img + r * w;
      let j = i + w - 1;
      while (i < j) {
        const t = x[i]!;
        x[i++] = x[j]!;
        x[j--] = t;
      }
    }
  }
}

function norm(x: Float32Array, shape: readonly number[], mean: readonly number[], std: readonly number[]): void {
  if (shape.length < 2) throw new RangeError(`normalize: needs a batch [B, C, ...], got shape [${shape.join(', ')}]`);
  const b = shape[0]!;
  const c = shape[1]!;
  if ((mean.length !== 1 && mean.length !== c) || (std.length !== 1 && std.length !== c)) {
    throw new RangeError(`normalize: ${mean.length} means / ${std.length} stds do not match ${c} channels`);
  }
  const inner = shape.slice(2).reduce((a, v) => a * v, 1);
  for (let ch = 0; ch < c; ch++) {
    const m = mean.length === 1 ? mean[0]! : mean[ch]!;
    const sd = std.length === 1 ? std[0]! : std[ch]!;
    for (let n = 0; n < b; n++) {
      const o = (n * c + ch) * inner;
      for (let i = o; i < o + inner; i++) x[i] = (x[i]! - m) / sd;
    }
  }
}

/** Applies the pipeline to the batch `x` of shape `shape` in place. */
export function applyAugmentations(augs: readonly Augmentation[], x: Float32Array, shape: readonly number[], rng: Rng): void {
  const n = shape.reduce((a, v) => a * v, 1);
  if (n !== x.length) throw new RangeError(`augment: shape [${shape.join(', ')}] needs ${n} elements, batch has ${x.length}`);
  for (const a of augs) {
    if (typeof a === 'function') { a(x, shape, rng); continue; }
    switch (a.kind) {
      case 'randomCrop': crop(x, shape, a.padding, rng); break;
      case 'hflip': hflip(x, shape, a.p, rng); break;
      case 'normalize': norm(x, shape, a.mean, a.std); break;
      default: throw new TypeError(`augment: unknown augmentation ${JSON.stringify(a)}`);
    }
  }
}

/**
 * The dataset with every sample normalised as normalize() does each training batch (the same
 * arithmetic, so the same floats): evaluation data as the model saw its training inputs.
 */
export function normalizeDataset(ds: Dataset, n: { readonly mean: readonly number[]; readonly std: readonly number[] } | undefined): Dataset {
  if (!n) return ds;
  const x = ds.x.slice();
  applyAugmentations([normalize(n.mean, n.std)], x, [ds.size, ...ds.sampleShape], new Rng(0));
  return { ...ds, x };
}
