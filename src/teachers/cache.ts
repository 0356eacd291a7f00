// The teacher-output cache: a frozen teacher's logits on a transfer set are the same every epoch
// and every run, so they are computed once, in one no-grad pass, and stored on disk.
//
// File: <dir>/<dataset>-<key>.safetensors, readable by any safetensors reader, with tensors
//   indices     I32 [M]      the samples' indices in the source dataset (Dataset.origin), ascending
//   sampleHash  I32 [M]      a 32-bit hash of each sample's raw float32 values
//   logits      F32|F16 [M, C]
//   feature.<n> F32|F16 [M, ...shape]   only in a file opened with `features` (named teacher features)
//   target.<n>  F32|F16 [M, ...shape]   only in a file opened with `targets` (a method's per-sample
//                                       deterministic targets, e.g. Sobolev's target-class input gradient)
// and metadata naming the format version, the teacher's checksum, the dataset, the input
// pipeline (deterministic augmentations), C, the dtype, the feature names and shapes, and a
// sha256 of the tensors' bytes. The key in the file name hashes teacher, dataset name, pipeline,
// dtype and feature names (a feature's shape follows from teacher, sample shape and name; it is
// recorded and checked), so each combination has its own file; subsets of one dataset (splits, `data.subset`) share it through their origin
// indices, and a file grows when a run needs samples it lacks.
//
// Validation on open: a file that does not parse, whose metadata or shapes disagree with the
// request, whose bytes fail the checksum (bit flips), or whose stored sample hashes differ from
// the data in hand (the dataset changed under the same name) is rebuilt with a one-line notice.
//
// Features are built in the same no-grad pass as the logits (teacher.features gives both) and held
// in memory as float32 like the logits. Feature maps can be large (60k × 32×14×14 is 1.5 GB), so a
// feature cache above `maxFeatureBytes` (default 1 GiB, or $KDISTILL_CACHE_MAX_FEATURE_MB) is
// refused with FeatureCacheTooLarge before anything is computed; the runner then uses the live teacher.
//
// Targets (Method.cachedTargets) are computed in the same build pass, batch by batch, with
// gradients enabled for their computation only (an input gradient needs the teacher's graph), from
// the dataset's labels by row (null on unlabeled data). The key adds each target's name and
// settings key; their shapes are recorded and checked, and they count toward maxFeatureBytes.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { constants as osConstants } from 'node:os';
import { Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/factories.js';
import { enableGrad, noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import type { Module } from '../nn/module.js';
import { parseSafetensors, serializeSafetensors } from '../nn/safetensors.js';
import { atomicWrite } from '../util/fs.js';
import { sampleSize, type Dataset } from '../data/dataset.js';
import { buildBatch } from '../data/batch.js';
import type { Augmentation, AugmentSpec } from '../data/augment.js';
import { ProgressBar } from '../util/progress.js';
import type { CachedTarget, Teacher } from './teacher.js';

export const CACHE_FORMAT = 'kdistill-teacher-cache';
export const CACHE_VERSION = 1;

export type CacheDType = 'float32' | 'float16';
export type TeacherCacheMode = 'auto' | 'on' | 'off';

export interface TeacherCacheOptions {
  /** Folder of cache files (default: $KDISTILL_CACHE, else .cache/kdistill in the working directory). */
  dir?: string;
  /** Storage type of the logits (default float32: exactly the live teacher's values). */
  dtype?: CacheDType;
  /** Applied to the samples before the teacher sees them; must be deterministic (see planTeacherCache). */
  augment?: readonly AugmentSpec[];
  /** Batch size of the build pass (default 256). */
  batchSize?: number;
  /** Where one-line notices go (default: stderr unless KDISTILL_QUIET=1). */
  notice?: (line: string) => void;
  /**
   * Data-parallel build (src/distributed/cache.ts): given the dataset rows the file lacks (the
   * same list in every process), computes them split across the processes and returns all of
   * them in order. Called on every open, even with nothing to compute, so the processes stay in step.
   */
  distribute?: (rows: Int32Array, numClasses: number, compute: (part: Int32Array) => Float32Array) => Float32Array;
  /** false: another process (rank 0) writes the file; this one serves what was computed. */
  write?: boolean;
  /** Named teacher features (module paths, as teacher.features takes them) to cache with the logits. */
  features?: readonly string[];
  /** Largest in-memory size (float32 bytes) of the cached features (default: 1 GiB or $KDISTILL_CACHE_MAX_FEATURE_MB). */
  maxFeatureBytes?: number;
  /** Per-sample deterministic targets (Method.cachedTargets) to cache with the logits, as `target.<name>`. */
  targets?: readonly CachedTarget[];
}

/** Thrown by TeacherOutputCache.open when the requested features would not fit the size limit. */
export class FeatureCacheTooLarge extends Error {}

export function defaultMaxFeatureBytes(): number {
  const mb = Number(process.env.KDISTILL_CACHE_MAX_FEATURE_MB);
  return Number.isFinite(mb) && mb > 0 ? mb * 2 ** 20 : 2 ** 30;
}

/** What opening the cache did: 'loaded' (all there), 'built' (no usable file), 'extended' (added samples). */
export type CacheStatus = 'loaded' | 'built' | 'extended';

export function defaultCacheDir(): string {
  return resolve(process.env.KDISTILL_CACHE || join('.cache', 'kdistill'));
}

/** True when the augmentation's output does not depend on its random stream. */
export function isDeterministic(a: Augmentation): boolean {
  if (typeof a === 'function') return false; // opaque: assume it draws from its Rng
  switch (a.kind) {
    case 'normalize': return true;
    case 'randomCrop': return a.padding === 0;
    case 'hflip': return a.p === 0 || a.p === 1;
    default: return false;
  }
}

export interface CachePlan {
  use: boolean;
  /** The input pipeline the cached outputs are computed with (the deterministic augmentations). */
  augment: AugmentSpec[];
  /** One line saying what was decided and why. */
  reason: string;
}

/**
 * Decides whether the cache serves the teacher's logits during training.
 * - 'off': never.
 * - 'auto': only when every augmentation is deterministic (e.g. normalize alone), so the cached
 *   outputs are exactly what the live teacher would return for every batch of every epoch.
 * - 'on': also with random augmentation. The teacher's outputs are then those of the un-augmented
 *   (only deterministically transformed) sample, while the student sees the augmented one: the
 *   student no longer learns the teacher's response to each augmented view, only to the clean
 *   sample — cheaper, but a weaker (and, for crops that cut off the object, a mismatched) signal.
 * A method that needs teacher features has them cached too, but only under a deterministic pipeline:
 * with random augmentation ('on' or 'auto') it runs the teacher live, since un-augmented feature
 * maps would be spatially misaligned with the student's cropped or flipped view.
 */
export function planTeacherCache(mode: TeacherCacheMode, augs: readonly Augmentation[], o: { needsFeatures?: boolean } = {}): CachePlan {
  const det = augs.filter(isDeterministic) as AugmentSpec[];
  const random = augs.length - det.length;
  if (mode === 'off') return { use: false, augment: det, reason: 'teacher cache off' };
  if (o.needsFeatures && random > 0) return { use: false, augment: det, reason: `teacher cache not used: the method needs teacher features and ${random} augmentation${random > 1 ? 's are' : ' is'} random, so the teacher runs every step` };
  if (random > 0 && mode === 'auto') {
    return { use: false, augment: det, reason: `teacher cache off: ${random} random augmentation${random > 1 ? 's' : ''} (set teacherCache: on to cache outputs on un-augmented inputs)` };
  }
  if (random > 0) return { use: true, augment: det, reason: `teacher cache on with random augmentation: the teacher's outputs are those of un-augmented samples` };
  return { use: true, augment: det, reason: 'teacher cache on' };
}

/** A 32-bit hash of one sample's float32 bit patterns: detects a dataset changed under the same name. */
function hashRow(words: Uint32Array, start: number, len: number): number {
  let h = 0x811c9dc5 ^ len;
  for (let i = start; i < start + len; i++) {
    h = Math.imul(h ^ words[i]!, 0x01000193);
    h ^= h >>> 13;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) | 0;
}

function rowHashes(ds: Dataset): Int32Array {
  const d = sampleSize(ds);
  const words = new Uint32Array(ds.x.buffer, ds.x.byteOffset, ds.x.length);
  const out = new Int32Array(ds.size);
  for (let r = 0; r < ds.size; r++) out[r] = hashRow(words, r * d, d);
  return out;
}

function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function payloadHash(indices: Int32Array, hashes: Int32Array, parts: readonly ArrayBufferView[]): string {
  const h = createHash('sha256').update(bytesOf(indices)).update(bytesOf(hashes));
  for (const p of parts) h.update(bytesOf(p));
  return h.digest('hex');
}

/** One cached feature or target: its per-sample shape, size, and column offset in a packed row. */
interface FeatureSlot { name: string; shape: number[]; size: number; offset: number }

/** A packed row holds the logits (C values), each feature's values, then each target's: W floats in all. */
interface Layout { C: number; feats: FeatureSlot[]; tgts: FeatureSlot[]; W: number }

function layoutOf(C: number, names: readonly string[], shapes: readonly number[][], tnames: readonly string[] = [], tshapes: readonly number[][] = []): Layout {
  let off = C;
  const slots = (ns: readonly string[], shs: readonly number[][]): FeatureSlot[] => ns.map((name, i) => {
    const shape = shs[i]!;
    const size = shape.reduce((a, b) => a * b, 1);
    const f = { name, shape, size, offset: off };
    off += size;
    return f;
  });
  const feats = slots(names, shapes);
  const tgts = slots(tnames, tshapes);
  return { C, feats, tgts, W: off };
}

interface Entries {
  indices: Int32Array;
  hashes: Int32Array;
  /** float32 [M, W]: logits then features, per sample */
  values: Float32Array;
  layout: Layout;
}

/** The per-sample teacher logits (and named features) for one dataset, loaded from or written to the cache folder. */
export class TeacherOutputCache {
  readonly path: string;
  readonly numClasses: number;
  readonly dtype: CacheDType;
  /** What opening did, and how many samples the teacher computed for it. */
  readonly status: CacheStatus;
  readonly computed: number;
  /** For row r of the dataset: its row in `#values`. */
  readonly #rowOf: Int32Array;
  readonly #values: Float32Array;
  readonly #layout: Layout;

  private constructor(path: string, dtype: CacheDType, status: CacheStatus, computed: number, rowOf: Int32Array, values: Float32Array, layout: Layout) {
    this.path = path;
    this.numClasses = layout.C;
    this.dtype = dtype;
    this.status = status;
    this.computed = computed;
    this.#rowOf = rowOf;
    this.#values = values;
    this.#layout = layout;
  }

  /** The file that holds `teacher`'s outputs on `dataset` (through its origin) with these options. */
  static pathFor(teacher: Teacher, dataset: Dataset, o: TeacherCacheOptions = {}): string {
    const { name, key } = cacheKey(teacher, dataset, o);
    const safe = name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80) || 'data';
    return join(o.dir ? resolve(o.dir) : defaultCacheDir(), `${safe}-${key.slice(0, 20)}.safetensors`);
  }

  /**
   * Opens the cache of `teacher` on `dataset`: loads and validates the file, computes (in one
   * no-grad pass, in batches) whatever samples it lacks, and rewrites it atomically if it changed.
   */
  static open(teacher: Teacher, dataset: Dataset, o: TeacherCacheOptions = {}): TeacherOutputCache {
    return drain(TeacherOutputCache.openSteps(teacher, dataset, o));
  }

  /** open() one batch of the build at a time: it yields the progress after each batch (cachedTeacherInterruptible). */
  static *openSteps(teacher: Teacher, dataset: Dataset, o: TeacherCacheOptions = {}): Generator<BuildProgress, TeacherOutputCache> {
    const notice = o.notice ?? defaultNotice;
    const dtype = o.dtype ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'float16') throw new Error(`teacher cache: dtype must be float32 or float16, got ${String(dtype)}`);
    const augment = o.augment ?? [];
    const bad = augment.filter((a) => !isDeterministic(a));
    if (bad.length) throw new Error(`teacher cache: random augmentations cannot be cached (${bad.map((a) => JSON.stringify(a)).join(', ')}); pass only the deterministic ones`);
    const names = featureNames(o);
    const targets = targetList(o);
    const tnames = targets.map((t) => t.name);
    if (names.length && !teacher.features) throw new Error(`teacher cache: features (${names.join(', ')}) were requested but the teacher (${teacher.description}) cannot return them`);
    const C = teacher.numClasses;
    const { name, meta } = cacheKey(teacher, dataset, o);
    const path = TeacherOutputCache.pathFor(teacher, dataset, o);
    const origin = dataset.origin?.indices;
    if (origin && origin.length !== dataset.size) throw new Error(`teacher cache: dataset '${dataset.name}' has ${dataset.size} samples but ${origin.length} origin indices`);
    const want = origin ?? Int32Array.from({ length: dataset.size }, (_, i) => i);
    const hashes = rowHashes(dataset);

    let old: Entries | null = null;
    if (existsSync(path)) {
      const r = readEntries(path, meta, C, names, tnames);
      if (typeof r === 'string') notice(`teacher cache ${path}: ${r}; rebuilding`);
      else old = r;
    }
    // Where each needed sample sits in the old file; a sample whose hash differs means the data
    // under this name changed, which makes the whole file suspect.
    let pos = new Int32Array(dataset.size).fill(-1);
    if (old) {
      const at = new Map<number, number>();
      for (let i = 0; i < old.indices.length; i++) at.set(old.indices[i]!, i);
      let changed = 0;
      for (let r = 0; r < dataset.size; r++) {
        const i = at.get(want[r]!);
        if (i === undefined) continue;
        if (old.hashes[i] !== hashes[r]) changed++;
        else pos[r] = i;
      }
      if (changed > 0) {
        notice(`teacher cache ${path}: ${changed} sample${changed > 1 ? 's' : ''} of '${name}' differ from when it was built; rebuilding`);
        old = null;
        pos = new Int32Array(dataset.size).fill(-1);
      }
    }
    const missing: number[] = [];
    const seen = new Set<number>();
    for (let r = 0; r < dataset.size; r++) {
      if (pos[r] === -1 && !seen.has(want[r]!)) {
        seen.add(want[r]!);
        missing.push(r);
      }
    }
    // The features' shapes: from the file, else from one probe sample.
    const layout = old?.layout ?? layoutOf(C, names, names.length ? probeShapes(teacher, dataset, names, augment) : [], tnames, targets.length ? probeTargetShapes(teacher, dataset, targets, augment) : []);
    if (names.length || targets.length) {
      const rows = (old?.indices.length ?? 0) + missing.length;
      const bytes = rows * (layout.W - C) * 4;
      const limit = o.maxFeatureBytes ?? defaultMaxFeatureBytes();
      if (bytes > limit) {
        throw new FeatureCacheTooLarge(`teacher cache: the ${names.length ? 'features' : 'targets'} ${[...layout.feats, ...layout.tgts].map((f) => `${f.name} [${f.shape.join(', ')}]`).join(', ')} of ${rows} samples take ${(bytes / 2 ** 20).toFixed(0)} MiB, above the limit of ${(limit / 2 ** 20).toFixed(0)} MiB; raise KDISTILL_CACHE_MAX_FEATURE_MB (or maxFeatureBytes) if memory allows, or set teacherCache: off`);
      }
    }
    const compute = (part: Int32Array): Float32Array => drain(computeRowSteps(teacher, dataset, part, augment, o.batchSize ?? 256, layout, targets));
    // `distribute` only sees row widths: a packed row of logits and features is one "row of W classes".
    if (missing.length === 0 && old) {
      o.distribute?.(new Int32Array(0), layout.W, compute);
      return new TeacherOutputCache(path, dtype, 'loaded', 0, pos, old.values, layout);
    }

    notice(`teacher cache ${path}: computing the teacher's outputs${names.length ? ` and features (${names.join(', ')})` : ''}${tnames.length ? ` and targets (${tnames.join(', ')})` : ''} on ${missing.length} sample${missing.length > 1 ? 's' : ''}${old ? ` (${old.indices.length} already cached)` : ''}`);
    const fresh = o.distribute
      ? o.distribute(Int32Array.from(missing), layout.W, compute)
      : yield* computeRowSteps(teacher, dataset, Int32Array.from(missing), augment, o.batchSize ?? 256, layout, targets);
    // Merge old entries and new ones, ordered by source index so the file is independent of
    // the order in which runs asked for samples.
    const W = layout.W;
    const oldN = old?.indices.length ?? 0;
    const total = oldN + missing.length;
    const order: { idx: number; src: 0 | 1; i: number }[] = [];
    for (let i = 0; i < oldN; i++) order.push({ idx: old!.indices[i]!, src: 0, i });
    for (let j = 0; j < missing.length; j++) order.push({ idx: want[missing[j]!]!, src: 1, i: j });
    order.sort((a, b) => a.idx - b.idx);
    const merged: Entries = { indices: new Int32Array(total), hashes: new Int32Array(total), values: new Float32Array(total * W), layout };
    const rowOfIdx = new Map<number, number>();
    order.forEach((e, k) => {
      merged.indices[k] = e.idx;
      rowOfIdx.set(e.idx, k);
      if (e.src === 0) {
        merged.hashes[k] = old!.hashes[e.i]!;
        merged.values.set(old!.values.subarray(e.i * W, e.i * W + W), k * W);
      } else {
        merged.hashes[k] = hashes[missing[e.i]!]!;
        merged.values.set(fresh.subarray(e.i * W, e.i * W + W), k * W);
      }
    });
    const stored = o.write === false ? asStored(merged.values, dtype) : writeEntries(path, merged, meta, dtype);
    const rowOf = new Int32Array(dataset.size);
    for (let r = 0; r < dataset.size; r++) rowOf[r] = rowOfIdx.get(want[r]!)!;
    // Serve what the file holds, so a float16 cache gives the same values in this run as in the next.
    return new TeacherOutputCache(path, dtype, old ? 'extended' : 'built', missing.length, rowOf, stored, layout);
  }

  /** Number of dataset rows this cache serves. */
  get size(): number {
    return this.#rowOf.length;
  }

  /** The cached feature names, and each one's per-sample shape. */
  get featureShapes(): Record<string, number[]> {
    return Object.fromEntries(this.#layout.feats.map((f) => [f.name, f.shape.slice()]));
  }

  /** The cached target names, and each one's per-sample shape. */
  get targetShapes(): Record<string, number[]> {
    return Object.fromEntries(this.#layout.tgts.map((f) => [f.name, f.shape.slice()]));
  }

  /** True if every name is a cached target. */
  hasTargets(names: readonly string[]): boolean {
    return names.every((n) => this.#layout.tgts.some((f) => f.name === n));
  }

  /** The cached target `name` [B, ...shape] for dataset rows `rows`, as float32 values. */
  gatherTarget(rows: ArrayLike<number>, name: string): Float32Array {
    const f = this.#layout.tgts.find((s) => s.name === name);
    if (!f) throw new Error(`teacher cache: target '${name}' is not cached (cached: ${this.#layout.tgts.map((s) => s.name).join(', ') || 'none'})`);
    return this.#slice(rows, f.offset, f.size);
  }

  /** Named targets as float32 tensors [B, ...shape]. */
  targets(rows: ArrayLike<number>, names: readonly string[]): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const n of names) out[n] = tensor(this.gatherTarget(rows, n), { shape: [rows.length, ...(this.#layout.tgts.find((f) => f.name === n)?.shape ?? [])] });
    return out;
  }

  /** True if every name is a cached feature. */
  hasFeatures(names: readonly string[]): boolean {
    return names.every((n) => this.#layout.feats.some((f) => f.name === n));
  }

  /** Columns [offset, offset + size) of the packed rows of dataset rows `rows`, as [B, size]. */
  #slice(rows: ArrayLike<number>, offset: number, size: number): Float32Array {
    const W = this.#layout.W;
    const out = new Float32Array(rows.length * size);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      if (!(r >= 0 && r < this.#rowOf.length)) throw new RangeError(`teacher cache: row ${r} is outside the cached dataset (${this.#rowOf.length} samples)`);
      const k = this.#rowOf[r]! * W + offset;
      out.set(this.#values.subarray(k, k + size), i * size);
    }
    return out;
  }

  /** Teacher logits [B, C] for dataset rows `rows` (the DataLoader batch's `indices`). */
  gather(rows: ArrayLike<number>): Float32Array {
    return this.#slice(rows, 0, this.numClasses);
  }

  /** The cached feature `name` [B, ...shape] for dataset rows `rows`, as float32 values. */
  gatherFeature(rows: ArrayLike<number>, name: string): Float32Array {
    const f = this.#layout.feats.find((s) => s.name === name);
    if (!f) throw new Error(`teacher cache: feature '${name}' is not cached (cached: ${this.#layout.feats.map((s) => s.name).join(', ') || 'none'})`);
    return this.#slice(rows, f.offset, f.size);
  }

  /** The logits as a float32 tensor [B, C]. */
  logits(rows: ArrayLike<number>): Tensor {
    return tensor(this.gather(rows), { shape: [rows.length, this.numClasses] });
  }

  /** Named features as float32 tensors [B, ...shape]. */
  features(rows: ArrayLike<number>, names: readonly string[]): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const n of names) out[n] = tensor(this.gatherFeature(rows, n), { shape: [rows.length, ...this.#layout.feats.find((f) => f.name === n)!.shape] });
    return out;
  }
}

/**
 * A teacher whose logits (and cached features) on the training rows come from the cache: the
 * trainer calls logitsAt / featuresAt with the batch's dataset indices. Anything else (evaluation
 * inputs, uncached features, input derivatives) runs the live teacher, which stays loaded for that.
 */
export class CachedTeacher implements Teacher {
  readonly description: string;
  readonly checksum: string;
  readonly numClasses: number;
  readonly numParameters: number;
  features?: Teacher['features'];
  logitsWithGrad?: Teacher['logitsWithGrad'];
  featuresWithGrad?: Teacher['featuresWithGrad'];
  /** The live teacher's module, if it has one: methods that match its layers (DistilBERT, TinyBERT) read its spec. */
  readonly model?: Module;

  constructor(readonly teacher: Teacher, readonly cache: TeacherOutputCache) {
    if (cache.numClasses !== teacher.numClasses) throw new Error(`CachedTeacher: cache has ${cache.numClasses} classes, the teacher ${teacher.numClasses}`);
    this.description = teacher.description;
    this.checksum = teacher.checksum;
    this.numClasses = teacher.numClasses;
    this.numParameters = teacher.numParameters;
    if ('model' in teacher) this.model = (teacher as { model: Module }).model;
    if (teacher.features) this.features = (x, names) => teacher.features!(x, names);
    // Input derivatives beyond the cached targets (targetsAt) need the live teacher's graph.
    if (teacher.logitsWithGrad) this.logitsWithGrad = (x) => teacher.logitsWithGrad!(x);
    if (teacher.featuresWithGrad) this.featuresWithGrad = (x, names) => teacher.featuresWithGrad!(x, names);
  }

  logits(x: Tensor): Tensor {
    return this.teacher.logits(x);
  }

  logitsAt(indices: Int32Array, x: Tensor): Tensor {
    if (x.shape[0] !== indices.length) throw new Error(`CachedTeacher: batch of ${x.shape[0]} with ${indices.length} indices`);
    return this.cache.logits(indices);
  }

  /**
   * Logits and named features of training rows by their dataset indices, from the cache when it
   * holds every name; otherwise from the live teacher on `x` (as `features(x, names)`).
   */
  featuresAt(indices: Int32Array, x: Tensor, names: string[]): { output: Tensor; features: Record<string, Tensor> } {
    if (x.shape[0] !== indices.length) throw new Error(`CachedTeacher: batch of ${x.shape[0]} with ${indices.length} indices`);
    if (this.cache.hasFeatures(names)) return { output: this.cache.logits(indices), features: this.cache.features(indices, names) };
    if (!this.teacher.features) throw new Error(`the teacher (${this.description}) cannot return features (${names.join(', ')})`);
    return this.teacher.features(x, names);
  }

  /**
   * Cached per-sample targets (Method.cachedTargets) of training rows by their dataset indices,
   * or null when the cache does not hold every name (the method then computes them live).
   */
  targetsAt(indices: Int32Array, x: Tensor, names: string[]): Record<string, Tensor> | null {
    if (x.shape[0] !== indices.length) throw new Error(`CachedTeacher: batch of ${x.shape[0]} with ${indices.length} indices`);
    return this.cache.hasTargets(names) ? this.cache.targets(indices, names) : null;
  }
}

/** Opens (building if needed) the cache of `teacher` on `dataset` and wraps the teacher with it. */
export function cachedTeacher(teacher: Teacher, dataset: Dataset, o: TeacherCacheOptions = {}): CachedTeacher {
  return new CachedTeacher(teacher, TeacherOutputCache.open(teacher, dataset, o));
}

/** Samples of the build computed so far, of how many. */
export interface BuildProgress { done: number; total: number }

/** Thrown when SIGINT/SIGTERM stops a cache build; exitCode is 128 + the signal number, as for training. */
export class CacheBuildInterrupted extends Error {
  readonly exitCode: number;
  constructor(readonly signal: NodeJS.Signals, at: BuildProgress | null) {
    super(`interrupted by ${signal} while building the teacher-output cache${at ? ` (${at.done} of ${at.total} samples computed)` : ''}, before training started; ` +
      'nothing was written. Run the same command again to build it (teacherCache: off runs the teacher live instead).');
    this.exitCode = 128 + (osConstants.signals[signal] ?? 2);
  }
}

/**
 * cachedTeacher for a command line. Node delivers signals only between turns of the event loop,
 * which a synchronous build never reaches (Ctrl-C killed it without a word), so this build yields
 * after every batch and stops at a SIGINT/SIGTERM with a message, as training does. A build split
 * across ranks (o.distribute) runs as one piece: its ranks must stay in step.
 */
export async function cachedTeacherInterruptible(teacher: Teacher, dataset: Dataset, o: TeacherCacheOptions = {}): Promise<CachedTeacher> {
  if (o.distribute) return cachedTeacher(teacher, dataset, o);
  let signalled: NodeJS.Signals | null = null;
  const onSignal = (s: NodeJS.Signals): void => { signalled = s; };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  for (const s of signals) process.on(s, onSignal);
  const steps = TeacherOutputCache.openSteps(teacher, dataset, o);
  try {
    for (;;) {
      const r = steps.next();
      if (r.done) return new CachedTeacher(teacher, r.value);
      await new Promise<void>((res) => setImmediate(res));
      if (signalled) {
        steps.return(undefined as never);
        throw new CacheBuildInterrupted(signalled, r.value);
      }
    }
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}

// ---- internals ----------------------------------------------------------------------------

function defaultNotice(line: string): void {
  if (process.env.KDISTILL_QUIET !== '1') process.stderr.write(line + '\n');
}

/** The requested feature names, de-duplicated and sorted (the file's order). */
function featureNames(o: TeacherCacheOptions): string[] {
  return [...new Set(o.features ?? [])].sort();
}

/** The requested targets, sorted by name (the file's order); one name with two keys is an error. */
function targetList(o: TeacherCacheOptions): CachedTarget[] {
  const by = new Map<string, CachedTarget>();
  for (const t of o.targets ?? []) {
    const prev = by.get(t.name);
    if (prev && prev.key !== t.key) throw new Error(`teacher cache: target '${t.name}' requested with two keys (${prev.key}, ${t.key})`);
    by.set(t.name, t);
  }
  return [...by.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function cacheKey(teacher: Teacher, dataset: Dataset, o: TeacherCacheOptions): { name: string; key: string; meta: Record<string, string> } {
  const name = dataset.origin?.name ?? dataset.name;
  const meta: Record<string, string> = {
    format: CACHE_FORMAT,
    version: String(CACHE_VERSION),
    teacher: teacher.checksum,
    dataset: name,
    sampleShape: JSON.stringify(dataset.sampleShape),
    augment: JSON.stringify(o.augment ?? []),
    numClasses: String(teacher.numClasses),
    dtype: o.dtype ?? 'float32',
  };
  // Only feature caches name features, so a logits-only cache keeps its key and file.
  const names = featureNames(o);
  if (names.length) meta.features = JSON.stringify(names);
  // Likewise targets: each one's name and the settings its values depend on.
  const targets = targetList(o);
  if (targets.length) meta.targets = JSON.stringify(targets.map((t) => [t.name, t.key]));
  const key = createHash('sha256').update(JSON.stringify(meta)).digest('hex');
  return { name, key, meta };
}

/** Reads and validates a cache file; a string is the reason it cannot be used. */
function readEntries(path: string, meta: Record<string, string>, C: number, names: readonly string[], tnames: readonly string[]): Entries | string {
  let file;
  try {
    file = parseSafetensors(readFileSync(path), path);
  } catch (e) {
    return `unreadable (${(e as Error).message.replace(`${path}: `, '').split('\n')[0]})`;
  }
  const { tensors, metadata } = file;
  try {
    for (const [k, v] of Object.entries(meta)) {
      if (metadata[k] !== v) return `metadata '${k}' is ${JSON.stringify(metadata[k] ?? null)}, expected ${JSON.stringify(v)}`;
    }
    if (!names.length && metadata.features !== undefined) return 'metadata names features, expected none';
    if (!tnames.length && metadata.targets !== undefined) return 'metadata names targets, expected none';
    const idx = tensors.get('indices'), hs = tensors.get('sampleHash'), lg = tensors.get('logits');
    if (!idx || !hs || !lg) return 'missing tensors (needs indices, sampleHash, logits)';
    const M = idx.shape[0] ?? -1;
    if (idx.ndim !== 1 || idx.dtype !== 'int32' || hs.dtype !== 'int32' || hs.ndim !== 1 || hs.shape[0] !== M) return 'indices/sampleHash have wrong shapes or dtypes';
    if (lg.ndim !== 2 || lg.shape[0] !== M || lg.shape[1] !== C || lg.dtype !== meta.dtype) return `logits are ${lg.dtype} [${lg.shape.join(', ')}], expected ${meta.dtype} [${M}, ${C}]`;
    const shapesOf = (key: string, count: number): number[][] | string => {
      if (!count) return [];
      let shapes: number[][];
      try {
        shapes = JSON.parse(metadata[key] ?? 'null') as number[][];
      } catch {
        return `metadata '${key}' is not JSON`;
      }
      if (!Array.isArray(shapes) || shapes.length !== count || !shapes.every((sh) => Array.isArray(sh) && sh.every((d) => Number.isInteger(d) && d > 0))) {
        return `metadata '${key}' is ${JSON.stringify(metadata[key] ?? null)}, expected ${count} shapes`;
      }
      return shapes;
    };
    const shapes = shapesOf('featureShapes', names.length);
    if (typeof shapes === 'string') return shapes;
    const tshapes = shapesOf('targetShapes', tnames.length);
    if (typeof tshapes === 'string') return tshapes;
    const fts = [];
    const wanted: [string, string, number[]][] = [
      ...names.map((n, i): [string, string, number[]] => ['feature', n, shapes[i]!]),
      ...tnames.map((n, i): [string, string, number[]] => ['target', n, tshapes[i]!]),
    ];
    for (const [kind, n, shape] of wanted) {
      const t = tensors.get(`${kind}.${n}`);
      const want = [M, ...shape];
      if (!t) return `missing tensor '${kind}.${n}'`;
      if (t.dtype !== meta.dtype || t.shape.length !== want.length || t.shape.some((d, j) => d !== want[j])) return `${kind} '${n}' is ${t.dtype} [${t.shape.join(', ')}], expected ${meta.dtype} [${want.join(', ')}]`;
      fts.push(t);
    }
    const indices = idx.data<Int32Array>(), hashes = hs.data<Int32Array>();
    const parts = [lg, ...fts];
    if (payloadHash(indices, hashes, parts.map((t) => t.data())) !== metadata.sha256) return 'checksum mismatch (corrupt file)';
    for (let i = 1; i < M; i++) if (!(indices[i - 1]! < indices[i]!)) return 'indices are not strictly increasing';
    const layout = layoutOf(C, names, shapes, tnames, tshapes);
    const values = new Float32Array(M * layout.W);
    const slots = [...layout.feats, ...layout.tgts];
    const sizes = [C, ...slots.map((f) => f.size)], offsets = [0, ...slots.map((f) => f.offset)];
    parts.forEach((t, p) => {
      const v = t.dtype === 'float32' ? t.data<Float32Array>() : tidy(() => t.to('float32').data<Float32Array>());
      const n = sizes[p]!, off = offsets[p]!;
      for (let k = 0; k < M; k++) values.set(v.subarray(k * n, k * n + n), k * layout.W + off);
    });
    return { indices, hashes, values, layout };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/** Writes the entries atomically; returns the packed values as stored (rounded for float16), as float32. */
function writeEntries(path: string, e: Entries, meta: Record<string, string>, dtype: CacheDType): Float32Array {
  const { C, feats, tgts, W } = e.layout;
  const M = e.indices.length;
  const made: Tensor[] = [];
  try {
    const idx = tensor(e.indices, { shape: [M], dtype: 'int32' });
    const hs = tensor(e.hashes, { shape: [M], dtype: 'int32' });
    made.push(idx, hs);
    const cols = (off: number, n: number): Float32Array => {
      if (n === W) return e.values;
      const out = new Float32Array(M * n);
      for (let k = 0; k < M; k++) out.set(e.values.subarray(k * W + off, k * W + off + n), k * n);
      return out;
    };
    const parts: [string, Tensor][] = [['logits', tensor(cols(0, C), { shape: [M, C] })], ...feats.map((f): [string, Tensor] => [`feature.${f.name}`, tensor(cols(f.offset, f.size), { shape: [M, ...f.shape] })]),
      ...tgts.map((f): [string, Tensor] => [`target.${f.name}`, tensor(cols(f.offset, f.size), { shape: [M, ...f.shape] })])];
    made.push(...parts.map(([, t]) => t));
    const stored = parts.map(([n, t]): [string, Tensor] => {
      if (dtype === 'float32') return [n, t];
      const h = t.to('float16');
      made.push(h);
      return [n, h];
    });
    const extra: Record<string, string> = {
      ...(feats.length ? { featureShapes: JSON.stringify(feats.map((f) => f.shape)) } : {}),
      ...(tgts.length ? { targetShapes: JSON.stringify(tgts.map((f) => f.shape)) } : {}),
    };
    const bytes = serializeSafetensors(new Map([['indices', idx], ['sampleHash', hs], ...stored]), {
      ...meta, ...extra, sha256: payloadHash(e.indices, e.hashes, stored.map(([, t]) => t.data())), rows: String(M), created: new Date().toISOString(),
    });
    atomicWrite(path, bytes);
    return asStored(e.values, dtype);
  } finally {
    for (const t of made) t.dispose();
  }
}

/** The values as a file of this dtype would give them back (what writeEntries returns). */
function asStored(values: Float32Array, dtype: CacheDType): Float32Array {
  if (dtype === 'float32') return values;
  return tidy(() => tensor(values).to('float16').to('float32').data<Float32Array>());
}

/** The batch of dataset rows `part` as the teacher sees it (deterministic augmentations applied). */
function inputs(ds: Dataset, part: Int32Array, augment: readonly AugmentSpec[]): Tensor {
  // Deterministic augmentations ignore the random stream, so any (seed, epoch, batch) will do.
  const { x } = buildBatch({ x: ds.x, y: null, sampleShape: ds.sampleShape }, part, augment, 0, 0, 0);
  return tensor(x, { shape: [part.length, ...ds.sampleShape] });
}

/** The dataset's labels of rows `part` as an int64 tensor [B], or null on unlabeled data. */
function labels(ds: Dataset, part: Int32Array): Tensor | null {
  if (!ds.y) return null;
  const y = new BigInt64Array(part.length);
  for (let i = 0; i < part.length; i++) y[i] = BigInt(ds.y[part[i]!]!);
  return tensor(y, { shape: [part.length] });
}

/** The targets on dataset rows `part`, each checked to be [B, ...]; computed with gradients enabled. */
function computeTargets(teacher: Teacher, ds: Dataset, part: Int32Array, augment: readonly AugmentSpec[], targets: readonly CachedTarget[]): Tensor[] {
  return enableGrad(() => targets.map((t) => {
    const v = t.compute(teacher, inputs(ds, part, augment), labels(ds, part));
    if (v.ndim < 1 || v.shape[0] !== part.length) throw new Error(`teacher cache: target '${t.name}' has shape [${v.shape.join(', ')}] for a batch of ${part.length}`);
    return v.detach();
  }));
}

/** Per-sample shapes of the targets, from one sample. */
function probeTargetShapes(teacher: Teacher, ds: Dataset, targets: readonly CachedTarget[], augment: readonly AugmentSpec[]): number[][] {
  if (ds.size === 0) throw new Error(`teacher cache: dataset '${ds.name}' is empty`);
  return tidy(() => computeTargets(teacher, ds, Int32Array.of(0), augment, targets).map((t) => t.shape.slice(1)));
}

/** Per-sample shapes of the named features, from one sample. */
function probeShapes(teacher: Teacher, ds: Dataset, names: readonly string[], augment: readonly AugmentSpec[]): number[][] {
  if (ds.size === 0) throw new Error(`teacher cache: dataset '${ds.name}' is empty`);
  return noGrad(() => tidy(() => {
    const f = teacher.features!(inputs(ds, Int32Array.of(0), augment), [...names]).features;
    return names.map((n) => {
      const t = f[n];
      if (!t) throw new Error(`teacher cache: ${teacher.description} returned no feature '${n}'`);
      return t.shape.slice(1);
    });
  }));
}

/** Runs a generator to its end. */
function drain<T>(g: Generator<unknown, T>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

/** The teacher's packed rows (logits, then features) on the given dataset rows, in no-grad batches; yields after each batch. */
function* computeRowSteps(teacher: Teacher, ds: Dataset, rows: Int32Array, augment: readonly AugmentSpec[], batchSize: number, layout: Layout, targets: readonly CachedTarget[] = []): Generator<BuildProgress, Float32Array> {
  const { C, feats, tgts, W } = layout;
  const out = new Float32Array(rows.length * W);
  if (rows.length === 0) return out;
  const names = feats.map((f) => f.name);
  const bar = new ProgressBar(`teacher cache: ${teacher.description}`, rows.length);
  const flat = (t: Tensor, shape: number[], what: string, n: number): Float32Array => {
    if (t.shape.length !== shape.length + 1 || t.shape[0] !== n || shape.some((d, j) => t.shape[j + 1] !== d)) {
      throw new Error(`teacher cache: ${teacher.description} returned ${what} of shape [${t.shape.join(', ')}], expected [${[n, ...shape].join(', ')}]`);
    }
    return t.to('float32').contiguous().data<Float32Array>();
  };
  try {
    for (let s = 0; s < rows.length; s += batchSize) {
      const part = rows.subarray(s, Math.min(s + batchSize, rows.length));
      const n = part.length;
      noGrad(() => tidy(() => {
        const x = inputs(ds, part, augment);
        const r = names.length ? teacher.features!(x, names) : { output: teacher.logits(x), features: {} as Record<string, Tensor> };
        const z = flat(r.output, [C], 'logits', n);
        for (let k = 0; k < n; k++) out.set(z.subarray(k * C, k * C + C), (s + k) * W);
        for (const f of feats) {
          const t = r.features[f.name];
          if (!t) throw new Error(`teacher cache: ${teacher.description} returned no feature '${f.name}'`);
          const v = flat(t, f.shape, `feature '${f.name}'`, n);
          for (let k = 0; k < n; k++) out.set(v.subarray(k * f.size, k * f.size + f.size), (s + k) * W + f.offset);
        }
      }));
      // Targets (e.g. input gradients) need the teacher's graph: gradients on for them alone.
      if (tgts.length) {
        noGrad(() => tidy(() => {
          const vs = computeTargets(teacher, ds, part, augment, targets);
          tgts.forEach((f, j) => {
            const v = flat(vs[j]!, f.shape, `target '${f.name}'`, n);
            for (let k = 0; k < n; k++) out.set(v.subarray(k * f.size, k * f.size + f.size), (s + k) * W + f.offset);
          });
        }));
      }
      bar.update(s + n);
      yield { done: s + n, total: rows.length };
    }
  } finally {
    bar.done();
  }
  return out;
}
