// Contrastive Representation Distillation (Tian, Krishnan, Isola, ICLR 2020): the student's
// embedding of a sample should be recognisable, among many other samples, as the teacher's
// embedding of the same sample. As in the authors' code (HobbitLong/RepDistiller, crd/):
//   heads:  v_S = l2norm(W_S·f_S + b_S), v_T = l2norm(W_T·f_T + b_T)      [b, featDim], both trained
//   memory: one bank per network, M_S, M_T [N, featDim] over the transfer set's N rows, initialised
//           uniform in ±1/√(featDim/3); for row i of the batch, idx_i = (its dataset index, K negatives)
//   scores: out_T[i, k] = exp(M_S[idx_ik]·v_T,i / τ) / Z_T,  out_S[i, k] = exp(M_T[idx_ik]·v_S,i / τ) / Z_S
//           (each network's embedding against the other's bank); Z = N·mean(exp(·/τ)) fixed on the
//           first batch and kept. The dot products are those of the authors' code, computed as
//           v·Mᵀ picked at idx unless the bank is much larger than K (see CrdScoring)
//   NCE:    with m = K, P_n = 1/N, ε = 1e-7:
//           h(x) = −[Σ_i log(x_i0 / (x_i0 + m·P_n + ε)) + Σ_i Σ_{k≥1} log(m·P_n / (x_ik + m·P_n + ε))] / b
//           crd = h(out_S) + h(out_T)
//   update: after scoring, M_S[y] ← normalise(μ·M_S[y] + (1 − μ)·v_S), M_T likewise (μ = 0.5), no gradient
//   loss = beta·crd + CE (+ KD), beta = 0.8, K = 16384, τ = 0.07, featDim = 128.
// The negatives are drawn uniformly over the N rows (the memory's own sampler in the authors' code);
// their CIFAR loader instead draws them from other classes. `negatives: batch` replaces the bank by
// the batch itself, for transfer sets too large for one: symmetric InfoNCE over the b×b scores,
//   crd = CE(v_S·v_Tᵀ/τ, diag) + CE(v_T·v_Sᵀ/τ, diag).
import { Module } from '../nn/module.js';
import { crossEntropy } from '../tensor/functional.js';
import { arange, cat, randint, rand, tensor } from '../tensor/factories.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { callInPlace, type Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';
import { defineMethod } from './method.js';
import { choice, int, num } from './params.js';
import { EmbedHead, embeddingLayers, embeddingParams, repdistillerKdParams, representationMethod, sizeOf } from './representation.js';

const EPS = 1e-7;

/**
 * How the scores M[idx_ik]·v_i are computed; both give the same dot products.
 *  - gather: the authors' way: the K+1 rows of each sample gathered from the bank, [b, K+1, d]
 *    (0.5 GB per bank at b = 64, K = 16,384, d = 128 in float32), then a batched matrix-vector
 *    product; two passes over that copy, bound by memory bandwidth.
 *  - product: each embedding against the whole bank, v·Mᵀ [b, N] (one matrix product, b·N·d
 *    multiply-adds), and the K+1 wanted scores picked from it; one copy of the bank (N·d values,
 *    which its backward reads while the update changes the bank) instead of b·(K+1)·d.
 *  - auto: product while N ≤ 8·(K+1). Measured per bank, forward and backward, b = 64, d = 128,
 *    K = 16,384, one core (2026-12-06, under load average 26, so the times are inflated; their
 *    ratios are what counts): gather 1.46–1.70 s for N = 10k–200k, product (with its copy) 0.11 s
 *    at N = 10k, 0.31 s at 50k, 0.98 s at 200k; linear in N, it crosses the gather near
 *    N ≈ 20·(K+1), so up to 8·(K+1) the product is at least ~2.5× faster.
 */
export const CRD_SCORING = ['auto', 'gather', 'product'] as const;
export type CrdScoring = (typeof CRD_SCORING)[number];

/** The two memory banks and their normalisation constants (buffers: checkpointed with the student). */
export class ContrastMemory extends Module {
  readonly memoryS: Tensor;
  readonly memoryT: Tensor;
  /** [Z_S, Z_T]; −1 until the first batch sets them. */
  readonly z: Tensor;
  constructor(readonly size: number, readonly dim: number, readonly temperature: number, readonly momentum: number, dtype: DType = 'float32',
    readonly scoring: CrdScoring = 'auto') {
    super();
    const stdv = 1 / Math.sqrt(dim / 3);
    this.memoryS = this.registerBuffer('memory_s', rand([size, dim], { dtype }).mul(2 * stdv).sub(stdv));
    this.memoryT = this.registerBuffer('memory_t', rand([size, dim], { dtype }).mul(2 * stdv).sub(stdv));
    this.z = this.registerBuffer('z', tensor([-1, -1], { dtype }));
  }

  /** Whether score() computes v·Mᵀ (true) or gathers the bank's rows, for k1 = K+1 indices per sample (CrdScoring). */
  scoresByProduct(k1: number): boolean {
    return this.scoring === 'product' || (this.scoring === 'auto' && this.size <= 8 * k1);
  }

  /** No forward pass of its own: the memory is read and updated by score(). */
  forward(): Tensor {
    throw new Error('ContrastMemory: call score(vS, vT, rows, idx)');
  }

  /**
   * Scores of the student's and the teacher's embeddings vS, vT [b, d] against the other network's
   * bank at rows idx [b, K+1] (column 0: the batch's own rows `rows` [b]), then the momentum update
   * of both banks at `rows`. Returns [outS, outT], each [b, K+1].
   */
  score(vS: Tensor, vT: Tensor, rows: Tensor, idx: Tensor): [Tensor, Tensor] {
    const [b, d] = vS.shape as [number, number];
    if (d !== this.dim || vT.shape[1] !== d) throw new RangeError(`crd: embeddings must be [b, ${this.dim}], got [${vS.shape.join(', ')}] and [${vT.shape.join(', ')}]`);
    const k1 = idx.shape[1]!;
    const product = this.scoresByProduct(k1);
    const against = (bank: Tensor, v: Tensor): Tensor =>
      // The product's backward reads the bank, which the update below changes in place: it gets
      // a copy (N·d values, 1/b of the product's own reads).
      (product ? v.mm(bank.clone().t()).gather(1, idx) : bank.indexSelect(0, idx.reshape([-1])).reshape([b, k1, d]).bmm(v.reshape([b, d, 1])).reshape([b, k1]))
        .div(this.temperature).exp();
    let outS = against(this.memoryT, vS), outT = against(this.memoryS, vT);
    const z = this.z.toFloat64Array();
    if (z[0]! < 0 || z[1]! < 0) {
      // Set once, from the first batch, as the authors do: the partition function's estimate.
      noGrad(() => this.z.copy_(tensor([outS.mean().item() * this.size, outT.mean().item() * this.size], { dtype: this.z.dtype })));
    }
    const [zS, zT] = this.z.toFloat64Array();
    outS = outS.div(zS!);
    outT = outT.div(zT!);
    noGrad(() => tidy(() => {
      for (const [bank, v] of [[this.memoryS, vS], [this.memoryT, vT]] as const) {
        const pos = bank.indexSelect(0, rows).mul(this.momentum).add(v.detach().mul(1 - this.momentum));
        callInPlace('index_copy_', bank, 0, rows, pos.div(pos.square().sum({ dim: 1, keepdim: true }).sqrt()));
      }
    }));
    return [outS, outT];
  }
}

/** The NCE loss of the authors' ContrastLoss (eq. 18) on scores x [b, K+1], column 0 the positive. */
export function nceLoss(x: Tensor, datasetSize: number): Tensor {
  return tidy(() => {
    const [b, k1] = x.shape as [number, number];
    const mPn = (k1 - 1) / datasetSize;
    const pos = x.narrow(1, 0, 1), neg = x.narrow(1, 1, k1 - 1);
    const logD1 = pos.div(pos.add(mPn + EPS)).log();
    const logD0 = neg.add(mPn + EPS).reciprocal().mul(mPn).log();
    return logD1.sum().add(logD0.sum()).neg().div(b);
  });
}

/** Symmetric InfoNCE with the batch as negatives: CE(vS·vTᵀ/τ, i) + CE(vT·vSᵀ/τ, i). */
export function inBatchLoss(vS: Tensor, vT: Tensor, temperature: number): Tensor {
  return tidy(() => {
    const logits = vS.mm(vT.t()).div(temperature);
    const target = arange(vS.shape[0]!, undefined, 1, { dtype: 'int64' });
    return crossEntropy(logits, target).add(crossEntropy(logits.t(), target));
  });
}

export const CRD_NEGATIVES = ['memory', 'batch'] as const;

export const crd = defineMethod({
  name: 'crd',
  summary: 'Contrastive representation distillation: embedding heads (linear + L2 norm) on both networks, NCE of each against K negatives from a momentum memory bank of the other\'s ' +
    'embeddings over the transfer set (negatives: memory), or symmetric InfoNCE over the batch (negatives: batch); plus (1−alpha)·CE and alpha·KD.',
  paper: 'Tian, Krishnan, Isola, "Contrastive Representation Distillation", ICLR 2020 (arXiv:1910.10699; loss, memory and defaults of the authors\' code HobbitLong/RepDistiller crd/, beta = 0.8)',
  differs: 'negatives are drawn uniformly over the transfer set (the memory\'s own sampler in the authors\' code), not from other classes as their CIFAR loader does; negatives: batch is an in-batch InfoNCE variant, not in the paper',
  needsTeacher: true,
  params: {
    ...embeddingParams('embedding'),
    featDim: int({ default: 128, min: 1, description: 'Width of both embedding heads and of the memory (authors: 128)' }),
    negatives: choice(CRD_NEGATIVES, { default: 'memory', description: 'memory: K negatives per sample from memory banks of size N×featDim (needs dataset indices); batch: the other samples of the batch (no bank)' }),
    numNegatives: int({ default: 16384, min: 1, description: 'Negatives K per sample drawn from the memory (authors: 16384; with a bank over 8·(K+1) rows each step gathers b·(K+1)·featDim values per bank, ~1 GB each in float32 at b = 128, so smaller K suits a CPU there)' }),
    nceTemperature: num({ default: 0.07, unit: 'temperature', min: 1e-3, max: 10, description: 'Temperature τ of the scores exp(v·m/τ) (authors: 0.07)' }),
    momentum: num({ default: 0.5, min: 0, max: 1, description: 'Momentum μ of the memory update m ← normalise(μ·m + (1 − μ)·v) (authors: 0.5)' }),
    scoring: choice(CRD_SCORING, { default: 'auto', description: 'How the memory scores are computed, same values: gather (the authors\' way: the b·(K+1) rows copied out of the bank), product (v·Mᵀ against the whole bank, the K+1 picked), auto (product up to a bank of 8·(K+1) rows, where it is faster)' }),
    beta: num({ default: 0.8, unit: 'weight', min: 0, description: 'Weight of the CRD term (RepDistiller\'s CIFAR-100 script: 0.8)' }),
    ...repdistillerKdParams('CRD'),
  },
  create(p) {
    const layers = embeddingLayers('crd', p);
    let heads: EmbedHead[] = [];
    let memory: ContrastMemory | null = null;
    return representationMethod({
      layers, kd: p,
      build(ctx) {
        if (p.negatives === 'memory' && ctx.datasetSize === null) {
          throw new Error("method 'crd': the memory bank needs the transfer set's size, which this data source does not give; use negatives: batch");
        }
        heads = [layers.shapes.student[0]!, layers.shapes.teacher[0]!].map((s) => new EmbedHead(sizeOf(s), p.featDim, true));
        if (p.negatives === 'memory') memory = new ContrastMemory(ctx.datasetSize!, p.featDim, p.nceTemperature, p.momentum, 'float32', p.scoring);
      },
      extras: () => [...heads, ...(memory ? [memory] : [])],
      terms(ctx, [f]) {
        const vS = heads[0]!.call(f!.s), vT = heads[1]!.call(f!.t);
        if (!memory) return { crd: inBatchLoss(vS, vT, p.nceTemperature).mul(p.beta) };
        if (ctx.indices === null) throw new Error("method 'crd': the memory bank needs the batch's dataset indices, which this data source does not give; use negatives: batch");
        const rows = tensor(ctx.indices, { dtype: 'int64' });
        const idx = cat([rows.unsqueeze(1), randint(0, memory.size, [rows.shape[0]!, p.numNegatives])], 1);
        const [outS, outT] = memory.score(vS, vT, rows, idx);
        return { crd: nceLoss(outS, memory.size).add(nceLoss(outT, memory.size)).mul(p.beta) };
      },
    });
  },
});
