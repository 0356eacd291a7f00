// The base of teachers that serve some outputs from a store (the teacher-output cache, the view
// cache) and pass everything else — evaluation inputs, features, input derivatives — to the live
// teacher, which stays loaded for that.
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';
import type { Teacher } from './teacher.js';

export class DelegatingTeacher implements Teacher {
  readonly description: string;
  readonly checksum: string;
  readonly numClasses: number;
  readonly numParameters: number;
  features?: Teacher['features'];
  logitsWithGrad?: Teacher['logitsWithGrad'];
  featuresWithGrad?: Teacher['featuresWithGrad'];
  /** The live teacher's module, if it has one: methods that match its layers (DistilBERT, TinyBERT) read its spec. */
  readonly model?: Module;

  /** `what` names the subclass in the error when the store's class count is not the teacher's. */
  constructor(readonly teacher: Teacher, what: string, storedClasses: number) {
    if (storedClasses !== teacher.numClasses) throw new Error(`${what}: cache has ${storedClasses} classes, the teacher ${teacher.numClasses}`);
    this.description = teacher.description;
    this.checksum = teacher.checksum;
    this.numClasses = teacher.numClasses;
    this.numParameters = teacher.numParameters;
    if ('model' in teacher) this.model = (teacher as { model: Module }).model;
    if (teacher.features) this.features = (x, names) => teacher.features!(x, names);
    // Input derivatives beyond what a store holds (cached targets) need the live teacher's graph.
    if (teacher.logitsWithGrad) this.logitsWithGrad = (x) => teacher.logitsWithGrad!(x);
    // Data-free methods train a generator through the frozen teacher's features.
    if (teacher.featuresWithGrad) this.featuresWithGrad = (x, names) => teacher.featuresWithGrad!(x, names);
  }

  logits(x: Tensor): Tensor {
    return this.teacher.logits(x);
  }
}
