// Losses on intermediate representations: FitNets hints and attention transfer. Pure functions of
// feature tensors; connectors (the learnable maps from student to teacher width) live in the
// methods that own them (src/methods/fitnet.ts).
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { adaptiveAvgPool2d, cosineSimilarity, l1Loss, mseLoss, normalize } from '../tensor/functional.js';

export const HINT_LOSSES = ['mse', 'l1', 'cosine', 'half_sse'] as const;
export type HintLoss = (typeof HINT_LOSSES)[number];

function checkSameShape(name: string, s: Tensor, t: Tensor): void {
  if (s.shape.join() !== t.shape.join()) {
    throw new RangeError(`${name}: student and teacher features differ in shape: [${s.shape.join(', ')}] vs [${t.shape.join(', ')}] (a connector must map one onto the other)`);
  }
}

/**
 * FitNets hint loss (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015) between the
 * (connected) student feature and the teacher feature of the same shape [N, ...]:
 *   mse:    mean over all elements of (s − t)²      (F.mse_loss; RepDistiller's HintLoss)
 *   l1:     mean over all elements of |s − t|
 *   cosine: mean over the batch of 1 − cos(s_i, t_i), each sample flattened to one vector
 *   half_sse: mean over the batch of ½‖s_i − t_i‖², each sample's squared error summed over all
 *             its elements: the paper's L_HT = ½‖u_h − r(v_g)‖² (eq. 3) averaged over the batch,
 *             as the authors' HintCost does for flattened hints (0.5·Σ over features, mean over
 *             the batch; on bc01 maps their code sums over channels only and also averages over
 *             positions, H·W times smaller — we follow the paper's norm over the whole hint)
 * The teacher feature is a target: it is detached here so no gradient reaches the teacher.
 */
export function hintLoss(student: Tensor, teacher: Tensor, kind: HintLoss = 'mse'): Tensor {
  checkSameShape('hintLoss', student, teacher);
  return tidy(() => {
    const t = teacher.detach();
    switch (kind) {
      case 'mse': return mseLoss(student, t);
      case 'l1': return l1Loss(student, t);
      case 'cosine': return cosineSimilarity(student.flatten(1), t.flatten(1), 1, 1e-8).neg().add(1).mean();
      case 'half_sse': return student.sub(t).pow(2).flatten(1).sum({ dim: 1 }).mean().mul(0.5);
      default: throw new RangeError(`hintLoss: unknown loss '${String(kind)}' (known: ${HINT_LOSSES.join(', ')})`);
    }
  });
}

/**
 * Spatial attention map of a feature map [N, C, H, W] (Zagoruyko & Komodakis, "Paying More
 * Attention to Attention", ICLR 2017, eq. 2 with F = mean over channels of |A|^p):
 *   at(A) = normalize_2( mean_c A_c^p  flattened to [N, H·W] )
 * p = 2 by default, as in the paper's experiments and the authors' code. The power is applied to
 * A itself (not |A|), as the authors' code does; for even p and post-ReLU maps it is the same.
 */
export function attentionMap(f: Tensor, p = 2): Tensor {
  if (f.ndim !== 4) throw new RangeError(`attentionMap: expected a feature map [N, C, H, W], got [${f.shape.join(', ')}]`);
  return tidy(() => normalize(f.pow(p).mean({ dim: 1 }).flatten(1), 2, 1, 1e-12));
}

/**
 * Attention-transfer loss for one layer pair, as in the authors' code (szagoruyko/attention-transfer
 * utils.at_loss, also RepDistiller's Attention):
 *   loss = mean_{n, j} (at(S)_{n,j} − at(T)_{n,j})²
 * i.e. the squared L2 distance of the normalised maps, averaged over the batch and divided by H·W.
 * When the spatial sizes differ, the larger map is average-pooled to the smaller (RepDistiller).
 * The weight multiplies the sum over pairs, and the methods apply it, not this function: β = 1000
 * in the authors' code (cifar.py and imagenet.py: opt.beta * sum(at_losses), run with --beta 1e+3)
 * and RepDistiller. The paper's eq. 2 writes β/2 · Σ_j ‖·‖_2 with β = 10³/(H·W·batch), half that.
 */
export function attentionLoss(student: Tensor, teacher: Tensor, p = 2): Tensor {
  if (student.ndim !== 4 || teacher.ndim !== 4) {
    throw new RangeError(`attentionLoss: expected feature maps [N, C, H, W], got [${student.shape.join(', ')}] and [${teacher.shape.join(', ')}]`);
  }
  if (student.shape[0] !== teacher.shape[0]) throw new RangeError(`attentionLoss: batch sizes differ (${student.shape[0]} vs ${teacher.shape[0]})`);
  return tidy(() => {
    let s = student, t = teacher.detach();
    const [sh, sw] = [s.shape[2]!, s.shape[3]!], [th, tw] = [t.shape[2]!, t.shape[3]!];
    if (sh * sw > th * tw) s = adaptiveAvgPool2d(s, [th, tw]);
    else if (sh * sw < th * tw) t = adaptiveAvgPool2d(t, [sh, sw]);
    return attentionMap(s, p).sub(attentionMap(t, p)).pow(2).mean();
  });
}
