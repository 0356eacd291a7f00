// What the representation methods (pkt, sp, rkd, cc, nst, vid, crd, reviewkd) share: which layers
// they read, found at setup from the zoo models' own names when the experiment names none, and the
// shapes of those layers.
//
// The layers are chosen before training starts, but the sensible default differs per architecture
// (the penultimate embedding is 'flatten' in a ResNet, 'fc1' in the CNN, 'layer2' in a 2-layer
// MLP). So an empty name means "the model's own" (ZooModel.embeddingName / featureNames), resolved
// in setup; `features` reads the resolved names, and the trainer reads them after setup. The
// runner builds the teacher-output cache before setup, so default layers are served by the live
// teacher; naming them in the experiment lets the cache store them.
import { Module } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import { noGrad } from '../tensor/autograd.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Teacher } from '../teachers/teacher.js';
import type { LayerNames } from './fitnet.js';
import { labelAndKdTerms, pairFeatures, parseLayerPairs } from './fitnet.js';
import { KD_PARAMS } from './kd.js';
import type { Measure } from '../losses/agreement.js';
import type { LossContext, Method, SetupContext } from './method.js';
import { str, struct } from './params.js';

/** A zoo model's names (src/nn/zoo/common.ts), duck-typed so TorchScript/ONNX modules simply lack them. */
interface Named { featureNames: string[]; embeddingName: string }

function namesOf(m: unknown): Named | null {
  const model = m !== null && typeof m === 'object' && 'model' in m ? (m as { model: unknown }).model : m;
  const n = model as Partial<Named> | null;
  return n && Array.isArray(n.featureNames) && typeof n.embeddingName === 'string' ? (n as Named) : null;
}

/** studentLayer / teacherLayer: one representation per network ('' = the zoo model's embedding). */
export function embeddingParams(what: string) {
  return {
    studentLayer: str({ default: '', description: `Module path of the student's ${what} ('': the zoo model's embeddingName, its flattened penultimate layer)` }),
    teacherLayer: str({ default: '', description: `Module path of the teacher's ${what} ('': the zoo model's embeddingName)` }),
  };
}

/** pairs: layer pairs of stage outputs ([] = chosen at setup from the zoo models' featureNames). */
export function stagePairsParam(auto: string) {
  return {
    pairs: struct<LayerNames[]>({
      default: [],
      allowed: 'list of {student, teacher} (or a name) | map student: teacher | []',
      description: `Layer pairs by module path: [{student: a, teacher: b}, …], a bare name for the same layer in both, or a map {a: b}; [] = ${auto}`,
      parse: (v, at) => (Array.isArray(v) && v.length === 0 ? [] : parseLayerPairs(v, at)),
    }),
  };
}

export type ShapeNeed = 'any' | 'maps';

/**
 * The layers a method reads: given by the experiment, or resolved at setup from the two zoo
 * models by `auto(studentNames, teacherNames, shapeOf)`. Then probes every layer's shape once.
 */
export class Layers {
  #pairs: LayerNames[] | null;
  #shapes: { student: number[][]; teacher: number[][] } | null = null;

  constructor(readonly method: string, given: LayerNames[], readonly need: ShapeNeed,
    readonly auto: (s: Named, t: Named, ctx: SetupContext) => LayerNames[]) {
    this.#pairs = given.length ? given : null;
  }

  /** What Method.features returns: the given or resolved layers (empty before a default is resolved). */
  get features(): { student: string[]; teacher: string[] } {
    const p = this.#pairs ?? [];
    return { student: p.map((q) => q.student), teacher: p.map((q) => q.teacher) };
  }

  get pairs(): LayerNames[] {
    if (!this.#pairs) throw new Error(`method '${this.method}': setup() was not called, so its layers are not chosen yet (the trainer calls it before the first step)`);
    return this.#pairs;
  }

  /** Feature shapes without the batch dimension, per pair (after setup). */
  get shapes(): { student: number[][]; teacher: number[][] } {
    if (!this.#shapes) throw new Error(`method '${this.method}': setup() was not called`);
    return this.#shapes;
  }

  /** Resolves default layers and probes their shapes on ctx.sample; checks spatial maps where needed. */
  setup(ctx: SetupContext): void {
    const m = this.method;
    if (!ctx.teacher) throw new Error(`method '${m}' needs a teacher`);
    if (!ctx.teacher.features) throw new Error(`method '${m}': the teacher (${ctx.teacher.description}) cannot return intermediate features`);
    if (!this.#pairs) {
      const s = namesOf(ctx.student), t = namesOf(ctx.teacher);
      if (!s || !t) {
        throw new Error(`method '${m}': the ${!s ? 'student' : `teacher (${ctx.teacher.description})`} is not a kdistill zoo model, so its layers cannot be chosen ` +
          'automatically; name them in the method\'s parameters (module paths)');
      }
      this.#pairs = this.auto(s, t, ctx);
    }
    this.#shapes = probeShapes(ctx.student, ctx.teacher, this.#pairs, ctx.sample, m);
    if (this.need === 'maps') {
      this.#pairs.forEach((p, i) => {
        for (const [who, name, shape] of [['student', p.student, this.#shapes!.student[i]!], ['teacher', p.teacher, this.#shapes!.teacher[i]!]] as const) {
          if (shape.length !== 3) {
            throw new Error(`method '${m}' needs feature maps [C, H, W], but the ${who}'s layer '${name}' gives [${shape.join(', ')}]` +
              (shape.length === 1 ? ' (an MLP, or a layer after pooling, has no spatial maps)' : ''));
          }
        }
      });
    }
  }
}

/** The stage outputs of a zoo model that are (or, with need 'any', need not be) spatial maps. */
export function stageNames(n: Named, student: boolean, ctx: SetupContext, need: ShapeNeed): string[] {
  if (need === 'any') return n.featureNames;
  const model = student ? ctx.student : (ctx.teacher as Teacher);
  const shapes = probeShapes1(model, n.featureNames, ctx.sample, student);
  return n.featureNames.filter((_, i) => shapes[i]!.length === 3);
}

/** Pairs the deepest stages of both lists (the shallow extra stages of the deeper network are left out). */
export function alignDeepest(s: string[], t: string[], method: string): LayerNames[] {
  const k = Math.min(s.length, t.length);
  if (k === 0) throw new Error(`method '${method}': the ${s.length === 0 ? 'student' : 'teacher'} has no stage outputs of the kind this method needs (spatial maps [C, H, W]); an MLP has none`);
  return s.slice(s.length - k).map((name, i) => ({ student: name, teacher: t[t.length - k + i]! }));
}

function probeShapes1(model: Module | Teacher, names: string[], sample: Tensor | undefined, student: boolean): number[][] {
  if (!sample) throw new Error('setup needs a sample batch to probe feature shapes (pass \'sample\' or \'evalSet\' to train())');
  return tidy(() => noGrad(() => {
    const f = student ? (model as Module).inEvalMode(() => (model as Module).forwardWithFeatures(sample, names).features)
      : (model as Teacher).features!(sample, names).features;
    return names.map((n) => f[n]!.shape.slice(1));
  }));
}

function probeShapes(student: Module, teacher: Teacher, pairs: LayerNames[], sample: Tensor | undefined, method: string): { student: number[][]; teacher: number[][] } {
  if (!sample) throw new Error(`method '${method}': setup needs a sample batch to probe feature shapes (pass 'sample' or 'evalSet' to train())`);
  return {
    student: probeShapes1(student, pairs.map((p) => p.student), sample, true),
    teacher: probeShapes1(teacher, pairs.map((p) => p.teacher), sample, false),
  };
}

/** Each pair's student and teacher feature from the loss context (fitnet's pairFeatures, unweighted). */
export function featurePairs(ctx: LossContext, pairs: LayerNames[], method: string): { s: Tensor; t: Tensor }[] {
  return pairFeatures(ctx, pairs.map((p) => ({ ...p, weight: 1 })), method);
}

/** The embedding pair: given names, or each zoo model's embeddingName. */
export function embeddingLayers(method: string, p: { studentLayer: string; teacherLayer: string }): Layers {
  const given = p.studentLayer && p.teacherLayer ? [{ student: p.studentLayer, teacher: p.teacherLayer }] : [];
  return new Layers(method, given, 'any', (s, t) => [{ student: p.studentLayer || s.embeddingName, teacher: p.teacherLayer || t.embeddingName }]);
}

/** [N, …] → [N, D]. */
export const flat = (x: Tensor): Tensor => x.reshape([x.shape[0]!, -1]);

/**
 * A linear embedding head on flattened features: RepDistiller's LinearEmbed (CC) and, with
 * `l2`, its Embed (CRD), whose output is divided by its L2 norm (no ε, as there).
 */
export class EmbedHead extends Module {
  readonly linear: Linear;
  constructor(readonly inFeatures: number, readonly outFeatures: number, readonly l2: boolean) {
    super();
    this.linear = this.registerModule('linear', new Linear(inFeatures, outFeatures));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const y = this.linear.call(flat(x));
      return this.l2 ? y.div(y.square().sum({ dim: 1, keepdim: true }).sqrt()) : y;
    });
  }
}

/** Elements per sample of a feature shape (without the batch dimension). */
export const sizeOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * The KD parameters as the RepDistiller runs of these methods set them: alpha 0 (the
 * representation term and the label CE only), KD joining with alpha > 0.
 */
export function repdistillerKdParams(method: string) {
  return {
    ...KD_PARAMS,
    alpha: { ...KD_PARAMS.alpha, default: 0, description: `Weight of the KD soft term (0 as in RepDistiller's ${method} runs); the label CE gets 1 − alpha` },
  };
}

/**
 * A representation method from its layers and its terms: features from the layers, setup that
 * resolves them (then builds the method's own parts), and losses = the label/KD terms plus
 * `terms` on each pair's features (which fails with "setup() was not called" before setup).
 */
export function representationMethod(o: {
  layers: Layers;
  kd: { temperature: number; alpha: number; measure: Measure };
  build?(ctx: SetupContext): void;
  extras?(): Module[];
  terms(ctx: LossContext, features: { s: Tensor; t: Tensor }[]): Record<string, Tensor>;
}): Method {
  const { layers } = o;
  return {
    get features() { return layers.features; },
    setup(ctx) {
      layers.setup(ctx);
      o.build?.(ctx);
    },
    ...(o.extras ? { extraModules: o.extras } : {}),
    losses(ctx) {
      return tidy(() => {
        const f = featurePairs(ctx, layers.pairs, layers.method);
        return { ...labelAndKdTerms(ctx, o.kd), ...o.terms(ctx, f) };
      });
    },
  };
}
