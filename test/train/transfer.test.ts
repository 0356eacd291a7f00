// Transfer sets (Hinton 2015): the student learns from the training set, a held-out part of it,
// or that part without labels (soft term only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperiment } from '../../src/config/experiment.js';
import { prepareData, runExperiment } from '../../src/run/experiment.js';
import { packageRoot } from '../../src/tensor/native.js';

const base = { epochs: 1, seed: 4, student: { arch: 'mlp', hidden: [16] }, optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 } };
const TEACHER = join(packageRoot, 'assets', 'fashion-mnist-teacher.safetensors');

test('train / held-out / unlabeled transfer sets are disjoint parts with or without labels', () => {
  const mk = (transfer: string) => prepareData(parseExperiment({ ...base, data: { subset: 2000, heldOut: 500, transfer } }, 'exp.yaml'));
  const tr = mk('train'), ho = mk('held-out'), un = mk('unlabeled');
  assert.equal(tr.transfer.size, 1500);
  assert.equal(ho.transfer.size, 500);
  assert.equal(un.transfer.size, 500);
  assert.ok(ho.transfer.y !== null);
  assert.equal(un.transfer.y, null);
  const a = new Set(tr.transfer.origin!.indices), b = ho.transfer.origin!.indices;
  for (const i of b) assert.ok(!a.has(i), `sample ${i} is in both the training and the held-out part`);
  assert.deepEqual([...un.transfer.origin!.indices], [...b]);
});

test('distilling on unlabeled transfer data logs only the soft term and still learns', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-transfer-'));
  const e = parseExperiment({
    ...base, epochs: 3, data: { subset: 3000, heldOut: 1500, transfer: 'unlabeled', batchSize: 64 },
    teacher: { checkpoint: TEACHER }, method: { name: 'kd' }, output: join(dir, 'out'),
  }, join(dir, 'exp.yaml'));
  const r = await runExperiment(e, { mode: 'distill', resume: false });
  const steps = readFileSync(join(dir, 'out', 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((x) => x.type === 'step');
  assert.ok(steps.length > 0);
  for (const s of steps) assert.equal(s.ce, undefined, 'no hard term on unlabeled data');
  assert.ok((r.result.final?.accuracy ?? 0) > 0.6, `accuracy ${r.result.final?.accuracy}`);
  assert.throws(() => parseExperiment({ ...base, data: { transfer: 'unlabeled', heldOut: 0 } }, 'exp.yaml'), /'data\.heldOut' must be >= 1/);
});
