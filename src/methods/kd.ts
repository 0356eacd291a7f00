// Knowledge distillation (Hinton, Vinyals, Dean 2015): soft teacher targets at temperature T plus
// a small weight on the hard labels. With `standardize` both logits are z-scored per sample first
// (Sun et al., CVPR 2024; src/losses/standardize.ts).
import { crossEntropy } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { agreement, MEASURES, type Measure } from '../losses/agreement.js';
import { maybeStandardize } from '../losses/standardize.js';
import { defineMethod, requireTeacherLogits, type LossContext } from './method.js';
import { bool, choice, num } from './params.js';

/** Hyper-parameters of the soft/hard pair, shared with the methods that perturb KD's teacher. */
export const KD_PARAMS = {
  temperature: num({
    default: 4, unit: 'temperature', min: 0.01, max: 100,
    description: 'Softmax temperature T of both networks in the soft term (the soft term is scaled by T²)',
  }),
  alpha: num({
    default: 0.9, unit: 'weight', min: 0, max: 1,
    description: 'Weight of the soft term; the hard (label cross-entropy, T=1) term gets 1 − alpha',
  }),
  measure: choice(MEASURES, {
    default: 'kl',
    description: 'Agreement measure of the soft term: kl = T²·KL(teacher‖student) (Hinton), soft_ce = soft cross-entropy, ' +
      'mse = MSE between logits (T unused), js = Jensen–Shannon, sym_kl = symmetric KL',
  }),
};

/**
 * The `standardize` option of the logit methods: logit standardization (Sun et al., CVPR 2024),
 * z-scoring each sample's teacher and student logits before the tempered softmax.
 */
export const STANDARDIZE = bool({
  default: false,
  description: 'Z-score each sample\'s teacher and student logits before the softmax (logit standardization, Sun et al. CVPR 2024); ' +
    'the temperature is then the base temperature (authors: 2, with the distillation weight raised to 9 against CE 0.1)',
});

/**
 * {ce: (1−α)·CE(student, y), kd: α·soft(teacher, student, T)}. On unlabeled batches (y null) only
 * kd is returned, with the same weight so labelled and unlabeled batches are on one scale.
 */
export function kdTerms(ctx: LossContext, teacherLogits: Tensor, p: { temperature: number; alpha: number; measure: Measure; standardize?: boolean }): Record<string, Tensor> {
  return tidy((): Record<string, Tensor> => {
    const on = p.standardize ?? false;
    const kd = agreement(p.measure, maybeStandardize(teacherLogits, on), maybeStandardize(ctx.studentLogits, on), p.temperature).mul(p.alpha);
    if (ctx.batch.y === null) return { kd };
    return { ce: crossEntropy(ctx.studentLogits, ctx.batch.y).mul(1 - p.alpha), kd };
  });
}

export const kd = defineMethod({
  name: 'kd',
  summary: 'Hinton KD: T²-scaled agreement with the teacher at temperature T plus (1−alpha)·cross-entropy; soft term only on unlabeled data.',
  paper: 'Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", NeurIPS Deep Learning Workshop 2015 (arXiv:1503.02531)',
  needsTeacher: true,
  params: { ...KD_PARAMS, standardize: STANDARDIZE },
  create(p) {
    return { losses: (ctx) => kdTerms(ctx, requireTeacherLogits(ctx, 'kd'), p) };
  },
});
