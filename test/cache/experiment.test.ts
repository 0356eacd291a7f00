// The runner's use of the cache: teacherCache auto stays off under random augmentation and caches
// otherwise (once, reused by the next run); 'on' caches un-augmented outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setNumThreads, manualSeed } from '../../src/tensor/torch.js';
import { createModel } from '../../src/nn/zoo/index.js';
import { saveModel, parseSafetensors } from '../../src/nn/safetensors.js';
import { parseExperiment } from '../../src/config/experiment.js';
import { runExperiment } from '../../src/run/experiment.js';

setNumThreads(1);
const root = mkdtempSync(join(tmpdir(), 'kd-cache-exp-'));
manualSeed(1);
const teacherPath = join(root, 'teacher.safetensors');
saveModel(teacherPath, createModel({ arch: 'mlp', hidden: [16], numClasses: 10, inputShape: [1, 28, 28] }));

async function run(name: string, extra: Record<string, unknown>): Promise<string[]> {
  const cacheDir = (extra.teacherCache as { dir?: string } | undefined)?.dir ?? join(root, `cache-${name}`);
  const e = parseExperiment({
    name, epochs: 1, seed: (extra.seed as number | undefined) ?? 2, output: join(root, `run-${name}`),
    data: { subset: 256, batchSize: 64, ...(extra.data as object ?? {}) },
    teacher: { checkpoint: teacherPath }, student: { arch: 'mlp', hidden: [8] },
    method: (extra.method as object) ?? { name: 'kd' }, optimizer: (extra.optimizer as object) ?? { name: 'sgd', lr: 0.1 },
    teacherCache: { dir: cacheDir, ...(extra.teacherCache as object ?? {}) },
  }, join(root, `${name}.yaml`));
  await runExperiment(e, { mode: 'distill', resume: false });
  try {
    return readdirSync(cacheDir).map((f) => join(cacheDir, f));
  } catch {
    return [];
  }
}

test("teacherCache auto: off with random augmentation, on (and reused) without; 'on' caches un-augmented outputs", async () => {
  assert.deepEqual(await run('crop', { data: { augment: { crop: 2 } } }), [], 'auto + random crop: no cache');

  const files = await run('plain', { data: { normalize: { mean: [0.28], std: [0.35] } } });
  assert.equal(files.length, 1, 'auto + deterministic pipeline: one cache file');
  const meta = parseSafetensors(readFileSync(files[0]!)).metadata;
  assert.equal(meta.rows, '256');
  assert.match(meta.augment!, /"normalize"/, 'keyed by the deterministic pipeline');
  const again = await run('plain', { data: { normalize: { mean: [0.28], std: [0.35] } } });
  assert.deepEqual(again, files, 'the next run reuses the same file');

  const on = await run('on', { data: { augment: { crop: 2, flip: true } }, teacherCache: { mode: 'on' } });
  assert.equal(on.length, 1);
  assert.equal(parseSafetensors(readFileSync(on[0]!)).metadata.augment, '[]', 'outputs of un-augmented samples');
});

test('a feature method (fitnet) has its teacher features cached under a deterministic pipeline, and runs live with random augmentation', async () => {
  const fitnet = { name: 'fitnet', params: { pairs: ['layer1'] } };
  const files = await run('fitnet', { method: fitnet });
  assert.equal(files.length, 1, 'one cache file with logits and features');
  const f = parseSafetensors(readFileSync(files[0]!));
  assert.equal(f.metadata.features, '["layer1"]');
  assert.equal(f.metadata.featureShapes, '[[16]]');
  assert.deepEqual(f.tensors.get('feature.layer1')!.shape, [256, 16]);
  for (const t of f.tensors.values()) t.dispose();
  assert.deepEqual(await run('fitnet-crop', { method: fitnet, data: { augment: { crop: 2 } }, teacherCache: { mode: 'on' } }), [], 'random augmentation: no feature cache');
});

test('with data.augment.seed, auto caches each epoch\'s views once; runs with other seeds, settings and outputs share the file', async () => {
  const views = { data: { augment: { crop: 2, flip: true, seed: 4 } }, teacherCache: { dir: join(root, 'cache-views') } };
  const meta = (path: string): Record<string, string> => {
    const f = parseSafetensors(readFileSync(path));
    const shape = f.tensors.get('logits')!.shape;
    for (const t of f.tensors.values()) t.dispose();
    return { ...f.metadata, shape: JSON.stringify(shape) };
  };
  const first = await run('views-a', views);
  assert.equal(first.length, 1);
  const m = meta(first[0]!);
  assert.equal(m.format, 'kdistill-teacher-view-cache');
  assert.equal(m.shape, '[1,256,10]', '1 epoch of views of the 256 samples');
  // Another learning rate and output folder (a sweep trial): the same file, loaded, not rewritten.
  const second = await run('views-b', { ...views, optimizer: { name: 'sgd', lr: 0.05 } });
  assert.deepEqual(second, first);
  assert.equal(meta(second[0]!).created, m.created, 'loaded, not rebuilt');
  // Another seed draws another 256-sample subset: still the same file (keyed by source index), grown by the new samples.
  const third = await run('views-c', { ...views, seed: 9 });
  assert.deepEqual(third, first);
  assert.ok(Number(meta(third[0]!).rows) > 256);
});
