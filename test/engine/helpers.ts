// Shared helpers for the engine tests: reading the golden fixtures written by
// scripts/fixtures/engine.py and comparing tensors with PyTorch's values.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { packageRoot } from '../../src/tensor/native.js';
import { torch, Tensor } from '../../src/index.js';
import type { DType } from '../../src/index.js';

export const fixtureDir = join(packageRoot, 'test', 'fixtures', 'engine');

export function loadFixture<T>(name: string): T {
  return JSON.parse(readFileSync(join(fixtureDir, name), 'utf8')) as T;
}

/** A tensor as the fixture script encodes it: shape, dtype and flat row-major data. */
export interface Enc {
  shape: number[];
  dtype: DType;
  data: number[];
}

export function fromEnc(e: Enc, requiresGrad = false): Tensor {
  const t = torch.tensor(e.data, { dtype: e.dtype, shape: e.shape });
  if (requiresGrad) t.requiresGrad_(true);
  return t;
}

export interface Tolerance {
  rtol: number;
  atol: number;
}

export function tolFor(dtype: DType): Tolerance {
  return dtype === 'float32' ? { rtol: 1e-5, atol: 1e-6 } : { rtol: 1e-9, atol: 1e-11 };
}

/** Asserts same shape and dtype, and values within tolerance (exact for integers and bools). */
export function assertTensorClose(actual: Tensor, expected: Enc, what: string, tol?: Tolerance): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  const a = actual.toFloat64Array();
  const { rtol, atol } = tol ?? tolFor(expected.dtype);
  const exact = expected.dtype === 'int64' || expected.dtype === 'bool';
  for (let i = 0; i < a.length; i++) {
    const e = expected.data[i]!;
    const x = a[i]!;
    if (exact) {
      if (x !== e) assert.fail(`${what}: element ${i} is ${x}, PyTorch has ${e}`);
    } else if (Number.isNaN(e) ? !Number.isNaN(x) : !(Math.abs(x - e) <= atol + rtol * Math.abs(e) || x === e)) {
      assert.fail(`${what}: element ${i} is ${x}, PyTorch has ${e} (|diff| ${Math.abs(x - e)}, rtol ${rtol}, atol ${atol})`);
    }
  }
}

/** Asserts a flat numeric array close to the expected numbers. */
export function assertArrayClose(actual: ArrayLike<number>, expected: number[], what: string, tol: Tolerance): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const x = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(x - e) <= tol.atol + tol.rtol * Math.abs(e))) {
      assert.fail(`${what}: element ${i} is ${x}, PyTorch has ${e} (|diff| ${Math.abs(x - e)})`);
    }
  }
}

/** Bitwise equality of two tensors' contents. */
export function assertBitEqual(a: Tensor, b: Tensor, what: string): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  const x = new Uint8Array(a.data().buffer);
  const y = new Uint8Array(b.data().buffer);
  assert.equal(Buffer.compare(Buffer.from(x), Buffer.from(y)), 0, `${what}: contents differ`);
}
