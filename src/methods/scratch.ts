// Training without a teacher: cross-entropy on the labels. The baseline every distillation
// result is compared with, and how teachers themselves are trained.
import { crossEntropy } from '../tensor/functional.js';
import { requireLabels, type MethodSpec } from './method.js';

export const scratch: MethodSpec = {
  name: 'scratch',
  summary: 'Cross-entropy on the labels only (no teacher): baselines and teacher training.',
  paper: 'Label smoothing: Szegedy, Vanhoucke, Ioffe, Shlens, Wojna, "Rethinking the Inception Architecture for Computer Vision", CVPR 2016',
  needsTeacher: false,
  params: {
    label_smoothing: {
      default: 0, unit: 'probability mass', min: 0, max: 1,
      description: 'Label smoothing ε: the target puts 1−ε on the label and ε/N on every class',
    },
  },
  create(params) {
    const labelSmoothing = params.label_smoothing as number;
    return {
      losses(ctx) {
        const y = requireLabels(ctx, 'scratch', 'it fits the labels');
        return { ce: crossEntropy(ctx.studentLogits, y, { labelSmoothing }) };
      },
    };
  },
};
