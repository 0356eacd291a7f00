// Golden test of the DIST method against the PyTorch reference written from the authors' loss
// (scripts/fixtures/dist.py → test/fixtures/methods/dist.json): every term and the gradient of
// their sum w.r.t. the student logits, through the registry as an experiment reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getMethod } from '../../src/methods/registry.js';
import { assertCases, fixture } from './golden.js';

// Both sides compute in float64 with the same formulas; only reduction order differs, so the
// error is a few ulps of each term (~1e-15); 1e-10 relative leaves margin yet fails on any
// formula change (a missing τ², eps or mean would move the values by far more).
const RTOL = 1e-10;

test('dist: terms and gradient match the PyTorch reference of the authors\' loss', () => {
  assert.ok(getMethod('dist').needsTeacher);
  assertCases(fixture('dist').cases, 'dist', RTOL, 1e-14); // term names too: no ce without labels
});
