// TinyBERT-style task distillation (Jiao et al., Findings of EMNLP 2020) in one run of two stages:
//  1. intermediate layers (the first `intermediateFraction` of the epochs):
//       wEmb·MSE(E_S·W_e, E_T) + Σ_m [wAttn·MSE(A_S^m, A_T^g(m)) + wHidden·MSE(H_S^m·W_h^m, H_T^g(m))]
//     with attention maps A (pre-softmax scores as in the paper, or probabilities), learned
//     projections W where the widths differ, and a layer mapping g (uniform by default:
//     student layer m ↔ teacher layer m·N/M, 1-based);
//  2. prediction layer: soft cross-entropy between the logits at temperature T (per-label
//     Bernoulli KL on multi-label tasks), optionally plus the task loss.
import { Linear } from '../nn/layers.js';
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { attentionMseLoss, bernoulliKd, hiddenMseLoss, softCrossEntropy } from '../losses/transformer.js';
import { defineMethod, requireTeacherLogits, type LossContext, type Method } from './method.js';
import { choice, num, struct, type ParseContext } from './params.js';
import { isMultiLabel, taskLoss } from './multilabel-kd.js';
import { encoderDepth, probeWidths, projection, tokenMask } from './distilbert.js';

/** How student layers map to teacher layers: a strategy, or 0-based teacher indices, one per student layer. */
export type LayerMappingSpec = 'uniform' | 'last' | number[];

/** A mapping from YAML: uniform, last, or a list of indices; the old packed string '1,3' still read, with a notice. */
function parseMapping(v: unknown, at: ParseContext): LayerMappingSpec {
  if (v === 'uniform' || v === 'last') return v;
  let ids: unknown[] | null = Array.isArray(v) ? v : null;
  if (typeof v === 'string') {
    ids = v.split(',').map((s) => (s.trim() === '' ? Number.NaN : Number(s.trim())));
    at.deprecated(`${at.where}: the packed string '${v}' is deprecated; give a YAML list, e.g. mapping: [${ids.join(', ')}]`);
  }
  const isIndex = (i: unknown): i is number => typeof i === 'number' && Number.isInteger(i) && i >= 0;
  if (!ids || ids.length === 0 || !ids.every(isIndex)) {
    throw new Error(`${at.where}: must be uniform, last or a list of 0-based teacher layer indices like [1, 3], got ${JSON.stringify(v)}`);
  }
  return ids;
}

/**
 * Teacher layer (0-based) for each student layer: 'uniform' → g(m) = m·N/M − 1 for m = 1..M
 * (TinyBERT's uniform strategy), 'last' → the top M teacher layers, or explicit [1, 3].
 */
export function layerMapping(spec: LayerMappingSpec, studentLayers: number, teacherLayers: number): number[] {
  const M = studentLayers, N = teacherLayers;
  if (spec === 'uniform') {
    if (N % M !== 0) throw new Error(`tinybert: uniform mapping needs the teacher depth (${N}) to be a multiple of the student's (${M}); give an explicit mapping like [1, 3]`);
    return Array.from({ length: M }, (_, m) => ((m + 1) * N) / M - 1);
  }
  if (spec === 'last') return Array.from({ length: M }, (_, m) => N - M + m);
  if (spec.length !== M || spec.some((i) => !Number.isInteger(i) || i < 0 || i >= N)) {
    throw new Error(`tinybert: mapping [${spec.join(', ')}] must list ${M} teacher layer indices in [0, ${N - 1}] (or be uniform / last)`);
  }
  return spec;
}

export const tinybert = defineMethod({
  name: 'tinybert',
  summary: 'TinyBERT: embedding MSE + attention-map MSE + projected hidden-state MSE over mapped layers, then prediction-layer soft cross-entropy (two stages in one run).',
  paper: 'Jiao, Yin, Shang, Jiang, Chen, Li, Wang, Liu, "TinyBERT: Distilling BERT for Natural Language Understanding", Findings of EMNLP 2020 (arXiv:1909.10351)',
  differs: 'both stages in one run (an epoch split, intermediateFraction); the task stage\'s data augmentation is data.text.augment (teacher\'s MLM head ' +
    'or augment.model, p_t 0.4, K 15, N_a 20) with no GloVe: words of several pieces keep themselves; general distillation is a separate run (init: {from: …})',
  needsTeacher: true,
  params: {
    mapping: struct<LayerMappingSpec>({
      default: 'uniform', allowed: 'uniform | last | list of integers', parse: parseMapping,
      description: 'Student→teacher layer mapping: uniform (m·N/M), last, or explicit 0-based teacher indices, one per student layer, like [1, 3]',
    }),
    attention: choice(['scores', 'probs'], { default: 'scores', description: 'Attention maps compared: pre-softmax scores (paper) or probabilities' }),
    intermediateFraction: num({ default: 0.5, unit: 'fraction of epochs', min: 0, max: 1, description: 'Share of the epochs spent on intermediate-layer distillation before the prediction-layer stage' }),
    temperature: num({ default: 1, unit: 'temperature', min: 0.01, max: 100, description: 'Temperature T of the prediction-layer soft cross-entropy (TinyBERT: 1)' }),
    wEmb: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the embedding-layer MSE' }),
    wAttn: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the attention-map MSE (summed over mapped layers)' }),
    wHidden: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the hidden-state MSE (summed over mapped layers)' }),
    wPred: num({ default: 1, unit: 'weight', min: 0, description: 'Weight of the prediction-layer soft cross-entropy' }),
    wTask: num({ default: 0, unit: 'weight', min: 0, description: 'Weight of the task loss in the prediction stage (TinyBERT: 0)' }),
  },
  create(params) {
    const p = { ...params, attn: params.attention, frac: params.intermediateFraction, T: params.temperature };
    let map: number[] = [];
    let embProj: Linear | null = null;
    let hidProj: (Linear | null)[] = [];
    let ready = false;
    const method: Method = {
      features: { student: [], teacher: [] },
      setup(ctx) {
        const M = encoderDepth(ctx.student, 'student', 'tinybert'), N = encoderDepth(ctx.teacher, 'teacher', 'tinybert');
        map = layerMapping(p.mapping, M, N);
        const sl = map.map((_, m) => `layer${m}`), tl = map.map((g) => `layer${g}`);
        method.features = {
          student: ['embeddings', ...sl, ...sl.map((n) => `${n}.attention.${p.attn}`)],
          teacher: ['embeddings', ...tl, ...tl.map((n) => `${n}.attention.${p.attn}`)],
        };
        const w = probeWidths(ctx, ['embeddings', ...sl], ['embeddings', ...tl], 'tinybert');
        embProj = projection(w.student[0]!, w.teacher[0]!);
        hidProj = map.map((_, m) => projection(w.student[m + 1]!, w.teacher[m + 1]!));
        ready = true;
      },
      extraModules: () => [embProj, ...hidProj].filter((l): l is Linear => l !== null),
      losses(ctx: LossContext) {
        if (!ready) throw new Error("method 'tinybert': setup() was not called (the trainer calls it before building the optimizer)");
        const stage1 = ctx.info.epoch < Math.round(p.frac * ctx.info.epochs);
        return tidy(() => {
          const out: Record<string, Tensor> = {};
          if (stage1) {
            const mask = tokenMask(ctx.batch.x);
            const S = ctx.studentFeatures, Tf = ctx.teacherFeatures;
            const proj = (l: Linear | null, x: Tensor): Tensor => (l ? l.call(x) : x);
            out.emb = hiddenMseLoss(proj(embProj, S.embeddings!), Tf.embeddings!, mask).mul(p.wEmb);
            let attn: Tensor | null = null, hid: Tensor | null = null;
            map.forEach((g, m) => {
              const a = attentionMseLoss(S[`layer${m}.attention.${p.attn}`]!, Tf[`layer${g}.attention.${p.attn}`]!, mask);
              const h = hiddenMseLoss(proj(hidProj[m]!, S[`layer${m}`]!), Tf[`layer${g}`]!, mask);
              attn = attn ? attn.add(a) : a;
              hid = hid ? hid.add(h) : h;
            });
            out.attn = attn!.mul(p.wAttn);
            out.hidden = hid!.mul(p.wHidden);
          } else {
            const tl = requireTeacherLogits(ctx, 'tinybert');
            out.pred = (isMultiLabel(ctx) ? bernoulliKd(tl, ctx.studentLogits, p.T) : softCrossEntropy(tl, ctx.studentLogits, p.T)).mul(p.wPred);
            const task = p.wTask > 0 ? taskLoss(ctx) : null;
            if (task) out.task = task.mul(p.wTask);
          }
          return out;
        });
      },
    };
    return method;
  },
});
