// Teacher and student each have their own input pipeline. Every model in a run is fed the
// student's inputs (the data through `data.normalize`, as the loader makes them); a teacher may
// have been trained on other inputs (raw ones, or its own normalisation, e.g. a TorchScript model
// from torchvision-style preprocessing). InputMappedTeacher takes the student's inputs and gives
// the teacher its own: undo the student's normalisation, apply the teacher's. Both are
// per-channel affine, so together they are one `x·scale + shift` per channel, differentiable in x
// (input-gradient methods get d/dx of the student's inputs).
import { createHash } from 'node:crypto';
import { Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/factories.js';
import { tidy } from '../tensor/scope.js';
import type { Teacher } from './teacher.js';
import { Module } from '../nn/module.js';

/** (x - mean[c]) / std[c] along dim 1; one number applies to every channel. */
export interface Normalization {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

export interface ChannelMap {
  readonly scale: readonly number[];
  readonly shift: readonly number[];
}

/**
 * The per-channel map from inputs normalised by `from` to inputs normalised by `to` (absent:
 * raw inputs), or null when they are the same. raw = x·sf + mf, so (raw − mt)/st = x·sf/st + (mf − mt)/st.
 */
export function inputMap(from: Normalization | undefined, to: Normalization | undefined): ChannelMap | null {
  if (sameNormalization(from, to)) return null;
  const lens = [from?.mean.length, from?.std.length, to?.mean.length, to?.std.length].filter((n): n is number => n !== undefined);
  const c = Math.max(...lens);
  if (lens.some((n) => n !== 1 && n !== c)) throw new RangeError(`the student's normalisation has ${from?.mean.length ?? 0} channels and the teacher's ${to?.mean.length ?? 0}; each needs one value or one per channel`);
  const at = (v: readonly number[] | undefined, i: number, dflt: number): number => (v === undefined ? dflt : v.length === 1 ? v[0]! : v[i]!);
  const scale: number[] = [], shift: number[] = [];
  for (let i = 0; i < c; i++) {
    const sf = at(from?.std, i, 1), mf = at(from?.mean, i, 0), st = at(to?.std, i, 1), mt = at(to?.mean, i, 0);
    scale.push(sf / st);
    shift.push((mf - mt) / st);
  }
  return { scale, shift };
}

export function sameNormalization(a: Normalization | undefined, b: Normalization | undefined): boolean {
  return JSON.stringify(a ? [a.mean, a.std] : null) === JSON.stringify(b ? [b.mean, b.std] : null);
}

export const describeNormalization = (n: Normalization | undefined): string => (n ? `mean [${n.mean.join(', ')}], std [${n.std.join(', ')}]` : 'raw inputs');

/** A teacher fed through a per-channel input map; everything else is the inner teacher's. */
export class InputMappedTeacher implements Teacher {
  readonly description: string;
  /** The inner teacher's checksum plus the map's: the teacher-output cache keys on both. */
  readonly checksum: string;
  readonly logitsWithGrad?: (x: Tensor) => Tensor;
  readonly features?: (x: Tensor, names: string[]) => { output: Tensor; features: Record<string, Tensor> };
  readonly featuresWithGrad?: (x: Tensor, names: string[]) => { output: Tensor; features: Record<string, Tensor> };

  constructor(readonly inner: Teacher, readonly map: ChannelMap, readonly normalization: Normalization | undefined) {
    this.description = `${inner.description} (its inputs: ${describeNormalization(normalization)})`;
    this.checksum = `${inner.checksum}+input:${createHash('sha256').update(JSON.stringify(map)).digest('hex').slice(0, 16)}`;
    const withGrad = inner.logitsWithGrad;
    if (withGrad) this.logitsWithGrad = (x) => tidy(() => withGrad.call(inner, this.apply(x)));
    const features = inner.features;
    if (features) this.features = (x, names) => tidy(() => features.call(inner, this.apply(x), names));
    const featuresWithGrad = inner.featuresWithGrad;
    if (featuresWithGrad) this.featuresWithGrad = (x, names) => tidy(() => featuresWithGrad.call(inner, this.apply(x), names));
  }

  /** The inner teacher's module, if it has one (as CachedTeacher.model: methods read its layer names). */
  get model(): Module | undefined {
    const m = 'model' in this.inner ? this.inner.model : undefined;
    return m instanceof Module ? m : undefined;
  }
  get numClasses(): number { return this.inner.numClasses; }
  get numParameters(): number { return this.inner.numParameters; }
  get classNames(): readonly string[] | undefined { return this.inner.classNames; }

  logits(x: Tensor): Tensor {
    return tidy(() => this.inner.logits(this.apply(x)));
  }

  /** x·scale + shift along dim 1 (channels of images, features of vectors). */
  private apply(x: Tensor): Tensor {
    const { scale, shift } = this.map;
    if (scale.length === 1) return x.mul(scale[0]!).add(shift[0]!);
    if (x.shape.length < 2 || x.shape[1] !== scale.length) throw new RangeError(`teacher input normalisation has ${scale.length} channels, the inputs [${x.shape.join(', ')}] have ${x.shape[1]}`);
    const shape = x.shape.map((d, i) => (i === 1 ? d : 1));
    return x.mul(tensor(Float32Array.from(scale), { shape })).add(tensor(Float32Array.from(shift), { shape }));
  }
}

/**
 * The teacher as a function of the student's inputs (normalised by `student`, or raw), when it
 * expects inputs normalised by `teacher` (or raw); unchanged when the two are the same.
 */
export function withInputPipeline(t: Teacher, student: Normalization | undefined, teacher: Normalization | undefined): Teacher {
  const map = inputMap(student, teacher);
  return map ? new InputMappedTeacher(t, map, teacher) : t;
}
