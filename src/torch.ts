// The package's `torch` namespace: src/tensor/torch.ts's tensor API plus torch.optim. They meet
// here, above both, because src/optim sits above src/tensor (docs/architecture.md).
import { torch as tensorTorch } from './tensor/torch.js';
import { SGD, Adam, AdamW, Optimizer } from './optim/optimizer.js';

export const torch = { ...tensorTorch, optim: { SGD, Adam, AdamW, Optimizer } };
