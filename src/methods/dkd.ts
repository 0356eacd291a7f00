// Decoupled KD (Zhao et al., CVPR 2022): KD's KL split into target-class (TCKD) and non-target
// (NCKD) terms, weighted α and β, with a linear warm-up as in the authors' code (mdistiller).
// `standardize` z-scores both logits per sample first (Sun et al., CVPR 2024, whose code applies
// it inside dkd_loss, before the temperature).
import { crossEntropy } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import { dkdTerms } from '../losses/dkd.js';
import { maybeStandardize } from '../losses/standardize.js';
import { STANDARDIZE } from './kd.js';
import { defineMethod, requireLabels, requireTeacherLogits } from './method.js';
import { int, num } from './params.js';

/**
 * Warm-up factor of the distillation terms in 0-based epoch e: min((e+1)/warmup, 1). mdistiller
 * counts epochs from 1 and uses min(epoch/warmup, 1), so the first epoch already gets 1/warmup
 * and epoch index warmup−1 reaches full weight; warmup 0 disables it.
 */
export function dkdWarmup(epoch: number, warmup: number): number {
  return warmup <= 0 ? 1 : Math.min((epoch + 1) / warmup, 1);
}

export const dkd = defineMethod({
  name: 'dkd',
  summary: 'Decoupled KD: ceWeight·CE + w(e)·(alpha·TCKD + beta·NCKD), w(e) a linear warm-up over the first epochs; needs labels.',
  paper: 'Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge Distillation", CVPR 2022 (defaults from the authors\' mdistiller CIFAR-100 config)',
  needsTeacher: true,
  params: {
    alpha: num({ default: 1, unit: 'weight', min: 0, description: 'Weight α of TCKD (target vs non-target binary KL)' }),
    beta: num({ default: 8, unit: 'weight', min: 0, description: 'Weight β of NCKD (KL among the non-target classes)' }),
    temperature: num({ default: 4, unit: 'temperature', min: 0.01, max: 100, description: 'Softmax temperature T of both terms (each scaled by T²)' }),
    warmup: int({ default: 20, unit: 'epochs', min: 0, description: 'Epochs of linear warm-up of TCKD and NCKD (0: none)' }),
    ceWeight: num({ default: 1, unit: 'weight', min: 0, was: 'ce_weight', description: 'Weight of the label cross-entropy' }),
    standardize: STANDARDIZE,
  },
  create({ alpha, beta, temperature: T, warmup, ceWeight, standardize }) {
    return {
      losses(ctx) {
        const y = requireLabels(ctx, 'dkd', 'TCKD and NCKD split the target class from the others; use kd for unlabeled data');
        const teacherLogits = requireTeacherLogits(ctx, 'dkd');
        return tidy(() => {
          const w = dkdWarmup(ctx.info.epoch, warmup);
          const { tckd, nckd } = dkdTerms(maybeStandardize(teacherLogits, standardize), maybeStandardize(ctx.studentLogits, standardize), y, T);
          return {
            ce: crossEntropy(ctx.studentLogits, y).mul(ceWeight),
            tckd: tckd.mul(w * alpha),
            nckd: nckd.mul(w * beta),
          };
        });
      },
    };
  },
});
