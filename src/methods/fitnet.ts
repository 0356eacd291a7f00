// FitNets hints (Romero et al., ICLR 2015): intermediate student features, mapped by a learnable
// connector onto the teacher's feature shape, regress the teacher's features at chosen layer
// pairs; trained jointly with the label loss (and optionally KD), as RepDistiller does, or as the
// paper's hint stage alone (hintOnly, with the paper's convolutional regressor), whose result a
// second chain stage (`init: previous`, src/run/chain.ts) distils from the original teacher.
import { Module } from '../nn/module.js';
import { activation, ACTIVATIONS, Conv2d, Linear, type ActivationName } from '../nn/layers.js';
import type { Tensor } from '../tensor/tensor.js';
import { adaptiveAvgPool2d, crossEntropy } from '../tensor/functional.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import { hintLoss, HINT_LOSSES } from '../losses/features.js';
import type { Measure } from '../losses/agreement.js';
import { KD_PARAMS, kdTerms } from './kd.js';
import { defineMethod, type LossContext, type Method, type SetupContext } from './method.js';
import { bool, choice, num, numbers, struct, yamlFlow, type ParseContext } from './params.js';

/** A student layer and the teacher layer it learns from, by module path. */
export interface LayerNames { student: string; teacher: string }
export interface LayerPair extends LayerNames { weight: number }

const isName = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';
/** The shortest YAML of a pair list: a bare name where both layers are the same. */
const pairsYaml = (ps: LayerNames[]): string => yamlFlow(ps.map((p) => (p.student === p.teacher ? p.student : p)));

/**
 * Layer pairs from YAML: a list whose items are {student: a, teacher: b} or a bare name (the same
 * layer in both), or a map {student_layer: teacher_layer}. The first release's packed string
 * 'a:b,c' is still read, with a deprecation notice.
 */
export function parseLayerPairs(v: unknown, at: ParseContext): LayerNames[] {
  let pairs: LayerNames[];
  if (typeof v === 'string') {
    pairs = v.split(',').map((s) => s.trim()).filter(Boolean).map((it) => {
      const parts = it.split(':').map((s) => s.trim());
      if (parts.length > 2 || parts.some((s) => !s)) throw new Error(`${at.where}: layer pair '${it}' must be 'student_layer:teacher_layer'`);
      return { student: parts[0]!, teacher: parts[1] ?? parts[0]! };
    });
    if (pairs.length) at.deprecated(`${at.where}: the packed string '${v}' is deprecated; give a YAML list, e.g. pairs: ${pairsYaml(pairs)}`);
  } else if (Array.isArray(v)) {
    pairs = v.map((it, i) => {
      if (isName(it)) return { student: it, teacher: it };
      const o = it as Record<string, unknown> | null;
      if (o === null || typeof o !== 'object' || !isName(o.student) || !isName(o.teacher) || Object.keys(o).length !== 2) {
        throw new Error(`${at.where}: item ${i} must be {student: layer, teacher: layer} or a layer name, got ${JSON.stringify(it)}`);
      }
      return { student: o.student, teacher: o.teacher };
    });
  } else if (v !== null && typeof v === 'object') {
    pairs = Object.entries(v).map(([s, t]) => {
      if (!isName(t)) throw new Error(`${at.where}: the teacher layer of '${s}' must be a layer name, got ${JSON.stringify(t)}`);
      return { student: s, teacher: t };
    });
  } else {
    throw new Error(`${at.where}: must be a list of layer pairs ({student: a, teacher: b} or a name) or a map {student_layer: teacher_layer}, got ${JSON.stringify(v)}`);
  }
  if (pairs.length === 0) throw new Error(`${at.where}: names no layers (e.g. [{student: stage1, teacher: stage1}])`);
  return pairs;
}

/** The layer-pair parameters fitnet and attention share: which layers, and each pair's weight. */
export function pairParams(defaultPairs: string[], shape: string) {
  return {
    pairs: struct<LayerNames[]>({
      default: defaultPairs.map((n) => ({ student: n, teacher: n })),
      allowed: 'list of pairs | map',
      description: `Layer pairs by module path as in forwardWithFeatures${shape}: [{student: a, teacher: b}, …], a bare name for the same layer in both, or a map {a: b}`,
      parse: parseLayerPairs,
    }),
    weights: numbers({ default: [], min: 0, description: "Per-pair weights in the order of 'pairs' (empty: all 1)" }),
  };
}

/** Pairs with their weights; `weights` empty means 1 each. */
export function weightedPairs(pairs: LayerNames[], weights: number[], method: string): LayerPair[] {
  if (weights.length && weights.length !== pairs.length) {
    throw new Error(`method '${method}': 'weights' must list ${pairs.length} numbers, one per layer pair, got ${weights.length}`);
  }
  return pairs.map((p, i) => ({ ...p, weight: weights[i] ?? 1 }));
}

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

/**
 * The paper's regressor (section 2.2; the authors' generateConvRegressor): for [C, H, W] maps a
 * convolution without padding whose kernel is (N_g,1 − N_h,1 + 1) × (N_g,2 − N_h,2 + 1), so the
 * student's N_g map comes out at the teacher's N_h size with the teacher's channels, with a bias,
 * followed by the hint layer's nonlinearity (the paper: u_h and r must be the same nonlinearity);
 * for [D] vectors a linear layer and that nonlinearity (the authors' non-convolutional regressor).
 * A student map smaller than the teacher's cannot be reached without padding (the authors' code
 * refuses it too), so that is an error.
 */
export class ConvRegressor extends Module {
  readonly map: Module;
  readonly act: Module;
  constructor(readonly from: number[], readonly to: number[], act: ActivationName) {
    super();
    if (from.length === 3 && to.length === 3) {
      const k = [from[1]! - to[1]! + 1, from[2]! - to[2]! + 1] as [number, number];
      if (k[0] < 1 || k[1] < 1) {
        throw new RangeError(`ConvRegressor: the student map [${from.join(', ')}] is smaller than the teacher's hint [${to.join(', ')}]; the paper's convolutional regressor (no padding) cannot enlarge it (use regressor: connector, which pools instead)`);
      }
      this.map = this.registerModule('conv', new Conv2d(from[0]!, to[0]!, k));
    } else if (from.length === 1 && to.length === 1) this.map = this.registerModule('linear', new Linear(from[0]!, to[0]!));
    else throw new RangeError(`ConvRegressor: cannot map a student feature [${from.join(', ')}] onto a teacher feature [${to.join(', ')}] (both must be [C, H, W] or both [D])`);
    this.act = this.registerModule('act', activation(act));
  }
  forward(x: Tensor): Tensor {
    return this.act.call(this.map.call(x));
  }
}

const sameShape = (a: number[], b: number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

export const fitnet = defineMethod({
  name: 'fitnet',
  summary: 'FitNets hints: beta·Σ w_i·hint(connector_i(student_i), teacher_i) over layer pairs, plus (1−alpha)·CE and alpha·KD; ' +
    'connectors (1×1 conv / linear) are built where shapes differ and trained with the student.',
  paper: 'Romero, Ballas, Kahou, Chassang, Gatta, Bengio, "FitNets: Hints for Thin Deep Nets", ICLR 2015',
  differs: 'Default is RepDistiller\'s joint loss (hints + CE, beta 100, 1×1 connector, element-mean MSE), not the paper\'s two stages; ' +
    'the paper\'s procedure is hintOnly + regressor: conv + loss: half_sse in a chain stage, then a stage with init: previous distilling from the original teacher ' +
    '(experiments/features/cnn-fitnet-2stage.yaml); the paper\'s stage 2 anneals the KD weight, ours keeps alpha fixed',
  needsTeacher: true,
  params: {
    ...pairParams(['stage2'], ''),
    beta: num({ default: 100, unit: 'weight', min: 0, description: 'Weight of the hint term (RepDistiller uses 100 with MSE)' }),
    loss: choice(HINT_LOSSES, {
      default: 'mse',
      description: 'Hint loss: mse / l1 (element means), cosine (1 − cosine similarity per sample), or half_sse (½‖u_h − r(v_g)‖² per sample, batch mean: the paper\'s L_HT)',
    }),
    regressor: choice(['connector', 'conv'], {
      default: 'connector',
      description: 'Map from student to teacher shape where they differ: connector = bias-free 1×1 conv (+ average pool) or linear; ' +
        'conv = the paper\'s regressor, a valid conv of kernel N_g − N_h + 1 with bias, then regressorActivation',
    }),
    regressorActivation: choice(ACTIVATIONS, {
      default: 'relu',
      description: 'Nonlinearity after the paper\'s regressor (regressor: conv); the paper uses the hint layer\'s own (the zoo cnn\'s stages end in ReLU + max pool)',
    }),
    hintOnly: bool({
      default: false,
      description: 'The paper\'s stage 1: the hint term alone (no label CE, no KD), so only the student up to the guided layers and the regressors learn',
    }),
    ...KD_PARAMS,
    alpha: { ...KD_PARAMS.alpha, default: 0, description: 'Weight of the KD soft term (0: hints + label CE only, as in RepDistiller); the label CE gets 1 − alpha' },
  },
  create(p) {
    const pairs = weightedPairs(p.pairs, p.weights, 'fitnet');
    const { beta, loss: kind, hintOnly, regressor, regressorActivation } = p;
    const kd = { temperature: p.temperature, alpha: p.alpha, measure: p.measure };
    let connectors: (Connector | ConvRegressor | null)[] | null = null;
    const method: Method = {
      features: { student: pairs.map((p) => p.student), teacher: pairs.map((p) => p.teacher) },
      setup(ctx) {
        const shapes = probeFeatureShapes(ctx, pairs, 'fitnet');
        connectors = pairs.map((_, i) => {
          const from = shapes.student[i]!, to = shapes.teacher[i]!;
          if (sameShape(from, to)) return null;
          return regressor === 'conv' ? new ConvRegressor(from, to, regressorActivation) : new Connector(from, to);
        });
      },
      extraModules: () => (connectors ?? []).filter((c): c is Connector | ConvRegressor => c !== null),
      losses(ctx: LossContext) {
        if (!connectors) throw new Error("method 'fitnet': setup() was not called, so the connectors do not exist (the trainer calls it before building the optimizer)");
        const cs = connectors;
        return tidy(() => {
          const parts = pairFeatures(ctx, pairs, 'fitnet').map(({ s, t, weight }, i) => {
            const c = cs[i];
            return hintLoss(c ? c.call(s) : s, t, kind).mul(weight);
          });
          const hint = sumOf(parts).mul(beta);
          return hintOnly ? { hint } : { ...labelAndKdTerms(ctx, kd), hint };
        });
      },
    };
    return method;
  },
});

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
