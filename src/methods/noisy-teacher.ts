// Noisy teacher (Sau & Balasubramanian 2016): the teacher's logits are perturbed with Gaussian
// noise for a random subset of samples, a regulariser that simulates learning from several
// teachers; the student then learns from the perturbed logits with Hinton's KD loss.
import { rand, randn } from '../tensor/factories.js';
import { tidy } from '../tensor/scope.js';
import { Generator, type Tensor } from '../tensor/tensor.js';
import { KD_PARAMS, kdTerms } from './kd.js';
import { defineMethod, requireTeacherLogits } from './method.js';
import { choice, int, num } from './params.js';

/**
 * The perturbed teacher logits for one batch. Each sample is perturbed with probability alpha;
 * additive: z + σ·ξ; relative: z·(1 + σ·ξ) (the paper's form); ξ ~ N(0, 1) per logit. All draws
 * come from `gen` and are made even when alpha is 0 or 1, so the stream depends only on shapes.
 */
export function perturbLogits(z: Tensor, o: { sigma: number; alpha: number; noise: 'additive' | 'relative' }, gen: Generator): Tensor {
  return tidy(() => {
    const [b, n] = z.shape as [number, number];
    const xi = randn([b, n], { generator: gen, dtype: z.dtype });
    const chosen = rand([b, 1], { generator: gen, dtype: z.dtype }).lt(o.alpha);
    const noise = xi.mul(o.sigma).mul(chosen);
    return o.noise === 'additive' ? z.add(noise) : z.add(z.mul(noise));
  });
}

/**
 * The generator seed for one step: libtorch's CPU generator (mt19937) keeps 32 bits of a seed, so
 * (seed, step) is folded into 32 bits; murmur3's finaliser is a bijection, so the steps of one run
 * (fewer than 2³²) never share a seed.
 */
export function noiseSeed(seed: number, step: number): number {
  let h = (Math.imul(seed, 0x9e3779b1) + step) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export const noisyTeacher = defineMethod({
  name: 'noisy-teacher',
  summary: 'KD from teacher logits perturbed with Gaussian noise (std sigma) on a random fraction alpha of the samples; seeded.',
  paper: 'Sau, Balasubramanian, "Deep Model Compression: Distilling Knowledge from Noisy Teachers", arXiv:1610.09650, 2016',
  needsTeacher: true,
  params: {
    sigma: num({ default: 0.1, unit: 'logit std', min: 0, description: 'Standard deviation σ of the Gaussian noise (mean 0)' }),
    alpha: num({ default: 0.5, unit: 'probability', min: 0, max: 1, description: 'Probability that a sample\'s teacher logits are perturbed' }),
    noise: choice(['additive', 'relative'], {
      default: 'additive', description: 'additive: z + σξ; relative: z·(1 + σξ), the paper\'s perturbation',
    }),
    seed: int({ default: 0, unit: 'seed', min: 0, max: 2 ** 31 - 1, description: 'Seed of the noise; with the step number it fixes every draw' }),
    temperature: KD_PARAMS.temperature,
    kdWeight: { ...KD_PARAMS.alpha, was: 'kd_weight', description: 'Weight of the KD term on the noisy logits; the label cross-entropy gets 1 − kdWeight' },
    measure: KD_PARAMS.measure,
  },
  create(p) {
    const noise = { sigma: p.sigma, alpha: p.alpha, noise: p.noise };
    const seed = p.seed;
    const kd = { temperature: p.temperature, alpha: p.kdWeight, measure: p.measure };
    // The method's own generator, reseeded from (seed, step) each batch: the noise is a pure
    // function of the seed and the global step, so a resumed run draws exactly the same noise
    // without checkpointing generator state, and the global generator is left alone.
    const gen = new Generator(seed);
    return {
      losses(ctx) {
        const teacherLogits = requireTeacherLogits(ctx, 'noisy-teacher');
        gen.manualSeed(noiseSeed(seed, ctx.info.step));
        return tidy(() => kdTerms(ctx, perturbLogits(teacherLogits, noise, gen), kd));
      },
    };
  },
});
