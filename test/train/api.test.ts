// The one-call library API (fit, distill) on a small real subset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { distill, fit, loadFashionMnist, take, setNumThreads } from '../../src/index.js';

setNumThreads(1);
const train = take(loadFashionMnist({ split: 'train' }), 1500, 5, { stratified: true });
const testSet = take(loadFashionMnist({ split: 'test' }), 500, 5, { stratified: true });

test('fit trains a teacher and distill turns it into a student that agrees with it', async () => {
  const teacher = await fit({ student: { arch: 'mlp', hidden: [64] }, data: { train, test: testSet }, epochs: 4, seed: 2 });
  assert.ok((teacher.final?.accuracy ?? 0) > 0.7, `teacher accuracy ${teacher.final?.accuracy}`);
  const r = await distill({ teacher: teacher.student, student: { arch: 'mlp', hidden: [16] }, data: { train, test: testSet }, epochs: 4, seed: 2 });
  assert.ok(r.student.numParameters() < teacher.student.numParameters());
  assert.ok((r.final?.agreement ?? 0) > 0.7, `agreement ${r.final?.agreement}`);
  await assert.rejects(distill({ teacher: teacher.student, student: { arch: 'mlp' }, data: { train, test: testSet }, method: 'nope' }), /unknown method 'nope'/);
});
