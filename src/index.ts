// kdistill: knowledge distillation for TypeScript on libtorch.
export { torch, manualSeed, setNumThreads, getNumThreads } from './tensor/torch.js';
export { Tensor, Generator, call } from './tensor/tensor.js';
export type { DType } from './tensor/dtype.js';
export * as F from './tensor/functional.js';
export { tidy, keep } from './tensor/scope.js';
export { ScriptModule } from './tensor/jit.js';
export { SGD, Adam, AdamW, Optimizer } from './optim/optimizer.js';
