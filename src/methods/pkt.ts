// PKT, Probabilistic Knowledge Transfer (Passalis & Tefas, ECCV 2018): the student keeps the
// teacher's distribution of pairwise similarities in the batch, not the features themselves. As in
// the authors' code (passalis/probabilistic_kt, as RepDistiller's distiller_zoo/PKT.py has it), on
// embeddings f [b, d] of each network:
//   x_i = f_i / (‖f_i‖ + ε),  K = (x·xᵀ + 1)/2            (cosine kernel scaled to [0, 1])
//   P_ij = K_ij / Σ_j K_ij                                  (conditional distribution per row)
//   pkt  = mean_ij P^T_ij · log((P^T_ij + ε) / (P^S_ij + ε)),  ε = 1e-7
// (the mean over all b² entries, i.e. the batch-mean KL divided by b); loss = beta·pkt + CE (+ KD).
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { defineMethod } from './method.js';
import { num } from './params.js';
import { embeddingLayers, embeddingParams, flat, repdistillerKdParams, representationMethod } from './representation.js';

const EPS = 1e-7;

/** Row-normalised cosine-similarity kernel of the rows of f [b, …]. */
function conditional(f: Tensor): Tensor {
  const x = flat(f);
  const u = x.div(x.norm({ dim: 1, keepdim: true }).add(EPS));
  const k = u.mm(u.t()).add(1).div(2);
  return k.div(k.sum({ dim: 1, keepdim: true }));
}

/** The PKT divergence of the student's similarity distribution from the teacher's. */
export function pktLoss(fs: Tensor, ft: Tensor): Tensor {
  if (fs.shape[0] !== ft.shape[0]) throw new RangeError(`pkt: student features [${fs.shape.join(', ')}] and teacher features [${ft.shape.join(', ')}] have different batch sizes`);
  return tidy(() => {
    const ps = conditional(fs), pt = conditional(ft);
    return pt.mul(pt.add(EPS).div(ps.add(EPS)).log()).mean();
  });
}

export const pkt = defineMethod({
  name: 'pkt',
  summary: 'PKT: beta·KL between the teacher\'s and student\'s row-normalised cosine-similarity kernels over the batch, on penultimate embeddings (any width); plus (1−alpha)·CE and alpha·KD.',
  paper: 'Passalis, Tefas, "Learning Deep Representations with Probabilistic Knowledge Transfer", ECCV 2018 (loss of the authors\' code passalis/probabilistic_kt; beta = 30000 as in RepDistiller)',
  differs: 'none from the authors\' loss; the KL is averaged over all b² pairs as their code does, hence the large beta',
  needsTeacher: true,
  params: {
    ...embeddingParams('embedding'),
    beta: num({ default: 30000, unit: 'weight', min: 0, description: 'Weight of the PKT term (RepDistiller\'s CIFAR-100 script: 30000)' }),
    ...repdistillerKdParams('PKT'),
  },
  create(p) {
    return representationMethod({
      layers: embeddingLayers('pkt', p), kd: p,
      terms: (_, [f]) => ({ pkt: pktLoss(f!.s, f!.t).mul(p.beta) }),
    });
  },
});
