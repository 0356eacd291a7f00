// Adversarial distillation with an output discriminator, the line of Xu, Hsu, Huang 2018 (a
// conditional discriminator on teacher vs student outputs) and Belagiannis et al. 2018: an MLP
// discriminator D learns to tell the teacher's output distributions ("real") from the student's
// ("fake"), and the student, besides the KD terms, is trained to make D call its outputs real.
//
// Not KDGAN (Wang, Zhang, Wang, Qi, NeurIPS 2018), which this file cited until issue 18. KDGAN is
// a three-player game: the classifier (student) and the teacher both learn, each from the other
// (distillation both ways), the discriminator judges label samples drawn from the classifier and
// the teacher through Gumbel-softmax relaxations against the true labels, and its equilibrium is
// the true label distribution. A fixed teacher, a discriminator on soft outputs and no sampling,
// as here, keep none of that, so KDGAN is left out rather than offered under its name.
//
// One optimizer updates student and D (D is an extra module), so each term reaches only the
// parameters it is meant for through detaches:
//   disc = discWeight · ½[BCE(D(teacher), 1) + BCE(D(student.detach()), 0)]  → only D
//   adv  = ganWeight · BCE(D_frozen(student), 1)  (non-saturating; D's weights detached) → only the student
// D's state is checkpointed with the other extra modules and the shared optimizer's state, so a
// resumed run continues exactly; the exported student has no discriminator weights.
import { binaryCrossEntropyWithLogits, leakyRelu, linear, oneHot } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { cat, onesLike, zerosLike } from '../tensor/factories.js';
import { Module } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import { temperedSoftmax } from '../losses/tempered.js';
import { KD_PARAMS, kdTerms } from './kd.js';
import { defineMethod, requireLabels, requireTeacherLogits } from './method.js';
import { bool, choice, int, num } from './params.js';

/** MLP [in → hidden → hidden → 1] with leaky ReLU(0.2), the usual GAN discriminator body. */
export class LogitDiscriminator extends Module {
  readonly layers: Linear[];
  constructor(readonly inFeatures: number, hidden: number) {
    super();
    this.layers = [
      this.registerModule('fc1', new Linear(inFeatures, hidden)),
      this.registerModule('fc2', new Linear(hidden, hidden)),
      this.registerModule('out', new Linear(hidden, 1)),
    ];
  }
  /** Real/fake score (a logit) per sample; `frozen` uses detached weights so no gradient reaches D. */
  forward(x: Tensor, frozen: unknown = false): Tensor {
    let h = x;
    this.layers.forEach((l, i) => {
      const w = frozen ? l.weight.detach() : l.weight;
      const b = l.bias ? (frozen ? l.bias.detach() : l.bias) : null;
      h = linear(h, w, b);
      if (i < this.layers.length - 1) h = leakyRelu(h, 0.2);
    });
    return h.squeeze(1);
  }
}

export const adversarialKd = defineMethod({
  name: 'adversarial-kd',
  summary: 'KD plus a GAN on outputs: a discriminator MLP separates the (fixed) teacher\'s output distributions from the student\'s (disc), ' +
    'the student learns to fool it with the non-saturating loss (adv); optionally conditioned on the label. Not KDGAN (no three-player game, no Gumbel-softmax samples).',
  paper: 'Xu, Hsu, Huang, "Training Shallow and Thin Networks for Acceleration via Knowledge Distillation with Conditional Adversarial Networks", ICLR 2018 Workshop (arXiv:1709.00513); ' +
    'Belagiannis, Farshad, Galasso, "Adversarial Network Compression", ECCV 2018 Workshops (arXiv:1803.10750)',
  differs: "D sees softmax probabilities (discInput: logits for Xu et al.'s logits) and is unconditional by default (conditional: true gives it the one-hot label, as Xu et al.); " +
    'the student also gets Hinton KD terms (alpha, T), and D is a 3-layer MLP trained by the same optimizer as the student',
  needsTeacher: true,
  params: {
    ...KD_PARAMS,
    ganWeight: num({ default: 0.1, unit: 'weight', min: 0, description: "Weight of the student's adversarial (fool-the-discriminator) term" }),
    discWeight: num({ default: 1, unit: 'weight', min: 0, description: "Weight of the discriminator's loss (it only updates D: with SGD it scales D's learning rate)" }),
    discHidden: int({ default: 64, min: 1, description: 'Hidden width of the discriminator MLP' }),
    discInput: choice(['probs', 'logits'], {
      default: 'probs', description: 'What D sees: probs = softmax at discTemperature, logits = raw logits',
    }),
    discTemperature: num({ default: 1, unit: 'temperature', min: 0.01, max: 100, description: 'Softmax temperature of what D sees (discInput: probs)' }),
    conditional: bool({ default: false, description: 'Also give D the one-hot label (conditional GAN, Xu et al. 2018); needs labelled batches' }),
  },
  create(p) {
    const { ganWeight: gw, discWeight: dw, discHidden: hidden, discTemperature: Td, conditional } = p;
    const probs = p.discInput === 'probs';
    let disc: LogitDiscriminator | null = null;
    let owner: Module | null = null;
    return {
      setup({ student, numClasses }) {
        if (owner === student) return; // once per student: D keeps its training
        owner = student;
        disc?.dispose();
        disc = new LogitDiscriminator(conditional ? 2 * numClasses : numClasses, hidden);
      },
      extraModules: () => (disc ? [disc] : []),
      losses(ctx) {
        if (!disc) throw new Error("method 'adversarial-kd': setup() was not called (the trainer calls it before training)");
        const D = disc;
        const tl = requireTeacherLogits(ctx, 'adversarial-kd');
        const y = conditional ? requireLabels(ctx, 'adversarial-kd', 'conditional: true feeds the label to the discriminator') : null;
        return tidy(() => {
          const view = (z: Tensor): Tensor => {
            const v = probs ? temperedSoftmax(z, Td) : z;
            return y ? cat([v, oneHot(y, ctx.info.numClasses).float()], 1) : v;
          };
          const real = D.call(view(tl));
          const fake = D.call(view(ctx.studentLogits.detach()));
          const discLoss = binaryCrossEntropyWithLogits(real, onesLike(real)).add(binaryCrossEntropyWithLogits(fake, zerosLike(fake))).mul(0.5 * dw);
          const fooled = D.call(view(ctx.studentLogits), true);
          const adv = binaryCrossEntropyWithLogits(fooled, onesLike(fooled)).mul(gw);
          return { ...kdTerms(ctx, tl, p), adv, disc: discLoss };
        });
      },
    };
  },
});
