// Similarity-preserving KD (Tung & Mori, ICCV 2019): inputs that the teacher represents alike
// should be represented alike by the student. Per layer pair, on features flattened to [b, ·]:
//   G = f·fᵀ [b, b],  Ĝ = G with each row L2-normalised (F.normalize, ε = 1e-12),
//   sp = Σ_pairs ‖Ĝ_T − Ĝ_S‖²_F / b²,
// as in RepDistiller's distiller_zoo/SP.py ("verified by original author"), whose runs use the
// last stage's output (feat[-2]) and beta = 3000; loss = beta·sp + CE (+ KD). The widths of the
// two networks need not match: only b×b matrices are compared.
import { normalize } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { sumOf } from './fitnet.js';
import { defineMethod } from './method.js';
import { num } from './params.js';
import { flat, Layers, repdistillerKdParams, representationMethod, stagePairsParam } from './representation.js';

/** ‖Ĝ_T − Ĝ_S‖²_F / b² for one layer pair. */
export function spLoss(fs: Tensor, ft: Tensor): Tensor {
  const b = fs.shape[0]!;
  if (ft.shape[0] !== b) throw new RangeError(`sp: student features [${fs.shape.join(', ')}] and teacher features [${ft.shape.join(', ')}] have different batch sizes`);
  return tidy(() => {
    const gram = (f: Tensor): Tensor => { const x = flat(f); return normalize(x.mm(x.t())); };
    return gram(ft).sub(gram(fs)).square().sum().div(b * b);
  });
}

export const sp = defineMethod({
  name: 'sp',
  summary: 'Similarity-preserving KD: beta·Σ_pairs ‖row-normalised batch Gram matrix of the teacher − the student\'s‖²_F / b², on stage outputs of any shape (default: each network\'s last stage); ' +
    'plus (1−alpha)·CE and alpha·KD.',
  paper: 'Tung, Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019 (loss and beta = 3000 of RepDistiller\'s SP.py and CIFAR-100 script)',
  differs: 'none from RepDistiller\'s loss; for WRN the default layer is the last stage after its final BN+ReLU (featureNames\' last), where RepDistiller takes block3\'s output',
  needsTeacher: true,
  params: {
    ...stagePairsParam('the last stage output of each zoo model (featureNames\' last), as RepDistiller does'),
    beta: num({ default: 3000, unit: 'weight', min: 0, description: 'Weight of the SP term (RepDistiller\'s CIFAR-100 script: 3000)' }),
    ...repdistillerKdParams('SP'),
  },
  create(p) {
    return representationMethod({
      layers: new Layers('sp', p.pairs, 'any', (s, t) => [{ student: s.featureNames.at(-1)!, teacher: t.featureNames.at(-1)! }]), kd: p,
      terms: (_, fs) => ({ sp: sumOf(fs.map(({ s, t }) => spLoss(s, t))).mul(p.beta) }),
    });
  },
});
