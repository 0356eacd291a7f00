// IDX reader (the MNIST / Fashion-MNIST format), raw or gzip-compressed.
// Layout: 2 zero bytes, a dtype code, the number of dims, then each dim as a big-endian uint32,
// then the elements, big-endian, row-major. Every size the header claims is checked against the
// bytes actually present before anything is allocated, so a corrupt or hostile header fails with
// a DataError instead of a crash or a multi-gigabyte allocation.
import { gunzipSync, constants as zc } from 'node:zlib';
import { DataError, DEFAULT_MAX_BYTES, readFileChecked } from './errors.js';

export type IdxDType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDType;
  shape: number[];
  /** Row-major elements in host order. uint8/int8 data may alias the decoded file bytes. */
  data: IdxData;
}

export interface IdxReadOptions {
  /** Largest decoded (decompressed) size accepted, in bytes; default 2 GiB. */
  maxBytes?: number;
}

const DTYPES: Record<number, { name: IdxDType; size: number }> = {
  0x08: { name: 'uint8', size: 1 },
  0x09: { name: 'int8', size: 1 },
  0x0b: { name: 'int16', size: 2 },
  0x0c: { name: 'int32', size: 4 },
  0x0d: { name: 'float32', size: 4 },
  0x0e: { name: 'float64', size: 8 },
};

// Deflate cannot expand data by more than ~1032:1; a header claiming more than this from a small
// .gz file is a lie, and we refuse it before inflating anything.
const MAX_DEFLATE_RATIO = 1100;
// Enough compressed bytes to always yield the largest possible IDX header (4 + 4·255 bytes).
const HEADER_PREFIX = 4096;

interface Header { dtype: IdxDType; size: number; shape: number[]; headerBytes: number; dataBytes: number }

/** Validates magic, dtype and dims of the header found in `b` (which may be just a prefix). */
function parseHeader(b: Uint8Array, file: string, maxBytes: number): Header {
  if (b.length < 4) throw new DataError(file, `too short for an IDX header (${b.length} bytes)`);
  if (b[0] !== 0 || b[1] !== 0) {
    throw new DataError(file, `not an IDX file: magic bytes ${hex(b[0]!)} ${hex(b[1]!)}, expected 00 00`);
  }
  const dt = DTYPES[b[2]!];
  if (!dt) throw new DataError(file, `unknown IDX dtype code ${hex(b[2]!)} (known: 08 09 0b 0c 0d 0e)`);
  const ndim = b[3]!;
  if (ndim === 0) throw new DataError(file, 'IDX header declares 0 dimensions');
  const headerBytes = 4 + 4 * ndim;
  if (b.length < headerBytes) {
    throw new DataError(file, `truncated IDX header: ${ndim} dims need ${headerBytes} header bytes, got ${b.length}`);
  }
  const dv = new DataView(b.buffer, b.byteOffset, headerBytes);
  const shape: number[] = [];
  let bytes = dt.size;
  for (let i = 0; i < ndim; i++) {
    const d = dv.getUint32(4 + 4 * i, false);
    shape.push(d);
    bytes *= d;
  }
  // Doubles stay exact far past any accepted size; beyond that only the comparison matters.
  if (bytes + headerBytes > maxBytes) {
    throw new DataError(file, `IDX header dims [${shape.join(', ')}] need ${bytes} data bytes, over the ${maxBytes}-byte limit (corrupt header?)`);
  }
  return { dtype: dt.name, size: dt.size, shape, headerBytes, dataBytes: bytes };
}

const hex = (v: number): string => v.toString(16).padStart(2, '0');

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Inflates a .gz whose decoded size must be exactly what the IDX header inside says. */
function gunzipIdx(raw: Uint8Array, file: string, maxBytes: number): Buffer {
  let prefix: Buffer;
  try {
    // SYNC_FLUSH makes inflating a prefix return what it decoded instead of failing at the cut.
    prefix = gunzipSync(raw.subarray(0, Math.min(raw.length, HEADER_PREFIX)), { finishFlush: zc.Z_SYNC_FLUSH });
  } catch (e) {
    throw new DataError(file, `corrupt gzip stream (${(e as Error).message})`, { cause: e });
  }
  const h = parseHeader(prefix, file, maxBytes);
  const total = h.headerBytes + h.dataBytes;
  const bound = raw.length * MAX_DEFLATE_RATIO + 1024;
  if (total > bound) {
    throw new DataError(file, `IDX header dims [${h.shape.join(', ')}] need ${total} bytes, but ${raw.length} gzip bytes can hold at most ~${bound} (corrupt header or truncated file)`);
  }
  try {
    return gunzipSync(raw, { maxOutputLength: Math.max(1, total) });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      throw new DataError(file, `decompresses to more than the ${total} bytes its IDX header dims [${h.shape.join(', ')}] describe (trailing data or wrong dims)`, { cause: e });
    }
    if (code === 'Z_BUF_ERROR') throw new DataError(file, 'truncated gzip stream (unexpected end of file)', { cause: e });
    throw new DataError(file, `corrupt gzip stream (${(e as Error).message})`, { cause: e });
  }
}

/** Decodes IDX bytes as read from `file` (gzip detected by its magic bytes, not the name). */
export function decodeIdx(raw: Uint8Array, file: string, opts: IdxReadOptions = {}): IdxArray {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const b: Uint8Array = isGzip(raw) ? gunzipIdx(raw, file, maxBytes) : raw;
  const h = parseHeader(b, file, maxBytes);
  const have = b.length - h.headerBytes;
  if (have < h.dataBytes) {
    throw new DataError(file, `truncated IDX data: dims [${h.shape.join(', ')}] need ${h.dataBytes} bytes, file has ${have}`);
  }
  if (have > h.dataBytes) {
    throw new DataError(file, `IDX file has ${have} data bytes but dims [${h.shape.join(', ')}] describe ${h.dataBytes} (trailing data or wrong dims)`);
  }
  const n = h.dataBytes / h.size;
  const off = b.byteOffset + h.headerBytes;
  switch (h.dtype) {
    case 'uint8': return { dtype: h.dtype, shape: h.shape, data: new Uint8Array(b.buffer, off, n) };
    case 'int8': return { dtype: h.dtype, shape: h.shape, data: new Int8Array(b.buffer, off, n) };
  }
  const dv = new DataView(b.buffer, off, h.dataBytes);
  let data: IdxData;
  switch (h.dtype) {
    case 'int16': { const a = new Int16Array(n); for (let i = 0; i < n; i++) a[i] = dv.getInt16(2 * i, false); data = a; break; }
    case 'int32': { const a = new Int32Array(n); for (let i = 0; i < n; i++) a[i] = dv.getInt32(4 * i, false); data = a; break; }
    case 'float32': { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = dv.getFloat32(4 * i, false); data = a; break; }
    default: { const a = new Float64Array(n); for (let i = 0; i < n; i++) a[i] = dv.getFloat64(8 * i, false); data = a; }
  }
  return { dtype: h.dtype, shape: h.shape, data };
}

/** Reads an IDX file, raw or gzip-compressed. Throws DataError naming the file on any defect. */
export function readIdx(file: string, opts: IdxReadOptions = {}): IdxArray {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const { bytes } = readFileChecked(file, maxBytes);
  return decodeIdx(bytes, file, opts);
}

/** Encodes an array as (uncompressed) IDX bytes; used for fixtures and exports. */
export function encodeIdx(a: IdxArray): Uint8Array {
  const code = Number(Object.entries(DTYPES).find(([, v]) => v.name === a.dtype)![0]);
  const size = DTYPES[code]!.size;
  const n = a.shape.reduce((x, y) => x * y, 1);
  if (n !== a.data.length) throw new RangeError(`encodeIdx: shape [${a.shape.join(', ')}] needs ${n} elements, data has ${a.data.length}`);
  const hb = 4 + 4 * a.shape.length;
  const out = new Uint8Array(hb + n * size);
  const dv = new DataView(out.buffer);
  out[2] = code;
  out[3] = a.shape.length;
  a.shape.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < n; i++) {
    const v = a.data[i]!;
    switch (a.dtype) {
      case 'uint8': dv.setUint8(hb + i, v); break;
      case 'int8': dv.setInt8(hb + i, v); break;
      case 'int16': dv.setInt16(hb + 2 * i, v, false); break;
      case 'int32': dv.setInt32(hb + 4 * i, v, false); break;
      case 'float32': dv.setFloat32(hb + 4 * i, v, false); break;
      case 'float64': dv.setFloat64(hb + 8 * i, v, false); break;
    }
  }
  return out;
}
