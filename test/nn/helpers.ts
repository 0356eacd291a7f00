// Fixture loading and tensor comparison for the nn tests (fixtures from scripts/fixtures/nn.py).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { torch, Tensor } from '../../src/index.js';
import { packageRoot } from '../../src/tensor/native.js';

export interface Enc { shape: number[]; dtype: 'float32' | 'int64'; data: number[] }

export const fixtureDir = join(packageRoot, 'test', 'fixtures', 'nn');

export function loadFixture<T>(name: string): T {
  return JSON.parse(readFileSync(join(fixtureDir, name), 'utf-8')) as T;
}

export function fromEnc(e: Enc): Tensor {
  if (e.dtype === 'int64') return torch.tensor(BigInt64Array.from(e.data, (v) => BigInt(v)), { shape: e.shape });
  return torch.tensor(Float32Array.from(e.data), { shape: e.shape });
}

export function stateFromEnc(s: Record<string, Enc>): Map<string, Tensor> {
  return new Map(Object.entries(s).map(([k, v]) => [k, fromEnc(v)]));
}

/** |a - b| ≤ atol + rtol·|b| elementwise, with the worst offender in the message. */
export function assertClose(actual: Tensor, expected: Enc | Tensor, what: string, rtol = 1e-4, atol = 1e-5): void {
  const expShape = expected instanceof Tensor ? expected.shape : expected.shape;
  assert.deepEqual(actual.shape, expShape, `${what}: shape`);
  const a = actual.toFloat64Array();
  const b = expected instanceof Tensor ? expected.toFloat64Array() : Float64Array.from(expected.data);
  let worst = -1, worstErr = 0;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i]! - b[i]!) - (atol + rtol * Math.abs(b[i]!));
    if (err > worstErr || Number.isNaN(a[i]!)) { worst = i; worstErr = err; }
  }
  if (worst >= 0) assert.fail(`${what}: element ${worst} is ${a[worst]}, expected ${b[worst]}`);
}

/** Relative closeness of two scalars (fingerprints: sums and sums of squares). */
export function assertNear(actual: number, expected: number, what: string, rtol = 1e-4, atol = 1e-6): void {
  if (!(Math.abs(actual - expected) <= atol + rtol * Math.abs(expected))) assert.fail(`${what}: ${actual}, expected ${expected}`);
}
