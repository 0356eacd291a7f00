// Online distillation: the teacher is not pre-trained and frozen but trained together with the
// student, on the same batches, with its own cross-entropy; the student distills from the
// teacher's current predictions with the gradient blocked, so the student never pulls the
// teacher towards itself (the "gradient block" of Rocket Launching; one-way codistillation).
import { crossEntropy } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import type { Measure } from '../losses/agreement.js';
import { createModel, ZooModel } from '../nn/zoo/index.js';
import type { Module } from '../nn/module.js';
import { KD_PARAMS, kdTerms } from './kd.js';
import { requireLabels, type MethodSpec } from './method.js';

/** A model spec from a method parameter: an arch name ('resnet8') or a JSON object. */
export function parseModelParam(s: string, method: string, param: string): Record<string, unknown> {
  const t = s.trim();
  if (!t.startsWith('{')) return { arch: t };
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch (e) {
    throw new Error(`method '${method}': '${param}' is neither an arch name nor a JSON model spec: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof (v as { arch?: unknown }).arch !== 'string') {
    throw new Error(`method '${method}': '${param}' must be a JSON object with an "arch", e.g. {"arch": "mlp", "hidden": [256]}`);
  }
  return v as Record<string, unknown>;
}

export const onlineKd: MethodSpec = {
  name: 'online-kd',
  summary: 'Online KD: a teacher built from the `teacher` spec trains jointly with the student (teacher_ce); the student learns from its detached logits with the KD terms.',
  paper: 'Anil et al., "Large scale distributed neural network training through online distillation", ICLR 2018 (arXiv:1804.03235); ' +
    'gradient block: Zhou et al., "Rocket Launching: A Universal and Efficient Framework for Training Well-performing Light Net", AAAI 2018',
  needsTeacher: false,
  teacherUse: 'no teacher file: it trains its own teacher alongside the student',
  params: {
    teacher: {
      default: '{"arch": "mlp", "hidden": [256]}',
      description: 'The jointly trained teacher: an arch name or a JSON model spec (numClasses and input shape come from the student)',
    },
    teacherWeight: { default: 1, unit: 'weight', min: 0, description: "Weight of the teacher's own cross-entropy" },
    ...KD_PARAMS,
  },
  create(params) {
    const spec = parseModelParam(params.teacher as string, 'online-kd', 'teacher');
    const wt = params.teacherWeight as number;
    const p = { temperature: params.temperature as number, alpha: params.alpha as number, measure: params.measure as Measure };
    let net: ZooModel | null = null;
    let owner: Module | null = null;
    return {
      setup({ student, numClasses }) {
        if (owner === student) return; // once per student: the teacher keeps its training
        owner = student;
        if (!(student instanceof ZooModel)) throw new Error("method 'online-kd' needs a zoo student (its input shape sizes the teacher)");
        net?.dispose();
        net = createModel({ inputShape: student.inputShape, ...spec, numClasses });
      },
      extraModules: () => (net ? [net] : []),
      losses(ctx) {
        if (!net) throw new Error("method 'online-kd': setup() was not called (the trainer calls it before training)");
        const y = requireLabels(ctx, 'online-kd', 'the jointly trained teacher learns from the labels');
        const t = net;
        return tidy(() => {
          const tl = t.call(ctx.batch.x);
          return { ...kdTerms(ctx, tl.detach(), p), teacher_ce: crossEntropy(tl, y).mul(wt) };
        });
      },
    };
  },
};
