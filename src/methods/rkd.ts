// Relational KD (Park, Kim, Lu, Cho, CVPR 2019): the student keeps the geometry of the teacher's
// embeddings in the batch (pairwise distances and angles of triples), not the embeddings
// themselves. As in the authors' code (lenscloth/RKD; RepDistiller's distiller_zoo/RKD.py), on
// embeddings flattened to [b, d]:
//   D_ij = sqrt(max(‖e_i‖² + ‖e_j‖² − 2 e_i·e_j, 1e-12)), D_ii = 0,  D̂ = D / mean{D_ij > 0}
//   distance = huber(D̂_S, D̂_T)                          (smooth L1, δ = 1, mean over b² pairs)
//   A_ijk = ⟨(e_j − e_i)/‖e_j − e_i‖, (e_k − e_i)/‖e_k − e_i‖⟩   (F.normalize, ε = 1e-12)
//   angle = huber(A_S, A_T)                               (mean over b³ triples)
//   loss  = 25·distance + 50·angle + CE (+ KD); the teacher's side carries no gradient.
import { normalize, smoothL1Loss } from '../tensor/functional.js';
import { eye } from '../tensor/factories.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { defineMethod } from './method.js';
import { num } from './params.js';
import { embeddingLayers, embeddingParams, flat, repdistillerKdParams, representationMethod } from './representation.js';

/** Pairwise Euclidean distances divided by their mean over the non-zero ones. */
function distances(e: Tensor): Tensor {
  const sq = e.square().sum({ dim: 1 });
  const d = sq.unsqueeze(1).add(sq.unsqueeze(0)).sub(e.mm(e.t()).mul(2)).clampMin(1e-12).sqrt()
    .mul(eye(e.shape[0]!, undefined, { dtype: e.dtype }).neg().add(1));
  // d ≥ 0, so the sum over the positive entries is the sum over all of them
  const positive = d.gt(0).sum().item();
  return d.div(d.sum().div(positive));
}

/** Cosines of the angles at e_i between e_j and e_k, [b·b·b]. */
function angles(e: Tensor): Tensor {
  const u = normalize(e.unsqueeze(0).sub(e.unsqueeze(1)), 2, 2);
  return u.bmm(u.transpose(1, 2)).reshape([-1]);
}

/** The two RKD terms, unweighted. */
export function rkdLosses(fs: Tensor, ft: Tensor): { distance: Tensor; angle: Tensor } {
  if (fs.shape[0] !== ft.shape[0]) throw new RangeError(`rkd: student features [${fs.shape.join(', ')}] and teacher features [${ft.shape.join(', ')}] have different batch sizes`);
  if (fs.shape[0]! < 2) throw new RangeError(`rkd: needs at least 2 samples in a batch for pairwise distances, got ${fs.shape[0]}`);
  return tidy(() => {
    const s = flat(fs), t = flat(ft).detach();
    return { distance: smoothL1Loss(distances(s), distances(t)), angle: smoothL1Loss(angles(s), angles(t)) };
  });
}

export const rkd = defineMethod({
  name: 'rkd',
  summary: 'Relational KD: distanceWeight·Huber(normalised pairwise distances) + angleWeight·Huber(cosines of triple angles) between student and teacher embeddings in the batch; ' +
    'plus (1−alpha)·CE and alpha·KD.',
  paper: 'Park, Kim, Lu, Cho, "Relational Knowledge Distillation", CVPR 2019 (arXiv:1904.05068; loss and weights 25 / 50 of the authors\' code as RepDistiller\'s RKD.py has it)',
  differs: 'none from the authors\' loss',
  needsTeacher: true,
  params: {
    ...embeddingParams('embedding'),
    distanceWeight: num({ default: 25, unit: 'weight', min: 0, description: 'Weight of the distance-wise term (authors: 25)' }),
    angleWeight: num({ default: 50, unit: 'weight', min: 0, description: 'Weight of the angle-wise term (authors: 50)' }),
    ...repdistillerKdParams('RKD'),
  },
  create(p) {
    return representationMethod({
      layers: embeddingLayers('rkd', p), kd: p,
      terms(_, [f]) {
        const { distance, angle } = rkdLosses(f!.s, f!.t);
        return { distance: distance.mul(p.distanceWeight), angle: angle.mul(p.angleWeight) };
      },
    });
  },
});
