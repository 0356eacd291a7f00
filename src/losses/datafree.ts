// Losses of data-free distillation: the teacher alone shapes a transfer set, through a generator
// (DAFL) or by optimising the inputs themselves (DeepInversion).
//
// DAFL (Chen et al., "Data-Free Learning of Student Networks", ICCV 2019; authors' code
// huawei-noah/Efficient-Computing, Data-Efficient-Model-Compression/DAFL/DAFL-train.py), on the
// teacher's logits z [B, C] and features f [B, D] of generated images:
//   oneHot      = CE(z, argmax z)                           (outputs should look like one-hot)
//   activation  = −mean |f|                                 (paper: −‖f‖₁/B; the code takes the mean over B·D)
//   entropy     = Σ_c p̄_c · log10 p̄_c,  p̄ = mean_b softmax(z_b)   (= −H(p̄) in decimal digits: classes balanced)
//
// DeepInversion (Yin et al., "Dreaming to Distill", CVPR 2020; authors' code NVlabs/DeepInversion,
// cifar10/deepinversion_cifar10.py and deepinversion.py), on an input x [B, C, H, W]:
//   bnStatistics(a; μ, σ²) = ‖σ² − var(a)‖₂ + ‖μ − mean(a)‖₂  for the input a of a batch-norm layer,
//                            mean/biased variance per channel over (B, H, W) (DeepInversionFeatureHook)
//   tvL2 = Σ_{d ∈ 4 neighbour offsets} ‖x − shift_d(x)‖₂  (Frobenius norm of each difference image)
//   tvL1 = Σ_d mean |x − shift_d(x)|                       (get_image_prior_losses; 0-weighted for CIFAR)
//   l2   = ‖x‖₂ over the whole batch (the CIFAR script: torch.norm(inputs_jit, 2))
//   competition(s, t) = 1 − clamp(JS(P_s ‖ P_t), 0, 1) at T = 3, with P = clamp(softmax(·/T), 0.01, 0.99)
//                     (Adaptive DeepInversion: images on which student and teacher disagree)
import { crossEntropy, klDiv } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

/** DAFL's one-hot loss: cross-entropy of the logits against their own arg-max. */
export function oneHotLoss(logits: Tensor): Tensor {
  return tidy(() => crossEntropy(logits, logits.argmax({ dim: 1 })));
}

/** DAFL's activation loss: −mean |f| (the authors' code; the paper writes −‖f‖₁ per sample). */
export function activationLoss(features: Tensor): Tensor {
  return tidy(() => features.abs().mean().neg());
}

/**
 * DAFL's information-entropy loss Σ p̄·log10 p̄ of the batch-mean softmax (minimised: the
 * generator covers the classes evenly). log10 as the authors' code (the paper: −H with ln, so
 * the code's ie weight is in decimal digits).
 */
export function informationEntropyLoss(logits: Tensor): Tensor {
  return tidy(() => {
    const p = logits.softmax(1).mean({ dim: 0 });
    return p.mul(p.log().div(Math.LN10)).sum();
  });
}

/**
 * DeepInversion's feature-distribution term for one batch-norm layer: ‖σ² − var‖₂ + ‖μ − mean‖₂,
 * with the per-channel mean and biased variance of its input a [B, C, ...] and its running
 * statistics μ, σ² (constants).
 */
export function bnStatisticsLoss(a: Tensor, runningMean: Tensor, runningVar: Tensor): Tensor {
  return tidy(() => {
    const c = a.shape[1]!;
    // [B, C, ...] → [C, B·…]: one row per channel, as the authors' permute + view.
    const rows = a.transpose(0, 1).reshape([c, -1]);
    const mean = rows.mean({ dim: 1 });
    const v = rows.var({ dim: 1, correction: 0 });
    return runningVar.detach().sub(v).norm().add(runningMean.detach().sub(mean).norm());
  });
}

/** The four neighbour differences of an image batch [B, C, H, W]: right, down, and both diagonals. */
function neighbourDiffs(x: Tensor): Tensor[] {
  const [, , h, w] = x.shape as [number, number, number, number];
  const s = (t: Tensor, r0: number, r1: number, c0: number, c1: number): Tensor => t.slice(2, r0, h - r1).slice(3, c0, w - c1);
  return [
    s(x, 0, 0, 0, 1).sub(s(x, 0, 0, 1, 0)),
    s(x, 0, 1, 0, 0).sub(s(x, 1, 0, 0, 0)),
    s(x, 1, 0, 0, 1).sub(s(x, 0, 1, 1, 0)),
    s(x, 0, 1, 0, 1).sub(s(x, 1, 0, 1, 0)),
  ];
}

/** DeepInversion's total-variation prior, ℓ2 form: the sum of the Frobenius norms of the four difference images. */
export function tvL2(x: Tensor): Tensor {
  return tidy(() => neighbourDiffs(x).map((d) => d.norm()).reduce((a, b) => a.add(b)));
}

/** DeepInversion's total-variation prior, ℓ1 form: the sum of the mean absolute differences. */
export function tvL1(x: Tensor): Tensor {
  return tidy(() => neighbourDiffs(x).map((d) => d.abs().mean()).reduce((a, b) => a.add(b)));
}

/** DeepInversion's ℓ2 prior on the images: the norm of the whole batch (its CIFAR script). */
export function imageL2(x: Tensor): Tensor {
  return x.norm();
}

/**
 * Adaptive DeepInversion's competition term 1 − clamp(JS, 0, 1) between student and teacher
 * softmax(·/T), each probability clamped to [0.01, 0.99] as the authors' code (which takes the KL
 * terms with `batchmean`). Minimising it drives the images towards student–teacher disagreement.
 */
export function competitionLoss(studentLogits: Tensor, teacherLogits: Tensor, T = 3): Tensor {
  return tidy(() => {
    const P = studentLogits.div(T).softmax(1), Q = teacherLogits.div(T).softmax(1);
    const M = P.add(Q).mul(0.5).clamp(0.01, 0.99);
    const js = klDiv(P.clamp(0.01, 0.99).log(), M, { reduction: 'batchmean' }).add(klDiv(Q.clamp(0.01, 0.99).log(), M, { reduction: 'batchmean' })).mul(0.5);
    return js.clamp(0, 1).neg().add(1);
  });
}
