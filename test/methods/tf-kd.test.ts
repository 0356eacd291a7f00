// Golden test of tf-kd-reg and tf-kd-self against the PyTorch reference written from the
// authors' my_loss_function.py (scripts/fixtures/tf_kd.py → test/fixtures/methods/tf_kd.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import { resolveParams } from '../../src/methods/method.js';
import { getMethod } from '../../src/methods/registry.js';
import { assertCases, caseContext, fixture, type MethodCase } from './golden.js';

const CASES = fixture<MethodCase & { method: string }>('tf_kd').cases;

test('tf-kd-reg and tf-kd-self: terms and gradient match the reference of the authors\' losses', () => {
  assert.equal(getMethod('tf-kd-reg').needsTeacher, false);
  assert.equal(getMethod('tf-kd-self').needsTeacher, true);
  // float64 throughout and the same formulas up to reduction order: ulp-level differences;
  // 1e-10 relative fails on batchmean instead of the authors' elementwise mean (a factor K), a
  // softened student or a T² on the virtual teacher's term.
  assertCases(CASES, null, 1e-10, 1e-14);
});

test('tf-kd-reg refuses unlabeled batches, saying why', () => {
  const spec = getMethod('tf-kd-reg');
  const c = CASES.find((x) => x.method === 'tf-kd-reg')!;
  const { s, ctx } = caseContext(c);
  assert.throws(() => spec.create(resolveParams(spec, {})).losses({ ...ctx, batch: { x: s, y: null } }), /tf-kd-reg.*labelled.*virtual teacher/);
  assert.throws(() => resolveParams(spec, { correctProb: 1.5 }), /'correctProb' must be <= 1/);
  s.dispose();
});
