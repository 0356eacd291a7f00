// Shared helpers for the methods' golden tests: a fixture file of cases written by a script in
// scripts/fixtures/ (PyTorch, from the authors' code), the inputs of a case as tensors, and one
// evaluation of a method's terms with the gradients of their sum.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { resolveParams, type LossContext, type Method, type Params } from '../../src/methods/method.js';
import { getMethod } from '../../src/methods/registry.js';
import { assertClose, assertGradClose } from '../losses/golden.js';
import { context } from './context.js';

export interface MethodCase {
  name: string;
  shape: [number, number];
  params: Params;
  student: number[];
  teacher: number[] | null;
  labels: number[] | null;
  /** 0-based epoch of the step (schedules: warm-up, curricula). */
  epoch?: number;
  terms: Record<string, number>;
  /** d(sum of terms)/d(student logits), flattened. */
  grad: number[];
}

// dist/test/methods/golden.js -> the repository root is three levels up.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The `cases` of test/fixtures/methods/<file>.json, plus whatever else the file holds. */
export function fixture<C = MethodCase, X = object>(file: string): { cases: C[] } & X {
  return JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'methods', `${file}.json`), 'utf8')) as { cases: C[] } & X;
}

/** A case's logits (float64; the student's requires grad), labels and LossContext. */
export function caseContext(c: MethodCase): { s: Tensor; t: Tensor | null; y: Tensor | null; ctx: LossContext } {
  const s = torch.tensor(c.student, { shape: c.shape, dtype: 'float64' }).requiresGrad_(true);
  const t = c.teacher ? torch.tensor(c.teacher, { shape: c.shape, dtype: 'float64' }) : null;
  const y = c.labels ? torch.tensor(c.labels, { dtype: 'int64' }) : null;
  return { s, t, y, ctx: context({ student: s, teacher: t, y, ...(c.epoch !== undefined ? { epoch: c.epoch } : {}) }) };
}

/** The method's terms as numbers and the gradients of their sum w.r.t. `wrt`; frees what it made. */
export function evaluate(m: Method, ctx: LossContext, wrt: Tensor[]): { values: Record<string, number>; grads: Float64Array[] } {
  return torch.tidy(() => {
    const terms = m.losses(ctx);
    const values = Object.fromEntries(Object.entries(terms).map(([k, v]) => [k, v.item()]));
    const total = Object.values(terms).reduce((a, b) => a.add(b));
    const grads = torch.autograd.grad(total, wrt).map((g) => g!.toFloat64Array());
    return { values, grads };
  });
}

/** Same term names as the reference and every value within rtol/atol. */
export function assertTerms(values: Record<string, number>, expected: Record<string, number>, rtol: number, atol: number, what: string): void {
  assert.deepEqual(Object.keys(values).sort(), Object.keys(expected).sort(), `${what}: term names`);
  for (const [k, v] of Object.entries(expected)) assertClose(values[k]!, v, rtol, atol, `${what}: ${k}`);
}

/**
 * Every case through the registry, as an experiment reaches the method: its terms and the gradient
 * w.r.t. the student logits against the reference, within rtol (atol for values near 0).
 */
export function assertCases(cases: (MethodCase & { method?: string })[], method: string | null, rtol: number, atol: number): void {
  for (const c of cases) {
    const spec = getMethod(c.method ?? method ?? '');
    const m = spec.create(resolveParams(spec, c.params));
    const { s, t, y, ctx } = caseContext(c);
    const { values, grads: [grad] } = evaluate(m, ctx, [s]);
    assertTerms(values, c.terms, rtol, atol, c.name);
    assertGradClose(grad!, c.grad, rtol, atol, c.name);
    torch.dispose(s, ...(t ? [t] : []), ...(y ? [y] : []));
  }
}
