// Shared helpers for the golden tests: the PyTorch fixtures and value/gradient comparison.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import { native } from '../../src/tensor/native.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import type { DType } from '../../src/tensor/dtype.js';

export interface Golden { value: number; grad: number[] }
export interface GoldenCase {
  name: string;
  T: number;
  shape: [number, number];
  student: number[];
  teacher: number[];
  labels: number[];
  losses: Record<string, Golden>;
}

// dist/test/losses/golden.js -> repository root is three levels up.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CASES: GoldenCase[] = (JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'losses', 'losses.json'), 'utf8')) as { cases: GoldenCase[] }).cases;

export function inputs(c: GoldenCase, dtype: DType = 'float64'): { s: Tensor; t: Tensor; y: Tensor } {
  return {
    s: torch.tensor(c.student, { shape: c.shape, dtype }).requiresGrad_(true),
    t: torch.tensor(c.teacher, { shape: c.shape, dtype }),
    y: torch.tensor(c.labels, { dtype: 'int64' }),
  };
}

/** Value and gradient w.r.t. the student logits of loss(s); frees everything it made. */
export function valueAndGrad(s: Tensor, loss: (s: Tensor) => Tensor): { value: number; grad: Float64Array } {
  return torch.tidy(() => {
    const v = loss(s);
    const [g] = torch.autograd.grad(v, s);
    return { value: v.item(), grad: g!.toFloat64Array() };
  });
}

export function assertClose(actual: number, expected: number, rtol: number, atol: number, what: string): void {
  assert.ok(Number.isFinite(actual), `${what}: not finite (${actual})`);
  assert.ok(Math.abs(actual - expected) <= atol + rtol * Math.abs(expected),
    `${what}: got ${actual}, expected ${expected} (|diff| ${Math.abs(actual - expected)})`);
}

export function assertGradClose(actual: Float64Array, expected: number[], rtol: number, atol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: gradient size`);
  const scale = Math.max(1e-12, ...expected.map(Math.abs));
  for (let i = 0; i < actual.length; i++) {
    // Tolerance relative to the gradient's largest entry: tiny entries next to large ones carry
    // only absolute precision.
    assertClose(actual[i]!, expected[i]!, rtol, atol + rtol * scale, `${what}: grad[${i}]`);
  }
}

export function liveTensors(): number {
  return (native as unknown as { liveTensors(): number }).liveTensors();
}
