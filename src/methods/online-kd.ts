// Learning from models trained at the same time, two ways:
//
// online-kd-oneway: a teacher is not pre-trained and frozen but trained together with the
// student, on the same batches, with its own cross-entropy; the student distills from the
// teacher's current predictions with the gradient blocked, so the student never pulls the
// teacher towards itself (the "gradient block" of Rocket Launching). Until issue 18 it was called
// online-kd and cited codistillation, which is symmetric; `online-kd` is still accepted.
//
// codistill: codistillation (Anil et al. 2018, Algorithm 1). N models, each trained on its
// cross-entropy plus ψ = the cross-entropy from the average of the other N−1 models' predicted
// distributions to its own, after `burnInSteps` steps of cross-entropy alone; the others'
// predictions come from the live models (detached) or from copies refreshed every `refreshSteps`
// steps (the paper's stale predictions, which let the models live on different workers).
import { crossEntropy } from '../tensor/functional.js';
import { tidy } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { stack } from '../tensor/factories.js';
import type { Tensor } from '../tensor/tensor.js';
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

export const onlineKdOneway: MethodSpec = {
  name: 'online-kd-oneway',
  summary: 'One-way online KD: a teacher built from the `teacher` spec trains jointly with the student on its own CE (teacher_ce); ' +
    'the student learns from its detached logits with the KD terms (formerly `online-kd`; for the symmetric version see codistill).',
  paper: 'Zhou et al., "Rocket Launching: A Universal and Efficient Framework for Training Well-performing Light Net", AAAI 2018 (arXiv:1708.04106): ' +
    'the jointly trained booster net and the gradient block',
  differs: 'teacher and student share no layers (Rocket Launching shares the bottom ones), and the student\'s term is Hinton KD at T ' +
    '(measure: mse gives Rocket Launching\'s logit-regression hint loss); no burn-in',
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
    const spec = parseModelParam(params.teacher as string, 'online-kd-oneway', 'teacher');
    const wt = params.teacherWeight as number;
    const p = { temperature: params.temperature as number, alpha: params.alpha as number, measure: params.measure as Measure };
    let net: ZooModel | null = null;
    let owner: Module | null = null;
    return {
      setup({ student, numClasses }) {
        if (owner === student) return; // once per student: the teacher keeps its training
        owner = student;
        if (!(student instanceof ZooModel)) throw new Error("method 'online-kd-oneway' needs a zoo student (its input shape sizes the teacher)");
        net?.dispose();
        net = createModel({ inputShape: student.inputShape, ...spec, numClasses });
      },
      extraModules: () => (net ? [net] : []),
      losses(ctx) {
        if (!net) throw new Error("method 'online-kd-oneway': setup() was not called (the trainer calls it before training)");
        const y = requireLabels(ctx, 'online-kd-oneway', 'the jointly trained teacher learns from the labels');
        const t = net;
        return tidy(() => {
          const tl = t.call(ctx.batch.x);
          return { ...kdTerms(ctx, tl.detach(), p), teacher_ce: crossEntropy(tl, y).mul(wt) };
        });
      },
    };
  },
};

/** The peers' model specs from codistill's `peerArch`: 'same' (the student's), one spec for all, or a JSON array with one per peer. */
function peerSpecs(s: string, peers: number, student: ZooModel): Record<string, unknown>[] {
  const t = s.trim();
  if (t === 'same') return Array.from({ length: peers }, () => ({ ...student.spec }));
  const base = { inputShape: student.inputShape, numClasses: student.spec.numClasses };
  if (!t.startsWith('[')) return Array.from({ length: peers }, () => ({ ...base, ...parseModelParam(t, 'codistill', 'peerArch') }));
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch (e) {
    throw new Error(`method 'codistill': 'peerArch' is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(v) || v.length !== peers) {
    throw new Error(`method 'codistill': 'peerArch' as a list needs one entry per peer (models − 1 = ${peers}), got ${Array.isArray(v) ? v.length : 'no list'}`);
  }
  return v.map((e) => ({ ...base, ...parseModelParam(typeof e === 'string' ? e : JSON.stringify(e), 'codistill', 'peerArch') }));
}

/**
 * ψ of codistillation: the cross-entropy −Σ_c p̄_c log softmax(z)_c from the average p̄ of the
 * others' predicted distributions (from their logits, no gradient) to the model's, batch mean.
 */
export function codistillationLoss(otherLogits: Tensor[], logits: Tensor): Tensor {
  return tidy(() => {
    const avg = noGrad(() => stack(otherLogits.map((o) => o.detach().softmax(1))).mean({ dim: 0 }));
    return avg.mul(logits.logSoftmax(1)).sum({ dim: 1 }).mean().neg();
  });
}

export const codistill: MethodSpec = {
  name: 'codistill',
  summary: 'Codistillation: `models` networks (the student and models − 1 peers) train at once, each on CE plus weight·CE from the average of the ' +
    "others' predicted distributions to its own (distill), after burnInSteps of CE alone; the others' predictions are live (detached) or from copies refreshed every refreshSteps.",
  paper: 'Anil, Pereyra, Passos, Ormandi, Dahl, Hinton, "Large scale distributed neural network training through online distillation", ICLR 2018 (arXiv:1804.03235), Algorithm 1',
  differs: 'all models see the same batch in one process and are updated together (the paper: each its own batch, on its own workers); ' +
    'stale copies are refreshed all at once every refreshSteps steps rather than exchanged asynchronously',
  needsTeacher: false,
  teacherUse: 'no teacher file: the models teach each other',
  params: {
    models: { default: 2, integer: true, min: 2, max: 8, description: 'Models trained together (N); model 0 is the student, the one exported' },
    peerArch: {
      default: 'same',
      description: "The peers' architecture: same = the student's; an arch name or JSON model spec for all peers; or a JSON list with one per peer " +
        '(numClasses and input shape come from the student)',
    },
    weight: { default: 1, unit: 'weight', min: 0, description: 'Weight of the distillation term ψ (Algorithm 1 adds it with weight 1)' },
    burnInSteps: { default: 0, integer: true, min: 0, unit: 'steps', description: 'Steps of cross-entropy alone before the distillation terms start (the paper\'s burn-in; its length is task-dependent)' },
    refreshSteps: {
      default: 0, integer: true, min: 0, unit: 'steps',
      description: "0 = the others' current predictions (detached); R > 0 = predictions of copies of the models taken at the first distillation step and every R steps after (stale, as in the paper)",
    },
  },
  create(params) {
    const N = params.models as number, w = params.weight as number;
    const burnIn = params.burnInSteps as number, R = params.refreshSteps as number, arch = params.peerArch as string;
    let peers: ZooModel[] = [];
    let stale: ZooModel[] = [];
    let owner: Module | null = null;
    return {
      setup({ student }) {
        if (owner === student) return; // once per student: the peers keep their training
        owner = student;
        if (!(student instanceof ZooModel)) throw new Error("method 'codistill' builds peers next to the student, so the student must be a zoo model (created with createModel)");
        for (const m of [...peers, ...stale]) m.dispose();
        peers = peerSpecs(arch, N - 1, student).map((s) => createModel(s));
        // Stale copies are not trained: they never get a gradient, so the optimizer leaves them
        // alone, but as extra modules they are checkpointed and a resumed run keeps its targets.
        stale = R > 0 ? [student, ...peers].map((m) => {
          const c = createModel({ ...m.spec });
          for (const p of c.parameters()) p.requiresGrad_(false);
          return c;
        }) : [];
      },
      extraModules: () => [...peers, ...stale],
      losses(ctx) {
        if (peers.length !== N - 1) throw new Error("method 'codistill': setup() was not called (the trainer calls it before training)");
        const y = requireLabels(ctx, 'codistill', 'each model learns from the labels');
        const step = ctx.info.step;
        const distill = step >= burnIn;
        // Refresh at the first distillation step and every R steps after: a function of the step
        // alone, so a resumed run refreshes exactly where the uninterrupted one would.
        if (distill && R > 0 && (step - burnIn) % R === 0) [ctx.student, ...peers].forEach((m, i) => stale[i]!.loadStateDict(m.stateDict()));
        return tidy(() => {
          const logits: Tensor[] = [ctx.studentLogits, ...peers.map((p) => p.call(ctx.batch.x))];
          const targets = !distill ? [] : R > 0 ? noGrad(() => stale.map((c) => c.call(ctx.batch.x))) : logits.map((z) => z.detach());
          const out: Record<string, Tensor> = {};
          logits.forEach((z, i) => {
            const prefix = i === 0 ? '' : `peer${i}_`;
            out[`${prefix}ce`] = crossEntropy(z, y);
            if (distill) out[`${prefix}distill`] = codistillationLoss(targets.filter((_, j) => j !== i), z).mul(w);
          });
          return out;
        });
      },
    };
  },
};
