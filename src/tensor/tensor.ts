// The Tensor class: a typed handle over a libtorch tensor, with PyTorch's method names in
// camelCase. Every op goes through the addon's generic ATen dispatcher (see native/dispatch.cc).
import { native, type Handle } from './native.js';
import { dtypeCode, dtypeName, isDType, type DType, type TypedArray } from './dtype.js';
import { track, keep as keepTracked } from './scope.js';

const opIds = new Map<string, number>();

/** Resolves 'name' or 'name.overload' to an ATen operator id, once. */
export function opId(qual: string): number {
  let id = opIds.get(qual);
  if (id === undefined) {
    const dot = qual.indexOf('.');
    id = native.opFind('aten::' + (dot < 0 ? qual : qual.slice(0, dot)), dot < 0 ? '' : qual.slice(dot + 1));
    opIds.set(qual, id);
  }
  return id;
}

function toNativeArg(a: unknown): unknown {
  if (a instanceof Tensor) return a.handle;
  if (Array.isArray(a)) return a.map((x) => (x instanceof Tensor ? x.handle : x));
  return a;
}

function fromNative(r: unknown): unknown {
  if (r === null || r === undefined || typeof r !== 'object') return r;
  if (Array.isArray(r)) return r.map(fromNative);
  if (Object.getPrototypeOf(r) === Object.prototype) {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) o[k] = fromNative(v);
    return o;
  }
  return new Tensor(r as Handle);
}

/** Calls an ATen operator ('add.Tensor', 'conv2d', ...) with tensors, numbers, arrays. */
export function call(qual: string, ...args: unknown[]): Tensor {
  return fromNative(native.opCall(opId(qual), args.map(toNativeArg))) as Tensor;
}

/** Like call, for operators that return several values (max.dim, native_batch_norm, ...). */
export function callMulti(qual: string, ...args: unknown[]): Tensor[] {
  return fromNative(native.opCall(opId(qual), args.map(toNativeArg))) as Tensor[];
}

/** Calls an in-place operator and discards the (aliased) return value. */
export function callInPlace(qual: string, ...args: unknown[]): void {
  native.opCall(opId(qual), args.map(toNativeArg), true);
}

export type Scalar = number | boolean;
/** A libtorch device string: 'cpu', 'cuda', 'cuda:1', ... */
export type Device = 'cpu' | 'cuda' | `cuda:${number}` | (string & {});
const DEVICE = /^(cpu|cuda|mps|meta|xpu|hip|ipu|xla|vulkan|ort|hpu|ve|fpga|lazy|mkldnn|opengl|opencl|ideep|privateuseone)(:\d+)?$/;
export type TensorOrScalar = Tensor | number;

type Reduction = { dim?: number | number[]; keepdim?: boolean };

function dims(d: number | number[] | undefined): number[] | undefined {
  return d === undefined ? undefined : typeof d === 'number' ? [d] : d;
}

export class Tensor {
  /** Marks tensors for tidy()'s search of returned values. */
  readonly __tensor = true;
  #h: Handle | null;

  constructor(handle: Handle) {
    this.#h = handle;
    track(this);
  }

  /** The native handle; throws a clear error once the tensor has been disposed. */
  get handle(): Handle {
    if (this.#h === null) throw new Error('tensor used after dispose()');
    return this.#h;
  }

  // ---- lifetime ------------------------------------------------------------------------
  dispose(): void {
    if (this.#h !== null) {
      native.dispose(this.#h);
      this.#h = null;
    }
  }
  get isDisposed(): boolean {
    return this.#h === null;
  }
  /** Exempts this tensor from every enclosing tidy() scope. */
  keep(): this {
    return keepTracked(this);
  }

  // ---- metadata ------------------------------------------------------------------------
  get shape(): number[] {
    return native.shape(this.handle);
  }
  size(dim?: number): number[] | number {
    const s = this.shape;
    return dim === undefined ? s : s[dim < 0 ? s.length + dim : dim]!;
  }
  get dtype(): DType {
    return dtypeName(native.dtype(this.handle));
  }
  /** The device the tensor lives on ('cpu'). */
  get device(): string {
    return native.device(this.handle);
  }
  get ndim(): number {
    return native.dim(this.handle);
  }
  dim(): number {
    return native.dim(this.handle);
  }
  numel(): number {
    return native.numel(this.handle);
  }
  isContiguous(): boolean {
    return native.isContiguous(this.handle);
  }

  // ---- data out ------------------------------------------------------------------------
  /** A copy of the elements as a typed array of the tensor's dtype (int64 -> BigInt64Array). */
  data<T extends TypedArray = TypedArray>(): T {
    return native.toBuffer(this.handle) as T;
  }
  /** Elements as float64 numbers, whatever the dtype. */
  toFloat64Array(): Float64Array {
    const d = this.data();
    return d instanceof Float64Array ? d : Float64Array.from(d as ArrayLike<number>, (x) => Number(x));
  }
  item(): number {
    const v = native.item(this.handle);
    return typeof v === 'boolean' ? Number(v) : v;
  }
  /** Nested JS arrays of numbers, as PyTorch's tolist(). */
  tolist(): unknown {
    const flat = this.toFloat64Array();
    const shape = this.shape;
    if (shape.length === 0) return flat[0];
    const build = (d: number, off: number): unknown => {
      const n = shape[d]!;
      const stride = shape.slice(d + 1).reduce((a, b) => a * b, 1);
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) out.push(d === shape.length - 1 ? flat[off + i] : build(d + 1, off + i * stride));
      return out;
    };
    return build(0, 0);
  }
  toString(): string {
    return this.isDisposed ? 'Tensor(disposed)' : native.toString(this.handle);
  }

  // ---- autograd ------------------------------------------------------------------------
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  set requiresGrad(b: boolean) {
    native.setRequiresGrad(this.handle, b);
  }
  requiresGrad_(b = true): this {
    native.setRequiresGrad(this.handle, b);
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  get grad(): Tensor | null {
    const g = native.getGrad(this.handle);
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) {
    native.setGrad(this.handle, g === null ? null : g.handle);
  }
  get gradFn(): string | null {
    return native.gradFnName(this.handle);
  }
  retainGrad(): this {
    native.retainGrad(this.handle);
    return this;
  }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean; inputs?: Tensor[] } = {}): void {
    native.backward([this.handle], gradient ? [gradient.handle] : null, opts.retainGraph, opts.createGraph ?? false,
      opts.inputs ? opts.inputs.map((t) => t.handle) : null);
  }
  detach(): Tensor {
    return call('detach', this);
  }

  // ---- conversion ----------------------------------------------------------------------
  /** A copy converted to a dtype ('float64', ...) or moved to a device ('cpu', 'cuda:0', ...). */
  to(target: DType | Device): Tensor {
    if (isDType(target)) return call('_to_copy', this, dtypeCode(target));
    if (!DEVICE.test(target)) {
      throw new TypeError(`to('${String(target)}'): neither a dtype (float32, float64, int64, bool, ...) nor a device ('cpu', 'cuda:0', ...)`);
    }
    return call('_to_copy', this, null, null, target);
  }
  float(): Tensor { return this.to('float32'); }
  double(): Tensor { return this.to('float64'); }
  long(): Tensor { return this.to('int64'); }
  int(): Tensor { return this.to('int32'); }
  bool(): Tensor { return this.to('bool'); }
  clone(): Tensor { return call('clone', this); }
  contiguous(): Tensor { return call('contiguous', this); }

  // ---- elementwise arithmetic (tensor or scalar, with broadcasting) ------------------
  add(other: TensorOrScalar, alpha: number = 1): Tensor {
    return other instanceof Tensor ? call('add.Tensor', this, other, alpha) : call('add.Scalar', this, other, alpha);
  }
  sub(other: TensorOrScalar, alpha: number = 1): Tensor {
    return other instanceof Tensor ? call('sub.Tensor', this, other, alpha) : call('sub.Scalar', this, other, alpha);
  }
  mul(other: TensorOrScalar): Tensor {
    return other instanceof Tensor ? call('mul.Tensor', this, other) : call('mul.Scalar', this, other);
  }
  div(other: TensorOrScalar, roundingMode?: 'trunc' | 'floor'): Tensor {
    if (roundingMode) return other instanceof Tensor ? call('div.Tensor_mode', this, other, roundingMode) : call('div.Scalar_mode', this, other, roundingMode);
    return other instanceof Tensor ? call('div.Tensor', this, other) : call('div.Scalar', this, other);
  }
  pow(exponent: TensorOrScalar): Tensor {
    return exponent instanceof Tensor ? call('pow.Tensor_Tensor', this, exponent) : call('pow.Tensor_Scalar', this, exponent);
  }
  remainder(other: TensorOrScalar): Tensor {
    return other instanceof Tensor ? call('remainder.Tensor', this, other) : call('remainder.Scalar', this, other);
  }
  fmod(other: TensorOrScalar): Tensor {
    return other instanceof Tensor ? call('fmod.Tensor', this, other) : call('fmod.Scalar', this, other);
  }
  maximum(other: Tensor): Tensor { return call('maximum', this, other); }
  minimum(other: Tensor): Tensor { return call('minimum', this, other); }
  atan2(other: Tensor): Tensor { return call('atan2', this, other); }
  neg(): Tensor { return call('neg', this); }
  abs(): Tensor { return call('abs', this); }
  sign(): Tensor { return call('sign', this); }
  exp(): Tensor { return call('exp', this); }
  expm1(): Tensor { return call('expm1', this); }
  log(): Tensor { return call('log', this); }
  log1p(): Tensor { return call('log1p', this); }
  log2(): Tensor { return call('log2', this); }
  sqrt(): Tensor { return call('sqrt', this); }
  rsqrt(): Tensor { return call('rsqrt', this); }
  square(): Tensor { return call('square', this); }
  reciprocal(): Tensor { return call('reciprocal', this); }
  sin(): Tensor { return call('sin', this); }
  cos(): Tensor { return call('cos', this); }
  tanh(): Tensor { return call('tanh', this); }
  sigmoid(): Tensor { return call('sigmoid', this); }
  relu(): Tensor { return call('relu', this); }
  erf(): Tensor { return call('erf', this); }
  floor(): Tensor { return call('floor', this); }
  ceil(): Tensor { return call('ceil', this); }
  round(): Tensor { return call('round', this); }
  clamp(min?: number | null, max?: number | null): Tensor { return call('clamp', this, min ?? null, max ?? null); }
  clampMin(min: number): Tensor { return call('clamp_min', this, min); }
  clampMax(max: number): Tensor { return call('clamp_max', this, max); }
  isnan(): Tensor { return call('isnan', this); }
  isinf(): Tensor { return call('isinf', this); }
  isfinite(): Tensor { return call('isfinite', this); }
  nanToNum(nan = 0, posinf?: number, neginf?: number): Tensor { return call('nan_to_num', this, nan, posinf ?? null, neginf ?? null); }
  lerp(end: Tensor, weight: number): Tensor { return call('lerp.Scalar', this, end, weight); }

  // ---- comparisons and logic ---------------------------------------------------------
  eq(o: TensorOrScalar): Tensor { return o instanceof Tensor ? call('eq.Tensor', this, o) : call('eq.Scalar', this, o); }
  ne(o: TensorOrScalar): Tensor { return o instanceof Tensor ? call('ne.Tensor', this, o) : call('ne.Scalar', this, o); }
  lt(o: TensorOrScalar): Tensor { return o instanceof Tensor ? call('lt.Tensor', this, o) : call('lt.Scalar', this, o); }
  le(o: TensorOrScalar): Tensor { return o instanceof Tensor ? call('le.Tensor', this, o) : call('le.Scalar', this, o); }
  gt(o: TensorOrScalar): Tensor { return o instanceof Tensor ? call('gt.Tensor', this, o) : call('gt.Scalar', this, o); }
  ge(o: TensorOrScalar): Tensor { return o instanceof Tensor ? call('ge.Tensor', this, o) : call('ge.Scalar', this, o); }
  logicalNot(): Tensor { return call('logical_not', this); }
  logicalAnd(o: Tensor): Tensor { return call('logical_and', this, o); }
  logicalOr(o: Tensor): Tensor { return call('logical_or', this, o); }
  allclose(o: Tensor, rtol = 1e-5, atol = 1e-8): boolean { return native.opCall(opId('allclose'), [this.handle, o.handle, rtol, atol]) as boolean; }
  equal(o: Tensor): boolean { return native.opCall(opId('equal'), [this.handle, o.handle]) as boolean; }

  // ---- reductions --------------------------------------------------------------------
  sum(opts: Reduction = {}): Tensor {
    return opts.dim === undefined ? call('sum', this) : call('sum.dim_IntList', this, dims(opts.dim), opts.keepdim ?? false);
  }
  mean(opts: Reduction = {}): Tensor {
    return opts.dim === undefined ? call('mean', this) : call('mean.dim', this, dims(opts.dim), opts.keepdim ?? false);
  }
  prod(opts: { dim?: number; keepdim?: boolean } = {}): Tensor {
    return opts.dim === undefined ? call('prod', this) : call('prod.dim_int', this, opts.dim, opts.keepdim ?? false);
  }
  /** max() over all elements, or {values, indices} along a dimension. */
  max(): Tensor;
  max(opts: { dim: number; keepdim?: boolean }): { values: Tensor; indices: Tensor };
  max(opts?: { dim: number; keepdim?: boolean }): Tensor | { values: Tensor; indices: Tensor } {
    if (!opts) return call('max', this);
    const [values, indices] = callMulti('max.dim', this, opts.dim, opts.keepdim ?? false);
    return { values: values!, indices: indices! };
  }
  min(): Tensor;
  min(opts: { dim: number; keepdim?: boolean }): { values: Tensor; indices: Tensor };
  min(opts?: { dim: number; keepdim?: boolean }): Tensor | { values: Tensor; indices: Tensor } {
    if (!opts) return call('min', this);
    const [values, indices] = callMulti('min.dim', this, opts.dim, opts.keepdim ?? false);
    return { values: values!, indices: indices! };
  }
  amax(opts: Reduction = {}): Tensor { return call('amax', this, dims(opts.dim) ?? [], opts.keepdim ?? false); }
  amin(opts: Reduction = {}): Tensor { return call('amin', this, dims(opts.dim) ?? [], opts.keepdim ?? false); }
  argmax(opts: { dim?: number; keepdim?: boolean } = {}): Tensor { return call('argmax', this, opts.dim ?? null, opts.keepdim ?? false); }
  argmin(opts: { dim?: number; keepdim?: boolean } = {}): Tensor { return call('argmin', this, opts.dim ?? null, opts.keepdim ?? false); }
  logsumexp(opts: { dim: number | number[]; keepdim?: boolean }): Tensor { return call('logsumexp', this, dims(opts.dim), opts.keepdim ?? false); }
  /** Standard deviation; correction 1 (unbiased) by default, as in PyTorch. */
  std(opts: Reduction & { correction?: number } = {}): Tensor {
    return call('std.correction', this, dims(opts.dim) ?? null, opts.correction ?? 1, opts.keepdim ?? false);
  }
  var(opts: Reduction & { correction?: number } = {}): Tensor {
    return call('var.correction', this, dims(opts.dim) ?? null, opts.correction ?? 1, opts.keepdim ?? false);
  }
  /** Vector p-norm (linalg.vector_norm). */
  norm(opts: Reduction & { p?: number } = {}): Tensor {
    return call('linalg_vector_norm', this, opts.p ?? 2, dims(opts.dim) ?? null, opts.keepdim ?? false);
  }
  all(): Tensor { return call('all', this); }
  any(): Tensor { return call('any', this); }
  cumsum(dim: number): Tensor { return call('cumsum', this, dim); }
  softmax(dim: number): Tensor { return call('softmax.int', this, dim); }
  logSoftmax(dim: number): Tensor { return call('log_softmax.int', this, dim); }
  topk(k: number, opts: { dim?: number; largest?: boolean; sorted?: boolean } = {}): { values: Tensor; indices: Tensor } {
    const [values, indices] = callMulti('topk', this, k, opts.dim ?? -1, opts.largest ?? true, opts.sorted ?? true);
    return { values: values!, indices: indices! };
  }
  sort(opts: { dim?: number; descending?: boolean } = {}): { values: Tensor; indices: Tensor } {
    const [values, indices] = callMulti('sort', this, opts.dim ?? -1, opts.descending ?? false);
    return { values: values!, indices: indices! };
  }
  argsort(opts: { dim?: number; descending?: boolean } = {}): Tensor { return call('argsort', this, opts.dim ?? -1, opts.descending ?? false); }

  // ---- shape -------------------------------------------------------------------------
  reshape(...shape: number[] | [number[]]): Tensor { return call('reshape', this, flatShape(shape)); }
  view(...shape: number[] | [number[]]): Tensor { return call('view', this, flatShape(shape)); }
  permute(...d: number[] | [number[]]): Tensor { return call('permute', this, flatShape(d)); }
  transpose(dim0: number, dim1: number): Tensor { return call('transpose.int', this, dim0, dim1); }
  t(): Tensor { return call('t', this); }
  get T(): Tensor { return this.ndim < 2 ? this : this.permute([...Array(this.ndim).keys()].reverse()); }
  squeeze(dim?: number): Tensor { return dim === undefined ? call('squeeze', this) : call('squeeze.dim', this, dim); }
  unsqueeze(dim: number): Tensor { return call('unsqueeze', this, dim); }
  flatten(startDim = 0, endDim = -1): Tensor { return call('flatten.using_ints', this, startDim, endDim); }
  unflatten(dim: number, sizes: number[]): Tensor { return call('unflatten.int', this, dim, sizes); }
  expand(...shape: number[] | [number[]]): Tensor { return call('expand', this, flatShape(shape)); }
  expandAs(other: Tensor): Tensor { return call('expand_as', this, other); }
  broadcastTo(shape: number[]): Tensor { return call('broadcast_to', this, shape); }
  narrow(dim: number, start: number, length: number): Tensor { return call('narrow', this, dim, start, length); }
  /** PyTorch's basic slicing along one dimension: x[start:end:step]. */
  slice(dim: number, start?: number | null, end?: number | null, step = 1): Tensor { return call('slice.Tensor', this, dim, start ?? null, end ?? null, step); }
  select(dim: number, index: number): Tensor { return call('select.int', this, dim, index); }
  indexSelect(dim: number, index: Tensor): Tensor { return call('index_select', this, dim, index); }
  /** Advanced indexing x[i0, i1, ...] with index tensors (null keeps a dimension whole). */
  index(indices: (Tensor | null)[]): Tensor { return call('index.Tensor', this, indices); }
  gather(dim: number, index: Tensor): Tensor { return call('gather', this, dim, index); }
  scatter(dim: number, index: Tensor, src: TensorOrScalar): Tensor {
    return src instanceof Tensor ? call('scatter.src', this, dim, index, src) : call('scatter.value', this, dim, index, src);
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor { return call('scatter_add', this, dim, index, src); }
  maskedFill(mask: Tensor, value: TensorOrScalar): Tensor {
    return value instanceof Tensor ? call('masked_fill.Tensor', this, mask, value) : call('masked_fill.Scalar', this, mask, value);
  }
  repeat(...sizes: number[] | [number[]]): Tensor { return call('repeat', this, flatShape(sizes)); }
  repeatInterleave(repeats: number, dim?: number): Tensor { return call('repeat_interleave.self_int', this, repeats, dim ?? null); }
  chunk(chunks: number, dim = 0): Tensor[] { return callMulti('chunk', this, chunks, dim); }
  split(splitSize: number | number[], dim = 0): Tensor[] {
    return typeof splitSize === 'number' ? callMulti('split.Tensor', this, splitSize, dim) : callMulti('split_with_sizes', this, splitSize, dim);
  }
  unbind(dim = 0): Tensor[] { return callMulti('unbind.int', this, dim); }
  flip(dims: number[]): Tensor { return call('flip', this, dims); }
  roll(shifts: number | number[], dims: number | number[]): Tensor { return call('roll', this, shifts, dims); }
  tril(diagonal = 0): Tensor { return call('tril', this, diagonal); }
  triu(diagonal = 0): Tensor { return call('triu', this, diagonal); }

  // ---- linear algebra ----------------------------------------------------------------
  matmul(o: Tensor): Tensor { return call('matmul', this, o); }
  mm(o: Tensor): Tensor { return call('mm', this, o); }
  bmm(o: Tensor): Tensor { return call('bmm', this, o); }
  dot(o: Tensor): Tensor { return call('dot', this, o); }
  outer(o: Tensor): Tensor { return call('outer', this, o); }

  // ---- in place (optimizers, initialisers, running statistics) -----------------------
  copy_(src: Tensor): this { callInPlace('copy_', this, src); return this; }
  zero_(): this { callInPlace('zero_', this); return this; }
  fill_(v: number): this { callInPlace('fill_.Scalar', this, v); return this; }
  add_(o: TensorOrScalar, alpha = 1): this {
    if (o instanceof Tensor) callInPlace('add_.Tensor', this, o, alpha); else callInPlace('add_.Scalar', this, o, alpha);
    return this;
  }
  mul_(o: TensorOrScalar): this {
    if (o instanceof Tensor) callInPlace('mul_.Tensor', this, o); else callInPlace('mul_.Scalar', this, o);
    return this;
  }
  clamp_(min?: number | null, max?: number | null): this { callInPlace('clamp_', this, min ?? null, max ?? null); return this; }
  uniform_(from = 0, to = 1, generator?: Generator): this { callInPlace('uniform_', this, from, to, generator?.handle ?? null); return this; }
  normal_(mean = 0, std = 1, generator?: Generator): this { callInPlace('normal_', this, mean, std, generator?.handle ?? null); return this; }
}

function flatShape(s: number[] | [number[]]): number[] {
  return Array.isArray(s[0]) ? (s[0] as number[]) : (s as number[]);
}

/** A seeded random-number generator, independent of the global one (torch.Generator). */
export class Generator {
  readonly handle: Handle;
  constructor(seed = 0) {
    this.handle = native.generatorCreate(seed);
  }
  manualSeed(seed: number): this {
    native.generatorSeed(this.handle, seed);
    return this;
  }
  /** The generator's state as a uint8 tensor (what checkpoints store). */
  getState(): Tensor {
    return new Tensor(native.getRngState(this.handle));
  }
  setState(state: Tensor): void {
    native.setRngState(this.handle, state.handle);
  }
}
