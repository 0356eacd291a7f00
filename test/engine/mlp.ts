// A plain MLP on raw parameter tensors (no nn layer), shared by the memory test, the
// repeatability test and bench/memory.ts.
import { torch, F, tidy, Tensor, Optimizer, SGD, Adam } from '../../src/index.js';

export interface Mlp {
  params: Tensor[];
  forward(x: Tensor, training?: boolean): Tensor;
}

/** sizes = [in, hidden..., out]; Kaiming-uniform-like init drawn from the global generator. */
export function makeMlp(sizes: number[], dropout = 0): Mlp {
  const params: Tensor[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const bound = 1 / Math.sqrt(sizes[i]!);
    params.push(torch.rand([sizes[i + 1]!, sizes[i]!]).mul_(2 * bound).add_(-bound).requiresGrad_().keep());
    params.push(torch.zeros([sizes[i + 1]!], { requiresGrad: true }).keep());
  }
  return {
    params,
    forward(x: Tensor, training = true): Tensor {
      let h = x;
      for (let i = 0; i < params.length; i += 2) {
        h = F.linear(h, params[i]!, params[i + 1]!);
        if (i + 2 < params.length) {
          h = F.relu(h);
          if (dropout > 0) h = F.dropout(h, dropout, training);
        }
      }
      return h;
    },
  };
}

export function makeOptimizer(kind: 'sgd' | 'adam', params: Tensor[]): Optimizer {
  return kind === 'sgd' ? new SGD(params, { lr: 0.05, momentum: 0.9 }) : new Adam(params, { lr: 1e-3 });
}

/** One training step inside tidy: every temporary is freed when it returns. */
export function trainStep(model: Mlp, opt: Optimizer, x: Tensor, y: Tensor): number {
  return tidy(() => {
    opt.zeroGrad();
    const loss = F.crossEntropy(model.forward(x), y);
    loss.backward();
    opt.step();
    return loss.item();
  });
}
