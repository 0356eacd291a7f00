// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N, N
// bytes of JSON ({ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__: {k: v} }),
// then the raw little-endian tensor bytes, offsets relative to the data start. Reading validates
// everything a corrupt or truncated file could get wrong; writing is atomic (temp file, fsync,
// rename), so a crash never leaves a half-written checkpoint under the real name.
import { atomicWrite } from '../util/fs.js';
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { native } from '../tensor/native.js';
import { Tensor } from '../tensor/tensor.js';
import { dtypeCode, type DType } from '../tensor/dtype.js';
import type { Module } from './module.js';
import { createModel, ZooModel } from './zoo/index.js';
import { prepareQuantization, quantizationOf, quantizeSpecOf } from './quantize.js';

/** safetensors dtype name → [our dtype, bytes per element]. BF16 is widened to float32 on read. */
const ST_DTYPES: Record<string, [DType, number]> = {
  BOOL: ['bool', 1], U8: ['uint8', 1], I8: ['int8', 1], I16: ['int16', 2], I32: ['int32', 4], I64: ['int64', 8],
  F16: ['float16', 2], BF16: ['float32', 2], F32: ['float32', 4], F64: ['float64', 8],
};
const TO_ST: Record<DType, string> = {
  bool: 'BOOL', uint8: 'U8', int8: 'I8', int16: 'I16', int32: 'I32', int64: 'I64', float16: 'F16', float32: 'F32', float64: 'F64',
};
/** The reference implementation's bound: headers beyond 100 MB are refused as corrupt. */
const MAX_HEADER = 100_000_000;

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('safetensors: only little-endian hosts are supported');
}

/** Parses safetensors bytes; `name` (the file) appears in every error. */
export function parseSafetensors(buf: Uint8Array, name = '<buffer>'): SafetensorsFile {
  assertLittleEndian();
  const bad = (msg: string): never => { throw new Error(`${name}: not a valid safetensors file: ${msg}`); };
  if (buf.byteLength < 8) bad(`${buf.byteLength} bytes is shorter than the 8-byte header length`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) bad(`header length ${n64} exceeds the ${MAX_HEADER}-byte limit`);
  const n = Number(n64);
  if (8 + n > buf.byteLength) bad(`header length ${n} runs past the end of the file (${buf.byteLength} bytes; truncated?)`);
  if (n < 2) bad(`header length ${n} is too small for a JSON object`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n)));
  } catch (e) {
    bad(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) bad('header is not a JSON object');
  const dataStart = 8 + n, dataLen = buf.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { key: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [key, v] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) bad('__metadata__ is not an object');
      for (const [mk, mv] of Object.entries(v as Record<string, unknown>)) {
        if (typeof mv !== 'string') bad(`__metadata__['${mk}'] is not a string`);
        metadata[mk] = mv as string;
      }
      continue;
    }
    const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (info === null || typeof info !== 'object') bad(`entry '${key}' is not an object`);
    if (typeof info.dtype !== 'string' || !(info.dtype in ST_DTYPES)) {
      bad(`tensor '${key}' has unknown dtype ${JSON.stringify(info.dtype)} (known: ${Object.keys(ST_DTYPES).join(', ')})`);
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`tensor '${key}' has an invalid shape ${JSON.stringify(shape)}`);
    const off = info.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`tensor '${key}' has invalid data_offsets ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as [number, number];
    if (begin > end) bad(`tensor '${key}' has data_offsets [${begin}, ${end}] with begin after end`);
    if (end > dataLen) bad(`tensor '${key}' data_offsets [${begin}, ${end}] run past the ${dataLen} data bytes (truncated?)`);
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const want = numel * ST_DTYPES[info.dtype as string]![1];
    if (want !== end - begin) bad(`tensor '${key}' of dtype ${info.dtype} and shape [${(shape as number[]).join(', ')}] needs ${want} bytes, data_offsets give ${end - begin}`);
    entries.push({ key, dtype: info.dtype as string, shape: shape as number[], begin, end });
  }
  // As the reference implementation: the byte ranges must tile the data exactly (no overlap, no gaps).
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of sorted) {
    if (e.begin < pos) bad(`tensor '${e.key}' data_offsets [${e.begin}, ${e.end}] overlap the previous tensor (ending at ${pos})`);
    if (e.begin > pos) bad(`bytes [${pos}, ${e.begin}) before tensor '${e.key}' belong to no tensor`);
    pos = e.end;
  }
  if (pos !== dataLen) bad(`the data section has ${dataLen} bytes but the tensors cover ${pos}`);

  const tensors = new Map<string, Tensor>();
  try {
    for (const e of entries) {
      // A view: the addon copies it into the tensor's own memory.
      const bytes = buf.subarray(dataStart + e.begin, dataStart + e.end);
      let t: Tensor;
      if (e.dtype === 'BF16') {
        // bfloat16 is the top half of a float32: widen exactly (copy first so the view is aligned).
        const src = new Uint16Array(Uint8Array.prototype.slice.call(bytes).buffer);
        const u32 = new Uint32Array(src.length);
        for (let i = 0; i < src.length; i++) u32[i] = src[i]! << 16;
        t = new Tensor(native.fromBuffer(u32, e.shape, dtypeCode('float32')));
      } else {
        t = new Tensor(native.fromBuffer(bytes, e.shape, dtypeCode(ST_DTYPES[e.dtype]![0])));
      }
      tensors.set(e.key, t);
    }
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
  return { tensors, metadata };
}

/** Serialises tensors (+ string metadata) to safetensors bytes. */
export function serializeSafetensors(tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): Buffer {
  assertLittleEndian();
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new TypeError(`safetensors: metadata '${k}' must be a string, got ${typeof v}`);
  }
  // The reference writer's order: larger elements first (keeps every tensor aligned), then by name.
  const items = [...tensors].map(([key, t]) => {
    if (key === '__metadata__') throw new Error("safetensors: '__metadata__' cannot be a tensor name");
    const st = TO_ST[t.dtype];
    if (!st) throw new TypeError(`safetensors: tensor '${key}' has unsupported dtype ${t.dtype}`);
    const d = t.data();
    return { key, st, shape: t.shape, bytes: Buffer.from(d.buffer, d.byteOffset, d.byteLength) };
  }).sort((a, b) => ST_DTYPES[b.st]![1] - ST_DTYPES[a.st]![1] || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const it of items) {
    header[it.key] = { dtype: it.st, shape: it.shape, data_offsets: [off, off + it.bytes.byteLength] };
    off += it.bytes.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf-8');
  // Pad with spaces to a multiple of 8 so the data start is aligned, as the reference does.
  const pad = (8 - (json.byteLength % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.byteLength));
  return Buffer.concat([len, json, ...items.map((i) => i.bytes)]);
}

export function saveSafetensors(path: string, tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): void {
  atomicWrite(path, serializeSafetensors(tensors, metadata), { mkdir: false });
}

export function loadSafetensors(path: string): SafetensorsFile {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  }
  return parseSafetensors(buf, path);
}

// ---- model checkpoints -------------------------------------------------------------------

/** The metadata key holding the model spec (JSON) of a zoo model. */
export const MODEL_SPEC_KEY = 'model';
/** The QuantizeSpec of a quantization-aware model (src/nn/quantize.ts). */
export const QUANTIZE_KEY = 'quantize';

/**
 * Saves the model's state dict; for zoo models the spec goes into metadata.model so that
 * loadModel(path) can rebuild the model from the file alone. format=pt as PyTorch checkpoints,
 * since the names and layouts match PyTorch's.
 */
export function saveModel(path: string, model: Module, metadata: Record<string, string> = {}): void {
  const meta: Record<string, string> = { format: 'pt', ...metadata };
  if (model instanceof ZooModel) meta[MODEL_SPEC_KEY] = JSON.stringify(model.spec);
  // A quantization-aware model's observers are in its state dict: loadModel re-installs its quantizers.
  const q = quantizationOf(model);
  if (q) meta[QUANTIZE_KEY] = JSON.stringify(q);
  saveSafetensors(path, model.stateDict(), meta);
}

/**
 * Loads a checkpoint into `into` or, without it, into a new model built from metadata.model.
 * Mismatched names or shapes throw (naming the file and each entry) unless strict is false.
 */
export function loadModel<M extends Module = ZooModel>(path: string, o: { into?: M; strict?: boolean } = {}): { model: M; metadata: Record<string, string> } {
  const { tensors, metadata } = loadSafetensors(path);
  try {
    let model: Module;
    if (o.into) model = o.into;
    else {
      const spec = metadata[MODEL_SPEC_KEY];
      if (spec === undefined) throw new Error(`${path}: no '${MODEL_SPEC_KEY}' entry in the metadata, so the model cannot be re-created; pass { into: model }`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(spec);
      } catch (e) {
        throw new Error(`${path}: metadata '${MODEL_SPEC_KEY}' is not valid JSON (${(e as Error).message})`);
      }
      try {
        model = createModel(parsed);
      } catch (e) {
        throw new Error(`${path}: ${(e as Error).message}`);
      }
    }
    const q = metadata[QUANTIZE_KEY];
    if (q !== undefined && !quantizationOf(model)) {
      try {
        prepareQuantization(model, quantizeSpecOf(JSON.parse(q)));
      } catch (e) {
        throw new Error(`${path}: metadata '${QUANTIZE_KEY}': ${(e as Error).message}`);
      }
    }
    try {
      model.loadStateDict(tensors, o.strict ?? true);
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}`);
    }
    return { model: model as M, metadata };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
