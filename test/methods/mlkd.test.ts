// Golden test of MLKD against the PyTorch reference transcribed from the authors' forward_train
// with both views equal (scripts/fixtures/mlkd.py → test/fixtures/methods/mlkd.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import { resolveParams } from '../../src/methods/method.js';
import { getMethod } from '../../src/methods/registry.js';
import { atMostMedian, median } from '../../src/methods/mlkd.js';
import { assertCases, fixture, type MethodCase } from './golden.js';

interface Case extends MethodCase { mask: number; classMask: number }
const CASES = fixture<Case>('mlkd').cases;

test('mlkd: terms and gradient match the reference of the authors\' loss', () => {
  // float64 on both sides, same formulas up to summation order: ulp-level differences; 1e-10
  // relative fails on a wrong mask fraction (≥ 1/B apart), a missing view or temperature.
  assertCases(CASES, 'mlkd', 1e-10, 1e-14);
});

test('mlkd: the confidence masks are numpy\'s 50th percentile with ≤, as the authors\'', () => {
  for (const c of CASES) {
    torch.tidy(() => {
      const pt = torch.tensor(c.teacher!, { shape: c.shape, dtype: 'float64' }).softmax(1);
      assert.equal(atMostMedian(pt.max({ dim: 1 }).values.toFloat64Array()), c.mask, `${c.name}: samples`);
      assert.equal(atMostMedian(pt.sum({ dim: 0 }).toFloat64Array()), c.classMask, `${c.name}: classes`);
    });
  }
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(atMostMedian([1, 1, 1, 5]), 0.75, 'ties at the median all count');
  assert.throws(() => median([]), /no values/);
});

test('mlkd: an empty temperature list is refused, naming the parameter', () => {
  const spec = getMethod('mlkd');
  assert.throws(() => spec.create(resolveParams(spec, { temperatures: [] })), /'temperatures'/);
});
