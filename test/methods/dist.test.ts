// Golden test of the DIST method against the PyTorch reference written from the authors' loss
// (scripts/fixtures/dist.py → test/fixtures/methods/dist.json): every term and the gradient of
// their sum w.r.t. the student logits, through the registry as an experiment reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { torch } from '../../src/tensor/torch.js';
import { resolveParams } from '../../src/methods/method.js';
import { getMethod } from '../../src/methods/registry.js';
import { assertClose, assertGradClose, valueAndGrad } from '../losses/golden.js';
import { context } from './context.js';

interface Case {
  name: string; shape: [number, number]; params: Record<string, number>;
  student: number[]; teacher: number[]; labels: number[] | null;
  terms: Record<string, number>; grad: number[];
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CASES = (JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'methods', 'dist.json'), 'utf8')) as { cases: Case[] }).cases;

// Both sides compute in float64 with the same formulas; only reduction order differs, so the
// error is a few ulps of each term (~1e-15); 1e-10 relative leaves margin yet fails on any
// formula change (a missing τ², eps or mean would move the values by far more).
const RTOL = 1e-10;

test('dist: terms and gradient match the PyTorch reference of the authors\' loss', () => {
  const spec = getMethod('dist');
  assert.ok(spec.needsTeacher);
  for (const c of CASES) {
    const m = spec.create(resolveParams(spec, c.params));
    const s = torch.tensor(c.student, { shape: c.shape, dtype: 'float64' }).requiresGrad_(true);
    const t = torch.tensor(c.teacher, { shape: c.shape, dtype: 'float64' });
    const y = c.labels ? torch.tensor(c.labels, { dtype: 'int64' }) : null;
    const ctx = context({ student: s, teacher: t, y });
    const values: Record<string, number> = {};
    const { grad } = valueAndGrad(s, () => {
      const terms = m.losses(ctx);
      for (const [k, v] of Object.entries(terms)) values[k] = v.item();
      return Object.values(terms).reduce((a, b) => a.add(b));
    });
    assert.deepEqual(Object.keys(values).sort(), Object.keys(c.terms).sort(), `${c.name}: term names (no ce without labels)`);
    for (const [k, v] of Object.entries(c.terms)) assertClose(values[k]!, v, RTOL, 1e-14, `${c.name}: ${k}`);
    assertGradClose(grad, c.grad, RTOL, 1e-14, c.name);
    torch.dispose(s, t, ...(y ? [y] : []));
  }
});
