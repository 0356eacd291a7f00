// The `torch` namespace: what a PyTorch user would reach for, in camelCase. The package's `torch`
// (src/torch.ts) adds torch.optim: src/optim sits above src/tensor (docs/architecture.md).
import { native, type NativeMemory } from './native.js';
import * as factories from './factories.js';
import * as autograd from './autograd.js';
import * as functional from './functional.js';
import * as jit from './jit.js';
import { Generator, Tensor } from './tensor.js';
import { tidy, keep } from './scope.js';

/** Seeds the global generator (and so dropout, rand*, shuffles that use it). */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}
/** Intra-op threads used by libtorch kernels. */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setNumThreads: expected a positive integer, got ${n}`);
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}
/** The global generator's state (a uint8 tensor) and its restore, for exact resumption. */
export function getRngState(): Tensor {
  return new Tensor(native.getRngState(null));
}
export function setRngState(state: Tensor): void {
  native.setRngState(null, state.handle);
}
/**
 * Tensor handles created and not yet disposed. A training loop whose steps run inside tidy()
 * keeps this number flat. It is deterministic: garbage collection does not change it, so a
 * tensor that was forgotten (never disposed) stays counted, as the leak it is, even after the
 * collector reclaimed its memory.
 */
export function liveTensors(): number {
  return native.liveTensors();
}
/**
 * Tensor handles still holding native memory: not disposed and not yet garbage-collected (the
 * collector frees forgotten tensors as a safety net, during collection).
 */
export function heldTensors(): number {
  return native.heldTensors();
}
/**
 * The process's native memory: `allocated` bytes handed out and not freed (C heap and tensor
 * buffers), `reserved` bytes held from the OS. A leak raises `allocated`; resident memory (RSS)
 * is a poorer signal because freed memory is kept for reuse. -1 where unknown (non-glibc).
 */
export function nativeMemory(): NativeMemory {
  return native.nativeMemory();
}
/**
 * Returns the tensor allocator's cached free buffers to the OS (as `torch.cuda.empty_cache`
 * does for GPU memory): for after a large phase whose buffer sizes will not come back.
 */
export function emptyCache(): void {
  native.emptyCache();
}
export function dispose(...ts: (Tensor | Tensor[] | null | undefined)[]): void {
  for (const t of ts.flat()) t?.dispose();
}

export const torch = {
  ...factories,
  Tensor,
  Generator,
  noGrad: autograd.noGrad,
  enableGrad: autograd.enableGrad,
  setGradEnabled: autograd.setGradEnabled,
  isGradEnabled: autograd.isGradEnabled,
  autograd: { grad: autograd.grad, backward: autograd.backward },
  nn: { functional },
  jit: { load: jit.load },
  tidy,
  keep,
  dispose,
  liveTensors,
  heldTensors,
  nativeMemory,
  emptyCache,
  manualSeed,
  setNumThreads,
  getNumThreads,
  getRngState,
  setRngState,
  version: native.torchVersion,
};
