// Seeded, deterministic dataset splits and subsets. Index sets are drawn from Rng(seed), then
// sorted, so a split is a pure function of (dataset size, labels, options) and each part keeps
// the original sample order. Parts are copies with `origin` pointing back at the source rows.
import type { Dataset } from './dataset.js';
import { sampleSize } from './dataset.js';
import { sharedFloat32, sharedInt32 } from './errors.js';
import { Rng } from './rng.js';

export interface SplitOptions {
  /** Held-out (validation) samples: a count (integer ≥ 1) or a fraction of the dataset in (0, 1). */
  heldOut?: number;
  /** Samples whose labels are dropped (y = null), e.g. for distillation on unlabeled data; same units. */
  unlabeled?: number;
  seed?: number;
  /** Keep class proportions in every part (needs labels). */
  stratified?: boolean;
}

export interface Splits {
  train: Dataset;
  heldOut: Dataset;
  /** y is null. */
  unlabeled: Dataset;
  /** Sorted indices into the input dataset of each part (disjoint, together all of it). */
  indices: { train: Int32Array; heldOut: Int32Array; unlabeled: Int32Array };
}

function count(v: number | undefined, n: number, what: string): number {
  if (v === undefined || v === 0) return 0;
  if (v > 0 && v < 1) return Math.round(v * n);
  if (Number.isInteger(v) && v >= 1) return v;
  throw new RangeError(`split: ${what} must be a count (integer ≥ 0) or a fraction in (0, 1), got ${v}`);
}

/**
 * Largest-remainder apportionment of `total` over groups of the given sizes, proportional to size
 * and never over a group's size; ties go to the lower group index, so it is deterministic.
 */
function apportion(total: number, sizes: number[]): number[] {
  const sum = sizes.reduce((a, b) => a + b, 0);
  if (sum === 0) return sizes.map(() => 0);
  const ideal = sizes.map((s) => (total * s) / sum);
  const out = ideal.map((v, i) => Math.min(sizes[i]!, Math.floor(v)));
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = ideal.map((_, i) => i).sort((a, b) => (ideal[b]! - Math.floor(ideal[b]!)) - (ideal[a]! - Math.floor(ideal[a]!)) || a - b);
  while (left > 0) {
    let moved = false;
    for (const i of order) {
      if (left === 0) break;
      if (out[i]! < sizes[i]!) { out[i]!++; left--; moved = true; }
    }
    if (!moved) break;
  }
  return out;
}

function byClass(ds: Dataset, what: string): Int32Array[] {
  if (!ds.y) throw new RangeError(`${what}: stratified needs labels, but '${ds.name}' is unlabeled`);
  const counts = new Int32Array(ds.numClasses);
  for (const c of ds.y) {
    if (c < 0 || c >= ds.numClasses) throw new RangeError(`${what}: label ${c} out of range [0, ${ds.numClasses}) in '${ds.name}'`);
    counts[c]!++;
  }
  const groups = Array.from(counts, (k) => new Int32Array(k));
  const fill = new Int32Array(ds.numClasses);
  ds.y.forEach((c, i) => { groups[c]![fill[c]!++] = i; });
  return groups;
}

const sorted = (a: number[]): Int32Array => Int32Array.from(a).sort();

/** Splits into train / held-out / unlabeled parts; fractions are of the whole dataset. */
export function split(ds: Dataset, o: SplitOptions = {}): Splits {
  const n = ds.size;
  const h = count(o.heldOut, n, 'heldOut');
  const u = count(o.unlabeled, n, 'unlabeled');
  if (h + u > n) throw new RangeError(`split: heldOut (${h}) + unlabeled (${u}) exceed the ${n} samples of '${ds.name}'`);
  const seed = o.seed ?? 0;
  const rng = new Rng(seed, 0x5911);
  const parts: [number[], number[], number[]] = [[], [], []]; // held-out, unlabeled, train
  if (o.stratified) {
    const groups = byClass(ds, 'split');
    const sizes = groups.map((g) => g.length);
    const hq = apportion(h, sizes);
    const uq = apportion(u, sizes.map((s, i) => s - hq[i]!));
    groups.forEach((g, c) => {
      rng.shuffle(g);
      g.forEach((idx, j) => parts[j < hq[c]! ? 0 : j < hq[c]! + uq[c]! ? 1 : 2].push(idx));
    });
  } else {
    rng.permutation(n).forEach((idx, j) => parts[j < h ? 0 : j < h + u ? 1 : 2].push(idx));
  }
  const [hi, ui, ti] = parts.map(sorted) as [Int32Array, Int32Array, Int32Array];
  const tag = `split seed=${seed} heldOut=${h} unlabeled=${u}${o.stratified ? ' stratified' : ''}`;
  return {
    train: subset(ds, ti, `${ds.name}[${tag}].train`),
    heldOut: subset(ds, hi, `${ds.name}[${tag}].heldOut`),
    unlabeled: subset(ds, ui, `${ds.name}[${tag}].unlabeled`, { dropLabels: true }),
    indices: { train: ti, heldOut: hi, unlabeled: ui },
  };
}

/** FNV-1a over the indices: names a subset by its content for caches. */
function indexHash(idx: ArrayLike<number>): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < idx.length; i++) {
    let v = idx[i]!;
    for (let k = 0; k < 4; k++) { h = Math.imul(h ^ (v & 0xff), 0x01000193); v >>>= 8; }
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** A copy of the given rows (in the given order); `dropLabels` makes it unlabeled. */
export function subset(ds: Dataset, indices: ArrayLike<number>, name?: string, o: { dropLabels?: boolean } = {}): Dataset {
  const d = sampleSize(ds);
  const m = indices.length;
  const x = sharedFloat32(m * d);
  const keepY = ds.y !== null && !o.dropLabels;
  const y = keepY ? sharedInt32(m) : null;
  const orig = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    const r = indices[i]!;
    if (!Number.isInteger(r) || r < 0 || r >= ds.size) throw new RangeError(`subset: index ${r} at position ${i} out of range [0, ${ds.size}) of '${ds.name}'`);
    x.set(ds.x.subarray(r * d, r * d + d), i * d);
    if (y) y[i] = ds.y![r]!;
    orig[i] = ds.origin ? ds.origin.indices[r]! : r;
  }
  return {
    name: name ?? `${ds.name}[subset n=${m} #${indexHash(indices)}]`,
    sampleShape: [...ds.sampleShape],
    x,
    y,
    size: m,
    numClasses: ds.numClasses,
    ...(ds.classNames ? { classNames: [...ds.classNames] } : {}),
    ...(ds.sources ? { sources: ds.sources } : {}),
    origin: { name: ds.origin?.name ?? ds.name, indices: orig },
  };
}

/** The samples whose class passes `keep`, in their original order; label ids are unchanged. */
export function filterClasses(ds: Dataset, keep: (classId: number) => boolean, what: string): Dataset {
  if (!ds.y) throw new Error(`filterClasses: '${ds.name}' has no labels to filter by`);
  const rows: number[] = [];
  for (let i = 0; i < ds.size; i++) if (keep(ds.y[i]!)) rows.push(i);
  return subset(ds, rows, `${ds.name}[classes ${what}]`);
}

/** n samples drawn without replacement by `seed` (class-balanced by proportion if stratified), sorted. */
export function take(ds: Dataset, n: number, seed = 0, o: { stratified?: boolean } = {}): Dataset {
  if (!Number.isInteger(n) || n < 0 || n > ds.size) throw new RangeError(`take: n must be an integer in [0, ${ds.size}], got ${n}`);
  const rng = new Rng(seed, 0x7a4e);
  let picked: number[];
  if (o.stratified) {
    const groups = byClass(ds, 'take');
    const q = apportion(n, groups.map((g) => g.length));
    picked = groups.flatMap((g, c) => Array.from(rng.shuffle(g).subarray(0, q[c]!)));
  } else {
    picked = Array.from(rng.permutation(ds.size).subarray(0, n));
  }
  return subset(ds, sorted(picked), `${ds.name}[take n=${n} seed=${seed}${o.stratified ? ' stratified' : ''}]`);
}
