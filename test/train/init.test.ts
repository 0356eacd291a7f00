// init: a student starts from a saved model's weights (e.g. a general-distillation stage before
// task-specific distillation), checked tensor by tensor, with clear errors when it does not fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment } from '../../src/run/experiment.js';
import { loadModel } from '../../src/nn/safetensors.js';
import { torch } from '../../src/index.js';

const base = { epochs: 1, seed: 3, data: { subset: 200, batchSize: 50 }, method: { name: 'scratch' } };

test('init: {from: model.safetensors} starts the student from those weights; a model that does not fit is refused by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kd-init-'));
  try {
    const first = join(dir, 'first');
    await runExperiment(parseExperiment({ ...base, student: { arch: 'mlp', hidden: [12] }, optimizer: { name: 'sgd', lr: 0.1 }, output: first }, join(dir, 'a.yaml')), { mode: 'train', resume: false });
    // lr 0: the second run keeps exactly the weights it started from.
    const second = join(dir, 'second');
    await runExperiment(parseExperiment({
      ...base, seed: 9, student: { arch: 'mlp', hidden: [12] }, optimizer: { name: 'sgd', lr: 0 }, init: { from: 'first/model.safetensors' }, output: second,
    }, join(dir, 'b.yaml')), { mode: 'train', resume: false });
    const a = loadModel(join(first, 'model.safetensors')).model.stateDict(), b = loadModel(join(second, 'model.safetensors')).model.stateDict();
    for (const [k, t] of a) assert.ok(torch.tidy(() => t.equal(b.get(k)!)), `${k} copied`);

    const wrong = parseExperiment({ ...base, student: { arch: 'mlp', hidden: [7] }, optimizer: { name: 'sgd', lr: 0 }, init: { from: 'first/model.safetensors' }, output: join(dir, 'w') }, join(dir, 'c.yaml'));
    await assert.rejects(runExperiment(wrong, { mode: 'train', resume: false }), /c\.yaml: 'init': .*first\/model\.safetensors does not fit the student: .*'layer1\.linear\.weight' has shape \[12x784\], the model needs \[7x784\]/);
    const missing = parseExperiment({ ...base, student: { arch: 'mlp', hidden: [12] }, optimizer: { name: 'sgd', lr: 0 }, init: { from: 'nope.safetensors' }, output: join(dir, 'm') }, join(dir, 'd.yaml'));
    await assert.rejects(runExperiment(missing, { mode: 'train', resume: false }), /d\.yaml: 'init': model file not found: .*nope\.safetensors/);
    assert.throws(() => parseExperiment({ ...base, epochs: 1, student: { arch: 'mlp' }, optimizer: { name: 'sgd', lr: 0 }, init: { from: 'model.pt' } }, 'e.yaml'),
      /'init\.from' must be 'teacher' or a model file \(\.safetensors\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
