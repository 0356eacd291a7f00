// Knowledge distillation for multi-label classification: every label is an independent
// Bernoulli variable, so the soft targets are per-label sigmoids at temperature T, and the soft
// term is T²·Σ_labels KL(Bern(σ(z_T/T)) ‖ Bern(σ(z_S/T))) (the multi-label analogue of Hinton's
// softmax KD). Also home of the task/soft-term helpers the transformer methods share, which pick
// the single-label or multi-label form from the batch.
import type { Tensor } from '../tensor/tensor.js';
import { crossEntropy } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import { bernoulliKd, multiLabelBce } from '../losses/transformer.js';
import { klDivergence } from '../losses/tempered.js';
import { defineMethod, type LossContext } from './method.js';
import { num } from './params.js';

/** Multi-label batches carry multi-hot float targets [B, C]; single-label ones int64 [B]. */
export function isMultiLabel(ctx: LossContext): boolean {
  const spec = (ctx.student as { spec?: { multiLabel?: unknown } }).spec;
  return spec?.multiLabel === true || (ctx.batch.y !== null && ctx.batch.y.ndim === 2);
}

/** The hard term: BCE with logits (multi-label) or cross-entropy (single-label); null on unlabeled batches. */
export function taskLoss(ctx: LossContext): Tensor | null {
  const y = ctx.batch.y;
  if (y === null) return null;
  return isMultiLabel(ctx) ? multiLabelBce(ctx.studentLogits, y) : crossEntropy(ctx.studentLogits, y);
}

/** The T²-scaled soft term: per-label Bernoulli KL (multi-label) or softmax KL (single-label). */
export function softTargetLoss(ctx: LossContext, teacherLogits: Tensor, T: number): Tensor {
  return isMultiLabel(ctx) ? bernoulliKd(teacherLogits, ctx.studentLogits, T) : klDivergence(teacherLogits, ctx.studentLogits, T);
}

export const multilabelKd = defineMethod({
  name: 'multilabel-kd',
  summary: 'Multi-label KD: alpha·T²·Σ_labels KL(Bern(σ(z_T/T)) ‖ Bern(σ(z_S/T))) + (1−alpha)·BCE on the labels; without a teacher (or alpha 0) plain BCE training.',
  paper: 'Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", 2015, applied per label as independent Bernoulli soft targets (as in e.g. Liu et al., "Multi-Label Image Classification via Knowledge Distillation from Weakly-Supervised Detection", ACM MM 2018)',
  needsTeacher: false,
  teacherUse: 'teacher optional: without one, plain BCE on the labels',
  params: {
    temperature: num({ default: 2, unit: 'temperature', min: 0.01, max: 100, description: 'Temperature T of the per-label sigmoids (the soft term is scaled by T²)' }),
    alpha: num({ default: 0.5, unit: 'weight', min: 0, max: 1, description: 'Weight of the soft term; BCE on the labels gets 1 − alpha' }),
  },
  create({ temperature: T, alpha }) {
    return {
      losses(ctx) {
        return tidy(() => {
          const out: Record<string, Tensor> = {};
          const hard = taskLoss(ctx);
          const soft = ctx.teacherLogits !== null && alpha > 0;
          if (hard) out.bce = hard.mul(soft ? 1 - alpha : 1);
          if (soft) out.kd = (isMultiLabel(ctx) ? bernoulliKd(ctx.teacherLogits!, ctx.studentLogits, T) : klDivergence(ctx.teacherLogits!, ctx.studentLogits, T)).mul(alpha);
          if (!hard && !soft) throw new Error("method 'multilabel-kd': an unlabeled batch without a teacher gives no loss");
          return out;
        });
      },
    };
  },
});
