// Shared by the teacher-output cache tests: a small learnable synthetic dataset, batches of its
// rows, and an element-wise closeness check.
import assert from 'node:assert/strict';
import { tensor } from '../../src/tensor/factories.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import type { Dataset } from '../../src/data/dataset.js';
import type { ModuleTeacher } from '../../src/teachers/sources.js';
import type { Teacher } from '../../src/teachers/teacher.js';

/**
 * n seeded uniform samples of `shape`, labels i mod 4; the class lights up pixel `hotStride·y`
 * (+2), so a small model can learn it.
 */
export function syntheticData(n: number, seed: number, o: { shape: number[]; hotStride: number; name: string; labelled?: boolean }): Dataset {
  const d = o.shape.reduce((a, b) => a * b, 1);
  let s = seed;
  const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const x = new Float32Array(n * d).map(() => rnd());
  const y = Int32Array.from({ length: n }, (_, i) => i % 4);
  for (let i = 0; i < n; i++) x[i * d + o.hotStride * y[i]!] += 2;
  return { name: o.name, sampleShape: o.shape, x, y: o.labelled === false ? null : y, size: n, numClasses: 4 };
}

/** The given dataset rows as one batch tensor (no augmentation). */
export function rowsOf(ds: Dataset, rows: number[]): Tensor {
  const d = ds.sampleShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(rows.length * d);
  rows.forEach((r, i) => x.set(ds.x.subarray(r * d, r * d + d), i * d));
  return tensor(x, { shape: [rows.length, ...ds.sampleShape] });
}

export function assertClose(a: Float32Array, b: Float32Array, tol: number, msg: string): void {
  assert.equal(a.length, b.length, msg);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  assert.ok(worst <= tol, `${msg}: max |diff| ${worst} > ${tol}`);
}

/** A teacher that counts its live passes: logits (calls and rows), features (calls and rows) and logits with gradients. */
export class CountingTeacher implements Teacher {
  logitCalls = 0;
  logitRows = 0;
  featureCalls = 0;
  featureRows = 0;
  gradCalls = 0;
  constructor(readonly inner: ModuleTeacher) {}
  get description(): string { return this.inner.description; }
  get checksum(): string { return this.inner.checksum; }
  get numClasses(): number { return this.inner.numClasses; }
  get numParameters(): number { return this.inner.numParameters; }
  logits(x: Tensor): Tensor {
    this.logitCalls++;
    this.logitRows += x.shape[0]!;
    return this.inner.logits(x);
  }
  logitsWithGrad(x: Tensor): Tensor {
    this.gradCalls++;
    return this.inner.logitsWithGrad(x);
  }
  features(x: Tensor, names: string[]): { output: Tensor; features: Record<string, Tensor> } {
    this.featureCalls++;
    this.featureRows += x.shape[0]!;
    return this.inner.features(x, names);
  }
}
