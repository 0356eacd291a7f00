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
import { createModel, ZooModel } from '../nn/zoo/index.js';
import type { Module } from '../nn/module.js';
import { KD_PARAMS, kdTerms } from './kd.js';
import { defineMethod, requireLabels } from './method.js';
import { int, num, struct, yamlFlow, type ParseContext } from './params.js';

/** A model spec as a method parameter gives it: an arch name or a map with an `arch`. */
export type ModelSpecParam = Record<string, unknown>;

/**
 * A model spec from YAML: an arch name ('resnet8') or a map {arch: mlp, hidden: [256]}. The first
 * release's JSON text ('{"arch": "mlp"}', '[…]' for lists) is still read, with a deprecation notice.
 */
function fromJsonText(v: unknown, at: ParseContext, example: string): unknown {
  if (typeof v !== 'string' || !/^\s*[[{]/.test(v)) return v;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (e) {
    throw new Error(`${at.where}: is neither an arch name nor a model spec: ${(e as Error).message}`);
  }
  at.deprecated(`${at.where}: a model spec as JSON text is deprecated; write it as YAML, e.g. ${example}: ${yamlFlow(parsed)}`);
  return parsed;
}

export function parseModelSpec(v: unknown, at: ParseContext, example = 'teacher'): ModelSpecParam {
  const m = fromJsonText(v, at, example);
  if (typeof m === 'string' && m.trim()) return { arch: m.trim() };
  if (typeof m !== 'object' || m === null || Array.isArray(m) || typeof (m as { arch?: unknown }).arch !== 'string') {
    throw new Error(`${at.where}: must be an arch name or a model spec with an arch, e.g. {arch: mlp, hidden: [256]}, got ${JSON.stringify(v)}`);
  }
  return m as ModelSpecParam;
}

/** codistill's peers: the student's architecture, one spec for every peer, or one spec per peer. */
export type PeerArch = 'same' | ModelSpecParam | ModelSpecParam[];

function parsePeerArch(v: unknown, at: ParseContext): PeerArch {
  if (v === 'same') return v;
  const m = fromJsonText(v, at, 'peerArch');
  return Array.isArray(m) ? m.map((e, i) => parseModelSpec(e, { ...at, where: `${at.where}[${i}]` }, 'peerArch')) : parseModelSpec(m, at, 'peerArch');
}

export const onlineKdOneway = defineMethod({
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
    teacher: struct<ModelSpecParam>({
      default: { arch: 'mlp', hidden: [256] }, allowed: 'arch name | model spec map', parse: (v, at) => parseModelSpec(v, at),
      description: 'The jointly trained teacher: an arch name or a model spec like {arch: mlp, hidden: [256]} (numClasses and input shape come from the student)',
    }),
    teacherWeight: num({ default: 1, unit: 'weight', min: 0, description: "Weight of the teacher's own cross-entropy" }),
    ...KD_PARAMS,
  },
  create(params) {
    const { teacher: spec, teacherWeight: wt } = params;
    const p = { temperature: params.temperature, alpha: params.alpha, measure: params.measure };
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
});

/** The peers' model specs from codistill's `peerArch`: 'same' (the student's), one spec for all, or a list with one per peer. */
function peerSpecs(arch: PeerArch, peers: number, student: ZooModel): Record<string, unknown>[] {
  if (arch === 'same') return Array.from({ length: peers }, () => ({ ...student.spec }));
  const base = { inputShape: student.inputShape, numClasses: student.spec.numClasses };
  if (!Array.isArray(arch)) return Array.from({ length: peers }, () => ({ ...base, ...arch }));
  if (arch.length !== peers) throw new Error(`method 'codistill': 'peerArch' as a list needs one entry per peer (models − 1 = ${peers}), got ${arch.length}`);
  return arch.map((e) => ({ ...base, ...e }));
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

export const codistill = defineMethod({
  name: 'codistill',
  summary: 'Codistillation: `models` networks (the student and models − 1 peers) train at once, each on CE plus weight·CE from the average of the ' +
    "others' predicted distributions to its own (distill), after burnInSteps of CE alone; the others' predictions are live (detached) or from copies refreshed every refreshSteps.",
  paper: 'Anil, Pereyra, Passos, Ormandi, Dahl, Hinton, "Large scale distributed neural network training through online distillation", ICLR 2018 (arXiv:1804.03235), Algorithm 1',
  differs: 'all models see the same batch in one process and are updated together (the paper: each its own batch, on its own workers); ' +
    'stale copies are refreshed all at once every refreshSteps steps rather than exchanged asynchronously',
  needsTeacher: false,
  teacherUse: 'no teacher file: the models teach each other',
  params: {
    models: int({ default: 2, min: 2, max: 8, description: 'Models trained together (N); model 0 is the student, the one exported' }),
    peerArch: struct<PeerArch>({
      default: 'same', allowed: 'same | arch name | model spec map | list of them', parse: parsePeerArch,
      description: "The peers' architecture: same = the student's; an arch name or model spec ({arch: mlp, hidden: [256]}) for all peers; or a list with one per peer " +
        '(numClasses and input shape come from the student)',
    }),
    weight: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the distillation term ψ (Algorithm 1 adds it with weight 1)' }),
    burnInSteps: int({ default: 0, min: 0, unit: 'steps', description: 'Steps of cross-entropy alone before the distillation terms start (the paper\'s burn-in; its length is task-dependent)' }),
    refreshSteps: int({
      default: 0, min: 0, unit: 'steps',
      description: "0 = the others' current predictions (detached); R > 0 = predictions of copies of the models taken at the first distillation step and every R steps after (stale, as in the paper)",
    }),
  },
  create(params) {
    const { models: N, weight: w, burnInSteps: burnIn, refreshSteps: R, peerArch: arch } = params;
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
});
