// Curriculum Temperature KD (Li, Li, Yang, Cheng, Wang, Yang, Yang, AAAI 2023): KD whose
// temperature is learned *against* the student. Following the authors' code (zhengli97/CTKD:
// models/temp_global.py, helper/loops.py, train_student.py), the global variant:
//   T = minTemperature + temperatureRange · sigmoid(GRL_λ(θ)),   θ a scalar parameter (init 1),
//   loss = ceWeight·CE(z_s, y) + alpha·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)),  batchmean,
// where the gradient-reversal layer GRL_λ is the identity forward and multiplies the gradient by
// λ backward. λ ≤ 0 follows a cosine curriculum over the epochs (authors' CosineDecay, epochs
// counted from 1): with i = min(epoch + 1, lambdaEpochs),
//   λ = lambdaMin + (lambdaMax − lambdaMin) · (cos(iπ/lambdaEpochs) + 1)/2,
// 0 → −1 over the first 10 epochs by default, so θ ascends the distillation loss ever harder
// (easy to hard) while the student descends it. θ is trained by the student's optimizer (weight
// decay included), as the authors put it in the same SGD. `standardize` z-scores both logits first
// (Sun et al., CVPR 2024, whose CTKD/distiller_zoo/KD.py does it before the division by T).
import { crossEntropy } from '../tensor/functional.js';
import { ones } from '../tensor/factories.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module } from '../nn/module.js';
import { checkLogits, klFromLogProbs } from '../losses/tempered.js';
import { maybeStandardize } from '../losses/standardize.js';
import { defineMethod, requireTeacherLogits } from './method.js';
import { int, num } from './params.js';
import { STANDARDIZE } from './kd.js';

/**
 * Gradient reversal (Ganin & Lempitsky, ICML 2015), as CTKD's GradientReversalFunction: the
 * value of x, with the gradient multiplied by λ on the way back. x − x.detach() is exactly 0, so
 * the forward value is x bit for bit, and its derivative is 1, scaled here by λ.
 */
export function gradientScale(x: Tensor, lambda: number): Tensor {
  return tidy(() => {
    const d = x.detach();
    return d.add(x.sub(d).mul(lambda));
  });
}

/** The curriculum's λ in 0-based epoch e (the authors' CosineDecay at their 1-based epoch e + 1). */
export function ctkdLambda(epoch: number, p: { lambdaMax: number; lambdaMin: number; lambdaEpochs: number }): number {
  const i = Math.min(Math.max(epoch + 1, 0), p.lambdaEpochs);
  return p.lambdaMin + (p.lambdaMax - p.lambdaMin) * (Math.cos((i * Math.PI) / p.lambdaEpochs) + 1) / 2;
}

/** The global temperature module: one learnable scalar θ (the authors' Global_T, initialised to 1). */
export class GlobalTemperature extends Module {
  readonly theta: Tensor;
  constructor() {
    super();
    this.theta = this.registerParameter('global_T', ones([1]));
  }
  /** θ through the gradient-reversal layer (the input is unused, as in Global_T.forward). */
  forward(_x: Tensor, lambda: unknown = -1): Tensor {
    if (typeof lambda !== 'number') throw new TypeError('GlobalTemperature: lambda must be a number');
    return gradientScale(this.theta, lambda);
  }
}

export const ctkd = defineMethod({
  name: 'ctkd',
  summary: 'Curriculum Temperature KD: ceWeight·CE + alpha·T²·KL at a temperature T = minTemperature + temperatureRange·sigmoid(θ) learned adversarially ' +
    '(gradient reversal scaled by λ, λ: lambdaMax → lambdaMin along a cosine over lambdaEpochs); soft term only on unlabeled data.',
  paper: 'Li, Li, Yang, Cheng, Wang, Yang, Yang, "Curriculum Temperature for Knowledge Distillation", AAAI 2023 (authors\' code zhengli97/CTKD, global temperature)',
  differs: 'only the global temperature: the instance-wise variant\'s temperature network is not in the authors\' published code; only the cosine curriculum (not their linear one)',
  needsTeacher: true,
  params: {
    minTemperature: num({ default: 1, unit: 'temperature', min: 0.01, max: 100, description: 'Lowest temperature (authors\' t_start): T = minTemperature + temperatureRange·sigmoid(θ)' }),
    temperatureRange: num({ default: 20, unit: 'temperature', min: 0, max: 1000, description: 'Width of the temperature range (authors\' t_end, added to t_start)' }),
    lambdaMax: num({ default: 0, min: -100, max: 100, description: 'λ at the start of the curriculum (authors\' decay_max)' }),
    lambdaMin: num({ default: -1, min: -100, max: 100, description: 'λ at its end (authors\' decay_min; negative: the temperature ascends the loss)' }),
    lambdaEpochs: int({ default: 10, unit: 'epochs', min: 1, description: 'Epochs of the cosine from lambdaMax to lambdaMin (authors\' decay_loops)' }),
    alpha: num({ default: 0.9, unit: 'weight', min: 0, description: 'Weight of the T²-scaled KL term (authors\' -a)' }),
    ceWeight: num({ default: 0.1, unit: 'weight', min: 0, description: 'Weight of the label cross-entropy (authors\' -r)' }),
    standardize: STANDARDIZE,
  },
  create(p) {
    let temp: GlobalTemperature | null = null;
    let owner: Module | null = null;
    return {
      setup({ student }) {
        if (owner === student) return; // once per student: the temperature keeps its training
        owner = student;
        temp?.dispose();
        temp = new GlobalTemperature();
      },
      extraModules: () => (temp ? [temp] : []),
      losses(ctx) {
        if (!temp) throw new Error("method 'ctkd': setup() was not called (the trainer calls it before building the optimizer)");
        const theta = temp;
        const tl = requireTeacherLogits(ctx, 'ctkd');
        checkLogits('ctkd', tl, ctx.studentLogits);
        return tidy((): Record<string, Tensor> => {
          const zs = maybeStandardize(ctx.studentLogits, p.standardize), zt = maybeStandardize(tl, p.standardize);
          // T in the logits' dtype, so float64 tests stay float64; the gradient reaches θ through the cast.
          const T = theta.call(zs, ctkdLambda(ctx.info.epoch, p)).to(zs.dtype).sigmoid().mul(p.temperatureRange).add(p.minTemperature);
          const kl = klFromLogProbs(zt.div(T).logSoftmax(1), zs.div(T).logSoftmax(1)).mul(T.square().squeeze(0));
          const out: Record<string, Tensor> = { kd: kl.mul(p.alpha) };
          return ctx.batch.y === null ? out : { ce: crossEntropy(ctx.studentLogits, ctx.batch.y).mul(p.ceWeight), ...out };
        });
      },
    };
  },
});
