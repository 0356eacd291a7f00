// Training without a teacher: cross-entropy on the labels. The baseline every distillation
// result is compared with, and how teachers themselves are trained.
import { crossEntropy } from '../tensor/functional.js';
import { defineMethod, requireLabels } from './method.js';
import { num } from './params.js';

export const scratch = defineMethod({
  name: 'scratch',
  summary: 'Cross-entropy on the labels only (no teacher): baselines and teacher training.',
  paper: 'Label smoothing: Szegedy, Vanhoucke, Ioffe, Shlens, Wojna, "Rethinking the Inception Architecture for Computer Vision", CVPR 2016',
  needsTeacher: false,
  params: {
    labelSmoothing: num({
      default: 0, unit: 'probability mass', min: 0, max: 1, was: 'label_smoothing',
      description: 'Label smoothing ε: the target puts 1−ε on the label and ε/N on every class',
    }),
  },
  create({ labelSmoothing }) {
    return {
      losses(ctx) {
        const y = requireLabels(ctx, 'scratch', 'it fits the labels');
        return { ce: crossEntropy(ctx.studentLogits, y, { labelSmoothing }) };
      },
    };
  },
});
