// An ONNX graph under construction and its encoding as a ModelProto (field numbers from
// onnx/onnx.proto). Values carry static shapes with `null` for the dynamic batch dimension, so
// layer exporters can compute reshape targets and pooling windows without running the model.
import { ProtoWriter } from '../util/protobuf.js';

/** TensorProto.DataType codes used here. */
export const ONNX_DTYPE = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 } as const;
export type OnnxDType = keyof typeof ONNX_DTYPE;

/** A tensor flowing through the graph: its name and shape (null = the symbolic batch size). */
export interface Value {
  name: string;
  shape: (number | null)[];
  dtype: OnnxDType;
}

export type AttrValue = number | string | number[] | { float: number } | { floats: number[] };
export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs: Record<string, AttrValue>;
}
export interface Initializer {
  name: string;
  dims: number[];
  dtype: OnnxDType;
  /** Little-endian raw bytes. */
  data: Uint8Array;
}

export class OnnxGraph {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: Initializer[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly #names = new Set<string>();

  /** A name not used yet, derived from `base` (module paths make the graph readable in Netron). */
  unique(base: string): string {
    const b = base.replace(/[^A-Za-z0-9_.\-/:]/g, '_') || 'v';
    let n = b;
    for (let i = 1; this.#names.has(n); i++) n = `${b}_${i}`;
    this.#names.add(n);
    return n;
  }
  addInput(name: string, shape: (number | null)[], dtype: OnnxDType = 'float32'): Value {
    const v = { name: this.unique(name), shape, dtype };
    this.inputs.push(v);
    return v;
  }
  addOutput(v: Value): void {
    this.outputs.push(v);
  }
  addInitializer(name: string, dims: number[], data: Float32Array | BigInt64Array | Int32Array | Uint8Array | Int8Array, dtype: OnnxDType = 'float32'): Value {
    const n = this.unique(name);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({ name: n, dims, dtype, data: bytes });
    return { name: n, shape: dims, dtype };
  }
  addNode(op: string, inputs: (Value | string)[], outShape: (number | null)[], o: { name?: string; attrs?: Record<string, AttrValue>; dtype?: OnnxDType } = {}): Value {
    const out = this.unique(o.name ?? op);
    this.nodes.push({
      op, name: out, outputs: [out], attrs: o.attrs ?? {},
      inputs: inputs.map((i) => (typeof i === 'string' ? i : i.name)),
    });
    const first = inputs.find((i): i is Value => typeof i !== 'string');
    return { name: out, shape: outShape, dtype: o.dtype ?? first?.dtype ?? 'float32' };
  }

  /** Encodes a ModelProto. */
  encode(o: { opset: number; producerVersion: string; docString?: string; metadata?: Record<string, string>; graphName?: string }): Uint8Array {
    const g = new ProtoWriter();
    for (const n of this.nodes) g.message(1, encodeNode(n));
    g.string(2, o.graphName ?? 'kdistill');
    for (const t of this.initializers) g.message(5, encodeTensor(t));
    for (const v of this.inputs) g.message(11, encodeValueInfo(v));
    for (const v of this.outputs) g.message(12, encodeValueInfo(v));

    const m = new ProtoWriter();
    // IR version 8 (ONNX 1.10+) covers opsets up to 17.
    m.int(1, 8);
    m.string(2, 'kdistill');
    m.string(3, o.producerVersion);
    if (o.docString) m.string(6, o.docString);
    m.message(7, g);
    m.message(8, new ProtoWriter().string(1, '').int(2, o.opset));
    for (const [k, v] of Object.entries(o.metadata ?? {})) m.message(14, new ProtoWriter().string(1, k).string(2, v));
    return m.finish();
  }
}

function encodeNode(n: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.op);
  for (const [k, v] of Object.entries(n.attrs)) w.message(5, encodeAttr(k, v));
  return w;
}

// AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8, type 20 (FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7).
function encodeAttr(name: string, v: AttrValue): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new TypeError(`ONNX attribute '${name}': ${v} is not an integer; pass { float: v }`);
    return w.int(3, v).int(20, 2);
  }
  if (typeof v === 'string') return w.string(4, v).int(20, 3);
  if (Array.isArray(v)) return w.ints(8, v).int(20, 7);
  if ('float' in v) return w.float(2, v.float).int(20, 1);
  return w.floats(7, v.floats).int(20, 6);
}

// TensorProto: dims 1, data_type 2, name 8, raw_data 9.
function encodeTensor(t: Initializer): ProtoWriter {
  return new ProtoWriter().ints(1, t.dims).int(2, ONNX_DTYPE[t.dtype]).string(8, t.name).bytes(9, t.data);
}

// ValueInfoProto{name 1, type 2: TypeProto{tensor_type 1: {elem_type 1, shape 2: {dim 1: {dim_value 1 | dim_param 2}}}}}.
function encodeValueInfo(v: Value): ProtoWriter {
  const shape = new ProtoWriter();
  // Dynamic dimensions: the batch first, then (token-id inputs of any length) the sequence.
  v.shape.forEach((d, i) => shape.message(1, d === null ? new ProtoWriter().string(2, i === 0 ? 'batch' : 'sequence') : new ProtoWriter().int(1, d)));
  const tensorType = new ProtoWriter().int(1, ONNX_DTYPE[v.dtype]).message(2, shape);
  return new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType));
}
