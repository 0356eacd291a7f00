// NPY reader/writer (NumPy's .npy, format versions 1.0, 2.0 and 3.0), little-endian C-order arrays
// of float32/float64/int32/int64/uint8/bool. The header is parsed by a small grammar (never
// evaluated) and its shape checked against the file's real size before any allocation.
import { writeFileSync } from 'node:fs';
import type { Dataset } from './dataset.js';
import { DataError, DEFAULT_MAX_BYTES, fileSha256, readFileChecked, sharedFloat32, sharedInt32 } from './errors.js';

export type NpyDType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'bool';
export type NpyData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  /** Row-major elements; bool as Uint8Array of 0/1. */
  data: NpyData;
}

const DESCR: Record<string, { dtype: NpyDType; size: number }> = {
  '<f4': { dtype: 'float32', size: 4 },
  '<f8': { dtype: 'float64', size: 8 },
  '<i4': { dtype: 'int32', size: 4 },
  '<i8': { dtype: 'int64', size: 8 },
  '|u1': { dtype: 'uint8', size: 1 },
  '|b1': { dtype: 'bool', size: 1 },
};
const DESCR_OF: Record<NpyDType, string> = { float32: '<f4', float64: '<f8', int32: '<i4', int64: '<i8', uint8: '|u1', bool: '|b1' };

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

type PyValue = string | boolean | number[] | { list: true };

/** Parses the header's Python dict literal: string keys; string, bool or int-tuple values. */
function parseDict(s: string, file: string): Map<string, PyValue> {
  let i = 0;
  const err = (what: string): never => { throw new DataError(file, `malformed NPY header at character ${i}: ${what} (header: ${JSON.stringify(s.length > 200 ? s.slice(0, 200) + '…' : s)})`); };
  const ws = (): void => { while (i < s.length && /\s/.test(s[i]!)) i++; };
  const str = (): string => {
    const q = s[i];
    if (q !== "'" && q !== '"') err('expected a quoted string');
    const end = s.indexOf(q!, i + 1);
    if (end < 0) err('unterminated string');
    const v = s.slice(i + 1, end);
    i = end + 1;
    return v;
  };
  const value = (): PyValue => {
    ws();
    const c = s[i];
    if (c === "'" || c === '"') return str();
    if (s.startsWith('True', i)) { i += 4; return true; }
    if (s.startsWith('False', i)) { i += 5; return false; }
    if (c === '[') return { list: true }; // a structured dtype's descr: reported by the caller
    if (c !== '(') err('expected a string, True, False or a tuple');
    i++;
    const dims: number[] = [];
    for (;;) {
      ws();
      if (s[i] === ')') { i++; return dims; }
      const m = /^\d+L?/.exec(s.slice(i, i + 24));
      if (!m) err('expected a non-negative integer in the shape');
      dims.push(Number(m![0].replace('L', '')));
      i += m![0].length;
      ws();
      if (s[i] === ',') { i++; continue; }
      if (s[i] !== ')') err("expected ',' or ')' in the shape");
    }
  };
  const out = new Map<string, PyValue>();
  ws();
  if (s[i] !== '{') err("expected '{'");
  i++;
  for (;;) {
    ws();
    if (s[i] === '}') { i++; break; }
    const k = str();
    ws();
    if (s[i] !== ':') err("expected ':'");
    i++;
    const v = value();
    if (typeof v === 'object' && 'list' in v) return new Map([[k, v]]);
    out.set(k, v);
    ws();
    if (s[i] === ',') { i++; continue; }
    ws();
    if (s[i] !== '}') err("expected ',' or '}'");
  }
  ws();
  if (i !== s.length) err('unexpected text after the dict');
  return out;
}

export interface NpyReadOptions {
  /** Largest file accepted, in bytes; default 2 GiB. */
  maxBytes?: number;
}

/** Decodes .npy bytes read from `file`. */
export function decodeNpy(b: Uint8Array, file: string, opts: NpyReadOptions = {}): NpyArray {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  if (b.length < 10 || MAGIC.some((m, k) => b[k] !== m)) throw new DataError(file, 'not an NPY file (missing the \\x93NUMPY magic string)');
  const major = b[6]!;
  const minor = b[7]!;
  if (major < 1 || major > 3) throw new DataError(file, `unsupported NPY format version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`);
  const lenBytes = major === 1 ? 2 : 4;
  const start = 8 + lenBytes;
  if (b.length < start) throw new DataError(file, 'truncated NPY header');
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  if (start + hlen > b.length) throw new DataError(file, `truncated NPY header: it claims ${hlen} bytes, the file has ${b.length - start} after the preamble`);
  const raw = b.subarray(start, start + hlen);
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: major === 3 }).decode(raw);
  } catch (e) {
    throw new DataError(file, 'NPY v3 header is not valid UTF-8', { cause: e });
  }
  const dict = parseDict(text.trimEnd(), file);
  const descr = dict.get('descr');
  if (typeof descr === 'object' && descr !== null && 'list' in descr) throw new DataError(file, 'structured NPY dtypes are not supported');
  if (typeof descr !== 'string') throw new DataError(file, "NPY header has no string 'descr'");
  const fortran = dict.get('fortran_order');
  if (typeof fortran !== 'boolean') throw new DataError(file, "NPY header has no boolean 'fortran_order'");
  const shape = dict.get('shape');
  if (!Array.isArray(shape)) throw new DataError(file, "NPY header has no tuple 'shape'");
  const extra = [...dict.keys()].filter((k) => k !== 'descr' && k !== 'fortran_order' && k !== 'shape');
  if (extra.length) throw new DataError(file, `unexpected NPY header keys: ${extra.join(', ')}`);
  if (fortran) throw new DataError(file, 'Fortran-order arrays are not supported; save with np.ascontiguousarray(a)');
  const dt = DESCR[descr] ?? (descr === '<u1' || descr === '=u1' ? DESCR['|u1'] : descr === '<b1' ? DESCR['|b1'] : undefined);
  if (!dt) {
    if (descr.startsWith('>')) throw new DataError(file, `big-endian dtype '${descr}' is not supported; convert with a.astype(a.dtype.newbyteorder('<'))`);
    throw new DataError(file, `unsupported NPY dtype '${descr}' (supported: ${Object.keys(DESCR).join(', ')})`);
  }
  let bytes = dt.size;
  for (const d of shape) bytes *= d;
  const off = start + hlen;
  const have = b.length - off;
  if (bytes > maxBytes) throw new DataError(file, `NPY shape (${shape.join(', ')}) needs ${bytes} bytes, over the ${maxBytes}-byte limit (corrupt header?)`);
  if (have < bytes) throw new DataError(file, `truncated NPY data: shape (${shape.join(', ')}) of '${descr}' needs ${bytes} bytes, file has ${have}`);
  if (have > bytes) throw new DataError(file, `NPY file has ${have} data bytes but shape (${shape.join(', ')}) of '${descr}' describes ${bytes} (trailing data or wrong shape)`);
  const n = bytes / dt.size;
  // Copy into a fresh buffer: the data need not be aligned for the typed array in the file's buffer.
  const buf = b.buffer.slice(b.byteOffset + off, b.byteOffset + off + bytes) as ArrayBuffer;
  let data: NpyData;
  switch (dt.dtype) {
    case 'float32': data = new Float32Array(buf, 0, n); break;
    case 'float64': data = new Float64Array(buf, 0, n); break;
    case 'int32': data = new Int32Array(buf, 0, n); break;
    case 'int64': data = new BigInt64Array(buf, 0, n); break;
    default: data = new Uint8Array(buf, 0, n);
  }
  if (dt.dtype === 'bool') {
    const k = (data as Uint8Array).findIndex((v) => v > 1);
    if (k >= 0) throw new DataError(file, `bool array holds byte ${(data as Uint8Array)[k]} at element ${k}`);
  }
  return { dtype: dt.dtype, shape: [...shape], data };
}

export function readNpy(file: string, opts: NpyReadOptions = {}): NpyArray {
  return decodeNpy(readFileChecked(file, opts.maxBytes ?? DEFAULT_MAX_BYTES).bytes, file, opts);
}

function dtypeOf(data: NpyData): NpyDType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return 'uint8';
}

/** Encodes an array as .npy bytes (format 1.0, or 2.0 when the header needs more than 64 KiB). */
export function encodeNpy(a: { data: NpyData; shape?: readonly number[]; dtype?: NpyDType }): Uint8Array {
  const dtype = a.dtype ?? dtypeOf(a.data);
  if (dtypeOf(a.data) !== (dtype === 'bool' ? 'uint8' : dtype)) throw new TypeError(`encodeNpy: dtype '${dtype}' does not match a ${a.data.constructor.name}`);
  const shape = a.shape ?? [a.data.length];
  const n = shape.reduce((x, y) => x * y, 1);
  if (n !== a.data.length) throw new RangeError(`encodeNpy: shape (${shape.join(', ')}) needs ${n} elements, data has ${a.data.length}`);
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${DESCR_OF[dtype]}', 'fortran_order': False, 'shape': ${tuple}, }`;
  // Pad with spaces and end with '\n' so the data starts 64-byte aligned, as NumPy does.
  const padded = (pre: number): number => Math.ceil((pre + dict.length + 1) / 64) * 64 - pre;
  const major = padded(10) > 65535 ? 2 : 1;
  const pre = major === 1 ? 10 : 12;
  const hlen = padded(pre);
  const header = dict.padEnd(hlen - 1, ' ') + '\n';
  const out = new Uint8Array(pre + hlen + a.data.byteLength);
  out.set(MAGIC);
  out[6] = major;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, hlen, true); else dv.setUint32(8, hlen, true);
  for (let k = 0; k < hlen; k++) out[pre + k] = header.charCodeAt(k);
  out.set(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength), pre + hlen);
  return out;
}

export function writeNpy(file: string, a: { data: NpyData; shape?: readonly number[]; dtype?: NpyDType }): void {
  writeFileSync(file, encodeNpy(a));
}

/**
 * A Dataset from a features .npy ([N, ...], any supported dtype, cast to float32, no scaling) and
 * an optional labels .npy ([N], integer class ids).
 */
export function readNpyDataset(o: { x: string; y?: string; name?: string; numClasses?: number; classNames?: string[] }): Dataset {
  const xg = readFileChecked(o.x);
  const xa = decodeNpy(xg.bytes, o.x);
  if (xa.shape.length < 1) throw new DataError(o.x, 'features must have a leading sample dimension');
  const size = xa.shape[0]!;
  const x = sharedFloat32(xa.data.length);
  if (xa.data instanceof BigInt64Array) xa.data.forEach((v, i) => { x[i] = Number(v); });
  else x.set(xa.data);
  const sources = [{ path: o.x, bytes: xg.stat.size, sha256: fileSha256(o.x, xg) }];
  let y: Int32Array | null = null;
  let numClasses = o.numClasses ?? o.classNames?.length ?? 0;
  if (o.y !== undefined) {
    const yg = readFileChecked(o.y);
    const ya = decodeNpy(yg.bytes, o.y);
    sources.push({ path: o.y, bytes: yg.stat.size, sha256: fileSha256(o.y, yg) });
    if (ya.shape.length !== 1 || ya.shape[0] !== size) throw new DataError(o.y, `labels must have shape (${size},) to match ${o.x}, got (${ya.shape.join(', ')})`);
    if (ya.dtype === 'float32' || ya.dtype === 'float64' || ya.dtype === 'bool') throw new DataError(o.y, `labels must be integers, got ${ya.dtype}`);
    y = sharedInt32(size);
    let max = -1;
    for (let i = 0; i < size; i++) {
      const v = Number(ya.data[i]!);
      if (v < 0 || v > 2 ** 31 - 1 || (o.numClasses !== undefined && v >= o.numClasses)) throw new DataError(o.y, `label ${v} at index ${i} is out of range`);
      y[i] = v;
      if (v > max) max = v;
    }
    if (o.numClasses === undefined && o.classNames === undefined) numClasses = max + 1;
    else if (max >= numClasses) throw new DataError(o.y, `label ${max} is out of range for ${numClasses} classes`);
  }
  return {
    name: o.name ?? o.x.split(/[\\/]/).pop()!,
    sampleShape: xa.shape.slice(1),
    x,
    y,
    size,
    numClasses,
    ...(o.classNames ? { classNames: [...o.classNames] } : {}),
    sources,
  };
}
