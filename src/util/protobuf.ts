// A minimal protocol-buffers writer and reader: just what ONNX files need. The writer knows the
// wire types ONNX export uses (varint, 64-bit-free fixed32, length-delimited); messages are built
// bottom-up: a nested message is encoded to bytes first and then written as a length-delimited
// field, so no size pre-pass is needed. The reader walks a message's fields (every wire type),
// giving each field's byte range so a message can be copied with one field changed. In `util`
// (layer 0) because both the ONNX exporter and ONNX teachers (src/teachers/onnx.ts) use it.

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

export class ProtoWriter {
  #chunks: Uint8Array[] = [];
  #buf = new Uint8Array(256);
  #pos = 0;

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    this.#flush();
    if (n > this.#buf.length) this.#buf = new Uint8Array(Math.max(n, this.#buf.length * 2));
  }
  #flush(): void {
    if (this.#pos > 0) this.#chunks.push(this.#buf.slice(0, this.#pos));
    this.#pos = 0;
  }

  /** Unsigned or signed 64-bit varint; negatives use ten bytes of two's complement, as int64 demands. */
  varint(v: number | bigint): this {
    this.#ensure(10);
    if (typeof v === 'number' && v >= 0 && v <= 0x7fffffff) {
      let x = v;
      while (x > 0x7f) {
        this.#buf[this.#pos++] = (x & 0x7f) | 0x80;
        x >>>= 7;
      }
      this.#buf[this.#pos++] = x;
      return this;
    }
    let x = BigInt.asUintN(64, BigInt(v));
    while (x > 0x7fn) {
      this.#buf[this.#pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.#buf[this.#pos++] = Number(x);
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }
  raw(bytes: Uint8Array): this {
    if (bytes.length > 4096) {
      // Large payloads (weights) are kept as chunks rather than copied into the scratch buffer.
      this.#flush();
      this.#chunks.push(bytes);
      return this;
    }
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
    return this;
  }

  // ---- fields --------------------------------------------------------------------------
  int(field: number, v: number | bigint): this {
    return this.tag(field, WIRE_VARINT).varint(v);
  }
  /** Repeated integers, one tag each (proto2's unpacked default, which every parser accepts). */
  ints(field: number, vs: readonly (number | bigint)[]): this {
    for (const v of vs) this.int(field, v);
    return this;
  }
  float(field: number, v: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    return this.raw(b);
  }
  floats(field: number, vs: readonly number[]): this {
    for (const v of vs) this.float(field, v);
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    return this.tag(field, WIRE_LEN).varint(b.length).raw(b);
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  message(field: number, m: ProtoWriter | Uint8Array): this {
    return this.bytes(field, m instanceof ProtoWriter ? m.finish() : m);
  }

  finish(): Uint8Array {
    this.#flush();
    if (this.#chunks.length === 1) return this.#chunks[0]!;
    const n = this.#chunks.reduce((a, c) => a + c.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of this.#chunks) {
      out.set(c, o);
      o += c.length;
    }
    this.#chunks = [out];
    return out;
  }
}

// ---- reading -----------------------------------------------------------------------------------

/** One field of a message: number, wire type, varint value or length, and byte ranges. */
export interface ProtoField {
  field: number;
  wire: number;
  /** The value of a varint field; the payload length of a length-delimited one. */
  value: number;
  /** Where the field starts (its tag) in the buffer. */
  tagStart: number;
  /** The payload: the varint's bytes, or a length-delimited field's contents. */
  start: number;
  end: number;
}

/** The fields of the message in buf[start, end), in file order; a malformed message throws. */
export function* protoFields(buf: Uint8Array, start = 0, end = buf.length): Generator<ProtoField> {
  let p = start;
  while (p < end) {
    const tagStart = p;
    const [key, q] = readVarint(buf, p);
    p = q;
    const field = Math.floor(key / 8), wire = key % 8;
    if (wire === WIRE_VARINT) {
      const [v, r] = readVarint(buf, p);
      yield { field, wire, value: v, tagStart, start: p, end: r };
      p = r;
    } else if (wire === 1 || wire === WIRE_FIXED32) {
      const n = wire === 1 ? 8 : 4;
      if (p + n > end) throw new Error('truncated protobuf field');
      yield { field, wire, value: 0, tagStart, start: p, end: p + n };
      p += n;
    } else if (wire === WIRE_LEN) {
      const [len, r] = readVarint(buf, p);
      if (r + len > end) throw new Error('truncated protobuf field');
      yield { field, wire, value: len, tagStart, start: r, end: r + len };
      p = r + len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}

/** A varint at p (up to 2^53 exactly: counts and sizes) and the position after it. */
export function readVarint(buf: Uint8Array, p: number): [number, number] {
  let v = 0, mul = 1;
  for (;;) {
    if (p >= buf.length) throw new Error('truncated protobuf varint');
    const b = buf[p++]!;
    v += (b & 0x7f) * mul;
    if (b < 0x80) return [v, p];
    mul *= 128;
  }
}

/** A length-delimited field's contents as UTF-8 text. */
export function protoString(buf: Uint8Array, f: ProtoField): string {
  return new TextDecoder().decode(buf.subarray(f.start, f.end));
}
