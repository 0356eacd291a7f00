// The teacher-output cache: a frozen teacher's logits on a transfer set are the same every epoch
// and every run, so they are computed once, in one no-grad pass, and stored on disk.
//
// File: <dir>/<dataset>-<key>.safetensors, readable by any safetensors reader, with tensors
//   indices     I32 [M]      the samples' indices in the source dataset (Dataset.origin), ascending
//   sampleHash  I32 [M]      a 32-bit hash of each sample's raw float32 values
//   logits      F32|F16 [M, C]
// and metadata naming the format version, the teacher's checksum, the dataset, the input
// pipeline (deterministic augmentations), C, the dtype, and a sha256 of the three tensors' bytes.
// The key in the file name hashes teacher, dataset name, pipeline and dtype, so each combination
// has its own file; subsets of one dataset (splits, `data.subset`) share it through their origin
// indices, and a file grows when a run needs samples it lacks.
//
// Validation on open: a file that does not parse, whose metadata or shapes disagree with the
// request, whose bytes fail the checksum (bit flips), or whose stored sample hashes differ from
// the data in hand (the dataset changed under the same name) is rebuilt with a one-line notice.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { parseSafetensors, serializeSafetensors } from '../nn/safetensors.js';
import { atomicWrite } from '../util/fs.js';
import { sampleSize, type Dataset } from '../data/dataset.js';
import { buildBatch } from '../data/batch.js';
import type { Augmentation, AugmentSpec } from '../data/augment.js';
import { ProgressBar } from '../train/progress.js';
import type { Teacher } from './teacher.js';

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
 * A method that needs teacher features runs the teacher live in any case: only logits are cached.
 */
export function planTeacherCache(mode: TeacherCacheMode, augs: readonly Augmentation[], o: { needsFeatures?: boolean } = {}): CachePlan {
  const det = augs.filter(isDeterministic) as AugmentSpec[];
  const random = augs.length - det.length;
  if (mode === 'off') return { use: false, augment: det, reason: 'teacher cache off' };
  if (o.needsFeatures) return { use: false, augment: det, reason: 'teacher cache not used: the method needs teacher features, so the teacher runs every step' };
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

function payloadHash(indices: Int32Array, hashes: Int32Array, logits: ArrayBufferView): string {
  return createHash('sha256').update(bytesOf(indices)).update(bytesOf(hashes)).update(bytesOf(logits)).digest('hex');
}

interface Entries {
  indices: Int32Array;
  hashes: Int32Array;
  /** float32 [M, C] */
  logits: Float32Array;
}

/** The per-sample teacher logits for one dataset, loaded from or written to the cache folder. */
export class TeacherOutputCache {
  readonly path: string;
  readonly numClasses: number;
  readonly dtype: CacheDType;
  /** What opening did, and how many samples the teacher computed for it. */
  readonly status: CacheStatus;
  readonly computed: number;
  /** For row r of the dataset: its row in `#logits`. */
  readonly #rowOf: Int32Array;
  readonly #logits: Float32Array;

  private constructor(path: string, numClasses: number, dtype: CacheDType, status: CacheStatus, computed: number, rowOf: Int32Array, logits: Float32Array) {
    this.path = path;
    this.numClasses = numClasses;
    this.dtype = dtype;
    this.status = status;
    this.computed = computed;
    this.#rowOf = rowOf;
    this.#logits = logits;
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
    const notice = o.notice ?? defaultNotice;
    const dtype = o.dtype ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'float16') throw new Error(`teacher cache: dtype must be float32 or float16, got ${String(dtype)}`);
    const augment = o.augment ?? [];
    const bad = augment.filter((a) => !isDeterministic(a));
    if (bad.length) throw new Error(`teacher cache: random augmentations cannot be cached (${bad.map((a) => JSON.stringify(a)).join(', ')}); pass only the deterministic ones`);
    const C = teacher.numClasses;
    const { name, meta } = cacheKey(teacher, dataset, o);
    const path = TeacherOutputCache.pathFor(teacher, dataset, o);
    const origin = dataset.origin?.indices;
    if (origin && origin.length !== dataset.size) throw new Error(`teacher cache: dataset '${dataset.name}' has ${dataset.size} samples but ${origin.length} origin indices`);
    const want = origin ?? Int32Array.from({ length: dataset.size }, (_, i) => i);
    const hashes = rowHashes(dataset);

    let old: Entries | null = null;
    if (existsSync(path)) {
      const r = readEntries(path, meta, C);
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
    const compute = (part: Int32Array): Float32Array => computeLogits(teacher, dataset, part, augment, o.batchSize ?? 256);
    if (missing.length === 0 && old) {
      o.distribute?.(new Int32Array(0), C, compute);
      return new TeacherOutputCache(path, C, dtype, 'loaded', 0, pos, old.logits);
    }

    notice(`teacher cache ${path}: computing the teacher's outputs on ${missing.length} sample${missing.length > 1 ? 's' : ''}${old ? ` (${old.indices.length} already cached)` : ''}`);
    const fresh = o.distribute ? o.distribute(Int32Array.from(missing), C, compute) : compute(Int32Array.from(missing));
    // Merge old entries and new ones, ordered by source index so the file is independent of
    // the order in which runs asked for samples.
    const oldN = old?.indices.length ?? 0;
    const total = oldN + missing.length;
    const order: { idx: number; src: 0 | 1; i: number }[] = [];
    for (let i = 0; i < oldN; i++) order.push({ idx: old!.indices[i]!, src: 0, i });
    for (let j = 0; j < missing.length; j++) order.push({ idx: want[missing[j]!]!, src: 1, i: j });
    order.sort((a, b) => a.idx - b.idx);
    const merged: Entries = { indices: new Int32Array(total), hashes: new Int32Array(total), logits: new Float32Array(total * C) };
    const rowOfIdx = new Map<number, number>();
    order.forEach((e, k) => {
      merged.indices[k] = e.idx;
      rowOfIdx.set(e.idx, k);
      if (e.src === 0) {
        merged.hashes[k] = old!.hashes[e.i]!;
        merged.logits.set(old!.logits.subarray(e.i * C, e.i * C + C), k * C);
      } else {
        merged.hashes[k] = hashes[missing[e.i]!]!;
        merged.logits.set(fresh.subarray(e.i * C, e.i * C + C), k * C);
      }
    });
    const stored = o.write === false ? asStored(merged.logits, dtype) : writeEntries(path, merged, meta, dtype);
    const rowOf = new Int32Array(dataset.size);
    for (let r = 0; r < dataset.size; r++) rowOf[r] = rowOfIdx.get(want[r]!)!;
    // Serve what the file holds, so a float16 cache gives the same values in this run as in the next.
    return new TeacherOutputCache(path, C, dtype, old ? 'extended' : 'built', missing.length, rowOf, stored);
  }

  /** Number of dataset rows this cache serves. */
  get size(): number {
    return this.#rowOf.length;
  }

  /** Teacher logits [B, C] for dataset rows `rows` (the DataLoader batch's `indices`). */
  gather(rows: ArrayLike<number>): Float32Array {
    const C = this.numClasses;
    const out = new Float32Array(rows.length * C);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      if (!(r >= 0 && r < this.#rowOf.length)) throw new RangeError(`teacher cache: row ${r} is outside the cached dataset (${this.#rowOf.length} samples)`);
      const k = this.#rowOf[r]!;
      out.set(this.#logits.subarray(k * C, k * C + C), i * C);
    }
    return out;
  }

  /** The logits as a float32 tensor [B, C]. */
  logits(rows: ArrayLike<number>): Tensor {
    return tensor(this.gather(rows), { shape: [rows.length, this.numClasses] });
  }
}

/**
 * A teacher whose logits on the training rows come from the cache: the trainer calls logitsAt
 * with the batch's dataset indices. Anything else (evaluation inputs, features) runs the live
 * teacher, which stays loaded for that.
 */
export class CachedTeacher implements Teacher {
  readonly description: string;
  readonly checksum: string;
  readonly numClasses: number;
  readonly numParameters: number;
  features?: Teacher['features'];
  logitsWithGrad?: Teacher['logitsWithGrad'];

  constructor(readonly teacher: Teacher, readonly cache: TeacherOutputCache) {
    if (cache.numClasses !== teacher.numClasses) throw new Error(`CachedTeacher: cache has ${cache.numClasses} classes, the teacher ${teacher.numClasses}`);
    this.description = teacher.description;
    this.checksum = teacher.checksum;
    this.numClasses = teacher.numClasses;
    this.numParameters = teacher.numParameters;
    if (teacher.features) this.features = (x, names) => teacher.features!(x, names);
    // Input derivatives (Sobolev training) are not cached: they need the live teacher's graph.
    if (teacher.logitsWithGrad) this.logitsWithGrad = (x) => teacher.logitsWithGrad!(x);
  }

  logits(x: Tensor): Tensor {
    return this.teacher.logits(x);
  }

  logitsAt(indices: Int32Array, x: Tensor): Tensor {
    if (x.shape[0] !== indices.length) throw new Error(`CachedTeacher: batch of ${x.shape[0]} with ${indices.length} indices`);
    return this.cache.logits(indices);
  }
}

/** Opens (building if needed) the cache of `teacher` on `dataset` and wraps the teacher with it. */
export function cachedTeacher(teacher: Teacher, dataset: Dataset, o: TeacherCacheOptions = {}): CachedTeacher {
  return new CachedTeacher(teacher, TeacherOutputCache.open(teacher, dataset, o));
}

// ---- internals ----------------------------------------------------------------------------

function defaultNotice(line: string): void {
  if (process.env.KDISTILL_QUIET !== '1') process.stderr.write(line + '\n');
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
  const key = createHash('sha256').update(JSON.stringify(meta)).digest('hex');
  return { name, key, meta };
}

/** Reads and validates a cache file; a string is the reason it cannot be used. */
function readEntries(path: string, meta: Record<string, string>, C: number): Entries | string {
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
    const idx = tensors.get('indices'), hs = tensors.get('sampleHash'), lg = tensors.get('logits');
    if (!idx || !hs || !lg) return 'missing tensors (needs indices, sampleHash, logits)';
    const M = idx.shape[0] ?? -1;
    if (idx.ndim !== 1 || idx.dtype !== 'int32' || hs.dtype !== 'int32' || hs.ndim !== 1 || hs.shape[0] !== M) return 'indices/sampleHash have wrong shapes or dtypes';
    if (lg.ndim !== 2 || lg.shape[0] !== M || lg.shape[1] !== C || lg.dtype !== meta.dtype) return `logits are ${lg.dtype} [${lg.shape.join(', ')}], expected ${meta.dtype} [${M}, ${C}]`;
    const indices = idx.data<Int32Array>(), hashes = hs.data<Int32Array>(), raw = lg.data();
    if (payloadHash(indices, hashes, raw) !== metadata.sha256) return 'checksum mismatch (corrupt file)';
    for (let i = 1; i < M; i++) if (!(indices[i - 1]! < indices[i]!)) return 'indices are not strictly increasing';
    const logits = lg.dtype === 'float32' ? (raw as Float32Array) : tidy(() => lg.to('float32').data<Float32Array>());
    return { indices, hashes, logits };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/** Writes the entries atomically; returns the logits as stored (rounded for float16), as float32. */
function writeEntries(path: string, e: Entries, meta: Record<string, string>, dtype: CacheDType): Float32Array {
  const C = Number(meta.numClasses);
  const M = e.indices.length;
  const made: Tensor[] = [];
  try {
    const idx = tensor(e.indices, { shape: [M], dtype: 'int32' });
    const hs = tensor(e.hashes, { shape: [M], dtype: 'int32' });
    const lg32 = tensor(e.logits, { shape: [M, C] });
    made.push(idx, hs, lg32);
    const lg = dtype === 'float32' ? lg32 : lg32.to('float16');
    if (lg !== lg32) made.push(lg);
    const raw = lg.data();
    const bytes = serializeSafetensors(new Map([['indices', idx], ['sampleHash', hs], ['logits', lg]]), {
      ...meta, sha256: payloadHash(e.indices, e.hashes, raw), rows: String(M), created: new Date().toISOString(),
    });
    atomicWrite(path, bytes);
    if (dtype === 'float32') return e.logits;
    const back = lg.to('float32');
    made.push(back);
    return back.data<Float32Array>();
  } finally {
    for (const t of made) t.dispose();
  }
}

/** The logits as a file of this dtype would give them back (what writeEntries returns, unwritten). */
function asStored(logits: Float32Array, dtype: CacheDType): Float32Array {
  if (dtype === 'float32') return logits;
  return tidy(() => tensor(logits).to('float16').to('float32').data<Float32Array>());
}

/** The teacher's logits on the given dataset rows, in one no-grad pass in batches. */
function computeLogits(teacher: Teacher, ds: Dataset, rows: Int32Array, augment: readonly AugmentSpec[], batchSize: number): Float32Array {
  const C = teacher.numClasses;
  const out = new Float32Array(rows.length * C);
  if (rows.length === 0) return out;
  const src = { x: ds.x, y: null, sampleShape: ds.sampleShape };
  const bar = new ProgressBar(`teacher cache: ${teacher.description}`, rows.length);
  noGrad(() => {
    for (let s = 0; s < rows.length; s += batchSize) {
      const part = rows.subarray(s, Math.min(s + batchSize, rows.length));
      // Deterministic augmentations ignore the random stream, so any (seed, epoch, batch) will do.
      const { x } = buildBatch(src, part, augment, 0, 0, 0);
      const z = tidy(() => {
        const y = teacher.logits(tensor(x, { shape: [part.length, ...ds.sampleShape] }));
        if (y.ndim !== 2 || y.shape[0] !== part.length || y.shape[1] !== C) {
          throw new Error(`teacher cache: ${teacher.description} returned shape [${y.shape.join(', ')}], expected [${part.length}, ${C}]`);
        }
        return y.to('float32').contiguous().data<Float32Array>();
      });
      out.set(z, s * C);
      bar.update(s + part.length);
    }
  });
  bar.done();
  return out;
}
