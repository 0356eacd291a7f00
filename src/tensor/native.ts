// Loads the compiled libtorch addon (built by `npm install` into build/Release).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Opaque handle to a native object (tensor, module, optimizer, generator). */
export type Handle = { readonly __handle: unique symbol };

export interface NativeAddon {
  torchVersion: string;
  manualSeed(seed: number): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  setNumInteropThreads(n: number): void;
  generatorCreate(seed: number): Handle;
  generatorSeed(g: Handle, seed: number): void;
  getRngState(g: Handle | null): Handle;
  setRngState(g: Handle | null, state: Handle): void;
  fromBuffer(data: ArrayBufferView, shape: number[], dtype: number): Handle;
  toBuffer(t: Handle): ArrayBufferView;
  item(t: Handle): number | boolean;
  shape(t: Handle): number[];
  dtype(t: Handle): number;
  numel(t: Handle): number;
  dim(t: Handle): number;
  dispose(t: Handle): void;
  isDisposed(t: Handle): boolean;
  /** Tensor handles created and not disposed (deterministic: garbage collection does not change it). */
  liveTensors(): number;
  /** Tensor handles still holding native memory: not disposed and not yet garbage-collected. */
  heldTensors(): number;
  /** Native bytes in use / held (C heap + tensor buffers; -1 if unknown), tensor buffers in use / cached. */
  nativeMemory(): NativeMemory;
  /** Unmaps the tensor allocator's cached free buffers. */
  emptyCache(): void;
  device(t: Handle): string;
  toString(t: Handle): string;
  storageBytes(t: Handle): number;
  isContiguous(t: Handle): boolean;
  opFind(name: string, overload: string): number;
  opSchema(id: number): string;
  opCall(id: number, args: unknown[], discard?: boolean): unknown;
  backward(ts: Handle[], grads: Handle[] | null, retainGraph?: boolean, createGraph?: boolean, inputs?: Handle[] | null): void;
  grad(outs: Handle[], ins: Handle[], gradOuts: (Handle | null)[] | null, retainGraph: boolean | undefined, createGraph: boolean, allowUnused: boolean): (Handle | null)[];
  getGrad(t: Handle): Handle | null;
  setGrad(t: Handle, g: Handle | null): void;
  setRequiresGrad(t: Handle, b: boolean): void;
  requiresGrad(t: Handle): boolean;
  isLeaf(t: Handle): boolean;
  retainGrad(t: Handle): void;
  gradFnName(t: Handle): string | null;
  setGradEnabled(b: boolean): boolean;
  isGradEnabled(): boolean;
  optimCreate(kind: string, groups: { params: Handle[]; [k: string]: unknown }[], defaults: Record<string, unknown>): Handle;
  optimStep(o: Handle): void;
  optimZeroGrad(o: Handle, setToNone: boolean): void;
  optimSetLr(o: Handle, lr: number, group?: number): void;
  optimGetLr(o: Handle): number[];
  optimSave(o: Handle): Buffer;
  optimLoad(o: Handle, b: Buffer): void;
  jitLoad(path: string): Handle;
  jitCallMethod(m: Handle, name: string, inputs: unknown[]): unknown;
  jitNamedParameters(m: Handle): [string, Handle][];
  jitNamedBuffers(m: Handle): [string, Handle][];
  jitNamedModules(m: Handle): [string, string][];
  jitSubmodule(m: Handle, path: string): Handle;
  jitSetTraining(m: Handle, b: boolean): void;
  jitIsTraining(m: Handle): boolean;
  jitMethodNames(m: Handle): string[];
  /** forward() returning [its output, ...outputs of the submodules at `paths`] (native/jit.cc). */
  jitWithSubmoduleOutputs(m: Handle, paths: string[]): Handle;
  jitRunWithSubmoduleOutputs(f: Handle, inputs: unknown[]): unknown;
  // c10d (native/distributed.cc). Every collective blocks until done; a dead peer or a timeout throws.
  /** TCP rendezvous store; the master listens on `port` (0: any free port, see distStorePort). */
  distStoreCreate(host: string, port: number, worldSize: number, isMaster: boolean, timeoutMs: number): Handle;
  distStorePort(store: Handle): number;
  /** A Gloo process group; its device binds to `iface` (a network interface) or `hostname` (an address), else the host name's address. */
  distGroupCreate(store: Handle, rank: number, size: number, where: { iface?: string; hostname?: string }, timeoutMs: number): Handle;
  distGroupDestroy(pg: Handle): void;
  /** In place over contiguous tensors; several tensors go as one coalesced exchange. */
  distAllreduce(pg: Handle, ts: Handle[], op: 'sum' | 'avg' | 'max' | 'min' | 'product'): void;
  distBroadcast(pg: Handle, ts: Handle[], root: number): void;
  /** One tensor per rank, each shaped like `t`. */
  distAllgather(pg: Handle, t: Handle): Handle[];
  distBarrier(pg: Handle): void;
  /**
   * DDP's gradient reducer: autograd hooks on `params` start each bucket's all-reduce (buckets of
   * indices into `params`, started in bucket order) as soon as backward has its gradients.
   */
  distReducerCreate(pg: Handle, params: Handle[], buckets: number[][]): Handle;
  /** Arms the hooks for the next backward from `roots`; this rank's gradients count `weight` times. */
  distReducerPrepare(r: Handle, weight: number, roots: Handle[]): void;
  /** Starts the remaining buckets, waits for all, writes the sums; returns the buckets started before this call. */
  distReducerFinalize(r: Handle): number;
  distReducerDestroy(r: Handle): void;
  /** Linux: have the kernel send `signal` when the parent process dies; false elsewhere. */
  setParentDeathSignal(signal: number): boolean;
  // libtorch's autograd profiler (native/profiler.cc), on the calling thread.
  profilerStart(): void;
  /** Operators by name in first-seen order (microseconds), and the span from the first event to the last. */
  profilerStop(): { ops: { name: string; calls: number; selfUs: number; totalUs: number }[]; spanUs: number };
}

/** The package root: where package.json and build/ live (dist/src/tensor -> three levels up). */
export const packageRoot = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    dir = resolve(dir, '..');
  }
  throw new Error('kdistill: cannot find the package root (binding.gyp) above ' + fileURLToPath(import.meta.url));
})();

function load(): NativeAddon {
  const path = join(packageRoot, 'build', 'Release', 'kdistill.node');
  if (!existsSync(path)) {
    throw new Error(
      `kdistill: the native addon is not built (${path} is missing): ` +
        `install libtorch (Debian: apt-get install libtorch-dev libopenblas0-pthread, or set LIBTORCH=/path/to/libtorch) ` +
        `and run \`npm install\` (or \`npm rebuild kdistill\`).`,
    );
  }
  // OpenBLAS reads OPENBLAS_NUM_THREADS once, when it loads with the addon: set it first. Its own
  // thread pool and libtorch's OpenMP threads oversubscribe the cores otherwise (measured on 2
  // cores, bench/engine.ts --sweep: MLP step 2.2 ms with 1 BLAS thread vs 10-16 ms with 2, at 2
  // libtorch threads). libtorch parallelises around its BLAS calls itself, so 1 costs little at 1
  // thread. A value the user set (even empty, which OpenBLAS treats as unset) is kept.
  if (process.env.OPENBLAS_NUM_THREADS === undefined) process.env.OPENBLAS_NUM_THREADS = '1';
  try {
    return createRequire(import.meta.url)(path) as NativeAddon;
  } catch (e) {
    // e.g. libtorch moved or upgraded since the build, or an addon built for another Node.
    throw new Error(`kdistill: cannot load the native addon ${path} (${(e as Error).message.split('\n')[0]}): rebuild it with \`npm rebuild kdistill\` (or \`npm install\` in the kdistill folder) against the installed libtorch`, { cause: e });
  }
}

export const native: NativeAddon = load();

export interface NativeMemory {
  /** Bytes handed out and not freed: the C heap (all arenas) plus tensor buffers. -1 if unknown. */
  allocated: number;
  /** Bytes held from the OS: `allocated`, the C heap's free space, and cached tensor buffers. -1 if unknown. */
  reserved: number;
  /** Tensor buffers of 64 KiB and more in use (their own page mappings). */
  tensorInUse: number;
  /** Freed tensor buffers kept for reuse (up to 512 MiB or the peak in use, whichever is more; KDISTILL_TENSOR_CACHE_MB fixes the bound). */
  tensorCached: number;
}
