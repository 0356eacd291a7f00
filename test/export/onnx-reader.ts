// A minimal ONNX ModelProto reader for tests: the graph's nodes (op types) and initializers (name,
// data type, raw bytes), enough to check what the exporter wrote without an onnx dependency.
interface Field { no: number; wire: number; value: bigint | Uint8Array }

function fields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let p = 0;
  const varint = (): bigint => {
    let v = 0n, shift = 0n;
    for (;;) {
      const c = b[p++]!;
      v |= BigInt(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
      shift += 7n;
    }
  };
  while (p < b.length) {
    const key = Number(varint());
    const no = key >> 3, wire = key & 7;
    if (wire === 0) out.push({ no, wire, value: varint() });
    else if (wire === 2) {
      const n = Number(varint());
      out.push({ no, wire, value: b.subarray(p, p + n) });
      p += n;
    } else if (wire === 5) p += 4;
    else if (wire === 1) p += 8;
    else throw new Error(`wire type ${wire} not handled`);
  }
  return out;
}
const text = (v: bigint | Uint8Array): string => new TextDecoder().decode(v as Uint8Array);

export interface OnnxInitializer { name: string; dtype: number; dims: number[]; raw: Uint8Array }
export function readOnnx(bytes: Uint8Array): { nodes: { op: string; inputs: string[] }[]; initializers: Map<string, OnnxInitializer> } {
  const graph = fields(bytes).find((f) => f.no === 7)!.value as Uint8Array;
  const nodes: { op: string; inputs: string[] }[] = [];
  const initializers = new Map<string, OnnxInitializer>();
  for (const f of fields(graph)) {
    if (f.no === 1) {
      const n = fields(f.value as Uint8Array);
      nodes.push({ op: text(n.find((x) => x.no === 4)!.value), inputs: n.filter((x) => x.no === 1).map((x) => text(x.value)) });
    } else if (f.no === 5) {
      const t = fields(f.value as Uint8Array);
      const dims: number[] = [];
      for (const d of t.filter((x) => x.no === 1)) {
        if (d.wire === 0) dims.push(Number(d.value));
        else for (const e of fields(packedAsFields(d.value as Uint8Array))) dims.push(Number(e.value));
      }
      initializers.set(text(t.find((x) => x.no === 8)!.value), {
        name: text(t.find((x) => x.no === 8)!.value), dtype: Number(t.find((x) => x.no === 2)!.value), dims,
        // A copy: a Buffer's subarray shares (and .buffer exposes) the whole pooled allocation.
        raw: new Uint8Array((t.find((x) => x.no === 9)?.value as Uint8Array | undefined) ?? []),
      });
    }
  }
  return { nodes, initializers };
}

/** Packed varints re-keyed as field 1 varints, so fields() reads them. */
function packedAsFields(b: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < b.length) {
    out.push(0x08);
    do out.push(b[i]!); while (b[i++]! & 0x80);
  }
  return Uint8Array.from(out);
}
