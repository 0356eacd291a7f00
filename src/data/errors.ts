// Errors and file access shared by the readers. Every failure a reader can meet (missing file,
// truncated or corrupt bytes, a header that lies about sizes) surfaces as a DataError whose message
// starts with the file, so a run record or a fuzzer log says which input was bad.
import { readFileSync, statSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';

export class DataError extends Error {
  override readonly name = 'DataError';
  constructor(readonly file: string, detail: string, options?: { cause?: unknown }) {
    super(`${file}: ${detail}`, options);
  }
}

/** Default cap on any single file a reader loads into memory (2 GiB): a guard, not a format limit. */
export const DEFAULT_MAX_BYTES = 2 ** 31;

/** Reads a whole file, refusing directories and files over maxBytes before reading them. */
export function readFileChecked(file: string, maxBytes = DEFAULT_MAX_BYTES): { bytes: Buffer; stat: Stats } {
  let stat: Stats;
  try {
    stat = statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(file, code === 'ENOENT' ? 'file not found' : `cannot stat (${code ?? String(e)})`, { cause: e });
  }
  if (!stat.isFile()) throw new DataError(file, 'not a regular file');
  if (stat.size > maxBytes) throw new DataError(file, `file is ${stat.size} bytes, over the ${maxBytes}-byte limit (raise maxBytes to read it)`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new DataError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  return { bytes, stat };
}

const shaCache = new Map<string, string>();
const cacheKey = (file: string, st: Stats): string => `${resolve(file)}\0${st.mtimeMs}\0${st.size}`;

/**
 * sha256 of a file for run records. Cached per process by path + mtime + size, so loading the same
 * data twice (train and test, several runs in one process) hashes it once. Pass `bytes` when the
 * caller already holds the file's contents, to avoid reading it again.
 */
export function fileSha256(file: string, known?: { bytes: Uint8Array; stat: Stats }): string {
  const st = known?.stat ?? statSync(file);
  const key = cacheKey(file, st);
  const hit = shaCache.get(key);
  if (hit) return hit;
  const bytes = known?.bytes ?? readFileChecked(file).bytes;
  const h = createHash('sha256').update(bytes).digest('hex');
  shaCache.set(key, h);
  return h;
}

/** A float32 array on shared memory, so loader workers can read it without a copy. */
export function sharedFloat32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(n * 4));
}
export function sharedInt32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(n * 4));
}
