// The teacher-output cache for augmented training (FKD, Shen & Xing, ECCV 2022): with replayable
// augmentation (data.augment.seed; src/data/batch.ts ViewReplay) the view of sample i in epoch e
// is a pure function of (augmentation seed, e, i), so the teacher's output on every view of E
// epochs can be computed once, in one no-grad pass, and served by (epoch, dataset row). Teacher
// and student then see the same view (Beyer et al., CVPR 2022), which the plain cache
// (cache.ts, outputs of the un-augmented sample) cannot give.
//
// File: <dir>/<dataset>-views-<key>.safetensors with tensors
//   indices        I32 [M]        the samples' indices in the source dataset (Dataset.origin), ascending
//   sampleHash     I32 [M]        a 32-bit hash of each sample's raw float32 values (cache.ts rowHashes)
//   logits         F32|F16 [E, M, C]             all logits; or, with topK = K:
//   topIndex       I32 [E, M, K]  the K largest logits' classes (ties: lower class first)
//   topLogits      F32|F16 [E, M, K]  their values
//   restLogSumExp  F32 [E, M]     log Σ exp(z_j) over the other C − K classes: the rest's total mass
//                                 in logit units (its probability is exp(restLogSumExp − logsumexp(z)))
// and metadata naming the teacher's checksum, the dataset, the whole augmentation recipe, the
// augmentation seed, C, dtype, topK, the epoch count E and a sha256 of the tensors. The key in the
// file name hashes all of these but E, and none of the run's seed, method, output folder or
// optimizer: every run with the same teacher, data, recipe and augmentation seed (seed sweeps,
// sweep trials, method comparisons) shares one file, and a run needing more epochs extends it.
//
// Top-k is served as logits that give the teacher's softmax (T = 1) exactly on the top k and the
// rest's total mass exactly, spread evenly: each other class gets restLogSumExp − log(C − K). At
// another temperature the rest's shape is an approximation (FKD stores soft labels the same way).
//
// Validation on open is the plain cache's: unreadable, other metadata, wrong shapes, checksum
// mismatch or a sample whose data changed → rebuilt with a one-line notice.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { serializeSafetensors } from '../nn/safetensors.js';
import { atomicWrite } from '../util/fs.js';
import { ProgressBar } from '../util/progress.js';
import type { Dataset } from '../data/dataset.js';
import type { Augmentation, AugmentSpec } from '../data/augment.js';
import { augmentViews, gatherRows } from '../data/batch.js';
import {
  defaultCacheDir, defaultNotice, drain, isDeterministic, payloadHash, planTeacherCache, readCacheFile, rowHashes,
  type BuildProgress, type CacheDType, type CachePlan, type CacheStatus, type TeacherCacheMode, type TeacherCacheOptions,
} from './cache.js';
import type { Teacher } from './teacher.js';
import { DelegatingTeacher } from './delegating.js';

export const VIEW_CACHE_FORMAT = 'kdistill-teacher-view-cache';
export const VIEW_CACHE_VERSION = 1;

/** The plain cache's modes plus 'views': the view cache, required (an error when augmentation is not replayable). */
export type ViewCacheMode = TeacherCacheMode | 'views';

export interface ViewCacheOptions {
  /** The whole input pipeline of the student's batches, random augmentations included. */
  augment: readonly AugmentSpec[];
  /** The augmentation seed (data.augment.seed) the views are replayed from. */
  augmentSeed: number;
  /** Views of epochs 0..epochs−1 are cached; later epochs run the live teacher. */
  epochs: number;
  /** Store only the K largest logits and the rest's total mass (many-class problems). Default: all. */
  topK?: number;
  /** Folder of cache files (default as the plain cache's). */
  dir?: string;
  /** Storage type of the logits (default float32: exactly the live teacher's values). */
  dtype?: CacheDType;
  /** Batch size of the build pass (default 256). */
  batchSize?: number;
  notice?: (line: string) => void;
  /** Data-parallel build, as TeacherCacheOptions.distribute; its rows are views, encoded epoch × dataset size + row. */
  distribute?: TeacherCacheOptions['distribute'];
  /** false: another process (rank 0) writes the file. */
  write?: boolean;
}

export interface ViewCachePlan extends CachePlan {
  /** true: serve the teacher's outputs on each epoch's views (TeacherViewCache); `augment` is then the whole pipeline. */
  views: boolean;
}

/**
 * The plain cache's decision (planTeacherCache) extended with the view cache:
 * - 'auto': the view cache when some augmentation is random and all are replayable (an
 *   augmentation seed, built-in augmentations), unless the method needs teacher features;
 * - 'views': the same, but an error when the augmentation is not replayable; with a deterministic
 *   pipeline every view is the sample itself and the plain cache serves it;
 * - 'on', 'off': as planTeacherCache ('on' keeps caching un-augmented outputs, so the two can be compared).
 */
export function planViewCache(mode: ViewCacheMode, augs: readonly Augmentation[], o: { augmentSeed?: number; needsFeatures?: boolean } = {}): ViewCachePlan {
  const random = augs.filter((a) => !isDeterministic(a)).length;
  const replayable = o.augmentSeed !== undefined && augs.every((a) => typeof a !== 'function');
  if (mode === 'views') {
    if (o.augmentSeed === undefined) throw new Error('teacherCache: views needs replayable augmentation: set data.augment.seed');
    if (!replayable) throw new Error('teacherCache: views needs built-in augmentations (a function augmentation cannot be stored in the cache key)');
    if (random === 0) return { ...planTeacherCache('auto', augs), views: false, reason: 'teacher cache on: the pipeline is deterministic, so every view is the sample itself' };
    if (o.needsFeatures) return { use: false, views: false, augment: [], reason: 'teacher view cache not used: the method needs teacher features, which it does not store, so the teacher runs every step' };
  }
  if ((mode === 'views' || mode === 'auto') && random > 0 && replayable && !o.needsFeatures) {
    return { use: true, views: true, augment: augs as AugmentSpec[], reason: `teacher view cache on: the teacher's outputs on each epoch's augmented views (augmentation seed ${o.augmentSeed})` };
  }
  const plain = planTeacherCache(mode === 'views' ? 'auto' : mode, augs, o);
  if (mode === 'on' && random > 0 && replayable) return { ...plain, views: false, reason: `${plain.reason} (teacherCache: auto or views would cache each augmented view)` };
  return { ...plain, views: false };
}

/** Packed per-view rows: all C logits, or with topK the K top logits, their K classes (as floats) and the rest's log-sum-exp. */
interface Store {
  indices: Int32Array;
  hashes: Int32Array;
  epochs: number;
  /** float32 [epochs, M, W] */
  values: Float32Array;
}

/** The teacher's outputs on every view of E epochs of one dataset, loaded from or written to the cache folder. */
export class TeacherViewCache {
  readonly #rowOf: Int32Array;
  readonly #values: Float32Array;
  readonly #M: number;

  private constructor(
    readonly path: string,
    readonly numClasses: number,
    readonly topK: number | null,
    /** Epochs of views it holds (at least the number asked for). */
    readonly epochs: number,
    readonly status: CacheStatus,
    /** Views the teacher computed for this open. */
    readonly computed: number,
    rowOf: Int32Array, values: Float32Array, M: number,
  ) {
    this.#rowOf = rowOf;
    this.#values = values;
    this.#M = M;
  }

  /** The file holding `teacher`'s outputs on the views of `dataset` under these options (independent of the epoch count). */
  static pathFor(teacher: Teacher, dataset: Dataset, o: ViewCacheOptions): string {
    const { name, key } = viewKey(teacher, dataset, o);
    const safe = name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80) || 'data';
    return join(o.dir ? resolve(o.dir) : defaultCacheDir(), `${safe}-views-${key.slice(0, 20)}.safetensors`);
  }

  static open(teacher: Teacher, dataset: Dataset, o: ViewCacheOptions): TeacherViewCache {
    return drain(TeacherViewCache.openSteps(teacher, dataset, o));
  }

  /** open() one batch of the build at a time (for buildInterruptibly). */
  static *openSteps(teacher: Teacher, dataset: Dataset, o: ViewCacheOptions): Generator<BuildProgress, TeacherViewCache> {
    const notice = o.notice ?? defaultNotice;
    const dtype = o.dtype ?? 'float32';
    const C = teacher.numClasses;
    checkOptions(o, C, dtype);
    const K = o.topK ?? null;
    const W = K === null ? C : 2 * K + 1;
    const { name, meta } = viewKey(teacher, dataset, o);
    const path = TeacherViewCache.pathFor(teacher, dataset, o);
    const origin = dataset.origin?.indices;
    if (origin && origin.length !== dataset.size) throw new Error(`teacher view cache: dataset '${dataset.name}' has ${dataset.size} samples but ${origin.length} origin indices`);
    const want = origin ?? Int32Array.from({ length: dataset.size }, (_, i) => i);
    const hashes = rowHashes(dataset);

    let old: Store | null = null;
    if (existsSync(path)) {
      const r = readStore(path, meta, C, K);
      if (typeof r === 'string') notice(`teacher view cache ${path}: ${r}; rebuilding`);
      else old = r;
    }
    const rowOfId = new Map<number, number>();
    for (let r = 0; r < dataset.size; r++) if (!rowOfId.has(want[r]!)) rowOfId.set(want[r]!, r);
    if (old) {
      let changed = 0;
      old.indices.forEach((id, i) => { const r = rowOfId.get(id); if (r !== undefined && old!.hashes[i] !== hashes[r]) changed++; });
      if (changed > 0) {
        notice(`teacher view cache ${path}: ${changed} sample${changed > 1 ? 's' : ''} of '${name}' differ from when it was built; rebuilding`);
        old = null;
      }
    }
    // The grid of the new file: more epochs than the old file holds can only be computed for the
    // samples of this dataset, so the old file's other samples are then dropped.
    const E = Math.max(old?.epochs ?? 0, o.epochs);
    const oldPos = new Map<number, number>();
    if (old) {
      let dropped = 0;
      old.indices.forEach((id, i) => { if (E === old!.epochs || rowOfId.has(id)) oldPos.set(id, i); else dropped++; });
      if (dropped) notice(`teacher view cache ${path}: extending to ${E} epochs drops ${dropped} sample${dropped > 1 ? 's' : ''} that this dataset lacks`);
    }
    const ids = Int32Array.from(new Set([...oldPos.keys(), ...rowOfId.keys()])).sort();
    const M = ids.length;
    if (E * dataset.size >= 2 ** 31) throw new Error(`teacher view cache: ${E} epochs × ${dataset.size} samples is too many views for one file`);
    // Views to compute, encoded e × size + row; `dest` is each one's cell e × M + m. Epoch by
    // epoch in source order, so that a build of whole epochs batches the views as an unshuffled
    // loader of the same batch size does (the teacher's last bits can depend on the batch).
    const todo: number[] = [];
    const dest: number[] = [];
    for (let e = 0; e < E; e++) {
      ids.forEach((id, m) => {
        if (oldPos.has(id) && e < old!.epochs) return;
        todo.push(e * dataset.size + rowOfId.get(id)!);
        dest.push(e * M + m);
      });
    }
    const compute = (part: Int32Array): Float32Array => drain(computeViews(teacher, dataset, part, o, W, dtype));
    const at = new Map<number, number>();
    ids.forEach((id, m) => at.set(id, m));
    const rowOf = Int32Array.from(want, (id) => at.get(id)!);

    if (todo.length === 0 && old) {
      o.distribute?.(new Int32Array(0), W, compute);
      return new TeacherViewCache(path, C, K, E, 'loaded', 0, rowOf, old.values, M);
    }
    notice(`teacher view cache ${path}: computing the teacher's outputs on ${todo.length} augmented view${todo.length > 1 ? 's' : ''} ` +
      `(${E} epoch${E > 1 ? 's' : ''} of ${M} samples${old ? `; ${old.epochs} epoch${old.epochs > 1 ? 's' : ''} of ${oldPos.size} already cached` : ''})`);
    const fresh = o.distribute ? o.distribute(Int32Array.from(todo), W, compute) : yield* computeViews(teacher, dataset, Int32Array.from(todo), o, W, dtype);
    const values = new Float32Array(E * M * W);
    if (old) {
      const oldM = old.indices.length;
      old.indices.forEach((id, i) => {
        const m = oldPos.has(id) ? at.get(id)! : -1;
        if (m < 0) return;
        for (let e = 0; e < old!.epochs; e++) values.set(old!.values.subarray((e * oldM + i) * W, (e * oldM + i + 1) * W), (e * M + m) * W);
      });
    }
    dest.forEach((cell, j) => values.set(fresh.subarray(j * W, (j + 1) * W), cell * W));
    const hs = Int32Array.from(ids, (id) => {
      const r = rowOfId.get(id);
      return r !== undefined ? hashes[r]! : old!.hashes[oldPos.get(id)!]!;
    });
    const store: Store = { indices: ids, hashes: hs, epochs: E, values };
    if (o.write !== false) writeStore(path, store, meta, C, K, dtype);
    return new TeacherViewCache(path, C, K, E, old ? 'extended' : 'built', todo.length, rowOf, values, M);
  }

  /** Number of dataset rows it serves. */
  get size(): number {
    return this.#rowOf.length;
  }

  /** The teacher's logits [B, C] on the views of dataset rows `rows` in `epoch` (top-k: reconstructed, see the file comment). */
  gather(epoch: number, rows: ArrayLike<number>): Float32Array {
    if (!(Number.isInteger(epoch) && epoch >= 0 && epoch < this.epochs)) throw new RangeError(`teacher view cache: epoch ${epoch} is not cached (it holds epochs 0..${this.epochs - 1})`);
    const C = this.numClasses;
    const K = this.topK;
    const W = K === null ? C : 2 * K + 1;
    const out = new Float32Array(rows.length * C);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      if (!(r >= 0 && r < this.#rowOf.length)) throw new RangeError(`teacher view cache: row ${r} is outside the cached dataset (${this.#rowOf.length} samples)`);
      const k = (epoch * this.#M + this.#rowOf[r]!) * W;
      if (K === null) {
        out.set(this.#values.subarray(k, k + C), i * C);
        continue;
      }
      // Each of the C − K other classes gets an equal share of the rest's mass.
      out.fill(this.#values[k + 2 * K]! - Math.log(C - K), i * C, i * C + C);
      for (let t = 0; t < K; t++) out[i * C + this.#values[k + K + t]!] = this.#values[k + t]!;
    }
    return out;
  }

  logits(epoch: number, rows: ArrayLike<number>): Tensor {
    return tensor(this.gather(epoch, rows), { shape: [rows.length, this.numClasses] });
  }
}

/**
 * A teacher whose logits on training batches come from the view cache, by (epoch, dataset rows):
 * the trainer calls logitsAt with the batch's indices and its epoch. Epochs past the cached ones,
 * evaluation inputs, features and input derivatives run the live teacher.
 */
export class ViewCachedTeacher extends DelegatingTeacher {
  #warned = false;

  constructor(teacher: Teacher, readonly cache: TeacherViewCache, readonly notice: (line: string) => void = defaultNotice) {
    super(teacher, 'ViewCachedTeacher', cache.numClasses);
  }

  logitsAt(indices: Int32Array, x: Tensor, epoch?: number): Tensor {
    if (x.shape[0] !== indices.length) throw new Error(`ViewCachedTeacher: batch of ${x.shape[0]} with ${indices.length} indices`);
    if (epoch === undefined) throw new Error('ViewCachedTeacher: logitsAt needs the epoch, which picks the cached view');
    if (epoch < this.cache.epochs) return this.cache.logits(epoch, indices);
    if (!this.#warned) {
      this.#warned = true;
      this.notice(`teacher view cache holds ${this.cache.epochs} epoch${this.cache.epochs > 1 ? 's' : ''} of views; from epoch ${epoch + 1} on the teacher runs live`);
    }
    return this.teacher.logits(x);
  }
}

/** Opens (building if needed) the view cache of `teacher` on `dataset` and wraps the teacher with it. */
export function viewCachedTeacher(teacher: Teacher, dataset: Dataset, o: ViewCacheOptions): ViewCachedTeacher {
  return new ViewCachedTeacher(teacher, TeacherViewCache.open(teacher, dataset, o), o.notice);
}

// ---- internals ----------------------------------------------------------------------------

function checkOptions(o: ViewCacheOptions, C: number, dtype: string): void {
  if (dtype !== 'float32' && dtype !== 'float16') throw new Error(`teacher view cache: dtype must be float32 or float16, got ${dtype}`);
  if (!Number.isSafeInteger(o.augmentSeed)) throw new Error(`teacher view cache: augmentSeed must be a safe integer, got ${o.augmentSeed}`);
  if (!(Number.isInteger(o.epochs) && o.epochs >= 1)) throw new Error(`teacher view cache: epochs must be a positive integer, got ${o.epochs}`);
  if (o.augment.some((a) => typeof a === 'function')) throw new Error('teacher view cache: function augmentations cannot be cached (they cannot be part of the cache key)');
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 1 && o.topK < C)) {
    throw new Error(`teacher view cache: topK must be an integer in [1, ${C - 1}] (fewer than the teacher's ${C} classes), got ${o.topK}`);
  }
  if (C >= 2 ** 24) throw new Error(`teacher view cache: ${C} classes are too many (class ids are packed as float32)`);
}

function viewKey(teacher: Teacher, dataset: Dataset, o: ViewCacheOptions): { name: string; key: string; meta: Record<string, string> } {
  const name = dataset.origin?.name ?? dataset.name;
  // No epoch count here: a file of more epochs serves fewer, and a run needing more extends it.
  const meta: Record<string, string> = {
    format: VIEW_CACHE_FORMAT,
    version: String(VIEW_CACHE_VERSION),
    teacher: teacher.checksum,
    dataset: name,
    sampleShape: JSON.stringify(dataset.sampleShape),
    augment: JSON.stringify(o.augment),
    augmentSeed: String(o.augmentSeed),
    numClasses: String(teacher.numClasses),
    dtype: o.dtype ?? 'float32',
    topK: o.topK === undefined ? 'all' : String(o.topK),
  };
  const key = createHash('sha256').update(JSON.stringify(meta)).digest('hex');
  return { name, key, meta };
}

/** The teacher's packed rows on views `views` (each e × dataset size + row), in no-grad batches; yields after each batch. */
function* computeViews(teacher: Teacher, ds: Dataset, views: Int32Array, o: ViewCacheOptions, W: number, dtype: CacheDType): Generator<BuildProgress, Float32Array> {
  const C = teacher.numClasses;
  const K = o.topK ?? null;
  const out = new Float32Array(views.length * W);
  if (views.length === 0) return out;
  const bs = o.batchSize ?? 256;
  const replay = { seed: o.augmentSeed, ids: ds.origin?.indices ?? null };
  const bar = new ProgressBar(`teacher view cache: ${teacher.description}`, views.length);
  try {
    for (let s = 0; s < views.length; s += bs) {
      const part = views.subarray(s, Math.min(s + bs, views.length));
      const rows = Int32Array.from(part, (v) => v % ds.size);
      const x = gatherRows({ x: ds.x, y: null, sampleShape: ds.sampleShape }, rows);
      augmentViews(o.augment, x, ds.sampleShape, replay, (k) => Math.floor(part[k]! / ds.size), rows);
      const z = noGrad(() => tidy(() => {
        const t = teacher.logits(tensor(x, { shape: [part.length, ...ds.sampleShape] }));
        if (t.ndim !== 2 || t.shape[0] !== part.length || t.shape[1] !== C) throw new Error(`teacher view cache: ${teacher.description} returned logits of shape [${t.shape.join(', ')}], expected [${part.length}, ${C}]`);
        // As stored: a float16 file serves the same values in this run as in the next.
        return (dtype === 'float16' ? t.to('float16') : t).to('float32').contiguous().data<Float32Array>();
      }));
      for (let k = 0; k < part.length; k++) {
        const row = z.subarray(k * C, k * C + C);
        if (K === null) out.set(row, (s + k) * W);
        else packTopK(row, K, out, (s + k) * W);
      }
      bar.update(s + part.length);
      yield { done: s + part.length, total: views.length };
    }
  } finally {
    bar.done();
  }
  return out;
}

/** Writes the K largest of `z` (ties: lower class first), their classes, and log Σ exp over the others (in float64) at out[at..]. */
function packTopK(z: Float32Array, K: number, out: Float32Array, at: number): void {
  const top: number[] = [];
  for (let j = 0; j < z.length; j++) {
    // Insert j into the descending list of at most K classes; an equal value keeps the earlier class first.
    let p = top.length;
    while (p > 0 && z[top[p - 1]!]! < z[j]!) p--;
    if (p < K) {
      top.splice(p, 0, j);
      if (top.length > K) top.pop();
    }
  }
  const inTop = new Set(top);
  let max = -Infinity;
  for (let j = 0; j < z.length; j++) if (!inTop.has(j) && z[j]! > max) max = z[j]!;
  let sum = 0;
  for (let j = 0; j < z.length; j++) if (!inTop.has(j)) sum += Math.exp(z[j]! - max);
  top.forEach((c, t) => { out[at + t] = z[c]!; out[at + K + t] = c; });
  out[at + 2 * K] = max === -Infinity ? -Infinity : max + Math.log(sum);
}

/** Reads and validates a view-cache file; a string is the reason it cannot be used. */
function readStore(path: string, meta: Record<string, string>, C: number, K: number | null): Store | string {
  const file = readCacheFile(path, meta);
  if (typeof file === 'string') return file;
  const { tensors, metadata } = file;
  try {
    const E = Number(metadata.epochs);
    if (!(Number.isInteger(E) && E >= 1)) return `metadata 'epochs' is ${JSON.stringify(metadata.epochs ?? null)}, expected a positive integer`;
    const idx = tensors.get('indices'), hs = tensors.get('sampleHash');
    if (!idx || !hs) return 'missing tensors (needs indices, sampleHash)';
    const M = idx.shape[0] ?? -1;
    if (idx.ndim !== 1 || idx.dtype !== 'int32' || hs.dtype !== 'int32' || hs.ndim !== 1 || hs.shape[0] !== M) return 'indices/sampleHash have wrong shapes or dtypes';
    const want: [string, string, number[]][] = K === null
      ? [['logits', meta.dtype!, [E, M, C]]]
      : [['topLogits', meta.dtype!, [E, M, K]], ['topIndex', 'int32', [E, M, K]], ['restLogSumExp', 'float32', [E, M]]];
    const parts = [];
    for (const [n, dt, shape] of want) {
      const t = tensors.get(n);
      if (!t) return `missing tensor '${n}'`;
      if (t.dtype !== dt || t.shape.length !== shape.length || t.shape.some((d, j) => d !== shape[j])) return `${n} is ${t.dtype} [${t.shape.join(', ')}], expected ${dt} [${shape.join(', ')}]`;
      parts.push(t);
    }
    const indices = idx.data<Int32Array>(), hashes = hs.data<Int32Array>();
    if (payloadHash(indices, hashes, parts.map((t) => t.data())) !== metadata.sha256) return 'checksum mismatch (corrupt file)';
    for (let i = 1; i < M; i++) if (!(indices[i - 1]! < indices[i]!)) return 'indices are not strictly increasing';
    const f32 = (t: Tensor): Float32Array => t.dtype === 'float32' ? t.data<Float32Array>() : tidy(() => t.to('float32').data<Float32Array>());
    if (K === null) return { indices, hashes, epochs: E, values: f32(parts[0]!).slice() };
    const top = f32(parts[0]!), cls = parts[1]!.data<Int32Array>(), rest = parts[2]!.data<Float32Array>();
    const W = 2 * K + 1;
    const values = new Float32Array(E * M * W);
    for (let v = 0; v < E * M; v++) {
      for (let t = 0; t < K; t++) {
        const c = cls[v * K + t]!;
        if (!(c >= 0 && c < C)) return `topIndex holds class ${c}, outside [0, ${C})`;
        values[v * W + t] = top[v * K + t]!;
        values[v * W + K + t] = c;
      }
      values[v * W + 2 * K] = rest[v]!;
    }
    return { indices, hashes, epochs: E, values };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/** Writes the store atomically, as the tensors of the file comment. */
function writeStore(path: string, s: Store, meta: Record<string, string>, C: number, K: number | null, dtype: CacheDType): void {
  const M = s.indices.length;
  const V = s.epochs * M;
  const made: Tensor[] = [];
  const keep = (t: Tensor): Tensor => { made.push(t); return t; };
  try {
    const asDtype = (a: Float32Array, shape: number[]): Tensor => {
      const t = keep(tensor(a, { shape }));
      return dtype === 'float32' ? t : keep(t.to('float16'));
    };
    let parts: [string, Tensor][];
    if (K === null) parts = [['logits', asDtype(s.values, [s.epochs, M, C])]];
    else {
      const W = 2 * K + 1;
      const top = new Float32Array(V * K), cls = new Int32Array(V * K), rest = new Float32Array(V);
      for (let v = 0; v < V; v++) {
        for (let t = 0; t < K; t++) {
          top[v * K + t] = s.values[v * W + t]!;
          cls[v * K + t] = s.values[v * W + K + t]!;
        }
        rest[v] = s.values[v * W + 2 * K]!;
      }
      parts = [['topLogits', asDtype(top, [s.epochs, M, K])], ['topIndex', keep(tensor(cls, { shape: [s.epochs, M, K], dtype: 'int32' }))],
        ['restLogSumExp', keep(tensor(rest, { shape: [s.epochs, M] }))]];
    }
    const idx = keep(tensor(s.indices, { shape: [M], dtype: 'int32' }));
    const hs = keep(tensor(s.hashes, { shape: [M], dtype: 'int32' }));
    const bytes = serializeSafetensors(new Map([['indices', idx], ['sampleHash', hs], ...parts]), {
      ...meta, epochs: String(s.epochs), sha256: payloadHash(s.indices, s.hashes, parts.map(([, t]) => t.data())), rows: String(M), created: new Date().toISOString(),
    });
    atomicWrite(path, bytes);
  } finally {
    for (const t of made) t.dispose();
  }
}
