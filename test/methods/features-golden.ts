// Shared by the representation methods' golden tests: a fixture case gives named student and
// teacher features (and optionally logits and labels), the method's parameters, and PyTorch's
// loss terms and gradients w.r.t. the student features; the method runs through the registry
// with a loss context holding those features, as the trainer would build it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { torch } from '../../src/tensor/torch.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import type { LossContext, Method, Params } from '../../src/methods/method.js';
import { resolveParams } from '../../src/methods/method.js';
import { getMethod } from '../../src/methods/registry.js';
import type { Module } from '../../src/nn/module.js';
import { assertClose, assertGradClose } from '../losses/golden.js';

export interface Named { shape: number[]; data: number[] }
export interface FeatureCase {
  name: string;
  params: Params;
  student: Record<string, Named>;
  teacher: Record<string, Named>;
  /** Student logits and labels: present when the case checks the label term too. */
  logits?: Named;
  labels?: number[] | null;
  terms: Record<string, number>;
  /** d(sum of terms)/d(student feature), by feature name. */
  grads: Record<string, number[]>;
  [extra: string]: unknown;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export function fixture<C = FeatureCase>(file: string): C[] {
  return (JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'methods', file), 'utf8')) as { cases: C[] }).cases;
}

export const t64 = (n: Named): Tensor => torch.tensor(n.data, { shape: n.shape, dtype: 'float64' });

export function make(name: string, params: Params): Method {
  const spec = getMethod(name);
  return spec.create(resolveParams(spec, params));
}

/** The loss context of a case: student features require grad; logits default to a zero [n, 2] batch. */
export function featureContext(c: FeatureCase): { ctx: LossContext; leaves: Record<string, Tensor> } {
  const leaves = Object.fromEntries(Object.entries(c.student).map(([k, v]) => [k, t64(v).requiresGrad_(true)]));
  const teacher = Object.fromEntries(Object.entries(c.teacher).map(([k, v]) => [k, t64(v)]));
  const n = Object.values(leaves)[0]!.shape[0]!;
  const logits = c.logits ? t64(c.logits) : torch.zeros([n, 2], { dtype: 'float64' });
  const y = c.labels ? torch.tensor(c.labels, { dtype: 'int64' }) : null;
  const ctx: LossContext = {
    student: {} as Module, teacher: null, batch: { x: logits, y }, indices: null,
    info: { epoch: 0, epochs: 1, step: 0, numClasses: logits.shape[1]! },
    studentLogits: logits, teacherLogits: null, studentFeatures: leaves, teacherFeatures: teacher,
  };
  return { ctx, leaves };
}

/** Runs a method on a case's context; returns the terms' values and the gradients w.r.t. the leaves. */
export function run(m: Method, ctx: LossContext, leaves: Record<string, Tensor>): { values: Record<string, number>; grads: Record<string, Float64Array> } {
  return torch.tidy(() => {
    const terms = m.losses(ctx);
    const values = Object.fromEntries(Object.entries(terms).map(([k, v]) => [k, v.item()]));
    const names = Object.keys(leaves);
    const total = Object.values(terms).reduce((a, b) => a.add(b));
    const gs = torch.autograd.grad(total, names.map((k) => leaves[k]!), { allowUnused: true });
    return { values, grads: Object.fromEntries(names.map((k, i) => [k, gs[i] ? gs[i]!.toFloat64Array() : new Float64Array(leaves[k]!.numel())])) };
  });
}

/** Compares a run with a case: the same term names, values and gradients within rtol. */
export function assertCase(c: FeatureCase, got: { values: Record<string, number>; grads: Record<string, Float64Array> }, rtol: number, atol = 1e-14): void {
  assert.deepEqual(Object.keys(got.values).sort(), Object.keys(c.terms).sort(), `${c.name}: term names`);
  for (const [k, v] of Object.entries(c.terms)) assertClose(got.values[k]!, v, rtol, atol, `${c.name}: ${k}`);
  for (const [k, g] of Object.entries(c.grads)) assertGradClose(got.grads[k]!, g, rtol, atol, `${c.name}: d/d${k}`);
}

/** The golden check of a method whose layers the case names: build, run, compare. */
export function goldenCases(method: string, file: string, rtol: number): void {
  for (const c of fixture(file)) {
    const m = make(method, c.params);
    const { ctx, leaves } = featureContext(c);
    assertCase(c, run(m, ctx, leaves), rtol);
  }
}
