// Golden test of the DIST method against the PyTorch reference written from the authors' loss
// (scripts/fixtures/dist.py → test/fixtures/methods/dist.json): every term and the gradient of
// their sum w.r.t. the student logits, through the registry as an experiment reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { torch } from '../../src/tensor/torch.js';
import { resolveParams } from '../../src/methods/method.js';
import { getMethod } from '../../src/methods/registry.js';
import { assertGradClose } from '../losses/golden.js';
import { assertTerms, caseContext, evaluate, fixture } from './golden.js';

// Both sides compute in float64 with the same formulas; only reduction order differs, so the
// error is a few ulps of each term (~1e-15); 1e-10 relative leaves margin yet fails on any
// formula change (a missing τ², eps or mean would move the values by far more).
const RTOL = 1e-10;

test('dist: terms and gradient match the PyTorch reference of the authors\' loss', () => {
  const spec = getMethod('dist');
  assert.ok(spec.needsTeacher);
  for (const c of fixture('dist').cases) {
    const m = spec.create(resolveParams(spec, c.params));
    const { s, t, y, ctx } = caseContext(c);
    const { values, grads: [grad] } = evaluate(m, ctx, [s]);
    assertTerms(values, c.terms, RTOL, 1e-14, `${c.name} (no ce without labels)`);
    assertGradClose(grad!, c.grad, RTOL, 1e-14, c.name);
    torch.dispose(s, ...(t ? [t] : []), ...(y ? [y] : []));
  }
});
