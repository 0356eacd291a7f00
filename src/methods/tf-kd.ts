// Teacher-free KD (Yuan, Tay, Li, Wang, Feng, "Revisiting Knowledge Distillation via Label
// Smoothing Regularization", CVPR 2020): KD works as a learned label smoothing, so a student can
// do without a stronger teacher. Two variants, as the authors' my_loss_function.py:
//   tf-kd-reg (loss_kd_regularization), a manually designed virtual teacher, no teacher at all:
//     p^d = correctProb on the label, (1 − correctProb)/(K − 1) elsewhere,
//     reg = multiplier · KL(softmax(p^d / T) ‖ softmax(z_s)),
//   tf-kd-self (loss_kd_self), the student's own pre-trained copy as teacher:
//     kd  = multiplier · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T)),
//   each with loss = (1 − alpha)·CE + alpha·(reg | kd).
// Both KLs are nn.KLDivLoss() with its default reduction 'mean', i.e. averaged over batch *and*
// classes (batchmean / K); `multiplier` (100 on CIFAR-100's K = 100) makes up for it. The virtual
// teacher is softened by a softmax of the probabilities p^d at temperature T, the student is not
// (T = 1, no T²), exactly as that code. Self-training is a two-run recipe: train the student from
// scratch, then distill the same architecture from it (experiments/self/tf-kd-self.yaml, a chain).
import { crossEntropy, oneHot } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';
import { checkLogits, klDivergence, klFromLogProbs } from '../losses/tempered.js';
import { defineMethod, requireLabels, requireTeacherLogits } from './method.js';
import { num } from './params.js';

const MULTIPLIER = 'Factor on the KL, which the authors average over classes as well as samples (their nn.KLDivLoss() default)';

/** log softmax(p^d / T) of the virtual teacher's distribution p^d for labels y, [B, K]. */
export function virtualTeacherLogProbs(y: Tensor, numClasses: number, correctProb: number, T: number, dtype: DType = 'float32'): Tensor {
  if (numClasses < 2) throw new RangeError(`tf-kd-reg: needs at least 2 classes, got ${numClasses}`);
  return tidy(() => {
    const off = (1 - correctProb) / (numClasses - 1);
    const pd = oneHot(y, numClasses).to(dtype).mul(correctProb - off).add(off);
    return pd.div(T).logSoftmax(1);
  });
}

export const tfKdReg = defineMethod({
  name: 'tf-kd-reg',
  summary: 'Teacher-free KD with a manually designed virtual teacher: (1 − alpha)·CE + alpha·multiplier·KL(softmax(p^d/T) ‖ softmax(z)), ' +
    'p^d = correctProb on the label and the rest spread evenly; KL averaged over samples and classes, as the authors\'. Needs labels.',
  paper: 'Yuan, Tay, Li, Wang, Feng, "Revisiting Knowledge Distillation via Label Smoothing Regularization", CVPR 2020 (authors\' code yuanli2333/Teacher-free-Knowledge-Distillation; defaults: their CIFAR-100 ResNet-18)',
  needsTeacher: false,
  teacherUse: 'no teacher: a virtual teacher made from the label',
  params: {
    alpha: num({ default: 0.1, unit: 'weight', min: 0, max: 1, description: 'Weight of the virtual-teacher term; CE gets 1 − alpha (authors\' reg_alpha)' }),
    temperature: num({ default: 20, unit: 'temperature', min: 0.01, max: 1000, description: 'Temperature of the softmax that softens the virtual teacher p^d (authors\' reg_temperature)' }),
    multiplier: num({ default: 100, unit: 'weight', min: 0, description: MULTIPLIER }),
    correctProb: num({ default: 0.99, min: 0, max: 1, description: 'Probability p^d gives the correct class (authors: 0.99, fixed in their code)' }),
  },
  create({ alpha, temperature: T, multiplier, correctProb }) {
    return {
      losses(ctx) {
        const y = requireLabels(ctx, 'tf-kd-reg', 'the virtual teacher is built from the label');
        const zs = ctx.studentLogits;
        checkLogits('tf-kd-reg', zs);
        const K = zs.shape[1]!;
        return tidy(() => {
          const logPd = virtualTeacherLogProbs(y, K, correctProb, T, zs.dtype);
          return {
            ce: crossEntropy(zs, y).mul(1 - alpha),
            reg: klFromLogProbs(logPd, zs.logSoftmax(1)).mul((alpha * multiplier) / K),
          };
        });
      },
    };
  },
});

export const tfKdSelf = defineMethod({
  name: 'tf-kd-self',
  summary: 'Teacher-free KD by self-training: (1 − alpha)·CE + alpha·multiplier·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)), the teacher a pre-trained ' +
    'copy of the student; KL averaged over samples and classes, as the authors\'. Soft term only on unlabeled data.',
  paper: 'Yuan, Tay, Li, Wang, Feng, "Revisiting Knowledge Distillation via Label Smoothing Regularization", CVPR 2020 (authors\' code; defaults: their CIFAR-100 ResNet-18 self-teacher)',
  needsTeacher: true,
  params: {
    alpha: num({ default: 0.95, unit: 'weight', min: 0, max: 1, description: 'Weight of the self-teacher term; CE gets 1 − alpha (authors\' alpha)' }),
    temperature: num({ default: 6, unit: 'temperature', min: 0.01, max: 1000, description: 'Softmax temperature T of both networks; the term is scaled by T²' }),
    multiplier: num({ default: 50, unit: 'weight', min: 0, description: MULTIPLIER }),
  },
  create({ alpha, temperature: T, multiplier }) {
    return {
      losses(ctx) {
        const tl = requireTeacherLogits(ctx, 'tf-kd-self');
        return tidy((): Record<string, Tensor> => {
          const K = ctx.studentLogits.shape[1]!;
          const kd = klDivergence(tl, ctx.studentLogits, T).mul((alpha * multiplier) / K);
          return ctx.batch.y === null ? { kd } : { ce: crossEntropy(ctx.studentLogits, ctx.batch.y).mul(1 - alpha), kd };
        });
      },
    };
  },
});
