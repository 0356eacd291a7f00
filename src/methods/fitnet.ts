// FitNets hints (Romero et al., ICLR 2015): intermediate student features, mapped by a learnable
// connector onto the teacher's feature shape, regress the teacher's features at chosen layer
// pairs; trained jointly with the label loss (and optionally KD), as RepDistiller does.
import { Module } from '../nn/module.js';
import { Conv2d, Linear } from '../nn/layers.js';
import type { Tensor } from '../tensor/tensor.js';
import { adaptiveAvgPool2d, crossEntropy } from '../tensor/functional.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { hintLoss, HINT_LOSSES, type HintLoss } from '../losses/features.js';
import type { Measure } from '../losses/agreement.js';
import { KD_PARAMS, kdTerms } from './kd.js';
import type { HyperParam, LossContext, Method, MethodSpec, SetupContext } from './method.js';

export interface LayerPair { student: string; teacher: string; weight: number }

/**
 * Layer pairs from 'stage1:stage1,stage2:stage2' ('name' alone pairs a name with itself) and
 * optional per-pair weights '1,0.5' (empty: all 1).
 */
export function parsePairs(pairs: string, weights: string, method: string): LayerPair[] {
  const items = pairs.split(',').map((p) => p.trim()).filter(Boolean);
  if (items.length === 0) throw new Error(`method '${method}': 'pairs' names no layers (e.g. 'stage1:stage1,stage2:stage2')`);
  const ws = weights.trim() ? weights.split(',').map((w) => Number(w.trim())) : items.map(() => 1);
  if (ws.length !== items.length || ws.some((w) => !Number.isFinite(w) || w < 0)) {
    throw new Error(`method '${method}': 'weights' must be ${items.length} non-negative numbers separated by commas, got '${weights}'`);
  }
  return items.map((it, i) => {
    const parts = it.split(':').map((s) => s.trim());
    if (parts.length > 2 || parts.some((s) => !s)) throw new Error(`method '${method}': layer pair '${it}' must be 'student_layer:teacher_layer'`);
    return { student: parts[0]!, teacher: parts[1] ?? parts[0]!, weight: ws[i]! };
  });
}

export const PAIR_PARAMS: Record<string, HyperParam> = {
  weights: { default: '', description: "Per-pair weights, comma-separated in the order of 'pairs' (empty: all 1)" },
};

/** Feature shapes (without the batch dimension) on a probe batch, both networks in eval mode. */
export function probeFeatureShapes(ctx: SetupContext, pairs: LayerPair[], method: string): { student: number[][]; teacher: number[][] } {
  if (!ctx.teacher) throw new Error(`method '${method}' needs a teacher`);
  if (!ctx.teacher.features) throw new Error(`method '${method}': the teacher (${ctx.teacher.description}) cannot return intermediate features`);
  if (!ctx.sample) throw new Error(`method '${method}': setup needs a sample batch to probe feature shapes (pass 'sample' or 'evalSet' to train())`);
  const sample = ctx.sample, teacher = ctx.teacher;
  return ctx.student.inEvalMode(() => tidy(() => noGrad(() => {
    const s = ctx.student.forwardWithFeatures(sample, pairs.map((p) => p.student)).features;
    const t = teacher.features!(sample, pairs.map((p) => p.teacher)).features;
    return {
      student: pairs.map((p) => s[p.student]!.shape.slice(1)),
      teacher: pairs.map((p) => t[p.teacher]!.shape.slice(1)),
    };
  })));
}

/**
 * Maps a student feature onto the teacher's shape: a 1×1 convolution for [C, H, W] maps (then an
 * adaptive average pool when the spatial sizes differ), a linear layer for [D] vectors.
 */
export class Connector extends Module {
  readonly map: Module;
  constructor(readonly from: number[], readonly to: number[]) {
    super();
    if (from.length === 3 && to.length === 3) this.map = this.registerModule('conv', new Conv2d(from[0]!, to[0]!, 1, { bias: false }));
    else if (from.length === 1 && to.length === 1) this.map = this.registerModule('linear', new Linear(from[0]!, to[0]!));
    else throw new RangeError(`Connector: cannot map a student feature [${from.join(', ')}] onto a teacher feature [${to.join(', ')}] (both must be [C, H, W] or both [D])`);
  }
  forward(x: Tensor): Tensor {
    const y = this.map.call(x);
    if (this.to.length === 3 && (this.from[1] !== this.to[1] || this.from[2] !== this.to[2])) {
      return tidy(() => adaptiveAvgPool2d(y, [this.to[1]!, this.to[2]!]));
    }
    return y;
  }
}

const sameShape = (a: number[], b: number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

export const fitnet: MethodSpec = {
  name: 'fitnet',
  summary: 'FitNets hints: beta·Σ w_i·hint(connector_i(student_i), teacher_i) over layer pairs, plus (1−alpha)·CE and alpha·KD; ' +
    'connectors (1×1 conv / linear) are built where shapes differ and trained with the student.',
  paper: 'Romero, Ballas, Kahou, Chassang, Gatta, Bengio, "FitNets: Hints for Thin Deep Nets", ICLR 2015 (joint training and beta = 100 as in RepDistiller)',
  needsTeacher: true,
  params: {
    pairs: { default: 'stage2:stage2', description: "Layer pairs 'student:teacher', comma-separated (module paths as in forwardWithFeatures)" },
    ...PAIR_PARAMS,
    beta: { default: 100, unit: 'weight', min: 0, description: 'Weight of the hint term (RepDistiller uses 100 with MSE)' },
    loss: { default: 'mse', choices: [...HINT_LOSSES], description: 'Hint loss: mse / l1 (element means) or cosine (1 − cosine similarity per sample)' },
    ...KD_PARAMS,
    alpha: { ...KD_PARAMS.alpha!, default: 0, description: 'Weight of the KD soft term (0: hints + label CE only, as in RepDistiller); the label CE gets 1 − alpha' },
  },
  create(params) {
    const pairs = parsePairs(params.pairs as string, params.weights as string, 'fitnet');
    const beta = params.beta as number, kind = params.loss as HintLoss;
    const kd = { temperature: params.temperature as number, alpha: params.alpha as number, measure: params.measure as Measure };
    let connectors: (Connector | null)[] | null = null;
    const method: Method = {
      features: { student: pairs.map((p) => p.student), teacher: pairs.map((p) => p.teacher) },
      setup(ctx) {
        const shapes = probeFeatureShapes(ctx, pairs, 'fitnet');
        connectors = pairs.map((_, i) => (sameShape(shapes.student[i]!, shapes.teacher[i]!) ? null : new Connector(shapes.student[i]!, shapes.teacher[i]!)));
      },
      extraModules: () => (connectors ?? []).filter((c): c is Connector => c !== null),
      losses(ctx: LossContext) {
        if (!connectors) throw new Error("method 'fitnet': setup() was not called, so the connectors do not exist (the trainer calls it before building the optimizer)");
        const cs = connectors;
        return tidy(() => {
          const parts = pairFeatures(ctx, pairs, 'fitnet').map(({ s, t, weight }, i) => {
            const c = cs[i];
            return hintLoss(c ? c.call(s) : s, t, kind).mul(weight);
          });
          return { ...labelAndKdTerms(ctx, kd), hint: sumOf(parts).mul(beta) };
        });
      },
    };
    return method;
  },
};

export function sumOf(ts: Tensor[]): Tensor {
  let acc = ts[0]!;
  for (const t of ts.slice(1)) acc = acc.add(t);
  return acc;
}

/**
 * The feature methods' label and soft terms: (1−alpha)·CE on the labels (when there are any) and,
 * with alpha > 0 and teacher logits, alpha·KD, as in `kd`.
 */
export function labelAndKdTerms(ctx: LossContext, kd: { temperature: number; alpha: number; measure: Measure }): Record<string, Tensor> {
  const terms = kd.alpha > 0 && ctx.teacherLogits ? kdTerms(ctx, ctx.teacherLogits, kd) : {};
  if (ctx.batch.y !== null && !('ce' in terms)) terms.ce = crossEntropy(ctx.studentLogits, ctx.batch.y).mul(1 - kd.alpha);
  return terms;
}

/** Each pair's student and teacher feature, with an error naming a feature the trainer did not provide. */
export function pairFeatures(ctx: LossContext, pairs: LayerPair[], method: string): { s: Tensor; t: Tensor; weight: number }[] {
  return pairs.map((p) => {
    const s = ctx.studentFeatures[p.student], t = ctx.teacherFeatures[p.teacher];
    if (!s || !t) throw new Error(`method '${method}': missing feature '${!s ? p.student : p.teacher}'`);
    return { s, t, weight: p.weight };
  });
}
