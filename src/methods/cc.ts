// Correlation Congruence (Peng et al., ICCV 2019): beyond matching each sample, the student
// matches the correlations between samples. Both networks' embeddings pass through trainable
// linear heads to featDim (RepDistiller's LinearEmbed, one per network, the teacher's trained too),
// giving e_S, e_T [b, featDim]. Two kernels:
//  - repdistiller (default): the code the authors shared with RepDistiller (distiller_zoo/CC.py),
//      Δ = |e_S − e_T|,  cc = mean_{i<b} Σ_k Δ_ik·Δ_(i+1)k   (consecutive samples), beta = 0.02;
//  - gaussian: the paper's Gaussian RBF kernel by its P-th order Taylor expansion on L2-normalised
//      embeddings (k(x, y) = exp(−γ‖x − y‖²) = e^{−2γ}·exp(2γ x·y) for unit vectors):
//      ψ = Σ_{p=0..P} e^{−2γ}(2γ)^p/p!·(ê êᵀ)^p (elementwise powers),  cc = ‖ψ_S − ψ_T‖²_F / b²,
//      with the paper's γ = 0.4, P = 2.
// loss = beta·cc + CE (+ KD).
import { normalize } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { defineMethod } from './method.js';
import { choice, int, num } from './params.js';
import { EmbedHead, embeddingLayers, embeddingParams, repdistillerKdParams, representationMethod, sizeOf } from './representation.js';

export const CC_KERNELS = ['repdistiller', 'gaussian'] as const;
export type CcKernel = (typeof CC_KERNELS)[number];

/** The P-th order Taylor expansion of the Gaussian RBF correlation of the rows of e [b, d]. */
function gaussianCorrelation(e: Tensor, gamma: number, order: number): Tensor {
  const x = normalize(e);
  const sim = x.mm(x.t());
  let acc = sim.mul(0).add(Math.exp(-2 * gamma)), power = sim, factorial = 1;
  for (let p = 1; p <= order; p++) {
    factorial *= p;
    acc = acc.add(power.mul(Math.exp(-2 * gamma) * (2 * gamma) ** p / factorial));
    power = power.mul(sim);
  }
  return acc;
}

/** The CC term on embedded features es, et [b, featDim]. */
export function ccLoss(es: Tensor, et: Tensor, kernel: CcKernel, gamma = 0.4, order = 2): Tensor {
  if (es.shape.length !== 2 || et.shape.length !== 2 || es.shape[0] !== et.shape[0] || (kernel === 'repdistiller' && es.shape[1] !== et.shape[1])) {
    throw new RangeError(`cc: embeddings must be [b, d] with the same b${kernel === 'repdistiller' ? ' and d' : ''}, got [${es.shape.join(', ')}] and [${et.shape.join(', ')}]`);
  }
  if (es.shape[0]! < 2) throw new RangeError(`cc: needs at least 2 samples in a batch, got ${es.shape[0]}`);
  return tidy(() => {
    if (kernel === 'gaussian') return gaussianCorrelation(es, gamma, order).sub(gaussianCorrelation(et, gamma, order)).square().mean();
    const b = es.shape[0]!;
    const delta = es.sub(et).abs();
    return delta.narrow(0, 0, b - 1).mul(delta.narrow(0, 1, b - 1)).sum({ dim: 1 }).mean();
  });
}

export const cc = defineMethod({
  name: 'cc',
  summary: 'Correlation congruence: beta·cc between student and teacher embeddings through trainable linear heads (featDim); kernel repdistiller (the authors\' shared code) ' +
    'or gaussian (the paper\'s Taylor-expanded RBF correlation matrices, ‖ψ_S − ψ_T‖²/b²); plus (1−alpha)·CE and alpha·KD.',
  paper: 'Peng, Jin, Liu, Li, Wu, Liu, Zhou, Zhang, "Correlation Congruence for Knowledge Distillation", ICCV 2019 (default: the authors\' code as shared in RepDistiller\'s CC.py, beta = 0.02)',
  differs: 'the default kernel is the authors\' shared code (RepDistiller CC.py), which is not the paper\'s Gaussian RBF; kernel: gaussian is the paper\'s P-order Taylor expansion (γ = 0.4, P = 2) on L2-normalised embeddings, whose beta the paper\'s CIFAR setting does not fix',
  needsTeacher: true,
  params: {
    ...embeddingParams('embedding'),
    featDim: int({ default: 128, min: 1, description: 'Width of both linear embedding heads (RepDistiller: 128)' }),
    kernel: choice(CC_KERNELS, { default: 'repdistiller', description: 'repdistiller: Σ of products of |e_S − e_T| over consecutive samples (authors\' shared code); gaussian: Taylor-expanded RBF correlation matrices (paper)' }),
    gamma: num({ default: 0.4, min: 0, description: 'γ of the Gaussian kernel exp(−γ‖x − y‖²) (paper: 0.4; kernel gaussian only)' }),
    order: int({ default: 2, min: 0, max: 10, description: 'Order P of the Taylor expansion (paper: 2; kernel gaussian only)' }),
    beta: num({ default: 0.02, unit: 'weight', min: 0, description: 'Weight of the CC term (RepDistiller\'s CIFAR-100 script: 0.02)' }),
    ...repdistillerKdParams('CC'),
  },
  create(p) {
    const layers = embeddingLayers('cc', p);
    let heads: EmbedHead[] = [];
    return representationMethod({
      layers, kd: p,
      build() { heads = [layers.shapes.student[0]!, layers.shapes.teacher[0]!].map((s) => new EmbedHead(sizeOf(s), p.featDim, false)); },
      extras: () => heads,
      terms: (_, [f]) => ({ cc: ccLoss(heads[0]!.call(f!.s), heads[1]!.call(f!.t), p.kernel, p.gamma, p.order).mul(p.beta) }),
    });
  },
});
