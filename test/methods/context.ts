// A LossContext for method tests: only the fields logit-based methods read are meaningful.
import type { LossContext } from '../../src/methods/method.js';
import type { Module } from '../../src/nn/module.js';
import type { Tensor } from '../../src/tensor/tensor.js';

export function context(o: { student: Tensor; teacher: Tensor | null; y: Tensor | null; epoch?: number; step?: number }): LossContext {
  return {
    student: {} as Module,
    teacher: null,
    batch: { x: o.student, y: o.y },
    indices: null,
    info: { epoch: o.epoch ?? 0, epochs: 100, step: o.step ?? 0, numClasses: o.student.shape[1]! },
    studentLogits: o.student,
    teacherLogits: o.teacher,
    studentFeatures: {},
    teacherFeatures: {},
  };
}

export function values(terms: Record<string, Tensor>): Record<string, number> {
  return Object.fromEntries(Object.entries(terms).map(([k, t]) => [k, t.item()]));
}
