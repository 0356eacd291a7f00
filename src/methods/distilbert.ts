// DistilBERT-style distillation (Sanh, Debut, Chaumond, Wolf, 2019): the student (half the
// teacher's depth, initialised from every other teacher layer: initStudentFromTeacher in
// src/nn/zoo/transformer.ts) is trained on
//   alphaKd·T²·KL(p_T ‖ p_S) + alphaTask·task + alphaCos·(1 − cos(h_S, h_T)) over real tokens,
// with the last hidden states compared. The paper's loss pairs the soft term with MLM during
// pre-training; here distillation happens on the downstream task, so the task loss takes the
// MLM term's place (cross-entropy, or BCE for multi-label, where the soft term is per-label
// Bernoulli KL). A narrower student's hidden state is mapped by a learned linear projection.
import { Module } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { hiddenCosineLoss } from '../losses/transformer.js';
import type { Teacher } from '../teachers/teacher.js';
import { defineMethod, requireTeacherLogits, type LossContext, type Method, type SetupContext } from './method.js';
import { num } from './params.js';
import { softTargetLoss, taskLoss } from './multilabel-kd.js';

/** Number of encoder layers of a BERT-style model (its spec), or of a module-backed teacher. */
export function encoderDepth(m: Module | Teacher | null, who: string, method: string): number {
  const model = m && 'model' in m ? (m as { model: unknown }).model : m;
  const layers = (model as { spec?: { layers?: unknown } } | null)?.spec?.layers;
  if (typeof layers !== 'number') throw new Error(`method '${method}': the ${who} must be a BERT-style model (arch 'bert') so its layers can be matched`);
  return layers;
}

/** Real-token mask [B, L] (id != [PAD]) of a batch of ids. */
export function tokenMask(x: Tensor): Tensor {
  return x.ne(0);
}

/** Feature widths (last dimension) of named outputs, probed on ctx.sample in eval mode. */
export function probeWidths(ctx: SetupContext, student: string[], teacher: string[], method: string): { student: number[]; teacher: number[] } {
  if (!ctx.teacher?.features) throw new Error(`method '${method}' needs a teacher that returns intermediate features`);
  if (!ctx.sample) throw new Error(`method '${method}': setup needs a sample batch (pass 'sample' or 'evalSet' to train())`);
  const sample = ctx.sample, t = ctx.teacher;
  return ctx.student.inEvalMode(() => tidy(() => noGrad(() => {
    const s = ctx.student.forwardWithFeatures(sample, student).features;
    const f = t.features!(sample, teacher).features;
    const w = (x: Tensor): number => x.shape[x.ndim - 1]!;
    return { student: student.map((n) => w(s[n]!)), teacher: teacher.map((n) => w(f[n]!)) };
  })));
}

/** A learned linear map from the student's width to the teacher's (null when they agree). */
export function projection(from: number, to: number): Linear | null {
  return from === to ? null : new Linear(from, to);
}

export const distilbert = defineMethod({
  name: 'distilbert',
  summary: 'DistilBERT: alphaKd·T²·KL(teacher‖student) + alphaTask·task loss + alphaCos·(1 − cos) between the last hidden states (real tokens); per-label Bernoulli KL on multi-label tasks.',
  paper: 'Sanh, Debut, Chaumond, Wolf, "DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter", NeurIPS EMC² Workshop 2019 (arXiv:1910.01108); weights 5/2/1 as in its training script',
  needsTeacher: true,
  params: {
    temperature: num({ default: 2, unit: 'temperature', min: 0.01, max: 100, description: 'Softmax (or per-label sigmoid) temperature T of the soft term, scaled by T² (DistilBERT: 2)' }),
    alphaKd: num({ default: 5, unit: 'weight', min: 0, description: 'Weight of the soft-target term (DistilBERT alpha_ce = 5)' }),
    alphaTask: num({ default: 2, unit: 'weight', min: 0, description: 'Weight of the task loss, in place of the MLM loss (DistilBERT alpha_mlm = 2)' }),
    alphaCos: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the hidden-state cosine loss (DistilBERT alpha_cos = 1)' }),
  },
  create({ temperature: T, alphaKd: aKd, alphaTask: aTask, alphaCos: aCos }) {
    let sName = '', tName = '';
    let proj: Linear | null = null;
    let ready = false;
    const method: Method = {
      features: { student: [], teacher: [] },
      setup(ctx) {
        sName = `layer${encoderDepth(ctx.student, 'student', 'distilbert') - 1}`;
        tName = `layer${encoderDepth(ctx.teacher, 'teacher', 'distilbert') - 1}`;
        method.features = aCos > 0 ? { student: [sName], teacher: [tName] } : { student: [], teacher: [] };
        if (aCos > 0) {
          const w = probeWidths(ctx, [sName], [tName], 'distilbert');
          proj = projection(w.student[0]!, w.teacher[0]!);
        }
        ready = true;
      },
      extraModules: () => (proj ? [proj] : []),
      losses(ctx: LossContext) {
        if (!ready) throw new Error("method 'distilbert': setup() was not called (the trainer calls it before building the optimizer)");
        const tl = requireTeacherLogits(ctx, 'distilbert');
        return tidy(() => {
          const out: Record<string, Tensor> = { kd: softTargetLoss(ctx, tl, T).mul(aKd) };
          const task = taskLoss(ctx);
          if (task && aTask > 0) out.task = task.mul(aTask);
          if (aCos > 0) {
            const s = ctx.studentFeatures[sName]!, t = ctx.teacherFeatures[tName]!;
            out.cos = hiddenCosineLoss(proj ? proj.call(s) : s, t, tokenMask(ctx.batch.x)).mul(aCos);
          }
          return out;
        });
      },
    };
    return method;
  },
});
