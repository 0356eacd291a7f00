// Creating tensors: from JS data (typed arrays are copied once, natively) and PyTorch's factories.
import { native } from './native.js';
import { dtypeCode, dtypeOfTypedArray, type DType } from './dtype.js';
import { call, Generator, Tensor } from './tensor.js';

export type NestedNumbers = number | boolean | NestedNumbers[];
export interface CreateOptions { dtype?: DType; requiresGrad?: boolean }
export interface RandomOptions extends CreateOptions { generator?: Generator }

function inferShape(data: NestedNumbers): number[] {
  const shape: number[] = [];
  let cur: NestedNumbers = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as NestedNumbers;
  }
  return shape;
}

function finish(t: Tensor, o: CreateOptions): Tensor {
  if (o.requiresGrad) t.requiresGrad_(true);
  return t;
}

/**
 * torch.tensor(data, {dtype, shape}): from nested arrays, a number, or a typed array (copied in
 * one memcpy; `shape` defaults to 1-D). Numbers default to float32, booleans to bool.
 */
export function tensor(data: NestedNumbers | ArrayBufferView, o: CreateOptions & { shape?: number[] } = {}): Tensor {
  if (o.dtype !== undefined) dtypeCode(o.dtype); // a clear error for an unknown dtype name
  if (ArrayBuffer.isView(data)) {
    // Node-API cannot read a view on a SharedArrayBuffer (worker-shared datasets): copy it out
    // natively first (slice is a memcpy).
    if (typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer) data = (data as Float32Array).slice();
    const natural = dtypeOfTypedArray(data);
    const shape = o.shape ?? [(data as Float32Array).length];
    const t = new Tensor(native.fromBuffer(data, shape, dtypeCode(natural === 'uint8' && o.dtype === 'bool' ? 'bool' : natural)));
    if (o.dtype && o.dtype !== natural && !(natural === 'uint8' && o.dtype === 'bool')) {
      const c = t.to(o.dtype);
      t.dispose();
      return finish(c, o);
    }
    return finish(t, o);
  }
  const shape = o.shape ?? inferShape(data);
  const flat = Array.isArray(data) ? (data as unknown[]).flat(Infinity) as (number | boolean)[] : [data];
  const expected = shape.reduce((a, b) => a * b, 1);
  if (flat.length !== expected) throw new RangeError(`tensor(): ragged nested array: shape ${JSON.stringify(shape)} needs ${expected} elements, got ${flat.length}`);
  const isBool = typeof flat[0] === 'boolean';
  const dtype = o.dtype ?? (isBool ? 'bool' : 'float32');
  let buf: ArrayBufferView;
  switch (dtype) {
    case 'float64': buf = Float64Array.from(flat as number[], Number); break;
    case 'int64': buf = BigInt64Array.from(flat as number[], (x) => BigInt(Math.trunc(Number(x)))); break;
    case 'int32': buf = Int32Array.from(flat as number[], Number); break;
    case 'bool': case 'uint8': buf = Uint8Array.from(flat as number[], Number); break;
    default: buf = Float32Array.from(flat as number[], Number);
  }
  const natural = dtype === 'bool' ? 'bool' : dtypeOfTypedArray(buf);
  const t = new Tensor(native.fromBuffer(buf, shape, dtypeCode(natural)));
  if (natural !== dtype) {
    const c = t.to(dtype);
    t.dispose();
    return finish(c, o);
  }
  return finish(t, o);
}

const dt = (o: CreateOptions): number | null => (o.dtype ? dtypeCode(o.dtype) : null);

export const zeros = (shape: number[], o: CreateOptions = {}): Tensor => finish(call('zeros', shape, dt(o)), o);
export const ones = (shape: number[], o: CreateOptions = {}): Tensor => finish(call('ones', shape, dt(o)), o);
export const empty = (shape: number[], o: CreateOptions = {}): Tensor => finish(call('empty.memory_format', shape, dt(o)), o);
export const full = (shape: number[], value: number, o: CreateOptions = {}): Tensor =>
  finish(call('full', shape, value, dt(o) ?? dtypeCode('float32')), o);
export const eye = (n: number, m?: number, o: CreateOptions = {}): Tensor => finish(call('eye.m', n, m ?? n, dt(o)), o);
export const zerosLike = (t: Tensor, o: CreateOptions = {}): Tensor => finish(call('zeros_like', t, dt(o)), o);
export const onesLike = (t: Tensor, o: CreateOptions = {}): Tensor => finish(call('ones_like', t, dt(o)), o);
export const fullLike = (t: Tensor, v: number, o: CreateOptions = {}): Tensor => finish(call('full_like', t, v, dt(o)), o);
export const linspace = (start: number, end: number, steps: number, o: CreateOptions = {}): Tensor =>
  finish(call('linspace', start, end, steps, dt(o)), o);

/** arange(end) or arange(start, end, step); integral arguments give int64, as in PyTorch. */
export function arange(startOrEnd: number, end?: number, step = 1, o: CreateOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  return finish(call('arange.start_step', s, e, step, dt(o)), o);
}

const gen = (o: RandomOptions): unknown => o.generator?.handle ?? null;
export const rand = (shape: number[], o: RandomOptions = {}): Tensor => finish(call('rand.generator', shape, gen(o), dt(o)), o);
export const randn = (shape: number[], o: RandomOptions = {}): Tensor => finish(call('randn.generator', shape, gen(o), dt(o)), o);
export const randLike = (t: Tensor): Tensor => call('rand_like', t);
export const randnLike = (t: Tensor): Tensor => call('randn_like', t);
/** Integers uniformly in [low, high), int64 by default. */
export const randint = (low: number, high: number, shape: number[], o: RandomOptions = {}): Tensor =>
  finish(call('randint.low_generator', low, high, shape, gen(o), dt(o) ?? dtypeCode('int64')), o);
export const randperm = (n: number, o: RandomOptions = {}): Tensor =>
  finish(call('randperm.generator', n, gen(o), dt(o) ?? dtypeCode('int64')), o);
export const bernoulli = (p: Tensor, o: RandomOptions = {}): Tensor => call('bernoulli', p, gen(o));
export const multinomial = (probs: Tensor, n: number, replacement = false, o: RandomOptions = {}): Tensor =>
  call('multinomial', probs, n, replacement, gen(o));

export const cat = (ts: Tensor[], dim = 0): Tensor => call('cat', ts, dim);
export const stack = (ts: Tensor[], dim = 0): Tensor => call('stack', ts, dim);
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  if (a instanceof Tensor && b instanceof Tensor) return call('where.self', cond, a, b);
  if (a instanceof Tensor) return call('where.ScalarOther', cond, a, b);
  if (b instanceof Tensor) return call('where.ScalarSelf', cond, a, b);
  return call('where.Scalar', cond, a, b);
}
export const einsum = (equation: string, ...operands: Tensor[]): Tensor => call('einsum', equation, operands);
export const matmul = (a: Tensor, b: Tensor): Tensor => a.matmul(b);
